"""stocktake against DuckDB at a scale tier, in one run on one machine (release build).

    python3 benches/scale.py --tier S          # or M; --keep to leave the data behind

Steps, each a separate process so its wall time and peak RSS are its own:
  generate   `stocktake generate --tier T` (not compared: it only makes the data)
  ingest     every day but the last, one `stocktake snapshot --date D` per day, as the
             scheduler runs it; the peer loads the same files with `read_csv`
  build      `stocktake build`: every mart; the peer computes positions, variances, ABC
             classes and weekly variance trends
  daily      the last day's files arrive: `stocktake run --date LAST` (ingest + build)
  rounds     with --rounds N, N-1 more full builds of each (`stocktake build --full`, the
             peer's build), alternated, all over the whole history
Prints a table and the ratio stocktake / DuckDB for ingest and build (of the median builds),
and daily / build. On a shared machine a run's wall time can vary by 10-20 %: alternating
rounds puts both tools through the same quiet and busy spells.
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Peak RSS of steps that failed (a build killed for memory), so the summary still counts it.
FAILED_PEAKS = []


def run(args, may_fail=False):
    """Runs a command; returns (seconds, its own peak RSS in MiB, stdout). A step that
    `may_fail` (a build that runs out of memory, say) returns None instead of stopping."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    # wait4 reaps the child and returns its own rusage (ru_maxrss in KiB on Linux).
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        if may_fail:
            FAILED_PEAKS.append(usage.ru_maxrss / 1024)
            print(f"{args[2]} failed ({proc.returncode}) after {seconds:.1f}s, peak RSS {usage.ru_maxrss / 1024:.0f} MiB: {out[-500:]}", flush=True)
            return None
        sys.exit(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{out[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, out


# The marts the DuckDB peer computes too.
PEER_MARTS = ("positions", "variances", "sku_classes", "variance_trends")
PEER_STEP = "build (peer's marts)"


def mart_seconds(log):
    """Seconds per mart (name -> seconds), from the build's `building mart` / `mart built`
    log lines."""
    import re
    from datetime import datetime

    started, out = {}, {}
    for line in re.sub(r"\x1b\[[0-9;]*m", "", log).splitlines():
        m = re.match(r"(\S+Z)\s+INFO .*(building mart|mart built) mart=\"?(\w+)", line)
        if not m:
            continue
        at = datetime.fromisoformat(m.group(1).replace("Z", "+00:00"))
        if m.group(2) == "building mart":
            started[m.group(3)] = at
        else:
            out[m.group(3)] = (at - started[m.group(3)]).total_seconds()
    return out


def peer_marts(build):
    """(seconds, peak RSS) of a build's marts that the peer computes too, from its log."""
    marts = mart_seconds(build[2])
    return sum(marts.get(m, 0.0) for m in PEER_MARTS), build[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tier", default="S")
    parser.add_argument("--days", type=int, help="days of history instead of the tier's own")
    parser.add_argument("--work", default="/tmp/stocktake-bench")
    parser.add_argument("--bin", help="a built stocktake binary (default: cargo build --release)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--rounds", type=int, default=1, help="full builds of each tool, alternated (ratios of the medians)")
    a = parser.parse_args()

    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/stocktake-target"))
    if a.bin:
        stocktake = a.bin
    else:
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True, env={**os.environ, "CARGO_TARGET_DIR": str(target)})
        stocktake = str(target / "release/stocktake")
    work = Path(a.work) / a.tier
    shutil.rmtree(work, ignore_errors=True)
    data, warehouse, held, duck = work / "data", work / "warehouse", work / "held", work / "peer.duckdb"
    figures = {}

    days = ["--days", str(a.days)] if a.days else []
    t, rss, out = run([stocktake, "--quiet", "generate", "--tier", a.tier, *days, "--dir", str(data), "--warehouse", str(warehouse)])
    # Data lines per day (headers excluded), read once: the last day's are held back below.
    lines = {}
    for f in data.glob("landing/*/*/*"):
        with open(f, encoding="utf-8-sig") as lines_of:
            lines[f.parent.name] = lines.get(f.parent.name, 0) + sum(1 for _ in lines_of) - 1
    rows = sum(lines.values())
    dates = sorted(lines)
    print(f"generated tier {a.tier}: {len(dates)} days, {rows:,} data rows, {t:.1f}s", flush=True)

    # The last day arrives later, for the daily run.
    last = dates[-1]
    for day_dir in data.glob(f"landing/*/{last}"):
        dest = held / day_dir.parent.name
        dest.mkdir(parents=True, exist_ok=True)
        shutil.move(str(day_dir), str(dest / last))
    history_rows = rows - lines[last]

    pipeline = str(data / "pipeline.toml")
    total, peak = 0.0, 0.0
    for day in dates[:-1]:
        t, rss, _ = run([stocktake, "--quiet", "snapshot", pipeline, "--date", day])
        total, peak = total + t, max(peak, rss)
    figures["ingest"] = (total, peak)
    print(f"stocktake ingest: {total:.1f}s ({history_rows / total:,.0f} rows/s), peak RSS {peak:.0f} MiB", flush=True)
    build = run([stocktake, "-v", "build", "--warehouse", str(warehouse)], may_fail=True)
    if build:
        figures["build"] = build[:2]
        figures[PEER_STEP] = peer_marts(build)
        print(f"stocktake build: {figures['build'][0]:.1f}s, peak RSS {figures['build'][1]:.0f} MiB; "
              + ", ".join(f"{name} {seconds:.1f}" for name, seconds in mart_seconds(build[2]).items()), flush=True)
        for system_dir in held.iterdir():
            shutil.move(str(system_dir / last), str(data / "landing" / system_dir.name / last))
        daily = run([stocktake, "--quiet", "run", pipeline, "--date", last], may_fail=True)
        if daily:
            figures["daily"] = daily[:2]
            print(f"stocktake daily run: {figures['daily'][0]:.1f}s, peak RSS {figures['daily'][1]:.0f} MiB", flush=True)
    else:
        for system_dir in held.iterdir():
            shutil.move(str(system_dir / last), str(data / "landing" / system_dir.name / last))

    # The peer loads the whole history (including the last day) once, then builds.
    peer = [sys.executable, str(ROOT / "benches/duckdb_peer.py")]
    figures["duckdb ingest"] = run([*peer, "load", str(data), str(duck)])[:2]
    peer_builds = [run([*peer, "build", str(data), str(duck)])[:2]]
    builds = [(figures["build"], figures[PEER_STEP])] if "build" in figures else []
    for round_ in range(2, a.rounds + 1):
        build = run([stocktake, "-v", "build", "--full", "--warehouse", str(warehouse)], may_fail=True)
        if build:
            builds.append((build[:2], peer_marts(build)))
        peer_builds.append(run([*peer, "build", str(data), str(duck)])[:2])
        ours = f"stocktake build {build[0]:.1f}s (the peer's marts {builds[-1][1][0]:.1f}s)" if build else "stocktake build failed"
        print(f"round {round_}: {ours}, duckdb build {peer_builds[-1][0]:.1f}s", flush=True)
    median = lambda runs: (statistics.median(r[0] for r in runs), max(r[1] for r in runs))
    figures["duckdb build"] = median(peer_builds)
    if builds:
        figures["build"] = median([b for b, _ in builds])
        figures[PEER_STEP] = median([p for _, p in builds])

    import duckdb

    print()
    print(f"tier {a.tier} on {platform.node()} ({os.cpu_count()} cores, {platform.machine()}), duckdb {duckdb.__version__}"
          + (f"; builds: median of {a.rounds} rounds" if a.rounds > 1 else ""))
    print(f"{'step':<22} {'seconds':>9} {'peak RSS MiB':>13}")
    for name, (seconds, rss) in figures.items():
        print(f"{name:<22} {seconds:>9.1f} {rss:>13.0f}")
    print()
    ingest_ratio = figures["ingest"][0] / figures["duckdb ingest"][0]
    print(f"ingest rows/s: stocktake {history_rows / figures['ingest'][0]:,.0f}, duckdb {rows / figures['duckdb ingest'][0]:,.0f}")
    print(f"ratio stocktake / duckdb: ingest {ingest_ratio:.2f}", end="")
    if "build" in figures:
        print(f", build {figures['build'][0] / figures['duckdb build'][0]:.2f} (target <= 1.0); "
              f"the peer's four marts alone {figures[PEER_STEP][0] / figures['duckdb build'][0]:.2f}")
    else:
        print(", build failed")
    if "daily" in figures:
        print(f"daily run / full build: {figures['daily'][0] / figures['build'][0]:.1%} (target <= 5%)")
    peaks = [v[1] for k, v in figures.items() if not k.startswith("duckdb")] + FAILED_PEAKS
    print(f"peak RSS stocktake: {max(peaks):.0f} MiB (target <= 2048)")
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
