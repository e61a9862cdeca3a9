//! Operations staff: the daily sync check and one SKU's triage.

use std::process::Command;

use crate::{binary, rows, scalar, shared_demo, shared_warehouse, small_demo_in};

#[tokio::test(flavor = "multi_thread")]
async fn the_daily_sync_check_flags_the_top_skus_out_of_tolerance() {
    let (dir, _) = shared_demo();
    let out = Command::new(binary()).args(["check", "stocktake-demo/pipeline.toml"]).current_dir(dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // The same question asked directly of `variances`.
    let w = shared_warehouse();
    let expected = scalar(
        &w,
        "with newest as (select max(snapshot_date) as d from variances),
              sold as (select m.sku, sum(-m.qty * k.price) as revenue from movements m join skus k on k.sku = m.sku, newest n
                       where m.kind = 'sale' and arrow_cast(m.event_at, 'Date32') > n.d - interval '56 days' group by m.sku),
              top as (select sku from sold order by revenue desc, sku limit 30)
         select count(distinct v.sku || '@' || v.location_id) from variances v join top t on t.sku = v.sku, newest n
         where v.snapshot_date = n.d and v.flagged and v.explained_by is null",
    )
    .await;
    assert!(expected > 0, "the demo has discrepancies among its best sellers");
    assert_eq!(out.status.code(), Some(1), "{text}");
    let summary = text.lines().last().unwrap();
    assert!(summary.starts_with(&format!("{expected} of ")), "{summary}");
    assert_eq!(text.lines().filter(|l| l.ends_with("FLAGGED")).count() as i64, expected, "{text}");
    let ranks: std::collections::BTreeSet<&str> = text.lines().skip(4).filter_map(|l| l.split_whitespace().next()).filter(|r| r.parse::<u32>().is_ok()).collect();
    assert_eq!(ranks.len(), 30, "{text}");
    assert!(text.contains("true (system)") && text.contains("shopify"), "{text}");

    // With tolerances nothing exceeds, the check is clean: exit 0.
    let clean = tempfile::tempdir().unwrap();
    small_demo_in(clean.path(), false);
    let pipeline = clean.path().join("stocktake-demo/pipeline.toml");
    let text = std::fs::read_to_string(&pipeline).unwrap().replace("flag_pct = 0.03\nflag_units = 10", "flag_pct = 0.99\nflag_units = 1000000");
    std::fs::write(&pipeline, text).unwrap();
    let run = Command::new(binary()).args(["run", "stocktake-demo/pipeline.toml", "-q"]).current_dir(clean.path()).output().unwrap();
    assert_eq!(run.status.code(), Some(0));
    let out = Command::new(binary()).args(["check", "stocktake-demo/pipeline.toml", "--top", "5"]).current_dir(clean.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.lines().last().unwrap().starts_with("0 of "), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_walks_the_four_layers_then_the_movements_since_agreement() {
    let (dir, _) = shared_demo();
    let w = shared_warehouse();
    let lagging = rows(&w, "select sku, location_id, system from drift_patterns where pattern = 'integration_lag' order by sku limit 1").await;
    let fields: Vec<&str> = lagging[0].split('|').collect();
    let (sku, location, system) = (fields[0], fields[1], fields[2]);
    let out = Command::new(binary()).args(["explain", "--sku", sku, "--location", location]).current_dir(dir).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let order = ["1. identity", "2. ledger", "3. policy", "4. publish", "5. last day every system agreed"];
    let at: Vec<usize> = order.iter().map(|s| text.find(s).unwrap_or_else(|| panic!("no '{s}' in:\n{text}"))).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "sections out of order");
    let publish = &text[at[3]..at[4]];
    assert!(publish.lines().any(|l| l.contains(system) && l.contains("integration_lag")), "{publish}");

    // The agreement date and the movements after it match the tables.
    let agreed = rows(&w, &format!(
        "select cast(max(snapshot_date) as varchar) from (select snapshot_date, max(abs(delta)) as worst from variances
         where sku = '{sku}' and location_id = '{location}' group by snapshot_date) where worst = 0"
    )).await;
    let since = &text[at[4]..];
    match agreed[0].as_str() {
        "∅" => assert!(since.contains("never agreed"), "{since}"),
        day => {
            assert!(since.contains(&format!("since {day}")), "{since}");
            let moves = scalar(&w, &format!(
                "select count(*) from movements where sku = '{sku}' and location_id = '{location}' and arrow_cast(event_at, 'Date32') > DATE '{day}'"
            )).await;
            let listed = since.lines().filter(|l| l.trim_start().starts_with("| 20")).count() as i64;
            assert_eq!(listed, moves, "{since}");
        }
    }

    let out = Command::new(binary()).args(["explain", "--sku", "NO-SUCH-SKU"]).current_dir(dir).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'NO-SUCH-SKU' is not in the skus reference"));
}
