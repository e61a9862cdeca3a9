//! `stocktake explain --sku S [--location L]`: triage of one SKU in a fixed order —
//! identity, ledger, policy, publish — then the last day every system agreed and each
//! movement since, so the cause can be read off. The queries live in `sql/explain/`.

use std::fmt::Write as _;

use arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};
use crate::warehouse::{self, Warehouse};

const IDENTITY: &str = include_str!("../sql/explain/identity.sql");
const LEDGER: &str = include_str!("../sql/explain/ledger.sql");
const POLICY: &str = include_str!("../sql/explain/policy.sql");
const PUBLISH: &str = include_str!("../sql/explain/publish.sql");
const AGREEMENT: &str = include_str!("../sql/explain/agreement.sql");
const SINCE: &str = include_str!("../sql/explain/since.sql");

const TABLES: &[&str] = &[
    "skus", "sku_aliases", "bundles", "unmapped_skus", "movements", "snapshots", "variances", "buffer_recommendations", "drift_patterns",
];

fn literal(value: Option<&str>) -> String {
    match value {
        Some(v) => warehouse::sql_string(v),
        None => "NULL".into(),
    }
}

pub async fn explain(warehouse: &Warehouse, sku: &str, location: Option<&str>) -> Result<String> {
    let ctx = warehouse.session(TABLES).await?;
    let known = warehouse::collect(&ctx, "explain", &format!("select title from skus where sku = {}", literal(Some(sku)))).await?;
    let title = known.iter().find(|b| b.num_rows() > 0).map(|b| warehouse::strings(b, 0)).transpose()?.and_then(|t| t[0].clone());
    let Some(title) = title else {
        return Err(Error::Usage(format!("SKU '{sku}' is not in the skus reference")));
    };
    let bind = |sql: &str| sql.replace(":sku", &literal(Some(sku))).replace(":location", &literal(location));
    let run = |name: &'static str, sql: String| {
        let ctx = &ctx;
        async move { warehouse::collect(ctx, &format!("explain {name}"), &sql).await }
    };
    let mut out = format!("{sku} — {title}{}\n", location.map(|l| format!(" at {l}")).unwrap_or_default());

    section(&mut out, "1. identity: how each system names it", &run("identity", bind(IDENTITY)).await?)?;

    let ledger = run("ledger", bind(LEDGER)).await?;
    let unreasoned = count_where(&ledger, 3, 5, |kind, reason| kind == "adjustment" && reason.is_empty())?;
    section(&mut out, &format!("2. ledger: movements over the last 14 days ({unreasoned} adjustments without a reason code)"), &ledger)?;

    section(&mut out, "3. policy: what each system holds back (newest snapshot)", &run("policy", bind(POLICY)).await?)?;
    let buffers = format!("select system, abc_class, daily_demand, publish_lag_days, recommended_buffer, reason from buffer_recommendations where sku = {} order by system", literal(Some(sku)));
    section(&mut out, "   channel buffers", &run("buffers", buffers).await?)?;

    section(&mut out, "4. publish: days behind the true count, last 30 days", &run("publish", bind(PUBLISH)).await?)?;
    let patterns = format!(
        "select location_id, system, pattern, likely_cause, layer, effect, p_value, first_seen, last_seen from drift_patterns where sku = {} and ({} is null or location_id = {}) order by location_id, system, pattern",
        literal(Some(sku)), literal(location), literal(location)
    );
    section(&mut out, "   drift patterns", &run("patterns", patterns).await?)?;

    let agreement = run("agreement", bind(AGREEMENT)).await?;
    section(&mut out, "5. last day every system agreed", &agreement)?;
    for b in &agreement {
        let locations = warehouse::strings(b, 0)?;
        let days = warehouse::strings(b, 1)?;
        for (loc, day) in locations.iter().zip(days) {
            let loc = loc.as_deref().unwrap_or_default();
            let since = match &day {
                Some(d) => format!("DATE '{d}'"),
                None => "DATE '1900-01-01'".into(),
            };
            let sql = SINCE.replace(":sku", &literal(Some(sku))).replace(":location", &literal(Some(loc))).replace(":agreed_on", &since);
            let title = match &day {
                Some(d) => format!("   movements at {loc} since {d}"),
                None => format!("   movements at {loc} (the systems never agreed in the history held)"),
            };
            section(&mut out, &title, &run("since", sql).await?)?;
        }
    }
    Ok(out)
}

fn section(out: &mut String, title: &str, batches: &[RecordBatch]) -> Result<()> {
    let _ = writeln!(out, "\n{title}");
    if batches.iter().all(|b| b.num_rows() == 0) {
        let _ = writeln!(out, "   (none)");
        return Ok(());
    }
    let table = arrow::util::pretty::pretty_format_batches(batches).map_err(|e| Error::arrow("formatting explain", e))?;
    for line in table.to_string().lines() {
        let _ = writeln!(out, "   {line}");
    }
    Ok(())
}

fn count_where(batches: &[RecordBatch], a: usize, b: usize, keep: impl Fn(&str, &str) -> bool) -> Result<usize> {
    let mut n = 0;
    for batch in batches {
        let left = warehouse::strings(batch, a)?;
        let right = warehouse::strings(batch, b)?;
        n += left.iter().zip(&right).filter(|(l, r)| keep(l.as_deref().unwrap_or(""), r.as_deref().unwrap_or(""))).count();
    }
    Ok(n)
}
