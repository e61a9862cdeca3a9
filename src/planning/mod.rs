//! Planning outputs: the cycle-count plan, channel buffers and purchase recommendations —
//! the tables planners and warehouse leads act on, each number with its reason.

pub mod buffers;
pub mod counts;
pub mod orders;
pub mod sheets;

use std::collections::HashMap;

use datafusion::prelude::SessionContext;

use crate::config::Thresholds;
use crate::drift::Columns;
use crate::error::Result;
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

/// Fills `$today` and `$first_day` (days since the epoch) in a planning query as date
/// literals, so scans read only the partitions of the demand window.
pub fn bind_window(sql: &str, today: i64, first_day: i64) -> String {
    let date = |d: i64| format!("DATE '{}'", crate::drift::date_from_days(d));
    sql.replace("$today", &date(today)).replace("$first_load_day", &date(first_day - 2)).replace("$first_day", &date(first_day))
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
/// entry counting as zero.
pub fn daily_stats(values: &HashMap<i64, f64>, first_day: i64, days: i64) -> (f64, f64) {
    let series: Vec<f64> = (first_day..first_day + days).map(|d| values.get(&d).copied().unwrap_or(0.0)).collect();
    let n = series.len() as f64;
    if n == 0.0 {
        return (0.0, 0.0);
    }
    let mean = series.iter().sum::<f64>() / n;
    let var = if n > 1.0 { series.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// The ABC class of every SKU.
pub async fn classes(ctx: &SessionContext) -> Result<HashMap<String, String>> {
    crate::drift::text_map(ctx, "planning: classes", "select sku, abc_class from sku_classes").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_days_count() {
        let values: HashMap<i64, f64> = [(1, 4.0), (3, 2.0)].into();
        let (mean, sd) = daily_stats(&values, 0, 4);
        assert_eq!(mean, 1.5);
        assert!((sd - (11.0f64 / 3.0).sqrt()).abs() < 1e-12);
    }
}
