//! Lag matching for `variances` (SPEC §5): a system that differs from the authoritative
//! number but equals the authoritative number of one of the previous `lag_days` days, in the
//! bucket compared, is behind, not wrong. `sql/marts/variances.sql` leaves `lag_days` NULL;
//! this fills it in (the days back to the nearest such day) for the rows with a delta, and
//! explains those not explained otherwise as `lag`.
//!
//! Only about one variance row in nine has a delta. Matching them here, against the
//! positions of the days before, costs a lookup per such row; in SQL every row carried its
//! position's previous days through the join (a tier-M chunk: 2.9 CPU-s instead of 1.2).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, Scalar, StringArray};
use arrow::datatypes::{DataType, Date32Type, Int32Type, Int64Type};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use datafusion::common::HashMap;
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};
use crate::warehouse::collect;

/// What this matching does, fingerprinted with the models: a change makes the next build a
/// full one.
pub(super) const METHOD: &str = "lag: the nearest of the previous lag_days days whose authoritative number in the bucket compared equals the system's, for rows with a delta";

/// `batches` (rows of `variances` for the days `first` to `last`) with `lag_days` and the
/// `lag` explanation filled in from the positions of the `lag_days` days before each row.
pub(super) async fn match_lags(ctx: &SessionContext, batches: Vec<RecordBatch>, (first, last): (NaiveDate, NaiveDate), lag_days: i64) -> Result<Vec<RecordBatch>> {
    if lag_days <= 0 {
        return Ok(batches);
    }
    let mut any_delta = false;
    for batch in &batches {
        any_delta |= column(batch, "delta")?.as_primitive::<Int64Type>().iter().any(|v| v.is_some_and(|v| v != 0));
    }
    if !any_delta {
        return Ok(batches);
    }
    let lag_first = first.checked_sub_days(chrono::Days::new(lag_days as u64)).unwrap_or(first);
    let sql = format!(
        "select location_id, sku, arrow_cast(snapshot_date, 'Int32') as day_number, on_hand, available from positions \
         where snapshot_date >= DATE '{lag_first}' and snapshot_date < DATE '{last}'"
    );
    let priors = collect(ctx, &format!("variances: positions before {first} to {last} for lag matching"), &sql).await?;
    let priors: Vec<[ArrayRef; 5]> = priors.iter().map(|b| Ok([views(b.column(0))?, views(b.column(1))?, b.column(2).clone(), b.column(3).clone(), b.column(4).clone()])).collect::<Result<_>>()?;
    let history = History::new(&priors);
    batches.into_iter().map(|b| match_batch(&b, &history, lag_days)).collect()
}

/// The authoritative numbers of each SKU-location on each day before the rows to match, in
/// one table of days by SKU-location (a number per SKU-location): a lag is found by reading
/// the `lag_days` slots before the row's day, nearest first. Positions are one per day, SKU
/// and location (`positions.test.sql`). A full build's chunk holds about a million of them,
/// arriving a day at a time. Most of building it is the hash lookup of each row's
/// SKU-location (cache misses on a table of ~60 k at tier M; keying it by two integers instead
/// of two texts changed nothing measurable).
struct History<'a> {
    ids: HashMap<(&'a str, &'a str), u32>,
    /// The day of the table's first row, and how many days it holds.
    first_day: i32,
    days: usize,
    /// Slot `(day - first_day) * ids.len() + id`: on_hand and available.
    numbers: Vec<[i64; 2]>,
    /// Which numbers of a slot are reported: bit 1 on_hand, bit 2 available.
    reported: Vec<u8>,
}

impl<'a> History<'a> {
    fn new(priors: &'a [[ArrayRef; 5]]) -> History<'a> {
        let rows: usize = priors.iter().map(|p| p[2].len()).sum();
        let mut ids: HashMap<(&str, &str), u32> = HashMap::with_capacity(rows / 8);
        // First pass: each row's id (u32::MAX where a key is missing), and the days spanned.
        let mut row_ids: Vec<u32> = Vec::with_capacity(rows);
        let (mut first_day, mut last_day) = (i32::MAX, i32::MIN);
        for [location, sku, day, ..] in priors {
            let (location, sku, day) = (location.as_string_view(), sku.as_string_view(), day.as_primitive::<Int32Type>());
            for i in 0..day.len() {
                if location.is_null(i) || sku.is_null(i) || day.is_null(i) {
                    row_ids.push(u32::MAX);
                    continue;
                }
                let next = ids.len() as u32;
                row_ids.push(*ids.entry((location.value(i), sku.value(i))).or_insert(next));
                first_day = first_day.min(day.value(i));
                last_day = last_day.max(day.value(i));
            }
        }
        let days = if ids.is_empty() { 0 } else { (last_day - first_day) as usize + 1 };
        let slots = days * ids.len();
        let (mut numbers, mut reported) = (vec![[0i64; 2]; slots], vec![0u8; slots]);
        // Second pass: each row into its slot.
        let mut row = 0;
        for [_, _, day, on_hand, available] in priors {
            let (day, on_hand, available) = (day.as_primitive::<Int32Type>(), on_hand.as_primitive::<Int64Type>(), available.as_primitive::<Int64Type>());
            for i in 0..day.len() {
                let id = row_ids[row];
                row += 1;
                if id == u32::MAX {
                    continue;
                }
                let slot = (day.value(i) - first_day) as usize * ids.len() + id as usize;
                numbers[slot] = [on_hand.value(i), available.value(i)];
                reported[slot] = u8::from(on_hand.is_valid(i)) | (u8::from(available.is_valid(i)) << 1);
            }
        }
        History { ids, first_day, days, numbers, reported }
    }

    /// The days back (1 to `lag_days`) to the nearest earlier day whose number in the bucket
    /// compared equals `qty`.
    fn lag(&self, location: &str, sku: &str, today: i32, on_hand_bucket: bool, qty: i64, lag_days: i64) -> Option<i64> {
        let id = *self.ids.get(&(location, sku))? as usize;
        let (number, bit) = if on_hand_bucket { (0, 1) } else { (1, 2) };
        (1..=lag_days).find(|back| {
            let day = i64::from(today) - back - i64::from(self.first_day);
            if day < 0 || day >= self.days as i64 {
                return false;
            }
            let slot = day as usize * self.ids.len() + id;
            self.reported[slot] & bit != 0 && self.numbers[slot][number] == qty
        })
    }
}

/// One batch with its lags matched.
fn match_batch(batch: &RecordBatch, history: &History, lag_days: i64) -> Result<RecordBatch> {
    let snapshot_date = column(batch, "snapshot_date")?;
    let snapshot_date = snapshot_date.as_primitive::<Date32Type>();
    let (location, sku) = (views(&column(batch, "location_id")?)?, views(&column(batch, "sku")?)?);
    let (location, sku) = (location.as_string_view(), sku.as_string_view());
    let bucket = column(batch, "bucket")?;
    let on_hand = arrow::compute::cast(&StringArray::from(vec!["on_hand"]), bucket.data_type()).map_err(|e| Error::arrow("variances: reading bucket", e))?;
    let on_hand_bucket = arrow::compute::kernels::cmp::eq(&bucket, &Scalar::new(on_hand)).map_err(|e| Error::arrow("variances: reading bucket", e))?;
    let system_qty = column(batch, "system_qty")?;
    let system_qty = system_qty.as_primitive::<Int64Type>();
    let delta = column(batch, "delta")?;
    let delta = delta.as_primitive::<Int64Type>();

    let lags: Int64Array = (0..batch.num_rows())
        .map(|i| {
            if !delta.is_valid(i) || delta.value(i) == 0 || system_qty.is_null(i) || snapshot_date.is_null(i) || location.is_null(i) || sku.is_null(i) {
                return None;
            }
            let on_hand = on_hand_bucket.is_valid(i) && on_hand_bucket.value(i);
            history.lag(location.value(i), sku.value(i), snapshot_date.value(i), on_hand, system_qty.value(i), lag_days)
        })
        .collect();
    // `lag` where a lag was found and nothing else explains the row.
    let explained = column(batch, "explained_by")?;
    let unexplained_lag = arrow::compute::and(&arrow::compute::is_null(&explained).map_err(|e| Error::arrow("variances: reading explained_by", e))?, &arrow::compute::is_not_null(&lags).map_err(|e| Error::arrow("variances: reading lags", e))?)
        .map_err(|e| Error::arrow("variances: explaining lags", e))?;
    let explained = match unexplained_lag.true_count() {
        0 => explained,
        _ => {
            let lag = arrow::compute::cast(&StringArray::from(vec!["lag"]), explained.data_type()).map_err(|e| Error::arrow("variances: writing explained_by", e))?;
            arrow::compute::kernels::zip::zip(&unexplained_lag, &Scalar::new(lag), &explained).map_err(|e| Error::arrow("variances: writing explained_by", e))?
        }
    };
    let mut columns = batch.columns().to_vec();
    let schema = batch.schema();
    for (name, replaced) in [("lag_days", Arc::new(lags) as ArrayRef), ("explained_by", explained)] {
        let (index, field) = schema.column_with_name(name).ok_or_else(|| missing(name))?;
        columns[index] = arrow::compute::cast(&replaced, field.data_type()).map_err(|e| Error::arrow(format!("variances: writing {name}"), e))?;
    }
    RecordBatch::try_new(schema, columns).map_err(|e| Error::arrow("variances: lags matched", e))
}

fn column(batch: &RecordBatch, name: &str) -> Result<ArrayRef> {
    batch.column_by_name(name).cloned().ok_or_else(|| missing(name))
}

fn missing(name: &str) -> Error {
    Error::Usage(format!("the variances model returns no `{name}` column, which lag matching needs"))
}

/// A text column as string views (what DataFusion reads Parquet text as; a no-op then).
fn views(array: &ArrayRef) -> Result<ArrayRef> {
    arrow::compute::cast(array, &DataType::Utf8View).map_err(|e| Error::arrow("variances: reading a text column", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, StringViewArray};
    use arrow::datatypes::{Field, Schema};

    /// Positions of one SKU-location on days 10 to 13, and variance rows of day 13.
    async fn matched(rows: &[(&str, i64, i64, Option<&str>)], lag_days: i64) -> Vec<(Option<String>, Option<i64>)> {
        let ctx = SessionContext::new();
        ctx.sql(
            "create table positions as select 'L1' as location_id, 'S1' as sku, arrow_cast(arrow_cast(d, 'Int32'), 'Date32') as snapshot_date, oh as on_hand, av as available
             from (values (10, 7, 5), (11, 8, 6), (12, 9, 7), (13, 10, 8)) t(d, oh, av)",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
        let n = rows.len();
        let schema = Arc::new(Schema::new(vec![
            Field::new("snapshot_date", DataType::Date32, true),
            Field::new("sku", DataType::Utf8View, true),
            Field::new("location_id", DataType::Utf8View, true),
            Field::new("bucket", DataType::Utf8, false),
            Field::new("system_qty", DataType::Int64, true),
            Field::new("delta", DataType::Int64, true),
            Field::new("explained_by", DataType::Utf8, true),
            Field::new("lag_days", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Date32Array::from(vec![13; n])),
                Arc::new(StringViewArray::from(vec!["S1"; n])),
                Arc::new(StringViewArray::from(vec!["L1"; n])),
                Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
                Arc::new(Int64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
                Arc::new(Int64Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
                Arc::new(StringArray::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())),
                Arc::new(Int64Array::from(vec![None; n])),
            ],
        )
        .unwrap();
        let day = |d| NaiveDate::default() + chrono::Days::new(d);
        let out = match_lags(&ctx, vec![batch], (day(13), day(13)), lag_days).await.unwrap();
        let explained = arrow::compute::cast(out[0].column(6), &DataType::Utf8).unwrap();
        let lags = out[0].column(7).as_primitive::<Int64Type>().clone();
        (0..n).map(|i| (explained.as_string::<i32>().is_valid(i).then(|| explained.as_string::<i32>().value(i).to_string()), lags.is_valid(i).then(|| lags.value(i)))).collect()
    }

    #[tokio::test]
    async fn the_nearest_earlier_day_in_the_bucket_compared_explains_a_delta() {
        let got = matched(
            &[
                ("on_hand", 8, -2, None),               // day 11's on_hand: 2 days back
                ("available", 7, -1, None),             // day 12's available
                ("on_hand", 7, -3, None),               // day 10's on_hand
                ("available", 8, 0, None),              // no delta: nothing to explain
                ("on_hand", 6, -4, None),               // no earlier day had 6 on hand
                ("on_hand", 9, -1, Some("in_transit")), // explained already: keeps it, the lag still shown
            ],
            3,
        )
        .await;
        assert_eq!(
            got,
            [
                (Some("lag".into()), Some(2)),
                (Some("lag".into()), Some(1)),
                (Some("lag".into()), Some(3)),
                (None, None),
                (None, None),
                (Some("in_transit".into()), Some(1)),
            ]
        );
    }

    #[tokio::test]
    async fn a_lag_looks_back_no_further_than_lag_days() {
        assert_eq!(matched(&[("on_hand", 7, -3, None), ("on_hand", 9, -1, None)], 2).await, [(None, None), (Some("lag".into()), Some(1))]);
        assert_eq!(matched(&[("on_hand", 9, -1, None)], 0).await, [(None, None)]);
    }

    #[test]
    fn the_history_keeps_each_sku_locations_days_apart() {
        // Two batches of positions, the SKU-locations' rows interleaved, one without a SKU.
        let batch = |locations: Vec<Option<&str>>, skus: Vec<Option<&str>>, days: Vec<i32>, on_hand: Vec<Option<i64>>| -> [ArrayRef; 5] {
            let n = days.len();
            [
                Arc::new(StringViewArray::from(locations)),
                Arc::new(StringViewArray::from(skus)),
                Arc::new(arrow::array::Int32Array::from(days)),
                Arc::new(Int64Array::from(on_hand)),
                Arc::new(Int64Array::from(vec![None; n])),
            ]
        };
        let priors = [
            batch(vec![Some("L1"), Some("L2"), Some("L1"), Some("L1")], vec![Some("S1"), Some("S1"), Some("S2"), None], vec![10, 10, 10, 10], vec![Some(5), Some(50), Some(500), Some(7)]),
            batch(vec![Some("L2"), Some("L1"), Some("L1")], vec![Some("S1"), Some("S2"), Some("S1")], vec![11, 11, 11], vec![Some(51), Some(501), Some(6)]),
        ];
        let history = History::new(&priors);
        assert_eq!(history.ids.len(), 3);
        assert_eq!((history.first_day, history.days), (10, 2));
        assert_eq!(history.reported.iter().filter(|&&r| r != 0).count(), 6, "the row without a SKU is left out");
        assert_eq!(history.lag("L1", "S1", 12, true, 5, 3), Some(2));
        assert_eq!(history.lag("L1", "S1", 12, true, 6, 3), Some(1));
        assert_eq!(history.lag("L2", "S1", 12, true, 50, 3), Some(2));
        assert_eq!(history.lag("L1", "S2", 12, true, 501, 3), Some(1));
        assert_eq!(history.lag("L1", "S2", 12, true, 50, 3), None, "another SKU-location's number");
        assert_eq!(history.lag("L1", "S1", 12, true, 7, 3), None, "the SKU-less row's number");
        assert_eq!(history.lag("L1", "S1", 12, false, 5, 3), None, "no available number");
        assert_eq!(history.lag("L1", "S1", 13, true, 5, 2), None, "beyond lag_days");
        assert_eq!(history.lag("L3", "S1", 12, true, 5, 3), None);
    }
}
