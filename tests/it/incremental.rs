//! A build after a new day recomputes positions and variances for that day only, and ends
//! with the same tables as a full build.

use chrono::NaiveDate;
use stocktake::changes::Scope;
use stocktake::config::Pipeline;
use stocktake::ingest::{self, RunOptions};
use stocktake::marts;
use stocktake::warehouse::{Warehouse, integers};

use crate::{generate_tier_s, rows};

/// The day marts, and the weekly ones where they do not depend on ABC classes (weeks built
/// earlier keep the classes of their day; a full build re-classes them).
async fn incremental_marts(warehouse: &Warehouse) -> Vec<Vec<String>> {
    let mut out = vec![];
    for query in [
        "select * from positions",
        "select * from variances",
        "select * from coverage",
        "select * from kpi_weekly where segment_type <> 'abc_class'",
        "select week, location_id, system, sum(observations) from variance_trends group by week, location_id, system",
        "select * from exceptions",
    ] {
        let mut r = rows(warehouse, query).await;
        r.sort();
        out.push(r);
    }
    out
}

/// drift_patterns' per-series counts kept for the next build, as text rows.
async fn kept_counts(warehouse: &Warehouse) -> Vec<String> {
    let ctx = warehouse.session(&[stocktake::drift::patterns::STATE]).await.unwrap();
    let sql = "select concat_ws('|', sku, location_id, system, n, last_day, flags, nonzero, differing, window_nonzero, window_days, as_of)
               from drift_patterns_state order by 1";
    let batches = stocktake::warehouse::collect(&ctx, "kept counts", sql).await.unwrap();
    batches.iter().flat_map(|b| stocktake::warehouse::strings(b, 0).unwrap()).map(Option::unwrap).collect()
}

/// drift_patterns' kept points, as text rows.
async fn kept_points(warehouse: &Warehouse) -> Vec<String> {
    let ctx = warehouse.session(&[stocktake::drift::points::TABLE]).await.unwrap();
    let sql = "select concat_ws('|', series_key, snapshot_date, authoritative_qty, delta, flagged, explained, in_transit)
               from drift_patterns_points order by 1";
    let batches = stocktake::warehouse::collect(&ctx, "kept points", sql).await.unwrap();
    batches.iter().flat_map(|b| stocktake::warehouse::strings(b, 0).unwrap()).map(Option::unwrap).collect()
}

/// buffer_recommendations' daily deltas kept for the next build, as text rows.
async fn kept_deltas(warehouse: &Warehouse) -> Vec<String> {
    let ctx = warehouse.session(&[stocktake::planning::buffers::STATE]).await.unwrap();
    let sql = "select concat_ws('|', sku, system, snapshot_date, real_delta, coalesce(lag, -1), as_of, window_days)
               from buffer_recommendations_state order by 1";
    let batches = stocktake::warehouse::collect(&ctx, "kept deltas", sql).await.unwrap();
    batches.iter().flat_map(|b| stocktake::warehouse::strings(b, 0).unwrap()).map(Option::unwrap).collect()
}

fn built(report: &marts::BuildReport, mart: &str) -> usize {
    report.rows.iter().find(|(name, _)| *name == mart).map(|(_, rows)| *rows).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn new_days_are_built_alone_and_agree_with_a_full_build() {
    let dir = tempfile::tempdir().unwrap();
    let (data, warehouse_dir) = (dir.path().join("data"), dir.path().join("warehouse"));
    generate_tier_s(&data, &warehouse_dir, 8);
    // A short pattern history, so that days leave it (and its window) as new ones arrive.
    let toml = std::fs::read_to_string(data.join("pipeline.toml")).unwrap();
    let toml = toml.replacen("[thresholds]\n", "[thresholds]\npattern_history_days = 4\npattern_window_days = 2\n", 1);
    assert!(toml.contains("pattern_history_days = 4"));
    std::fs::write(data.join("pipeline.toml"), toml).unwrap();
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
    assert_eq!(built(&first, "positions"), 6 * 5000);

    ingest_day(days[6]).await;
    let next = marts::build(&warehouse, false).await.unwrap();
    assert_eq!(next.scope, Scope::From(days[6]));
    assert_eq!(built(&next, "positions"), 5000, "only the new day's positions are computed");
    let nothing = marts::build(&warehouse, false).await.unwrap();
    assert_eq!(nothing.scope, Scope::Nothing);
    assert_eq!((built(&nothing, "positions"), built(&nothing, "kpi_weekly")), (0, 0));

    // The last day arrives: exceptions go on from the ones running, and agree with a replay.
    ingest_day(days[7]).await;
    assert_eq!(marts::build(&warehouse, false).await.unwrap().scope, Scope::From(days[7]));
    let appended = incremental_marts(&warehouse).await;
    assert!(appended[5].len() > 10, "exceptions open and close over these days: {:?}", appended[5].len());
    // drift_patterns moved its kept counts on by the new day (twice since the first build).
    let slid = kept_counts(&warehouse).await;
    let slid_deltas = kept_deltas(&warehouse).await;
    let slid_points = kept_points(&warehouse).await;
    let slid_patterns = rows(&warehouse, "select * from drift_patterns order by 1, 2, 3, 4").await;
    let newest = (days[7] - NaiveDate::default()).num_days().to_string();
    assert!(slid.len() > 5000 && slid.iter().all(|r| r.ends_with(&format!("|{newest}"))), "{} rows, as of {newest}", slid.len());
    marts::build(&warehouse, true).await.unwrap();
    assert_eq!(incremental_marts(&warehouse).await, appended, "a build after a new day agrees with a full build");
    let afresh = kept_counts(&warehouse).await;
    let difference = afresh.iter().zip(&slid).find(|(a, b)| a != b);
    assert!(afresh.len() == slid.len() && difference.is_none(), "counts moved on by a day agree with counts made afresh: {difference:?}");
    // buffer_recommendations' daily deltas, kept and added to, agree with the window read afresh.
    assert!(slid_deltas.len() > 100, "{} daily deltas", slid_deltas.len());
    assert_eq!(kept_deltas(&warehouse).await, slid_deltas, "daily deltas kept and added to agree with deltas read afresh");
    // drift_patterns' points, moved on by a day, agree with the points written afresh (the
    // history of 4 days: the 4 newest of the 8), and so do its rows.
    let days_kept: std::collections::BTreeSet<&str> = slid_points.iter().map(|r| r.split('|').nth(1).unwrap()).collect();
    assert_eq!(days_kept.len(), 4, "{days_kept:?}");
    assert_eq!(kept_points(&warehouse).await, slid_points, "points kept and added to agree with points written afresh");
    assert_eq!(rows(&warehouse, "select * from drift_patterns order by 1, 2, 3, 4").await, slid_patterns);

    // The day before is loaded again (a retry): back to that day.
    ingest_day(days[6]).await;
    let again = marts::build(&warehouse, false).await.unwrap();
    assert_eq!(again.scope, Scope::From(days[6]));
    assert_eq!(built(&again, "positions"), 2 * 5000);
    assert!(again.failed_tests.is_empty(), "{:?}", again.failed_tests);

    let incremental = incremental_marts(&warehouse).await;
    assert_eq!(incremental[0].len(), 8 * 5000);
    let lag = rows(&warehouse, "select count(*) from variances where explained_by = 'lag'").await;
    assert_ne!(lag, ["0"], "lags reach back across the days built apart");
    let full = marts::build(&warehouse, true).await.unwrap();
    assert!(matches!(full.scope, Scope::Full(_)));
    let rebuilt = incremental_marts(&warehouse).await;
    for (i, (a, b)) in incremental.iter().zip(&rebuilt).enumerate() {
        assert!(!a.is_empty(), "query {i} returned rows");
        assert_eq!(a, b, "incremental and full builds agree (query {i})");
    }

    // Every movements file is known by the day of its earliest event, so that a late one
    // reaches back to it.
    let state = warehouse.session(&["build_state"]).await.unwrap();
    let sql = "select count(day), count(*) from build_state where value like 'movements/%'";
    let batches = stocktake::warehouse::collect(&state, "reading build_state", sql).await.unwrap();
    let (dated, files) = (integers(&batches[0], 0).unwrap()[0].unwrap(), integers(&batches[0], 1).unwrap()[0].unwrap());
    assert!(files >= 8 && dated == files, "{dated} of {files} movements files dated");
    // It also records each system's newest day at each location, which the next build that
    // only adds days goes on from (both builds above agreed on kpi_weekly's stale systems).
    let sql = "select value, cast(day as varchar) from build_state where item = 'newest_report' order by 1";
    let kept: Vec<String> = stocktake::warehouse::collect(&state, "reading build_state", sql).await.unwrap().iter().flat_map(|b| {
        let (values, days) = (stocktake::warehouse::strings(b, 0).unwrap(), stocktake::warehouse::strings(b, 1).unwrap());
        values.into_iter().zip(days).map(|(v, d)| format!("{}|{}", v.unwrap().replace('\t', "|"), d.unwrap())).collect::<Vec<_>>()
    }).collect();
    let newest = rows(&warehouse, "select system, location_id, cast(max(snapshot_date) as varchar) from coverage group by system, location_id order by 1, 2").await;
    assert!(newest.len() > 5 && kept == newest, "{kept:?} against {newest:?}");
    // A warehouse moved to another folder is the same warehouse: nothing to rebuild.
    let moved_dir = dir.path().join("moved");
    std::fs::rename(&warehouse_dir, &moved_dir).unwrap();
    let moved = Warehouse::open(moved_dir.to_str().unwrap()).unwrap();
    assert_eq!(marts::build(&moved, false).await.unwrap().scope, Scope::Nothing);
}
