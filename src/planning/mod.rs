//! Planning outputs: the cycle-count plan, channel buffers and purchase recommendations —
//! the tables planners and warehouse leads act on, each number with its reason.

pub mod buffers;
pub mod counts;
pub mod orders;
pub mod sheets;

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::config::Thresholds;
use crate::drift::Columns;
use crate::error::{Error, Result};
use crate::stats;
use crate::warehouse::collect;

/// The newest day the positions know: plans are made as of it.
pub async fn as_of(ctx: &SessionContext) -> Result<Option<i64>> {
    // coverage is small; it has the days positions have.
    let batches = collect(ctx, "planning: as of", "select max(arrow_cast(snapshot_date, 'Int32')) from coverage").await?;
    Ok(match batches.first() {
        Some(b) if b.num_rows() > 0 => Columns::new(b).int(0)?[0],
        _ => None,
    })
}

/// Fills `$today`, `$day_after_today` and `$first_day` (days since the epoch) in a planning
/// query as date literals, so scans read only the partitions of the demand window.
pub fn bind_window(sql: &str, today: i64, first_day: i64) -> String {
    let date = |d: i64| format!("DATE '{}'", crate::drift::date_from_days(d));
    sql.replace("$today", &date(today))
        .replace("$day_after_today", &date(today + 1))
        .replace("$first_load_day", &date(first_day - 2))
        .replace("$first_day", &date(first_day))
}

/// Sales per SKU-location and day over the demand window. The channel buffers and the
/// purchase recommendations both sum them (per selling system, per region), so the window's
/// movements are read once for both: a tier-M daily run took 2.87 / 3.05 / 2.86 s instead of
/// 3.27 / 3.43 / 2.98 s, alternated.
const WINDOW_SALES: &str = "
select sku, location_id, sale_date, sum(units) as units
from stg_sales
where load_date >= $first_load_day and event_at >= $first_day and event_at < $day_after_today
group by sku, location_id, sale_date";

/// The session table holding `WINDOW_SALES`.
const WINDOW_SALES_TABLE: &str = "window_sales";

/// Set on a build's session so that its planning marts share one read of the window's sales
/// (`marts::build` sets it; without it each mart reads them itself). The window is the same
/// for both: today and `demand_window_days`, from the same session and thresholds.
#[derive(Default)]
pub struct SharedWindowSales(tokio::sync::OnceCell<(i64, i64)>);

/// Registers `window_sales` for the window from `first_day` to `today`, unless a mart of the
/// same build already did.
pub async fn register_window_sales(ctx: &SessionContext, today: i64, first_day: i64) -> Result<()> {
    let failed = |e| Error::query("planning: sales of the demand window", e);
    let read = || async {
        let frame = ctx.sql(&bind_window(WINDOW_SALES, today, first_day)).await.map_err(failed)?;
        let schema = Arc::new(frame.schema().as_arrow().clone());
        // Two partitions, so that the marts' joins and sums over it use both cores.
        let mut partitions = vec![vec![], vec![]];
        for (i, batch) in frame.collect().await.map_err(failed)?.into_iter().enumerate() {
            partitions[i % 2].push(batch);
        }
        let table = MemTable::try_new(schema, partitions).map_err(failed)?;
        ctx.register_table(WINDOW_SALES_TABLE, Arc::new(table)).map_err(failed)?;
        Ok::<_, Error>((today, first_day))
    };
    match ctx.state().config().get_extension::<SharedWindowSales>() {
        Some(shared) => {
            let window = *shared.0.get_or_try_init(read).await?;
            debug_assert_eq!(window, (today, first_day), "the planning marts of a build share one demand window");
            Ok(())
        }
        None => read().await.map(|_| ()),
    }
}

pub fn service_level(class: &str, t: &Thresholds) -> f64 {
    match class {
        "A" => t.service_level_a,
        "B" => t.service_level_b,
        _ => t.service_level_c,
    }
}

pub fn z_for(class: &str, t: &Thresholds) -> f64 {
    stats::normal_quantile(service_level(class, t))
}

/// Mean and sample standard deviation of a daily series over `days` days, days without an
/// entry counting as zero, from the sum and the sum of squares of the days with an entry (so
/// a query returns two numbers instead of every day).
pub fn window_stats(sum: f64, sum_of_squares: f64, days: i64) -> (f64, f64) {
    if days <= 0 {
        return (0.0, 0.0);
    }
    let n = days as f64;
    let mean = sum / n;
    let var = if days > 1 { ((sum_of_squares - n * mean * mean) / (n - 1.0)).max(0.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// Per pair of the first two (text) columns of a query — SKU and system, SKU and region —
/// the numbers of its other columns.
pub async fn per_pair(ctx: &SessionContext, context: &str, sql: &str) -> Result<HashMap<(String, String), Vec<Option<f64>>>> {
    let mut out = HashMap::new();
    for b in collect(ctx, context, sql).await? {
        let c = Columns::new(&b);
        let (firsts, seconds) = (c.text(0)?, c.text(1)?);
        let numbers = (2..b.num_columns()).map(|i| c.float(i)).collect::<Result<Vec<_>>>()?;
        for (i, (first, second)) in firsts.into_iter().zip(seconds).enumerate() {
            if let (Some(first), Some(second)) = (first, second) {
                out.insert((first, second), numbers.iter().map(|column| column[i]).collect());
            }
        }
    }
    Ok(out)
}

/// The ABC class of every SKU.
pub async fn classes(ctx: &SessionContext) -> Result<HashMap<String, String>> {
    crate::drift::text_map(ctx, "planning: classes", "select sku, abc_class from sku_classes").await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, day by day.
    fn daily_stats(values: &HashMap<i64, f64>, first_day: i64, days: i64) -> (f64, f64) {
        let series: Vec<f64> = (first_day..first_day + days).map(|d| values.get(&d).copied().unwrap_or(0.0)).collect();
        let n = series.len() as f64;
        if n == 0.0 {
            return (0.0, 0.0);
        }
        let mean = series.iter().sum::<f64>() / n;
        let var = if n > 1.0 { series.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
        (mean, var.sqrt())
    }

    #[test]
    fn zero_days_count() {
        let values: HashMap<i64, f64> = [(1, 4.0), (3, 2.0)].into();
        let (mean, sd) = daily_stats(&values, 0, 4);
        assert_eq!(mean, 1.5);
        assert!((sd - (11.0f64 / 3.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn sums_give_the_same_stats_as_the_days() {
        let values: HashMap<i64, f64> = [(1, 4.0), (3, 2.0), (9, -7.0)].into();
        let (sum, squares) = values.values().fold((0.0, 0.0), |(s, q), v| (s + v, q + v * v));
        for days in [1, 4, 12] {
            let (mean, sd) = daily_stats(&values.iter().filter(|(d, _)| **d < days).map(|(d, v)| (*d, *v)).collect(), 0, days);
            let kept: Vec<f64> = values.iter().filter(|(d, _)| **d < days).map(|(_, v)| *v).collect();
            let (m, s) = window_stats(kept.iter().sum(), kept.iter().map(|v| v * v).sum(), days);
            assert!((mean - m).abs() < 1e-12 && (sd - s).abs() < 1e-12, "{days} days: {mean} {sd} vs {m} {s}");
        }
        assert_eq!(window_stats(sum, squares, 0), (0.0, 0.0));
    }

    /// A session whose `stg_sales` holds sales on days 9, 10 (two) and 12, and one sold on
    /// day 11 that was loaded on day 9 (partitions are read from two days before the window).
    async fn sales_session() -> SessionContext {
        let ctx = SessionContext::new();
        let sql = "create view stg_sales as
            select *, arrow_cast(sale_date, 'Timestamp(Microsecond, Some(\"UTC\"))') as event_at from (values
                ('a', 'L1', arrow_cast(9, 'Date32'), arrow_cast(9, 'Date32'), 3),
                ('a', 'L1', arrow_cast(10, 'Date32'), arrow_cast(10, 'Date32'), 2),
                ('a', 'L1', arrow_cast(10, 'Date32'), arrow_cast(10, 'Date32'), 5),
                ('a', 'L1', arrow_cast(11, 'Date32'), arrow_cast(9, 'Date32'), 4),
                ('b', 'L2', arrow_cast(12, 'Date32'), arrow_cast(12, 'Date32'), 7)
            ) as t(sku, location_id, sale_date, load_date, units)";
        ctx.sql(sql).await.unwrap();
        ctx
    }

    async fn window_rows(ctx: &SessionContext) -> Vec<String> {
        let sql = "select sku || ' ' || location_id || ' ' || cast(arrow_cast(sale_date, 'Int32') as varchar) || ' ' || cast(units as varchar) from window_sales order by 1";
        let batches = collect(ctx, "test", sql).await.unwrap();
        batches.iter().flat_map(|b| Columns::new(b).text(0).unwrap()).flatten().collect()
    }

    #[tokio::test]
    async fn window_sales_are_summed_per_day_and_read_once_per_build() {
        let ctx = sales_session().await;
        ctx.state_ref().write().config_mut().set_extension(Arc::new(SharedWindowSales::default()));
        // The window of days 10 and 11: day 9 and day 12 fall outside.
        register_window_sales(&ctx, 11, 10).await.unwrap();
        assert_eq!(window_rows(&ctx).await, ["a L1 10 7", "a L1 11 4"]);
        // The second mart of the build finds them: nothing is read again.
        ctx.deregister_table("stg_sales").unwrap();
        register_window_sales(&ctx, 11, 10).await.unwrap();
        assert_eq!(window_rows(&ctx).await, ["a L1 10 7", "a L1 11 4"]);
        // Without the build's extension, each call reads the sales itself.
        let alone = SessionContext::new();
        assert!(register_window_sales(&alone, 11, 10).await.is_err(), "no stg_sales to read");
    }
}
