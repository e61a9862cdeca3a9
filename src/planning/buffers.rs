//! `buffer_recommendations`: units to hold back from each selling system so that its
//! publish lag and its counting error do not oversell:
//!
//!   recommended_buffer = ⌈z·√(lag · σ_d² + σ_variance²)⌉
//!
//! d and σ_d are the daily sales (and their spread) at the locations the system sells from,
//! over the last `demand_window_days`; lag is the publish lag measured for this SKU and
//! system (an integration-lag pattern, else the lag of variances explained as lag, else one
//! day — a daily snapshot cannot see faster); σ_variance is the spread of the system's real
//! daily delta against the authoritative number; z comes from the class's service level.
//! A row is written for each SKU and selling system with sales in the window (only the
//! window is read, so the cost does not grow with history). The locations a system sells
//! from are those it reports the SKU at on the newest day.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;

use super::{as_of, classes, per_pair, service_level, window_stats, z_for};
use crate::config::Thresholds;
use crate::error::{Error, Result};

pub fn buffer(z: f64, lag_days: f64, demand_sd: f64, variance_sd: f64) -> i64 {
    (z * (lag_days * demand_sd.powi(2) + variance_sd.powi(2)).sqrt()).ceil().max(0.0) as i64
}

/// Daily sales (`window_sales`) at the locations each selling system reports the SKU at today,
/// as the sum and the sum of squares of the daily totals (only SKU × system pairs come back,
/// not their days).
/// Only selling systems get a buffer, and leaving the others out of the join keeps it to a
/// row per sale and selling system instead of one per sale and system.
const SALES: &str = "
with reported as (select distinct system, location_id, sku from snapshots where snapshot_date = $today and system in ($selling)),
daily as (
    select c.sku, c.system, cast(sum(s.units) as double) as units
    from reported c join window_sales s on s.sku = c.sku and s.location_id = c.location_id
    group by c.sku, c.system, s.sale_date
)
select sku, system, sum(units), sum(units * units) from daily group by sku, system";

/// Each selling system's real daily delta, summed over its locations: sum and sum of squares
/// of the daily totals, and the mean over days of the lag seen that day. Rows with neither a
/// real delta nor a lag add nothing to these, and leaving them out keeps the daily groups few.
const DELTAS: &str = "
with daily as (
    select sku, system, cast(sum(case when explained_by is null then delta else 0 end) as double) as real_delta,
           avg(case when explained_by = 'lag' then lag_days end) as lag
    from variances
    where snapshot_date >= $first_day and snapshot_date <= $today and system in ($selling)
      and ((explained_by is null and delta <> 0) or explained_by = 'lag')
    group by sku, system, snapshot_date
)
select sku, system, sum(real_delta), sum(real_delta * real_delta), avg(lag) from daily group by sku, system";

const LAGS: &str = "
select sku, system, max(effect) from drift_patterns where pattern = 'integration_lag' group by sku, system";

pub fn build<'a>(ctx: &'a SessionContext, t: &'a Thresholds) -> BoxFuture<'a, Result<Vec<RecordBatch>>> {
    Box::pin(async move {
        let selling: Vec<&str> = t.selling_systems.split(',').map(str::trim).collect();
        let classes = classes(ctx).await?;
        let today = as_of(ctx).await?.unwrap_or(0);
        let first_day = today - t.demand_window_days + 1;
        let in_list = selling.iter().map(|s| crate::warehouse::sql_string(s)).collect::<Vec<_>>().join(", ");
        let window = |sql: &str| super::bind_window(sql, today, first_day).replace("$selling", &in_list);
        // Side by side: each is a scan then an aggregate's single-threaded tail.
        let (sales_sql, deltas_sql) = (window(SALES), window(DELTAS));
        let sales = async {
            super::register_window_sales(ctx, today, first_day).await?;
            per_pair(ctx, "buffer_recommendations: sales", &sales_sql).await
        };
        let (sales, deltas, measured) = futures::try_join!(
            sales,
            per_pair(ctx, "buffer_recommendations: deltas", &deltas_sql),
            per_pair(ctx, "buffer_recommendations: lags", LAGS),
        )?;

        // Selling systems only: the sales query reads no other.
        let mut keys: Vec<&(String, String)> = sales.keys().collect();
        keys.sort();
        let mut rows = Rows::default();
        let stats = |sums: &[Option<f64>]| window_stats(sums[0].unwrap_or(0.0), sums[1].unwrap_or(0.0), t.demand_window_days);
        for key in keys {
            let (sku, system) = key;
            let class = classes.get(sku).map(String::as_str).unwrap_or("C");
            let (d, sd) = stats(&sales[key]);
            let (_, variance_sd) = deltas.get(key).map(|sums| stats(sums)).unwrap_or((0.0, 0.0));
            let seen = deltas.get(key).and_then(|sums| sums[2]);
            let (lag, lag_source) = match (measured.get(key).and_then(|m| m[0]), seen) {
                (Some(l), _) => (l, "integration lag pattern"),
                (None, Some(l)) => (l, "variances explained as lag"),
                (None, None) => (1.0, "daily snapshots"),
            };
            let z = z_for(class, t);
            let recommended = buffer(z, lag, sd, variance_sd);
            let level = service_level(class, t);
            let reason = format!(
                "{class} at {:.0}% service: lag {lag:.1} d ({lag_source}), demand {d:.2}±{sd:.2}/d, real variance sd {variance_sd:.2}",
                level * 100.0
            );
            rows.push(sku, system, class, d, lag, variance_sd, level, recommended, reason, sd);
        }
        Ok(vec![rows.finish()?])
    })
}

#[derive(Default)]
struct Rows {
    sku: Vec<String>,
    system: Vec<String>,
    class: Vec<String>,
    numbers: [Vec<f64>; 5],
    buffer: Vec<i64>,
    reason: Vec<String>,
}

impl Rows {
    #[allow(clippy::too_many_arguments)]
    fn push(&mut self, sku: &str, system: &str, class: &str, d: f64, lag: f64, variance_sd: f64, level: f64, buffer: i64, reason: String, demand_sd: f64) {
        self.sku.push(sku.into());
        self.system.push(system.into());
        self.class.push(class.into());
        for (v, x) in self.numbers.iter_mut().zip([d, demand_sd, lag, variance_sd, level]) {
            v.push(x);
        }
        self.buffer.push(buffer);
        self.reason.push(reason);
    }

    fn finish(self) -> Result<RecordBatch> {
        let mut fields: Vec<Field> = ["sku", "system", "abc_class"].iter().map(|n| Field::new(*n, DataType::Utf8, false)).collect();
        fields.extend(["daily_demand", "demand_sd", "publish_lag_days", "variance_sd", "service_level"].iter().map(|n| Field::new(*n, DataType::Float64, false)));
        fields.push(Field::new("recommended_buffer", DataType::Int64, false));
        fields.push(Field::new("reason", DataType::Utf8, false));
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(self.sku)),
            Arc::new(StringArray::from(self.system)),
            Arc::new(StringArray::from(self.class)),
        ];
        columns.extend(self.numbers.into_iter().map(|v| Arc::new(Float64Array::from(v)) as ArrayRef));
        columns.push(Arc::new(Int64Array::from(self.buffer)));
        columns.push(Arc::new(StringArray::from(self.reason)));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| Error::arrow("building buffer_recommendations", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_formula() {
        // z 2, lag 3, σ_d 2, σ_var 5: 2·√(12 + 25) = 12.17 → 13.
        assert_eq!(buffer(2.0, 3.0, 2.0, 5.0), 13);
        assert_eq!(buffer(1.0, 0.0, 9.0, 0.0), 0);
    }
}
