//! A build after a new day recomputes positions and variances for that day only, and ends
//! with the same tables as a full build.

use std::process::Command;

use chrono::NaiveDate;
use stocktake::changes::Scope;
use stocktake::config::Pipeline;
use stocktake::ingest::{self, RunOptions};
use stocktake::marts;
use stocktake::warehouse::Warehouse;

use crate::{binary, rows};

async fn day_marts(warehouse: &Warehouse) -> Vec<Vec<String>> {
    let mut out = vec![];
    for table in ["positions", "variances"] {
        let mut r = rows(warehouse, &format!("select * from {table}")).await;
        r.sort();
        out.push(r);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn new_days_are_built_alone_and_agree_with_a_full_build() {
    let dir = tempfile::tempdir().unwrap();
    let (data, warehouse_dir) = (dir.path().join("data"), dir.path().join("warehouse"));
    let generate = Command::new(binary())
        .args(["generate", "--tier", "S", "--days", "8", "--dir"])
        .arg(&data)
        .arg("--warehouse")
        .arg(&warehouse_dir)
        .output()
        .unwrap();
    assert!(generate.status.success(), "{}", String::from_utf8_lossy(&generate.stderr));
    let pipeline = Pipeline::load(&data.join("pipeline.toml")).unwrap();
    let warehouse = Warehouse::for_pipeline(&pipeline).unwrap();
    let mut days: Vec<NaiveDate> = std::fs::read_dir(data.join("landing/pos"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect();
    days.sort();
    assert_eq!(days.len(), 8);
    let ingest_day = async |day: NaiveDate| {
        ingest::run(&pipeline, &warehouse, &RunOptions { date: Some(day), ..Default::default() }).await.unwrap();
    };

    for &day in &days[..6] {
        ingest_day(day).await;
    }
    let first = marts::build(&warehouse, false).await.unwrap();
    assert!(matches!(first.scope, Scope::Full(_)), "{:?}", first.scope);
    assert_eq!(first.rows[0], ("positions", 6 * 5000));

    ingest_day(days[6]).await;
    let next = marts::build(&warehouse, false).await.unwrap();
    assert_eq!(next.scope, Scope::From(days[6]));
    assert_eq!(next.rows[0], ("positions", 5000), "only the new day's positions are computed");
    let nothing = marts::build(&warehouse, false).await.unwrap();
    assert_eq!(nothing.scope, Scope::Nothing);
    assert_eq!(nothing.rows[0], ("positions", 0));

    // The last day arrives, then the day before is loaded again (a retry): back to that day.
    ingest_day(days[7]).await;
    assert_eq!(marts::build(&warehouse, false).await.unwrap().scope, Scope::From(days[7]));
    ingest_day(days[6]).await;
    let again = marts::build(&warehouse, false).await.unwrap();
    assert_eq!(again.scope, Scope::From(days[6]));
    assert_eq!(again.rows[0], ("positions", 2 * 5000));
    assert!(again.failed_tests.is_empty(), "{:?}", again.failed_tests);

    let incremental = day_marts(&warehouse).await;
    assert_eq!(incremental[0].len(), 8 * 5000);
    let lag = rows(&warehouse, "select count(*) from variances where explained_by = 'lag'").await;
    assert_ne!(lag, ["0"], "lags reach back across the days built apart");
    let full = marts::build(&warehouse, true).await.unwrap();
    assert!(matches!(full.scope, Scope::Full(_)));
    assert_eq!(day_marts(&warehouse).await, incremental, "incremental and full builds agree");
}
