//! `cycle_count_plan`: when each SKU-location is next counted, and why. Classes set the
//! rhythm (A 12, B 4, C 1 a year by default); a SKU-location with an active drift pattern, or
//! an exception open longer than `bring_forward_after_days`, is brought forward to today.
//! Counts are spread over working days (Monday to Friday) within each location's daily
//! capacity; brought-forward and A items go first.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Date32Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use chrono::Datelike;
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;

use crate::config::Thresholds;
use crate::drift::{Columns, date_from_days};
use crate::error::{Error, Result};
use crate::warehouse::collect;

/// The positions of `$today` (a literal, so the scan reads that day's partition only).
const INPUTS: &str = "
with last_counts as (
    select location_id, sku, max(count_date) as last_counted from counts group by location_id, sku
),
drift as (
    select sku, location_id, min(pattern || ' on ' || system) as why from drift_patterns group by sku, location_id
),
aged as (
    select sku, location_id, max(days_open) as days_open, min(system) as system
    from exceptions where status = 'open' group by sku, location_id
)
select p.location_id, p.sku, coalesce(k.abc_class, 'C'), p.location_type,
       arrow_cast(lc.last_counted, 'Int32'), d.why, e.days_open, e.system
from positions p
left join sku_classes k on k.sku = p.sku
left join last_counts lc on lc.location_id = p.location_id and lc.sku = p.sku
left join drift d on d.sku = p.sku and d.location_id = p.location_id
left join aged e on e.sku = p.sku and e.location_id = p.location_id
where p.snapshot_date = $today and p.on_hand is not null
order by p.location_id, p.sku";

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub location: String,
    pub sku: String,
    pub class: String,
    pub counts_per_year: i64,
    pub last_counted: Option<i64>,
    /// Why the count is brought forward, if it is.
    pub forward: Option<String>,
    pub due: i64,
    pub reason: String,
}

pub fn counts_per_year(class: &str, t: &Thresholds) -> i64 {
    match class {
        "A" => t.counts_per_year_a,
        "B" => t.counts_per_year_b,
        _ => t.counts_per_year_c,
    }
    .max(1)
}

fn is_working_day(day: i64) -> bool {
    date_from_days(day).weekday().num_days_from_monday() < 5
}

/// Places every item on the first working day, on or after it is due and not before
/// `as_of`, on which its location has capacity left. Returns (item, scheduled day).
pub fn schedule(mut items: Vec<Item>, as_of: i64, capacity: i64) -> Vec<(Item, i64)> {
    items.sort_by(|a, b| {
        (a.location.as_str(), a.due.max(as_of), a.forward.is_none(), a.class.as_str(), a.sku.as_str())
            .cmp(&(b.location.as_str(), b.due.max(as_of), b.forward.is_none(), b.class.as_str(), b.sku.as_str()))
    });
    let mut used: HashMap<(String, i64), i64> = HashMap::new();
    items
        .into_iter()
        .map(|item| {
            let mut day = item.due.max(as_of);
            loop {
                let slot = used.entry((item.location.clone(), day)).or_default();
                if is_working_day(day) && *slot < capacity {
                    *slot += 1;
                    break;
                }
                day += 1;
            }
            (item, day)
        })
        .collect()
}

/// Items with their due day and reason, before scheduling.
pub async fn items(ctx: &SessionContext, t: &Thresholds) -> Result<(Vec<Item>, i64)> {
    let countable: Vec<&str> = t.count_location_types.split(',').map(str::trim).collect();
    let mut out = vec![];
    let Some(day) = super::as_of(ctx).await? else { return Ok((out, 0)) };
    for b in collect(ctx, "mart cycle_count_plan", &super::bind_window(INPUTS, day, day)).await? {
        let c = Columns::new(&b);
        let (locations, skus, classes, types) = (c.text(0)?, c.text(1)?, c.text(2)?, c.text(3)?);
        let (last, drift, open_days, open_system) = (c.int(4)?, c.text(5)?, c.int(6)?, c.text(7)?);
        for i in 0..b.num_rows() {
            let (Some(location), Some(sku), Some(location_type)) = (&locations[i], &skus[i], &types[i]) else { continue };
            if !countable.contains(&location_type.as_str()) {
                continue;
            }
            let class = classes[i].clone().unwrap_or_else(|| "C".into());
            let per_year = counts_per_year(&class, t);
            let interval = 365 / per_year;
            let forward = match (&drift[i], open_days[i]) {
                (Some(why), _) => Some(format!("brought forward: {why}")),
                (None, Some(days)) if days > t.bring_forward_after_days => {
                    Some(format!("brought forward: exception open {days} days on {}", open_system[i].as_deref().unwrap_or("?")))
                }
                _ => None,
            };
            // Never counted: spread over the first interval so day one is not a wall of counts.
            let spread = sku.bytes().chain(location.bytes()).fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))) as i64 % interval;
            let due = match (&forward, last[i]) {
                (Some(_), _) => day,
                (None, Some(last)) => last + interval,
                (None, None) => day + spread,
            };
            let rhythm = format!(
                "{class}: {per_year} counts a year; {}",
                last[i].map(|d| format!("last counted {}", date_from_days(d))).unwrap_or_else(|| "never counted".into())
            );
            let reason = match &forward {
                Some(f) => format!("{f} ({rhythm})"),
                None => rhythm,
            };
            out.push(Item { location: location.clone(), sku: sku.clone(), class, counts_per_year: per_year, last_counted: last[i], forward, due, reason });
        }
    }
    Ok((out, day))
}

pub fn build<'a>(ctx: &'a SessionContext, t: &'a Thresholds) -> BoxFuture<'a, Result<Vec<RecordBatch>>> {
    Box::pin(async move {
        let (items, as_of) = items(ctx, t).await?;
        let planned = schedule(items, as_of, t.count_capacity_per_day);
        let schema = Arc::new(Schema::new(vec![
            Field::new("location_id", DataType::Utf8, false),
            Field::new("sku", DataType::Utf8, false),
            Field::new("abc_class", DataType::Utf8, false),
            Field::new("counts_per_year", DataType::Int64, false),
            Field::new("reason", DataType::Utf8, false),
            Field::new("last_counted", DataType::Date32, true),
            Field::new("next_due", DataType::Date32, false),
            Field::new("brought_forward", DataType::Boolean, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(planned.iter().map(|(i, _)| i.location.as_str()))),
            Arc::new(StringArray::from_iter_values(planned.iter().map(|(i, _)| i.sku.as_str()))),
            Arc::new(StringArray::from_iter_values(planned.iter().map(|(i, _)| i.class.as_str()))),
            Arc::new(Int64Array::from_iter_values(planned.iter().map(|(i, _)| i.counts_per_year))),
            Arc::new(StringArray::from_iter_values(planned.iter().map(|(i, _)| i.reason.as_str()))),
            Arc::new(planned.iter().map(|(i, _)| i.last_counted.map(|d| d as i32)).collect::<Date32Array>()),
            Arc::new(Date32Array::from_iter_values(planned.iter().map(|(_, d)| *d as i32))),
            Arc::new(BooleanArray::from(planned.iter().map(|(i, _)| i.forward.is_some()).collect::<Vec<_>>())),
        ];
        Ok(vec![RecordBatch::try_new(schema, columns).map_err(|e| Error::arrow("building cycle_count_plan", e))?])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(sku: &str, class: &str, due: i64, forward: bool) -> Item {
        Item {
            location: "S1".into(),
            sku: sku.into(),
            class: class.into(),
            counts_per_year: 12,
            last_counted: None,
            forward: forward.then(|| "brought forward".into()),
            due,
            reason: String::new(),
        }
    }

    #[test]
    fn capacity_and_working_days_are_respected() {
        // Day 20_637 is Friday 2026-07-03.
        let friday = 20_637;
        assert!(is_working_day(friday) && !is_working_day(friday + 1));
        let items = vec![item("C1", "C", friday, false), item("A1", "A", friday, false), item("X", "C", friday + 5, true), item("A2", "A", friday, false)];
        let planned = schedule(items, friday, 2);
        let days: Vec<(&str, i64)> = planned.iter().map(|(i, d)| (i.sku.as_str(), d - friday)).collect();
        // Two fit on Friday (A first), the third waits for Monday; the brought-forward item was
        // due later and keeps its place.
        assert_eq!(days, [("A1", 0), ("A2", 0), ("C1", 3), ("X", 5)]);
    }
}
