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

/// Fills `$today`, `$day_after_today` and `$first_day` (days since the epoch) in a planning
/// query as date literals, so scans read only the partitions of the demand window.
pub fn bind_window(sql: &str, today: i64, first_day: i64) -> String {
    let date = |d: i64| format!("DATE '{}'", crate::drift::date_from_days(d));
    sql.replace("$today", &date(today))
        .replace("$day_after_today", &date(today + 1))
        .replace("$first_load_day", &date(first_day - 2))
        .replace("$first_day", &date(first_day))
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
}
