//! Crash safety: SIGKILL at random moments during ingest and during build. After every
//! kill a re-run gives tables identical in content to a clean run, and a reader polling the
//! warehouse throughout never sees a table version that differs from the clean one (each
//! Delta commit is whole or absent).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use stocktake::warehouse::Warehouse;

use crate::{binary, small_demo_in};

/// Each existing table's content, sorted by every column and hashed as CSV. The ledger's
/// timestamps say when a run happened and legitimately differ; everything else must not.
pub async fn digest(warehouse: &Warehouse) -> BTreeMap<&'static str, (usize, u64)> {
    use std::hash::Hasher;
    let mut out = BTreeMap::new();
    for table in stocktake::marts::all_tables() {
        if warehouse.load(table).await.unwrap().is_none() {
            continue;
        }
        let columns = if table == "runs" {
            "run_id, pipeline, scheduled_for, status, rows_in, rows_accepted, rows_quarantined, rows_unmapped, detail, trigger".to_string()
        } else {
            "*".to_string()
        };
        let ctx = warehouse.session(&[table]).await.unwrap();
        let width = ctx.table(table).await.unwrap().schema().fields().len();
        let width = if table == "runs" { 10 } else { width };
        let order: Vec<String> = (1..=width).map(|i| i.to_string()).collect();
        let sql = format!("select {columns} from {table} order by {}", order.join(", "));
        let batches = stocktake::warehouse::collect(&ctx, "digest", &sql).await.unwrap();
        let mut csv = Vec::new();
        {
            let mut writer = arrow::csv::Writer::new(&mut csv);
            for b in &batches {
                writer.write(b).unwrap();
            }
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        h.write(&csv);
        out.insert(table, (batches.iter().map(|b| b.num_rows()).sum(), h.finish()));
    }
    out
}

fn run(dir: &Path, args: &[&str]) -> (i32, Duration) {
    let start = Instant::now();
    let out = Command::new(binary()).args(args).arg("-q").current_dir(dir).output().unwrap();
    (out.status.code().unwrap_or(-1), start.elapsed())
}

/// A small deterministic generator, seeded from the clock and printed, so a failure can be
/// replayed by hand.
struct Lcg(u64);
impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn sigkill_during_ingest_or_build_never_leaves_a_half_written_warehouse() {
    let clean_dir = tempfile::tempdir().unwrap();
    small_demo_in(clean_dir.path(), false);
    let pipeline = "stocktake-demo/pipeline.toml";
    let (ingest_code, ingest_time) = run(clean_dir.path(), &["snapshot", pipeline]);
    let (build_code, build_time) = run(clean_dir.path(), &["build"]);
    assert_eq!((ingest_code, build_code), (0, 0));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let clean = runtime.block_on(digest(&Warehouse::open(&clean_dir.path().join("warehouse").display().to_string()).unwrap()));
    assert!(clean.len() >= 20 && clean["snapshots"].0 > 10_000, "{clean:?}");

    let dir = tempfile::tempdir().unwrap();
    small_demo_in(dir.path(), false);
    let location = dir.path().join("warehouse").display().to_string();

    // A reader polling throughout: every table it finds has the clean row count (the full
    // content is compared at each crash point below).
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (stop, reads, clean, location) = (stop.clone(), reads.clone(), clean.clone(), location.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            let mut mismatch = None;
            while !stop.load(Ordering::Relaxed) {
                std::fs::create_dir_all(&location).unwrap();
                let warehouse = Warehouse::open(&location).unwrap();
                for (table, (rows, _)) in &clean {
                    let count = runtime.block_on(async {
                        warehouse.load(table).await.unwrap()?;
                        let ctx = warehouse.session(&[table]).await.unwrap();
                        let sql = format!("select count(*) from {table}");
                        let batches = stocktake::warehouse::collect(&ctx, "count", &sql).await.unwrap();
                        Some(stocktake::warehouse::integers(&batches[0], 0).unwrap()[0].unwrap() as usize)
                    });
                    if let Some(count) = count {
                        reads.fetch_add(1, Ordering::Relaxed);
                        if count != *rows {
                            mismatch.get_or_insert(format!("{table}: {count} rows, clean {rows}"));
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            mismatch
        })
    };

    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mut rng = Lcg(seed);
    let (mut in_ingest, mut in_build, mut attempts) = (0, 0, 0);
    while in_ingest + in_build < 20 {
        attempts += 1;
        assert!(attempts < 60, "seed {seed}: only {in_ingest}+{in_build} kills landed in {attempts} tries");
        let log = dir.path().join("killed.log");
        let mut child = Command::new(binary())
            .args(["run", pipeline, "-v"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        // Half the kills at a random moment of ingest, half at a random moment of the build.
        if in_build < 10 && (in_ingest >= 10 || attempts % 2 == 0) {
            let began = Instant::now();
            while !std::fs::read_to_string(&log).unwrap().contains("building mart") && child.try_wait().unwrap().is_none() {
                assert!(began.elapsed() < Duration::from_secs(120), "the build never started");
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(Duration::from_secs_f64(rng.unit() * build_time.as_secs_f64() * 0.8));
        } else {
            std::thread::sleep(Duration::from_secs_f64(0.02 + rng.unit() * ingest_time.as_secs_f64() * 0.9));
        }
        if child.try_wait().unwrap().is_some() {
            continue; // finished before the kill: not a crash
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let killed_in_build = std::fs::read_to_string(&log).unwrap().contains("building mart");
        if killed_in_build { in_build += 1 } else { in_ingest += 1 }
        let kill = in_ingest + in_build;

        // The warehouse as the crash left it: every table there is whole.
        let left = runtime.block_on(digest(&Warehouse::open(&location).unwrap()));
        for (table, d) in &left {
            assert_eq!(Some(d), clean.get(table), "seed {seed}: kill {kill} (build: {killed_in_build}) left {table} half-written");
        }
        let (code, _) = run(dir.path(), &["run", pipeline]);
        assert_eq!(code, 0, "seed {seed}: the re-run after kill {kill} failed");
        let after = runtime.block_on(digest(&Warehouse::open(&location).unwrap()));
        assert_eq!(after, clean, "seed {seed}: after kill {kill} (build: {killed_in_build}) the re-run left different tables");
    }
    stop.store(true, Ordering::Relaxed);
    let mismatch = reader.join().unwrap();
    assert_eq!(mismatch, None, "seed {seed}: a reader saw a table version the clean run never wrote");
    assert!(in_ingest >= 10 && in_build >= 10, "seed {seed}: kills during ingest {in_ingest}, during build {in_build}");
    assert!(reads.load(Ordering::Relaxed) > 50, "the reader hardly read");
    eprintln!("crash test: seed {seed}, {in_ingest} kills during ingest, {in_build} during build, {} table reads", reads.load(Ordering::Relaxed));
}
