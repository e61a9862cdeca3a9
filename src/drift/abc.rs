//! `sku_classes`: ABC classes by trailing-365-day usage value (units sold × unit cost).
//! SKUs are ranked by usage value; a SKU is A while the cumulative share of the SKUs ranked
//! above it is below `abc_a_share` (so the SKU that crosses 80 % is still A), B while it is
//! below `abc_b_share`, C after that. SKUs that sold nothing are C.
//!
//! Classes are reviewed weekly: a build that only adds days keeps the classes made earlier in
//! the same week (Monday to Sunday of the newest day, `classified_on`); a new week, a change
//! to older days or `stocktake build --full` classifies again.

use std::sync::Arc;

use arrow::array::{Date32Array, Float64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;

use super::Columns;
use crate::config::Thresholds;
use crate::error::{Error, Result};
use crate::warehouse::collect;

#[derive(Debug, Clone, PartialEq)]
pub struct SkuClass {
    pub sku: String,
    pub annual_usage_value: f64,
    pub cumulative_share: f64,
    pub abc_class: &'static str,
}

/// Classifies (sku, usage value) pairs.
pub fn classify(usage: &[(String, f64)], a_share: f64, b_share: f64) -> Vec<SkuClass> {
    let mut ranked: Vec<&(String, f64)> = usage.iter().collect();
    ranked.sort_by(|x, y| y.1.total_cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    // Summed in rank order: the same total whatever order the query returned the rows in.
    let total: f64 = ranked.iter().map(|(_, v)| v.max(0.0)).sum();
    let mut before = 0.0;
    ranked
        .into_iter()
        .map(|(sku, value)| {
            let share_before = if total > 0.0 { before / total } else { 1.0 };
            before += value.max(0.0);
            let abc_class = if *value <= 0.0 {
                "C"
            } else if share_before < a_share {
                "A"
            } else if share_before < b_share {
                "B"
            } else {
                "C"
            };
            SkuClass {
                sku: sku.clone(),
                annual_usage_value: *value,
                cumulative_share: if total > 0.0 { before / total } else { 0.0 },
                abc_class,
            }
        })
        .collect()
}

/// Usage over the 365 days up to the newest sale, annualised when history is shorter.
const USAGE_SQL: &str = "
with bounds as (
    select arrow_cast(max(event_at), 'Date32') as last_day, arrow_cast(min(event_at), 'Date32') as first_day,
           date_trunc('day', max(event_at)) - interval '364 days' as window_start
    from stg_sales
),
-- From an instant (midnight UTC 364 days before the newest sale's day): a timestamp
-- comparison per sale, not a date cast of every sale.
window_sales as (
    select s.sku, sum(s.units) as units
    from stg_sales s cross join bounds b
    where s.event_at >= b.window_start
    group by s.sku
),
days as (
    select least(365, arrow_cast(last_day, 'Int32') - arrow_cast(first_day, 'Int32') + 1) as observed from bounds
)
select k.sku, coalesce(w.units, 0) * k.unit_cost * 365.0 / greatest(coalesce(d.observed, 365), 1) as usage_value
from skus k
left join window_sales w on w.sku = k.sku
cross join days d
where not k.is_bundle";

/// The classes made earlier in the week of `today`, if there are any.
async fn this_weeks_classes(ctx: &SessionContext, today: i64) -> Result<Option<Vec<RecordBatch>>> {
    let has_date = match ctx.table("sku_classes").await {
        Ok(table) => table.schema().has_column_with_unqualified_name("classified_on"),
        Err(_) => false,
    };
    if !has_date {
        return Ok(None);
    }
    let sql = "select max(arrow_cast(classified_on, 'Int32')) from sku_classes";
    let classified = collect(ctx, "sku_classes: classified on", sql).await?.first().map(|b| Columns::new(b).int(0)).transpose()?;
    let Some(Some(day)) = classified.and_then(|v| v.first().copied()) else { return Ok(None) };
    let week = |d: i64| crate::marts::monday(super::date_from_days(d));
    if day > today || week(day) != week(today) {
        return Ok(None);
    }
    Ok(Some(collect(ctx, "sku_classes: kept", "select * from sku_classes").await?))
}

pub fn build<'a>(ctx: &'a SessionContext, t: &'a Thresholds, only_added_from: Option<i64>) -> BoxFuture<'a, Result<Vec<RecordBatch>>> {
    Box::pin(async move {
        let today = crate::planning::as_of(ctx).await?.unwrap_or(0);
        if only_added_from.is_some()
            && let Some(kept) = this_weeks_classes(ctx, today).await?
        {
            return Ok(kept);
        }
        let mut usage = vec![];
        for batch in collect(ctx, "mart sku_classes", USAGE_SQL).await? {
            let c = Columns::new(&batch);
            for (sku, value) in c.text(0)?.into_iter().zip(c.float(1)?) {
                if let Some(sku) = sku {
                    usage.push((sku, value.unwrap_or(0.0)));
                }
            }
        }
        let classes = classify(&usage, t.abc_a_share, t.abc_b_share);
        let schema = Arc::new(Schema::new(vec![
            Field::new("sku", DataType::Utf8, false),
            Field::new("annual_usage_value", DataType::Float64, false),
            Field::new("cumulative_share", DataType::Float64, false),
            Field::new("abc_class", DataType::Utf8, false),
            Field::new("classified_on", DataType::Date32, false),
        ]));
        let batch = RecordBatch::try_new(schema, vec![
            Arc::new(StringArray::from_iter_values(classes.iter().map(|c| c.sku.as_str()))),
            Arc::new(Float64Array::from_iter_values(classes.iter().map(|c| c.annual_usage_value))),
            Arc::new(Float64Array::from_iter_values(classes.iter().map(|c| c.cumulative_share))),
            Arc::new(StringArray::from_iter_values(classes.iter().map(|c| c.abc_class))),
            Arc::new(Date32Array::from_value(today as i32, classes.len())),
        ])
        .map_err(|e| Error::arrow("building sku_classes", e))?;
        Ok(vec![batch])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
        pairs.iter().map(|(s, v)| (s.to_string(), *v)).collect()
    }

    #[test]
    fn hand_computed_classes() {
        // Total 1000: X 600 (before 0 → A), Y 250 (before .60 → A, crosses .80),
        // Z 100 (before .85 → B), W 40 (before .95 → C), V 10 (before .99 → C), U 0 → C.
        let c = classify(&usage(&[("V", 10.0), ("X", 600.0), ("W", 40.0), ("Y", 250.0), ("U", 0.0), ("Z", 100.0)]), 0.8, 0.95);
        let got: Vec<(&str, &str)> = c.iter().map(|c| (c.sku.as_str(), c.abc_class)).collect();
        assert_eq!(got, [("X", "A"), ("Y", "A"), ("Z", "B"), ("W", "C"), ("V", "C"), ("U", "C")]);
        assert!((c[2].cumulative_share - 0.95).abs() < 1e-12);
    }

    #[test]
    fn ties_rank_by_sku_and_nothing_sold_is_c() {
        let c = classify(&usage(&[("B", 5.0), ("A", 5.0)]), 0.5, 0.9);
        assert_eq!((c[0].sku.as_str(), c[0].abc_class, c[1].abc_class), ("A", "A", "B"));
        let none = classify(&usage(&[("A", 0.0)]), 0.8, 0.95);
        assert_eq!(none[0].abc_class, "C");
    }
}
