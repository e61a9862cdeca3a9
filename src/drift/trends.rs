//! `variance_trends`: the weekly aggregation is `sql/marts/variance_trends.sql`; this adds
//! the trend test over each (ABC class, location, system) series of weeks.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;

use super::Columns;
use crate::config::Thresholds;
use crate::error::{Error, Result};
use crate::stats;
use crate::warehouse::collect;

pub const SQL: &str = include_str!("../../sql/marts/variance_trends.sql");

/// Fewer weeks than this give no slope.
const MIN_WEEKS: usize = 4;

/// Slope, p-value and direction for each point of a series, over the trailing `weeks` points.
pub fn trailing_trends(series: &[f64], weeks: usize, alpha: f64) -> Vec<(Option<f64>, Option<f64>, &'static str)> {
    (0..series.len())
        .map(|i| {
            let window = &series[(i + 1).saturating_sub(weeks)..=i];
            if window.len() < MIN_WEEKS {
                return (None, None, "flat");
            }
            let slope = stats::theil_sen(window);
            let p = stats::mann_kendall(window).p_value;
            let direction = match (p < alpha, slope) {
                (true, s) if s > 0.0 => "worsening",
                (true, s) if s < 0.0 => "improving",
                _ => "flat",
            };
            (Some(slope), Some(p), direction)
        })
        .collect()
}

/// Weeks of the mart before `first_week` that a trailing window reaches, per series.
async fn earlier_weeks(ctx: &SessionContext, first_week: NaiveDate, weeks: i64) -> Result<HashMap<(String, String, String), Vec<f64>>> {
    let mut out: HashMap<_, Vec<f64>> = HashMap::new();
    if ctx.table_exist("variance_trends").map_err(|e| Error::query("variance_trends", e))? {
        let sql = format!(
            "select abc_class, location_id, system, mean_abs_real_delta from variance_trends
             where week < DATE '{first_week}' and week >= DATE '{first_week}' - interval '{} days'
             order by abc_class, location_id, system, week",
            7 * weeks
        );
        for batch in collect(ctx, "mart variance_trends: earlier weeks", &sql).await? {
            let c = Columns::new(&batch);
            let (classes, locations, systems, real) = (c.text(0)?, c.text(1)?, c.text(2)?, c.float(3)?);
            for i in 0..batch.num_rows() {
                let key = (classes[i].clone().unwrap_or_default(), locations[i].clone().unwrap_or_default(), systems[i].clone().unwrap_or_default());
                out.entry(key).or_default().push(real[i].unwrap_or(0.0));
            }
        }
    }
    Ok(out)
}

/// The weekly rows from `first_week` on, with the trend of each series over the trailing
/// weeks (reaching back into weeks built before).
pub fn build<'a>(ctx: &'a SessionContext, t: &'a Thresholds, first_week: NaiveDate) -> BoxFuture<'a, Result<Vec<RecordBatch>>> {
    Box::pin(async move {
        let weeks = t.trend_weeks.max(1);
        let sql = crate::marts::strip_comments(SQL).replace("$first_week", &format!("DATE '{first_week}'"));
        let frame = ctx.sql(&sql).await.map_err(|e| Error::query("mart variance_trends", e))?;
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await.map_err(|e| Error::query("mart variance_trends", e))?;
        let batch = arrow::compute::concat_batches(&schema, &batches).map_err(|e| Error::arrow("variance_trends", e))?;
        let earlier = earlier_weeks(ctx, first_week, weeks - 1).await?;
        let c = Columns::new(&batch);
        let (classes, locations, systems) = (c.text(1)?, c.text(2)?, c.text(4)?);
        let real = c.float(9)?;
        let mut slope = vec![None; batch.num_rows()];
        let mut p_value = vec![None; batch.num_rows()];
        let mut direction = vec![""; batch.num_rows()];
        // Rows arrive ordered by series, then week: cut the series where the key changes.
        let mut start = 0;
        for end in 1..=batch.num_rows() {
            let same = end < batch.num_rows() && classes[end] == classes[start] && locations[end] == locations[start] && systems[end] == systems[start];
            if same {
                continue;
            }
            let key = (classes[start].clone().unwrap_or_default(), locations[start].clone().unwrap_or_default(), systems[start].clone().unwrap_or_default());
            let mut series: Vec<f64> = earlier.get(&key).cloned().unwrap_or_default();
            let before = series.len();
            series.extend(real[start..end].iter().map(|v| v.unwrap_or(0.0)));
            for (k, (s, p, d)) in trailing_trends(&series, weeks as usize, t.trend_alpha).into_iter().enumerate().skip(before) {
                (slope[start + k - before], p_value[start + k - before], direction[start + k - before]) = (s, p, d);
            }
            start = end;
        }
        let mut fields: Vec<Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.extend([Field::new("slope", DataType::Float64, true), Field::new("p_value", DataType::Float64, true), Field::new("direction", DataType::Utf8, false)]);
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        columns.push(Arc::new(Float64Array::from(slope)));
        columns.push(Arc::new(Float64Array::from(p_value)));
        columns.push(Arc::new(StringArray::from(direction)));
        let out = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| Error::arrow("variance_trends", e))?;
        Ok(vec![out])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rising_series_is_worsening_and_short_ones_are_flat() {
        let t = trailing_trends(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], 8, 0.05);
        assert_eq!(t[2], (None, None, "flat"));
        assert_eq!(t[7].2, "worsening");
        assert_eq!(t[7].0, Some(1.0));
        let falling = trailing_trends(&[9.0, 8.0, 7.0, 6.0, 5.0, 4.0], 8, 0.05);
        assert_eq!(falling[5].2, "improving");
        let flat = trailing_trends(&[2.0; 6], 8, 0.05);
        assert_eq!(flat[5], (Some(0.0), Some(1.0), "flat"));
    }
}
