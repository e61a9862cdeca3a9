//! `stocktake schedule`: runs on the cron, never overlapping; catches up from the ledger;
//! survives a panic inside a run; stops cleanly on SIGTERM.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stocktake::warehouse::Warehouse;

use crate::{binary, rows, scalar, small_demo_in};

/// The demo pipeline on a per-second cron with the given catch-up policy.
fn write_pipeline(dir: &Path, catch_up: &str) {
    let text = std::fs::read_to_string(dir.join("stocktake-demo/pipeline.toml")).unwrap();
    let text = text
        .replace("schedule = \"0 0 6 * * *\"", "schedule = \"* * * * * *\"")
        .replace("timezone = \"America/New_York\"", &format!("timezone = \"Europe/London\"\ncatch_up = \"{catch_up}\""));
    assert!(text.contains("catch_up"), "the demo pipeline's schedule lines moved");
    std::fs::write(dir.join("every_second.toml"), text).unwrap();
}

fn start(dir: &Path, log: &str, env: &[(&str, &str)]) -> Child {
    let log = std::fs::File::create(dir.join(log)).unwrap();
    Command::new(binary())
        .args(["schedule", "every_second.toml", "-v"])
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Waits until the log holds `needle` (or panics after `limit`).
fn wait_for(dir: &Path, log: &str, needle: &str, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(start.elapsed() < limit, "no '{needle}' in the log after {limit:?}:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// SIGTERM, then the exit code and the whole log.
fn stop(child: Child, dir: &Path, log: &str) -> (i32, String) {
    signal(child, dir, log, "-TERM")
}

fn signal(mut child: Child, dir: &Path, log: &str, signal: &str) -> (i32, String) {
    let status = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let start = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code().unwrap_or(-1);
        }
        assert!(start.elapsed() < Duration::from_secs(120), "the daemon did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    (code, std::fs::read_to_string(dir.join(log)).unwrap())
}

fn warehouse(dir: &Path) -> Warehouse {
    Warehouse::open(&dir.join("warehouse").display().to_string()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_runs_never_overlap_catch_up_follows_the_policy_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    small_demo_in(dir.path(), true);
    write_pipeline(dir.path(), "none");

    // A run takes longer than a second: the triggers in between are skipped, not stacked.
    let child = start(dir.path(), "first.log", &[("STOCKTAKE_FAILPOINT", "slow-run")]);
    wait_for(dir.path(), "first.log", "skipped: the previous run is still going", Duration::from_secs(60));
    wait_for(dir.path(), "first.log", "run finished", Duration::from_secs(120));
    let (code, log) = stop(child, dir.path(), "first.log");
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("SIGTERM") && log.contains("stopped"), "{log}");
    let w = warehouse(dir.path());
    let spans = rows(&w, "select arrow_cast(started_at, 'Int64'), arrow_cast(finished_at, 'Int64'), status from runs where trigger = 'schedule' order by started_at").await;
    assert!(!spans.is_empty(), "no scheduled run in the ledger");
    let spans: Vec<(i64, i64)> = spans
        .iter()
        .map(|r| {
            let f: Vec<&str> = r.split('|').collect();
            assert_eq!(f[2], "ok", "{r}");
            (f[0].parse().unwrap(), f[1].parse().unwrap())
        })
        .collect();
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "runs overlap: {spans:?}");
    }
    let last_slot = scalar(&w, "select arrow_cast(max(scheduled_for), 'Int64') from runs where trigger = 'schedule'").await;

    // Down for a few seconds, then `latest`: one catch-up run, for the newest missed slot.
    std::thread::sleep(Duration::from_secs(3));
    write_pipeline(dir.path(), "latest");
    let restarted_at = chrono::Utc::now().timestamp_micros();
    let child = start(dir.path(), "second.log", &[]);
    let log = wait_for(dir.path(), "second.log", "trigger=\"catch_up\"", Duration::from_secs(120));
    let (code, _) = stop(child, dir.path(), "second.log");
    assert_eq!(code, 0);
    let missed: usize = log.split("catching up").nth(1).and_then(|l| l.split("missed=").nth(1)).and_then(|m| m.split_whitespace().next()).unwrap().parse().unwrap();
    assert!(missed >= 3, "{log}");
    let caught = rows(&w, "select arrow_cast(scheduled_for, 'Int64'), status from runs where trigger = 'catch_up'").await;
    assert_eq!(caught.len(), 1, "{caught:?}");
    let slot: i64 = caught[0].split('|').next().unwrap().parse().unwrap();
    assert!(slot > last_slot && slot <= restarted_at, "the catch-up slot {slot} is not the newest missed one");
    assert_eq!(slot % 1_000_000, 0, "slots are whole seconds");

    // `none`: the gap is logged and left alone.
    std::thread::sleep(Duration::from_secs(2));
    write_pipeline(dir.path(), "none");
    let child = start(dir.path(), "third.log", &[]);
    wait_for(dir.path(), "third.log", "running=0", Duration::from_secs(60));
    let (code, log) = signal(child, dir.path(), "third.log", "-INT");
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("SIGINT") && log.contains("stopped"), "{log}");
    assert_eq!(scalar(&w, "select count(*) from runs where trigger = 'catch_up'").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_inside_a_run_is_recorded_as_failed_and_the_daemon_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    small_demo_in(dir.path(), true);
    write_pipeline(dir.path(), "none");
    let child = start(dir.path(), "panic.log", &[("STOCKTAKE_FAILPOINT", "panic-in-run")]);
    let start = Instant::now();
    let w = warehouse(dir.path());
    // Three failed runs in a row: the daemon survives each panic and takes the next slot.
    loop {
        let failed = if w.load("runs").await.unwrap().is_some() {
            scalar(&w, "select count(*) from runs where status = 'failed' and trigger = 'schedule' and detail like '%panic: failpoint panic-in-run%'").await
        } else {
            0
        };
        if failed >= 3 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{failed} failed runs recorded");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (code, log) = stop(child, dir.path(), "panic.log");
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("run failed: panic: failpoint panic-in-run"), "{log}");
}

#[test]
fn validate_checks_without_running_and_names_the_key_at_fault() {
    let dir = tempfile::tempdir().unwrap();
    small_demo_in(dir.path(), false);
    let out = Command::new(binary()).args(["validate", "stocktake-demo/pipeline.toml"]).current_dir(dir.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("304 SKUs, 6 locations") && text.contains("system seller_central") && text.contains("28 files"), "{text}");
    assert!(!dir.path().join("warehouse").exists(), "validate wrote a warehouse");

    // A bad cron, a missing environment variable, a literal secret: file, line and key.
    let original = std::fs::read_to_string(dir.path().join("stocktake-demo/pipeline.toml")).unwrap();
    let cases = [
        (original.replace("schedule = \"0 0 6 * * *\"", "schedule = \"at six\""), "pipeline.toml:4:", "'at six'"),
        (original.replace("warehouse = \"./warehouse\"", "warehouse = \"${STOCKTAKE_TEST_UNSET_BUCKET}/wh\""), "pipeline.toml:6:", "STOCKTAKE_TEST_UNSET_BUCKET is not set"),
        (original.replace("[reference]", "[storage]\naws_secret_access_key = \"hunter2\"\n[reference]"), "pipeline.toml:10:", "literal secret"),
    ];
    for (text, place, message) in cases {
        std::fs::write(dir.path().join("stocktake-demo/pipeline.toml"), text).unwrap();
        let out = Command::new(binary()).args(["validate", "stocktake-demo/pipeline.toml"]).current_dir(dir.path()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(place) && err.contains(message), "{err}");
        assert!(!err.contains("hunter2"), "the secret leaked: {err}");
    }

    // A landing area that cannot be read fails validation, naming the system.
    std::fs::write(dir.path().join("stocktake-demo/pipeline.toml"), &original).unwrap();
    std::fs::remove_dir_all(dir.path().join("stocktake-demo/landing/wms")).unwrap();
    let out = Command::new(binary()).args(["validate", "stocktake-demo/pipeline.toml"]).current_dir(dir.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.lines().any(|l| l.contains("system wms") && l.contains("cannot be read")), "{text}");
}

#[test]
fn progress_bars_on_a_terminal_plain_log_lines_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    small_demo_in(dir.path(), false);
    // `script` gives the command a pseudo-terminal, as an operator's shell would.
    let command = format!("{} run stocktake-demo/pipeline.toml", binary().display());
    let out = Command::new("script").args(["-qec", &command, "/dev/null"]).current_dir(dir.path()).output().unwrap();
    let terminal = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{terminal}");
    assert!(terminal.contains("snapshot [") && terminal.contains("build ["), "no progress bars on a terminal:\n{terminal}");

    // Piped: no bars, and with -v the same progress as log lines.
    let out = Command::new(binary()).args(["run", "stocktake-demo/pipeline.toml", "-v"]).current_dir(dir.path()).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("snapshot [") && !log.contains('\u{1b}'), "terminal output in a pipe:\n{log}");
    assert!(log.contains("system read system=pos") && log.contains("mart built mart=\"positions\""), "{log}");
    // --quiet: nothing at all on a terminal but errors.
    let command = format!("{} run stocktake-demo/pipeline.toml --quiet", binary().display());
    let out = Command::new("script").args(["-qec", &command, "/dev/null"]).current_dir(dir.path()).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "", "--quiet printed");
}
