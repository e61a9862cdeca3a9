//! Planning outputs: safety stock against stockpyl, the plan files, the count loop, and
//! regions that never hide inside a total.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use stocktake::planning::orders::recommend;
use stocktake::stats;
use stocktake::warehouse::Warehouse;

use crate::{binary, copy_tree, rows, scalar, shared_demo, shared_warehouse};

#[test]
fn safety_stock_and_reorder_point_match_stockpyl() {
    // (daily demand, its sd, lead time, its sd, service level)
    let cases = [(10.0, 3.0, 9.0, 2.0, 0.95), (4.2, 1.1, 21.0, 5.0, 0.99), (0.3, 0.6, 30.0, 7.0, 0.90), (55.0, 12.0, 14.0, 0.0, 0.975), (1.0, 1.0, 1.0, 1.0, 0.8), (120.0, 40.0, 35.0, 6.5, 0.999)];
    let script = r#"
import json, math, sys
from stockpyl.newsvendor import newsvendor_normal
out = []
for d, sd, L, sL, level in json.load(sys.stdin):
    # The lead-time demand is normal with mean d·L and variance L·σ_d² + d²·σ_L²; the
    # reorder point is its `level` quantile: stockpyl's newsvendor with p/(p+h) = level.
    S, _ = newsvendor_normal(1 - level, level, d * L, math.sqrt(L * sd**2 + d**2 * sL**2))
    out.append(S)
print(json.dumps(out))
"#;
    let theirs: Vec<f64> = crate::python_peer(script, &cases.to_vec(), "stockpyl");
    for ((d, sd, l, sl, level), rop) in cases.iter().zip(theirs) {
        let z = stats::normal_quantile(*level);
        let r = recommend(0.0, *d, *sd, *l, *sl, z, 7.0, 1, 0);
        assert!((r.reorder_point - rop).abs() < 1e-9, "ROP {} vs stockpyl {rop}", r.reorder_point);
        assert!((r.safety_stock - (rop - d * l)).abs() < 1e-9);
        // σ_L enters squared: the unsquared variant some libraries use differs whenever σ_L ≠ 1.
        let unsquared = z * (l * sd * sd + d * d * sl).sqrt();
        if *sl != 0.0 && *sl != 1.0 && *d != 0.0 {
            assert!((r.safety_stock - unsquared).abs() > 1e-6);
        }
    }
}

#[tokio::test]
async fn plans_are_built_with_their_reasons() {
    let warehouse = shared_warehouse();
    // Capacity and working days hold; every counted SKU-location with a drift pattern is
    // brought forward.
    let over_capacity = scalar(&warehouse, "select count(*) from (select location_id, next_due from cycle_count_plan group by 1, 2 having count(*) > 40)").await;
    assert_eq!(over_capacity, 0);
    let weekend = scalar(&warehouse, "select count(*) from cycle_count_plan where extract(dow from next_due) in (0, 6)").await;
    assert_eq!(weekend, 0);
    let missed = scalar(&warehouse, "
        select count(*) from (select distinct d.sku, d.location_id from drift_patterns d
                              join locations l on l.location_id = d.location_id where l.location_type in ('store', 'warehouse', '3pl')) d
        left join cycle_count_plan p on p.sku = d.sku and p.location_id = d.location_id and p.brought_forward
        where p.sku is null").await;
    assert_eq!(missed, 0);
    assert_eq!(scalar(&warehouse, "select count(*) from cycle_count_plan where location_id like 'FBA%'").await, 0, "Amazon counts FBA");
    let per_year = rows(&warehouse, "select abc_class, min(counts_per_year), max(counts_per_year) from cycle_count_plan group by 1 order by 1").await;
    assert_eq!(per_year, ["A|12|12", "B|4|4", "C|1|1"]);

    // A planner never orders against a doubtful number.
    let unheld = scalar(&warehouse, "
        select count(*) from purchase_recommendations r
        join (select distinct e.sku, l.region from exceptions e join locations l on l.location_id = e.location_id where e.status = 'open') o
          on o.sku = r.sku and o.region = r.region
        where r.confidence <> 'hold'").await;
    assert_eq!(unheld, 0);
    assert!(scalar(&warehouse, "select count(*) from purchase_recommendations where confidence = 'ok' and suggested_qty > 0").await > 0);
    assert_eq!(scalar(&warehouse, "select count(*) from purchase_recommendations where suggested_qty % 1 <> 0 or (suggested_qty > 0 and suggested_qty < 1)").await, 0);
    assert!(scalar(&warehouse, "select count(*) from buffer_recommendations where recommended_buffer > 0").await > 0);
    assert_eq!(scalar(&warehouse, "select count(distinct system) from buffer_recommendations").await, 3);

    // The UK over-shipment shows in the UK rows, however the US stands.
    let (dir, _) = shared_demo();
    let scenarios = std::fs::read_to_string(dir.join("stocktake-demo/scenarios.csv")).unwrap();
    let overstocked: Vec<&str> = scenarios.lines().skip(1).map(|l| l.split(',').nth(3).unwrap()).collect();
    assert_eq!(overstocked.len(), 3);
    for sku in overstocked {
        let uk = rows(&warehouse, &format!("select suggested_qty, excess_units > 0 from purchase_recommendations where sku = '{sku}' and region = 'UK'")).await;
        assert_eq!(uk, ["0|true"], "{sku}");
        assert_eq!(scalar(&warehouse, &format!("select count(*) from purchase_recommendations where sku = '{sku}' and region = 'US'")).await, 1);
    }
}

#[test]
fn plan_files_open_in_a_spreadsheet_reader() {
    let (dir, _) = shared_demo();
    let out = tempfile::tempdir().unwrap();
    for (plan, file) in [("orders", "orders.xlsx"), ("counts", "counts.xlsx"), ("buffers", "buffers.csv")] {
        let path = out.path().join(file);
        let status = Command::new(binary()).args(["--quiet", "plan", plan, "--days", "7", "--out"]).arg(&path).current_dir(dir).status().unwrap();
        assert!(status.success(), "plan {plan}");
    }
    let script = r#"
import json, sys, openpyxl
out = {}
for f in sys.argv[1:]:
    book = openpyxl.load_workbook(f, read_only=True)
    out[f] = {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in book.worksheets}
print(json.dumps(out, default=str))
"#;
    let orders = out.path().join("orders.xlsx").display().to_string();
    let counts = out.path().join("counts.xlsx").display().to_string();
    let result = Command::new("python3").args(["-c", script, &orders, &counts]).output().unwrap();
    assert!(result.status.success(), "openpyxl failed (.ci/run installs it): {}", String::from_utf8_lossy(&result.stderr));
    let books: BTreeMap<String, BTreeMap<String, Vec<Vec<serde_json::Value>>>> = serde_json::from_slice(&result.stdout).unwrap();
    let order_sheets: BTreeSet<&str> = books[&orders].keys().map(String::as_str).collect();
    assert_eq!(order_sheets, ["UK", "US"].into(), "a worksheet per region");
    let us = &books[&orders]["US"];
    assert_eq!(us[0][0], "sku");
    assert!(us[0].iter().any(|h| h == "hold_reason") && us.len() > 100);
    for (location, sheet) in &books[&counts] {
        let header: Vec<&str> = sheet[0].iter().map(|v| v.as_str().unwrap_or("")).collect();
        assert_eq!(&header[..3], ["date", "location", "sku"]);
        assert!(header.contains(&"counted_qty") && header.contains(&"blind"));
        assert!(!header.iter().any(|h| h.contains("on_hand") || h.contains("book") || h.contains("expected")), "blind: {header:?}");
        assert!(sheet[1..].iter().all(|r| r[1] == location.as_str() && r[6].is_null()), "{location}: grouped by location, counted_qty blank");
    }
    let buffers = std::fs::read_to_string(out.path().join("buffers.csv")).unwrap();
    assert!(buffers.starts_with("sku,system,abc_class,daily_demand"));
}

#[test]
fn a_filled_count_sheet_moves_accuracy_and_closes_exactly_its_exceptions() {
    let work = tempfile::tempdir().unwrap();
    copy_tree(&shared_demo().0, work.path());
    let stocktake = |args: &[&str]| {
        let out = Command::new(binary()).args(args).current_dir(work.path()).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    };
    stocktake(&["--quiet", "plan", "counts", "--days", "7", "--out", "sheet.csv"]);
    let sheet = std::fs::read_to_string(work.path().join("sheet.csv")).unwrap();
    let mut lines = sheet.lines();
    let header = lines.next().unwrap();
    let first_day = lines.clone().next().unwrap().split(',').next().unwrap().to_string();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let warehouse = Warehouse::open(&work.path().join("warehouse").display().to_string()).unwrap();
    let book: BTreeMap<String, i64> = runtime
        .block_on(rows(&warehouse, "select location_id, sku, on_hand from positions where snapshot_date = (select max(snapshot_date) from positions) and on_hand is not null"))
        .into_iter()
        .map(|r| {
            let (key, qty) = r.rsplit_once('|').unwrap();
            (key.to_string(), qty.parse().unwrap())
        })
        .collect();
    let open_before = |w: &Warehouse| runtime.block_on(rows(w, "select sku, location_id, system, opened_on from exceptions where status = 'open' order by 1, 2, 3, 4"));
    let open_then = open_before(&warehouse);

    // Count the first day's sheet: every other SKU-location right, the rest 20 % + 3 over.
    let mut filled = vec![header.to_string()];
    let (mut counted, mut right) = (BTreeSet::new(), 0);
    let mut reader = csv::Reader::from_reader(sheet.as_bytes());
    for (n, record) in reader.records().enumerate() {
        let mut r: Vec<String> = record.unwrap().iter().map(str::to_string).collect();
        if r[0] != first_day {
            continue;
        }
        let key = format!("{}|{}", r[1], r[2]);
        let Some(&qty) = book.get(&key) else { continue };
        let count = if n % 2 == 0 { qty } else { qty + qty / 5 + 3 };
        right += usize::from(n % 2 == 0);
        r[6] = count.to_string();
        counted.insert(key);
        let mut w = csv::Writer::from_writer(vec![]);
        w.write_record(&r).unwrap();
        filled.push(String::from_utf8(w.into_inner().unwrap()).unwrap().trim_end().to_string());
    }
    assert!(counted.len() >= 10, "{} counted", counted.len());
    let landing = work.path().join(format!("stocktake-demo/landing/counts/{first_day}"));
    std::fs::create_dir_all(&landing).unwrap();
    std::fs::write(landing.join("count_sheet.csv"), filled.join("\n") + "\n").unwrap();
    stocktake(&["--quiet", "run", "stocktake-demo/pipeline.toml", "--date", &first_day]);

    let warehouse = Warehouse::open(&work.path().join("warehouse").display().to_string()).unwrap();
    // The book is the newest authoritative number at count time.
    let booked = runtime.block_on(scalar(&warehouse, &format!("select count(*) from counts where count_date = DATE '{first_day}' and book_qty is not null")));
    assert_eq!(booked as usize, counted.len());
    // Accuracy for the count's week is the share counted right.
    let ira = runtime.block_on(rows(&warehouse, &format!(
        "select inventory_record_accuracy from kpi_weekly where segment_type = 'all' and week = arrow_cast(date_trunc('week', DATE '{first_day}'), 'Date32')"
    )));
    let expected = right as f64 / counted.len() as f64;
    assert!((ira[0].parse::<f64>().unwrap() - expected).abs() < 1e-9, "IRA {ira:?} vs {expected}");
    // Exceptions at the counted SKU-locations are resolved by the count; no other changes.
    let open_now = open_before(&warehouse);
    let resolved: Vec<&String> = open_then.iter().filter(|e| !open_now.contains(e)).collect();
    for e in &resolved {
        let mut parts = e.split('|');
        let (sku, location) = (parts.next().unwrap(), parts.next().unwrap());
        assert!(counted.contains(&format!("{location}|{sku}")), "{e} closed without a count");
    }
    for e in open_then.iter().filter(|e| {
        let mut p = e.split('|');
        let (sku, location) = (p.next().unwrap(), p.next().unwrap());
        counted.contains(&format!("{location}|{sku}"))
    }) {
        assert!(!open_now.contains(e), "{e} was counted but is still open");
    }
    assert!(open_now.iter().all(|e| open_then.contains(e)), "no exception opened by counting");
    let by_count = runtime.block_on(scalar(&warehouse, &format!("select count(*) from exceptions where status = 'resolved_by_count' and closed_on = DATE '{first_day}'")));
    assert_eq!(by_count as usize, resolved.len());
    assert!(!resolved.is_empty(), "the first day's counts include brought-forward SKU-locations with open exceptions");
}
