"""stocktake against DuckDB at a scale tier, in one run on one machine (release build).

    python3 benches/scale.py --tier S          # or M; --keep to leave the data behind

Steps, each a separate process so its wall time and peak RSS are its own:
  generate   `stocktake generate --tier T` (not compared: it only makes the data)
  ingest     every day but the last, one `stocktake snapshot --date D` per day, as the
             scheduler runs it; the peer loads the same files with `read_csv`
  build      `stocktake build`: every mart; the peer computes positions, variances, ABC
             classes and weekly variance trends
  daily      the last day's files arrive: `stocktake run --date LAST` (ingest + build)
Prints a table and the ratio stocktake / DuckDB for ingest and build, and daily / build.
"""

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(args):
    """Runs a command; returns (seconds, its own peak RSS in MiB, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    # wait4 reaps the child and returns its own rusage (ru_maxrss in KiB on Linux).
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{out[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tier", default="S")
    parser.add_argument("--days", type=int, help="days of history instead of the tier's own")
    parser.add_argument("--work", default="/tmp/stocktake-bench")
    parser.add_argument("--bin", help="a built stocktake binary (default: cargo build --release)")
    parser.add_argument("--keep", action="store_true")
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
    dates = sorted({p.name for p in (data / "landing/planning").iterdir()})
    rows = sum(1 for f in data.glob("landing/*/*/*") if f.is_file() for _ in open(f, encoding="utf-8-sig")) - sum(1 for _ in data.glob("landing/*/*/*"))
    print(f"generated tier {a.tier}: {len(dates)} days, {rows:,} data rows, {t:.1f}s", flush=True)

    # The last day arrives later, for the daily run.
    last = dates[-1]
    for day_dir in data.glob(f"landing/*/{last}"):
        dest = held / day_dir.parent.name
        dest.mkdir(parents=True, exist_ok=True)
        shutil.move(str(day_dir), str(dest / last))
    history_rows = sum(1 for f in data.glob("landing/*/*/*") if f.is_file() for _ in open(f, encoding="utf-8-sig")) - sum(1 for _ in data.glob("landing/*/*/*"))

    pipeline = str(data / "pipeline.toml")
    total, peak = 0.0, 0.0
    for day in dates[:-1]:
        t, rss, _ = run([stocktake, "--quiet", "snapshot", pipeline, "--date", day])
        total, peak = total + t, max(peak, rss)
    figures["ingest"] = (total, peak)
    print(f"stocktake ingest: {total:.1f}s ({history_rows / total:,.0f} rows/s), peak RSS {peak:.0f} MiB", flush=True)
    figures["build"] = run([stocktake, "--quiet", "build", "--warehouse", str(warehouse)])[:2]
    print(f"stocktake build: {figures['build'][0]:.1f}s, peak RSS {figures['build'][1]:.0f} MiB", flush=True)

    for system_dir in held.iterdir():
        shutil.move(str(system_dir / last), str(data / "landing" / system_dir.name / last))
    figures["daily"] = run([stocktake, "--quiet", "run", pipeline, "--date", last])[:2]
    print(f"stocktake daily run: {figures['daily'][0]:.1f}s, peak RSS {figures['daily'][1]:.0f} MiB", flush=True)

    # The peer loads the whole history (including the last day) once, then builds.
    peer = [sys.executable, str(ROOT / "benches/duckdb_peer.py")]
    figures["duckdb ingest"] = run([*peer, "load", str(data), str(duck)])[:2]
    figures["duckdb build"] = run([*peer, "build", str(data), str(duck)])[:2]

    import duckdb

    print()
    print(f"tier {a.tier} on {platform.node()} ({os.cpu_count()} cores, {platform.machine()}), duckdb {duckdb.__version__}")
    print(f"{'step':<20} {'seconds':>9} {'peak RSS MiB':>13}")
    for name, (seconds, rss) in figures.items():
        print(f"{name:<20} {seconds:>9.1f} {rss:>13.0f}")
    print()
    ingest_ratio = figures["ingest"][0] / figures["duckdb ingest"][0]
    build_ratio = figures["build"][0] / figures["duckdb build"][0]
    print(f"ingest rows/s: stocktake {history_rows / figures['ingest'][0]:,.0f}, duckdb {rows / figures['duckdb ingest'][0]:,.0f}")
    print(f"ratio stocktake / duckdb: ingest {ingest_ratio:.2f}, build {build_ratio:.2f} (target <= 1.0)")
    print(f"daily run / full build: {figures['daily'][0] / figures['build'][0]:.1%} (target <= 5%)")
    print(f"peak RSS stocktake: {max(figures[k][1] for k in ('ingest', 'build', 'daily')):.0f} MiB (target <= 2048)")
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
