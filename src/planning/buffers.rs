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
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;

use super::{as_of, classes, per_pair, service_level, window_stats, z_for};
use crate::config::Thresholds;
use crate::error::{Error, Result};
use crate::warehouse::collect_at_least_one;

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

/// The table the demand window's daily deltas (`DAILY_DELTAS`) are kept in between builds, so
/// that a build that only adds days reads the variances of those days instead of the window's
/// (56 days of variances, 8.5 M rows at tier M, for ~240 k daily rows).
pub const STATE: &str = "buffer_recommendations_state";

/// Each selling system's real delta per SKU and day, summed over its locations, and the mean
/// lag seen that day, for the days `$from` to `$today`. Rows with neither a real delta nor a
/// lag add nothing to the sums, and leaving them out keeps the daily rows few.
const DAILY_DELTAS: &str = "
select sku, system, snapshot_date, cast(sum(case when explained_by is null then delta else 0 end) as double) as real_delta,
       avg(case when explained_by = 'lag' then lag_days end) as lag
from variances
where snapshot_date >= $from and snapshot_date <= $today and system in ($selling)
  and ((explained_by is null and delta <> 0) or explained_by = 'lag')
group by sku, system, snapshot_date";

/// The daily deltas kept by the last build that are still in the window.
const KEPT_DELTAS: &str = "
select sku, system, snapshot_date, real_delta, lag from buffer_recommendations_state where snapshot_date >= $first_day";

/// Sum and sum of squares of the daily deltas, and the mean over days of the day's lag.
const DELTAS: &str = "
select sku, system, sum(real_delta), sum(real_delta * real_delta), avg(lag) from buffer_daily_deltas group by sku, system";

/// Whether the kept daily deltas can be gone on from: the build only adds days from
/// `first_new` on, after the day they were made for (`as_of`), with the same window.
async fn kept_deltas_usable(ctx: &SessionContext, first_new: i64, window_days: i64) -> Result<bool> {
    let stamps = crate::warehouse::kept_stamps(ctx, STATE, &["as_of", "window_days"]).await?;
    Ok(matches!(stamps.as_deref(), Some(&[as_of, kept_window]) if kept_window == window_days && as_of < first_new))
}

/// The daily deltas of the window: the kept ones and the new days' when they can be gone on
/// from, else all read afresh. Every row carries the day and window it was made for.
async fn daily_deltas(ctx: &SessionContext, window: &(dyn Fn(&str) -> String + Sync), append_from: Option<i64>, today: i64, window_days: i64) -> Result<Vec<RecordBatch>> {
    let sql = match append_from {
        Some(first_new) if kept_deltas_usable(ctx, first_new, window_days).await? => {
            format!("{KEPT_DELTAS} union all {}", DAILY_DELTAS.replace("$from", &format!("DATE '{}'", crate::drift::date_from_days(first_new))))
        }
        _ => DAILY_DELTAS.replace("$from", "$first_day"),
    };
    let stamped = format!("select *, arrow_cast({today}, 'Int64') as as_of, arrow_cast({window_days}, 'Int64') as window_days from ({sql})");
    collect_at_least_one(ctx, "buffer_recommendations: daily deltas", &window(&stamped)).await
}

/// The session table `DELTAS` sums (a build's daily deltas).
const DAILY_TABLE: &str = "buffer_daily_deltas";

const LAGS: &str = "
select sku, system, max(effect) from drift_patterns where pattern = 'integration_lag' group by sku, system";

/// The mart's rows, and the window's daily deltas to keep for the next build (`STATE`).
pub fn build<'a>(_warehouse: &'a crate::warehouse::Warehouse, ctx: &'a SessionContext, t: &'a Thresholds, append_from: Option<i64>) -> BoxFuture<'a, Result<(Vec<RecordBatch>, Vec<RecordBatch>)>> {
    Box::pin(async move {
        let selling: Vec<&str> = t.selling_systems.split(',').map(str::trim).collect();
        let classes = classes(ctx).await?;
        let today = as_of(ctx).await?.unwrap_or(0);
        let first_day = today - t.demand_window_days + 1;
        let in_list = selling.iter().map(|s| crate::warehouse::sql_string(s)).collect::<Vec<_>>().join(", ");
        let window = |sql: &str| super::bind_window(sql, today, first_day).replace("$selling", &in_list);
        // Side by side: each is a scan then an aggregate's single-threaded tail.
        let sales_sql = window(SALES);
        let sales = async {
            super::register_window_sales(ctx, today, first_day).await?;
            per_pair(ctx, "buffer_recommendations: sales", &sales_sql).await
        };
        let deltas = async {
            let daily = daily_deltas(ctx, &window, append_from, today, t.demand_window_days).await?;
            let failed = |e| Error::query("buffer_recommendations: daily deltas", e);
            let table = MemTable::try_new(daily[0].schema(), vec![daily.clone()]).map_err(failed)?;
            ctx.register_table(DAILY_TABLE, Arc::new(table)).map_err(failed)?;
            let sums = per_pair(ctx, "buffer_recommendations: deltas", DELTAS).await;
            ctx.deregister_table(DAILY_TABLE).map_err(failed)?;
            Ok::<_, Error>((sums?, daily))
        };
        let (sales, (deltas, daily), measured) = futures::try_join!(sales, deltas, per_pair(ctx, "buffer_recommendations: lags", LAGS))?;

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
        Ok((vec![rows.finish()?], daily))
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
