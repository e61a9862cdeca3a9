//! `purchase_recommendations`: per SKU and region, what to order against a position
//! stocktake trusts — and `hold` when it knows the number is doubtful.
//!
//!   trusted_position = Σ over the region's locations of authoritative on hand + in transit
//!                      + inbound − committed (as of the newest day)
//!   safety_stock     = z·√(L·σ_d² + d²·σ_L²)     (z from the class's service level)
//!   reorder_point    = d·L + safety_stock
//!   order_up_to      = reorder_point + d · review_period_days
//!   suggested_qty    = order_up_to − position when the position is at or below the reorder
//!                      point, rounded up to the case pack and at least the MOQ; else 0
//!   excess_units     = position above order_up_to: stock the region holds beyond need
//!
//! Held when the systems disagree beyond tolerance for the SKU in the region today, an
//! exception is open for it there, or a source feeding the region is stale.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;

use super::{as_of, classes, per_pair, service_level, window_stats, z_for};
use crate::config::Thresholds;
use crate::drift::Columns;
use crate::error::{Error, Result};
use crate::marts::reports;
use crate::stats;
use crate::warehouse::collect;

/// The numbers for one SKU in one region.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    pub safety_stock: f64,
    pub reorder_point: f64,
    pub order_up_to: f64,
    pub suggested_qty: i64,
    pub excess_units: i64,
}

#[allow(clippy::too_many_arguments)]
pub fn recommend(position: f64, d: f64, sd: f64, lead: f64, lead_sd: f64, z: f64, review_days: f64, case_pack: i64, moq: i64) -> Recommendation {
    let safety_stock = stats::safety_stock(z, d, sd, lead, lead_sd);
    let reorder_point = d * lead + safety_stock;
    let order_up_to = reorder_point + d * review_days;
    let suggested_qty = if position <= reorder_point && order_up_to > position {
        let need = (order_up_to - position).ceil() as i64;
        let pack = case_pack.max(1);
        ((need + pack - 1) / pack * pack).max(moq)
    } else {
        0
    };
    let excess_units = (position - order_up_to).floor().max(0.0) as i64;
    Recommendation { safety_stock, reorder_point, order_up_to, suggested_qty, excess_units }
}

const POSITIONS: &str = "
select p.sku, p.region,
       sum(coalesce(p.on_hand, 0) + p.in_transit + coalesce(p.inbound, 0) - coalesce(p.committed, 0)) as position,
       k.lead_time_days, k.lead_time_sd, k.case_pack, k.moq
from positions p
join skus k on k.sku = p.sku
where p.snapshot_date = $today
group by p.sku, p.region, k.lead_time_days, k.lead_time_sd, k.case_pack, k.moq
order by p.region, p.sku";

/// Daily sales per SKU and region over the demand window (`window_sales`), as the sum and the
/// sum of squares of the daily totals.
const SALES: &str = "
with daily as (
    select s.sku, l.region, cast(sum(s.units) as double) as units
    from window_sales s join locations l on l.location_id = s.location_id
    group by s.sku, l.region, s.sale_date
)
select sku, region, sum(units), sum(units * units) from daily group by sku, region";

const DISAGREEMENTS: &str = "
select sku, region, string_agg(distinct system, ', ') from variances
where snapshot_date = $today and flagged and explained_by is null
group by sku, region";

const OPEN_EXCEPTIONS: &str = "
select e.sku, l.region, count(*), max(e.days_open) from exceptions e
join locations l on l.location_id = e.location_id
where e.status = 'open' group by e.sku, l.region";

/// How long ago each authoritative source last reported (`$newest_reports`: `reports::NEWEST`).
const STALE: &str = "
select a.region, n.system, n.location_id, arrow_cast($today, 'Int32') - arrow_cast(n.newest_day, 'Int32')
from ($newest_reports) n
join stg_authority a on a.location_id = n.location_id and a.authoritative_system = n.system";

pub fn build<'a>(ctx: &'a SessionContext, t: &'a Thresholds) -> BoxFuture<'a, Result<Vec<RecordBatch>>> {
    Box::pin(async move {
        let Some(today) = as_of(ctx).await? else { return Ok(vec![Rows::default().finish()?]) };
        let classes = classes(ctx).await?;
        let first_day = today - t.demand_window_days + 1;

        let window = |sql: &str| super::bind_window(sql, today, first_day);
        // Side by side: each is a scan then an aggregate's single-threaded tail.
        let [sales_sql, disagreements_sql, stale_sql, positions_sql] = [SALES, DISAGREEMENTS, STALE, POSITIONS].map(window);
        let stale_sql = reports::bind_in(ctx, &stale_sql.replace("$newest_reports", reports::NEWEST))?;
        let sales = async {
            super::register_window_sales(ctx, today, first_day).await?;
            per_pair(ctx, "purchase_recommendations: sales", &sales_sql).await
        };
        let (sales, disagreements, exceptions, staleness, positions) = futures::try_join!(
            sales,
            collect(ctx, "purchase_recommendations: disagreements", &disagreements_sql),
            collect(ctx, "purchase_recommendations: exceptions", OPEN_EXCEPTIONS),
            collect(ctx, "purchase_recommendations: staleness", &stale_sql),
            collect(ctx, "purchase_recommendations: positions", &positions_sql),
        )?;
        let mut holds: HashMap<(String, String), Vec<String>> = HashMap::new();
        for b in disagreements {
            let c = Columns::new(&b);
            for ((sku, region), systems) in c.text(0)?.into_iter().zip(c.text(1)?).zip(c.text(2)?) {
                if let (Some(sku), Some(region)) = (sku, region) {
                    holds.entry((sku, region)).or_default().push(format!("systems disagree beyond tolerance ({})", systems.unwrap_or_default()));
                }
            }
        }
        for b in exceptions {
            let c = Columns::new(&b);
            let (skus, regions, n, days) = (c.text(0)?, c.text(1)?, c.int(2)?, c.int(3)?);
            for i in 0..b.num_rows() {
                if let (Some(sku), Some(region)) = (&skus[i], &regions[i]) {
                    let reason = format!("{} exception(s) open, oldest {} days", n[i].unwrap_or(0), days[i].unwrap_or(0));
                    holds.entry((sku.clone(), region.clone())).or_default().push(reason);
                }
            }
        }
        let mut stale: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for b in staleness {
            let c = Columns::new(&b);
            let (regions, systems, locations, age) = (c.text(0)?, c.text(1)?, c.text(2)?, c.int(3)?);
            for i in 0..b.num_rows() {
                if let (Some(region), Some(system), Some(location), Some(age)) = (&regions[i], &systems[i], &locations[i], age[i])
                    && age > t.stale_after_days {
                        stale.entry(region.clone()).or_default().insert(format!("{system} at {location} last reported {age} days ago"));
                    }
            }
        }

        let mut rows = Rows::default();
        for b in positions {
            let c = Columns::new(&b);
            let (skus, regions, positions) = (c.text(0)?, c.text(1)?, c.float(2)?);
            let (lead, lead_sd, pack, moq) = (c.float(3)?, c.float(4)?, c.int(5)?, c.int(6)?);
            for i in 0..b.num_rows() {
                let (Some(sku), Some(region)) = (&skus[i], &regions[i]) else { continue };
                let key = (sku.clone(), region.clone());
                let class = classes.get(sku).map(String::as_str).unwrap_or("C");
                let sums = sales.get(&key).map(|s| (s[0].unwrap_or(0.0), s[1].unwrap_or(0.0)));
                let (d, sd) = sums.map(|(sum, squares)| window_stats(sum, squares, t.demand_window_days)).unwrap_or((0.0, 0.0));
                let position = positions[i].unwrap_or(0.0);
                let (l, l_sd) = (lead[i].unwrap_or(0.0), lead_sd[i].unwrap_or(0.0));
                let r = recommend(position, d, sd, l, l_sd, z_for(class, t), t.review_period_days as f64, pack[i].unwrap_or(1), moq[i].unwrap_or(0));
                let mut reasons = holds.get(&key).cloned().unwrap_or_default();
                reasons.extend(stale.get(region).into_iter().flatten().map(|s| format!("stale source: {s}")));
                rows.push(sku, region, class, position, d, sd, l, l_sd, service_level(class, t), &r, &reasons);
            }
        }
        Ok(vec![rows.finish()?])
    })
}

#[derive(Default)]
struct Rows {
    text: [Vec<String>; 3],
    numbers: [Vec<f64>; 9],
    ints: [Vec<i64>; 2],
    confidence: Vec<&'static str>,
    hold_reason: Vec<Option<String>>,
}

impl Rows {
    #[allow(clippy::too_many_arguments)]
    fn push(&mut self, sku: &str, region: &str, class: &str, position: f64, d: f64, sd: f64, l: f64, l_sd: f64, level: f64, r: &Recommendation, reasons: &[String]) {
        for (v, x) in self.text.iter_mut().zip([sku, region, class]) {
            v.push(x.to_string());
        }
        for (v, x) in self.numbers.iter_mut().zip([position, d, sd, l, l_sd, level, r.safety_stock, r.reorder_point, r.order_up_to]) {
            v.push(x);
        }
        self.ints[0].push(r.suggested_qty);
        self.ints[1].push(r.excess_units);
        self.confidence.push(if reasons.is_empty() { "ok" } else { "hold" });
        self.hold_reason.push((!reasons.is_empty()).then(|| reasons.join("; ")));
    }

    fn finish(self) -> Result<RecordBatch> {
        let mut fields: Vec<Field> = ["sku", "region", "abc_class"].iter().map(|n| Field::new(*n, DataType::Utf8, false)).collect();
        let numbers = ["trusted_position", "daily_demand", "demand_sd", "lead_time_days", "lead_time_sd", "service_level", "safety_stock", "reorder_point", "order_up_to"];
        fields.extend(numbers.iter().map(|n| Field::new(*n, DataType::Float64, false)));
        fields.extend(["suggested_qty", "excess_units"].iter().map(|n| Field::new(*n, DataType::Int64, false)));
        fields.push(Field::new("confidence", DataType::Utf8, false));
        fields.push(Field::new("hold_reason", DataType::Utf8, true));
        let mut columns: Vec<ArrayRef> = self.text.into_iter().map(|v| Arc::new(StringArray::from(v)) as ArrayRef).collect();
        columns.extend(self.numbers.into_iter().map(|v| Arc::new(Float64Array::from(v)) as ArrayRef));
        columns.extend(self.ints.into_iter().map(|v| Arc::new(Int64Array::from(v)) as ArrayRef));
        columns.push(Arc::new(StringArray::from(self.confidence)));
        columns.push(Arc::new(StringArray::from(self.hold_reason)));
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| Error::arrow("building purchase_recommendations", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_up_to_the_level_in_whole_cases_and_at_least_the_moq() {
        // d 10, σ_d 3, L 9, σ_L 2, z 2: SS = 2√481 ≈ 43.86, ROP ≈ 133.86, OUT (7 days) ≈ 203.86.
        let r = recommend(100.0, 10.0, 3.0, 9.0, 2.0, 2.0, 7.0, 12, 24);
        assert!((r.safety_stock - 2.0 * 481f64.sqrt()).abs() < 1e-9);
        assert!((r.reorder_point - (90.0 + 2.0 * 481f64.sqrt())).abs() < 1e-9);
        assert_eq!(r.suggested_qty, 108, "104 needed, rounded up to 9 cases of 12");
        assert_eq!(r.excess_units, 0);
        let small = recommend(200.0, 10.0, 3.0, 9.0, 0.0, 2.0, 7.0, 1, 50);
        assert_eq!(small.suggested_qty, 0, "above the reorder point: no order");
        let moq = recommend(100.0, 10.0, 3.0, 9.0, 0.0, 2.0, 7.0, 1, 500);
        assert_eq!(moq.suggested_qty, 500);
        let over = recommend(900.0, 10.0, 3.0, 9.0, 2.0, 2.0, 7.0, 12, 24);
        assert_eq!((over.suggested_qty, over.excess_units), (0, 696));
    }
}
