//! The scale generator and the benchmark's peer: a small tier runs through the pipeline, and
//! DuckDB's version of the marts (benches/duckdb_peer.py) agrees with stocktake's on the same
//! files, so the benchmark compares the same work.

use std::process::Command;

use stocktake::warehouse::Warehouse;

use crate::{binary, generate_tier_s, rows, scalar};

#[tokio::test(flavor = "multi_thread")]
async fn tier_s_runs_and_the_duckdb_peer_computes_the_same_variances() {
    let dir = tempfile::tempdir().unwrap();
    let (data, warehouse) = (dir.path().join("data"), dir.path().join("warehouse"));
    let generated = generate_tier_s(&data, &warehouse, 14);
    assert!(generated.contains("1000 SKUs, 5 locations, 5000 SKU-locations, 14 days"));
    let run = Command::new(binary()).arg("run").arg(data.join("pipeline.toml")).output().unwrap();
    assert!(run.status.success(), "{}\n{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));

    let w = Warehouse::open(&warehouse.display().to_string()).unwrap();
    // Two stores, a DC, a 3PL and an FBA location, each ranging all 1,000 SKUs: per day the
    // stores are seen by 4 systems, the DC by 2, the 3PL by 4 and FBA by 3.
    assert_eq!(scalar(&w, "select count(*) from snapshots").await, 14 * 1000 * (2 * 4 + 2 + 4 + 3));
    assert_eq!(scalar(&w, "select count(*) from positions").await, 14 * 5000);
    assert_eq!(scalar(&w, "select count(*) from variances").await, 14 * 1000 * (2 * 3 + 1 + 3 + 2));
    assert_eq!(scalar(&w, "select count(*) from quarantine").await, 0);
    let lagging = scalar(&w, "select count(*) from variances where explained_by = 'lag'").await;
    assert!(lagging > 0, "the generator's lagging views are explained as lag");

    let peer = |step: &str| {
        let out = Command::new("python3")
            .arg("benches/duckdb_peer.py")
            .arg(step)
            .arg(&data)
            .arg(dir.path().join("peer.duckdb"))
            .output()
            .unwrap();
        assert!(out.status.success(), "duckdb peer {step} (.ci/run installs duckdb): {}", String::from_utf8_lossy(&out.stderr));
    };
    peer("load");
    peer("build");
    let summary = "select count(*) as n, sum(case when flagged then 1 else 0 end) as flagged,
                          sum(case when explained_by = 'lag' then 1 else 0 end) as lag,
                          sum(case when flagged and explained_by is null then 1 else 0 end) as real
                   from variances";
    let ours = rows(&w, summary).await;
    let script = format!(
        "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); print('|'.join(str(v) for v in con.execute(\"{}\").fetchone()))",
        summary.replace('\n', " ")
    );
    let theirs = Command::new("python3").args(["-c", &script]).arg(dir.path().join("peer.duckdb")).output().unwrap();
    assert!(theirs.status.success(), "{}", String::from_utf8_lossy(&theirs.stderr));
    assert_eq!(ours, vec![String::from_utf8_lossy(&theirs.stdout).trim().to_string()], "stocktake and the DuckDB peer disagree");
}
