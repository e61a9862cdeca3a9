//! `variance_trends`: the weekly aggregation is `sql/marts/variance_trends.sql`; this adds
//! the trend test over each (ABC class, location, system) series of weeks.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;

use super::Columns;
use crate::config::Thresholds;
use crate::error::{Error, Result};
use crate::stats;

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

pub fn build<'a>(ctx: &'a SessionContext, t: &'a Thresholds) -> BoxFuture<'a, Result<Vec<RecordBatch>>> {
    Box::pin(async move {
        let frame = ctx.sql(SQL).await.map_err(|e| Error::query("mart variance_trends", e))?;
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await.map_err(|e| Error::query("mart variance_trends", e))?;
        let batch = arrow::compute::concat_batches(&schema, &batches).map_err(|e| Error::arrow("variance_trends", e))?;
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
            let series: Vec<f64> = real[start..end].iter().map(|v| v.unwrap_or(0.0)).collect();
            for (k, (s, p, d)) in trailing_trends(&series, t.trend_weeks.max(1) as usize, t.trend_alpha).into_iter().enumerate() {
                (slope[start + k], p_value[start + k], direction[start + k]) = (s, p, d);
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
