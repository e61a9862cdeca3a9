//! Re-ingesting the same files replaces, never duplicates; re-running one date replaces that
//! date's partitions only.

use stocktake::ingest::{self, RunOptions};
use stocktake::marts;
use stocktake::warehouse::Warehouse;

use crate::{corpus_pipeline, rows};

/// Every table but the run ledger, as sorted text rows.
async fn contents(warehouse: &Warehouse) -> Vec<(String, Vec<String>)> {
    let mut out = vec![];
    for table in marts::all_tables() {
        if table == "runs" {
            continue;
        }
        let mut r = rows(warehouse, &format!("select * from {table}")).await;
        r.sort();
        out.push((table.to_string(), r));
    }
    out
}

#[tokio::test]
async fn ingesting_the_same_files_twice_leaves_every_table_identical() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = corpus_pipeline(dir.path());
    let warehouse = Warehouse::open(&pipeline.warehouse).unwrap();
    let first = ingest::run(&pipeline, &warehouse, &RunOptions::default()).await.unwrap();
    marts::build(&warehouse, false).await.unwrap();
    let before = contents(&warehouse).await;
    assert!(before.iter().any(|(t, r)| t == "snapshots" && r.len() == 6));

    let second = ingest::run(&pipeline, &warehouse, &RunOptions::default()).await.unwrap();
    marts::build(&warehouse, false).await.unwrap();
    let after = contents(&warehouse).await;
    assert_eq!(first.run_id, second.run_id, "the same files are the same run");
    for ((table, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a, b, "table {table} changed on re-ingest");
    }
    // The ledger records the run once, with the same accounting.
    let runs = rows(&warehouse, "select run_id, status, rows_in, rows_accepted, rows_quarantined, rows_unmapped from runs").await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(runs[0].ends_with("|partial|23|10|11|2"), "{runs:?}");
}

#[tokio::test]
async fn re_running_one_date_replaces_that_partition_only() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = corpus_pipeline(dir.path());
    let warehouse = Warehouse::open(&pipeline.warehouse).unwrap();
    ingest::run(&pipeline, &warehouse, &RunOptions::default()).await.unwrap();
    let other_days = "select system, snapshot_date, location_id, sku, on_hand from snapshots where snapshot_date <> DATE '2026-07-03' order by 1, 2, 3, 4";
    let before = rows(&warehouse, other_days).await;
    let quarantined_before = rows(&warehouse, "select source_file, source_row from quarantine order by 1, 2").await;

    // The ERP re-exports 2026-07-03 with a corrected quantity and one row fewer.
    let file = dir.path().join("landing/erp/2026-07-03/erp.csv");
    std::fs::write(&file, "Site,Item,Qty\nW1,1001,15\nW1,5555,3\nS1,1002,8\n").unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 7, 3);
    let report = ingest::run(&pipeline, &warehouse, &RunOptions { date, ..Default::default() }).await.unwrap();
    let erp = report.systems.iter().find(|s| s.system == "erp" && s.kind == "csv").unwrap();
    assert_eq!((erp.files, erp.rows_in, erp.accepted), (1, 3, 2));

    assert_eq!(rows(&warehouse, other_days).await, before, "other dates untouched");
    let day = rows(&warehouse, "select location_id, sku, on_hand from snapshots where snapshot_date = DATE '2026-07-03' order by 1, 2").await;
    assert_eq!(day, ["S1|TEE-L|8", "W1|TEE-M|15"]);
    assert_eq!(rows(&warehouse, "select source_file, source_row from quarantine order by 1, 2").await, quarantined_before);
    let unmapped = rows(&warehouse, "select external_id, rows from unmapped_skus where system = 'erp'").await;
    assert_eq!(unmapped, ["5555|1"], "re-seen, not double-counted");
}
