//! Drift intelligence: detection measured against the demo's ground truth, statistics
//! cross-checked against pymannkendall, ABC and inventory record accuracy by hand.

use std::collections::{BTreeMap, BTreeSet};

use stocktake::ingest::{self, RunOptions};
use stocktake::marts;
use stocktake::stats;
use stocktake::warehouse::Warehouse;

use crate::{rows, scalar, shared_demo, shared_warehouse};

const PATTERNS: [&str; 6] = ["same_direction_over", "same_direction_under", "month_end", "persistent", "fixed_offset", "integration_lag"];

#[tokio::test]
async fn detection_matches_the_injected_faults() {
    let (dir, _) = shared_demo();
    let truth = std::fs::read_to_string(dir.join("stocktake-demo/ground_truth.csv")).unwrap();
    // `pattern?` marks a fault at the edge of a definition: found or not, it counts neither way.
    let mut injected: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut optional: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for line in truth.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let key = format!("{}|{}|{}", f[5], f[4], f[3]);
        for pattern in f[7].split(';').filter(|p| !p.is_empty()) {
            let (name, map) = match pattern.strip_suffix('?') {
                Some(name) => (name, &mut optional),
                None => (pattern, &mut injected),
            };
            map.entry(PATTERNS.iter().find(|p| **p == name).copied().unwrap_or("other")).or_default().insert(key.clone());
        }
    }
    let warehouse = shared_warehouse();
    let mut report = String::new();
    let mut failures = vec![];
    for pattern in PATTERNS {
        let edge = optional.get(pattern).cloned().unwrap_or_default();
        let found: BTreeSet<String> = rows(&warehouse, &format!("select sku, location_id, system from drift_patterns where pattern = '{pattern}'"))
            .await
            .into_iter()
            .filter(|k| !edge.contains(k))
            .collect();
        let expected = injected.get(pattern).cloned().unwrap_or_default();
        let tp = found.intersection(&expected).count();
        let (fp, fn_) = (found.len() - tp, expected.len() - tp);
        let precision = tp as f64 / found.len().max(1) as f64;
        let recall = tp as f64 / expected.len().max(1) as f64;
        report.push_str(&format!(
            "{pattern:<22} injected {:>3} (+{} at the edge)  TP {tp:>3}  FP {fp:>3}  FN {fn_:>3}  precision {precision:.2}  recall {recall:.2}\n",
            expected.len(),
            edge.len()
        ));
        if expected.len() < 5 || precision < 0.9 || recall < 0.9 {
            failures.push(format!(
                "{pattern}: false positives {:?}, missed {:?}",
                found.difference(&expected).collect::<Vec<_>>(),
                expected.difference(&found).collect::<Vec<_>>()
            ));
        }
    }
    println!("{report}");
    assert!(failures.is_empty(), "{report}\n{}", failures.join("\n"));

    // Temporal differences never become patterns: no pattern stands on a series whose
    // every non-zero delta is explained.
    let temporal = scalar(&warehouse, "
        select count(*) from drift_patterns d
        where not exists (select 1 from variances v
                          where v.sku = d.sku and v.location_id = d.location_id and v.system = d.system
                            and v.delta <> 0 and v.explained_by is null)").await;
    assert_eq!(temporal, 0);
    // Every pattern names one of the seven error sources and one of the four layers.
    let causes = rows(&warehouse, "select distinct likely_cause, layer from drift_patterns order by 1").await;
    for c in &causes {
        let (cause, layer) = c.split_once('|').unwrap();
        assert!(["sale_not_propagated", "restock_not_entered", "return_before_inspection", "variant_wrong_level", "bundle_not_decrementing", "offline_sale_unrecorded", "manual_edit_no_reason"].contains(&cause), "{c}");
        assert!(["identity", "ledger", "policy", "publish"].contains(&layer), "{c}");
    }
}

#[tokio::test]
async fn the_drift_tables_are_built() {
    let warehouse = shared_warehouse();
    for table in ["sku_classes", "variance_trends", "drift_patterns", "exceptions", "kpi_weekly"] {
        assert!(scalar(&warehouse, &format!("select count(*) from {table}")).await > 0, "{table} is empty");
    }
    let segments = rows(&warehouse, "select distinct segment_type from kpi_weekly order by 1").await;
    assert_eq!(segments, ["abc_class", "all", "location", "region", "system"]);
    let directions = rows(&warehouse, "select distinct direction from variance_trends order by 1").await;
    assert!(directions.iter().all(|d| ["flat", "improving", "worsening"].contains(&d.as_str())), "{directions:?}");
    // A stale system shows in the KPIs: none is stale in the demo, whose feeds all arrive daily.
    assert_eq!(scalar(&warehouse, "select max(stale_systems) from kpi_weekly").await, 0);
    // Exceptions: closed ones have a close date after they opened.
    assert_eq!(scalar(&warehouse, "select count(*) from exceptions where status <> 'open' and closed_on <= opened_on").await, 0);
}

/// Series for the cross-check: trends, noise, ties, flats and short ones.
fn series() -> Vec<Vec<f64>> {
    let mut out: Vec<Vec<f64>> = vec![
        vec![1.0, 2.0, 3.0, 4.0, 5.0],
        vec![5.0, 4.0, 4.0, 3.0, 1.0, 1.0, 0.0],
        vec![2.0; 8],
        vec![2.0, 2.0, 2.0, 3.0, 2.0, 2.0],
        vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0],
        vec![0.5, 0.25, 0.75, 0.5, 0.25, 0.75, 0.5],
        vec![10.0, 12.0, 11.0, 13.0, 12.0, 14.0, 13.0, 15.0, 14.0, 16.0],
        vec![3.0, 1.0],
        vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0],
    ];
    let mut state: u64 = 12345;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    for k in 0..16 {
        let n = 6 + k * 3;
        let drift = [0.0, 0.3, -0.2, 0.05][k % 4];
        // Rounded values give ties, as weekly means of whole-unit deltas do.
        out.push((0..n).map(|i| ((drift * i as f64 + next() * 4.0) * 2.0).round() / 2.0).collect());
    }
    out
}

#[test]
fn mann_kendall_and_theil_sen_match_pymannkendall() {
    let series = series();
    assert!(series.len() >= 20);
    let script = r#"
import json, sys
import pymannkendall as mk
out = []
for x in json.load(sys.stdin):
    r = mk.original_test(x)
    out.append([float(r.p), float(r.slope), float(r.s), float(r.var_s)])
print(json.dumps(out))
"#;
    let theirs: Vec<[f64; 4]> = crate::python_peer(script, &series, "pymannkendall");
    for (x, [p, slope, s, var_s]) in series.iter().zip(theirs) {
        let mk = stats::mann_kendall(x);
        let ours_slope = stats::theil_sen(x);
        // pymannkendall reports NaN for a series without variance; p is then 1 by definition.
        let p = if p.is_nan() { 1.0 } else { p };
        assert!((mk.p_value - p).abs() < 1e-6, "{x:?}: p {} vs {p}", mk.p_value);
        assert!((ours_slope - slope).abs() < 1e-6, "{x:?}: slope {ours_slope} vs {slope}");
        assert_eq!((mk.s, mk.var_s), (s, var_s), "{x:?}");
    }
}

#[tokio::test]
async fn abc_classes_and_record_accuracy_match_hand_computation() {
    let dir = tempfile::tempdir().unwrap();
    crate::copy_tree(std::path::Path::new("tests/fixtures/ira"), dir.path());
    let text = std::fs::read_to_string("tests/fixtures/ira/pipeline.toml").unwrap().replace("tests/fixtures/ira/", &format!("{}/", dir.path().display()));
    let mut pipeline = stocktake::config::Pipeline::parse(&text, std::path::Path::new("ira.toml")).unwrap();
    pipeline.warehouse = dir.path().join("warehouse").display().to_string();
    let warehouse = Warehouse::open(&pipeline.warehouse).unwrap();
    ingest::run(&pipeline, &warehouse, &RunOptions::default()).await.unwrap();
    marts::build(&warehouse, false).await.unwrap();

    let classes = rows(&warehouse, "select sku, abc_class, round(cumulative_share, 4) from sku_classes order by sku").await;
    assert_eq!(classes, ["A1|A|0.8", "B1|B|0.95", "C1|C|1.0", "Z1|C|1.0"]);

    // A1 within 1 %, B1 outside 3 %, C1 within 5 %: 2 of 3, with the 2 over and the 4 under
    // each judged on its own.
    let ira = rows(&warehouse, "select segment_type, segment, round(inventory_record_accuracy, 4), count_variance_rate
                                from kpi_weekly where week = DATE '2026-07-06' and inventory_record_accuracy is not null
                                order by segment_type, segment").await;
    assert_eq!(ira, [
        "abc_class|A|1.0|1.0",
        "abc_class|B|0.0|1.0",
        "abc_class|C|1.0|1.0",
        "all|all|0.6667|1.0",
        "location|S1|0.6667|1.0",
        "region|US|0.6667|1.0",
    ]);

    // The web feed last reported on Wednesday 2026-07-01: stale by the end of that week and
    // still stale as of the newest snapshot (Monday 2026-07-06); the POS is fresh.
    let stale = rows(&warehouse, "select week, segment_type, segment, stale_systems from kpi_weekly
                                  where segment_type in ('all', 'system') order by week, segment_type, segment").await;
    assert_eq!(stale, [
        "2026-06-29|all|all|1",
        "2026-06-29|system|web|1",
        "2026-07-06|all|all|1",
        "2026-07-06|system|pos|0",
        "2026-07-06|system|web|1",
    ]);

    // One oversold row (the web feed's B1 at S1 on 2026-07-01), counted in every segment it
    // belongs to and nowhere else.
    let oversold = rows(&warehouse, "select week, segment_type, segment, oversell_incidents from kpi_weekly
                                     where oversell_incidents <> 0 order by week, segment_type, segment").await;
    assert_eq!(oversold, [
        "2026-06-29|abc_class|B|1",
        "2026-06-29|all|all|1",
        "2026-06-29|location|S1|1",
        "2026-06-29|region|US|1",
        "2026-06-29|system|web|1",
    ]);
}
