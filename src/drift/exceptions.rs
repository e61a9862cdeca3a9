//! `exceptions`: a SKU-location-system beyond tolerance (flagged, and not explained as in
//! transit, receiving or lag) opens an exception; it closes on the first observed day back
//! within tolerance, or when a physical count of that SKU-location settles the number.
//!
//!   opened_on       first day beyond tolerance
//!   closed_on       first day back within tolerance, or the count date; NULL while open
//!   days_open       closed_on − opened_on, or (newest day − opened_on) while open
//!   peak_abs_delta  largest |delta| while open
//!   status          open | closed | resolved_by_count
//!   last_beyond_on  the last day seen beyond tolerance
//!   back_within_on  the first day seen back within tolerance (NULL while it has not been)
//!
//! A count settles an exception it falls in, or one still beyond tolerance (a count taken
//! after the newest snapshot settles it too).
//!
//! Made by walking the variances a range of days at a time, in day order, keeping only the
//! running exception of each series: memory is the open exceptions plus one range of days,
//! whatever the history. After a build that only added days, the walk starts from the new
//! days with the exceptions still running; otherwise it replays every day.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Int32Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;

use super::{Columns, SeriesKeys};
use crate::config::Thresholds;
use crate::error::{Error, Result};
use crate::warehouse::collect;

/// Days of variances read at a time.
const DAYS_PER_PASS: i64 = 14;

/// The walks of every series that has left tolerance, by series id.
type Walks = HashMap<u32, Walk>;

/// One run of days beyond tolerance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Island {
    pub opened: i64,
    pub last_beyond: i64,
    pub peak: i64,
    pub back: Option<i64>,
}

/// One series walked in day order: `observe` each day, then `running` is the open island.
#[derive(Debug, Default)]
pub struct Walk {
    pub running: Option<Island>,
    pub closed: Vec<Island>,
}

impl Walk {
    pub fn observe(&mut self, day: i64, delta: i64, beyond: bool) {
        match (&mut self.running, beyond) {
            (Some(open), true) => {
                open.last_beyond = day;
                open.peak = open.peak.max(delta.abs());
            }
            (None, true) => self.running = Some(Island { opened: day, last_beyond: day, peak: delta.abs(), back: None }),
            (Some(_), false) => {
                let mut island = self.running.take().expect("matched Some");
                island.back = Some(day);
                self.closed.push(island);
            }
            (None, false) => {}
        }
    }
}

/// The count that settles an island: the first on or after it opened that falls within it,
/// or any later one while it has not come back within tolerance.
pub fn settling_count(island: &Island, counts: &[i64]) -> Option<i64> {
    counts.iter().copied().filter(|&c| c >= island.opened && (c <= island.last_beyond || island.back.is_none())).min()
}

pub fn build<'a>(ctx: &'a SessionContext, _t: &'a Thresholds, append_from: Option<i64>) -> BoxFuture<'a, Result<Vec<RecordBatch>>> {
    Box::pin(async move {
        let (mut keys, mut islands) = (SeriesKeys::default(), Walks::new());
        let Some((first_day, last_day)) = day_range(ctx).await? else { return finish(keys, islands, &HashMap::new(), 0) };
        let mut start = first_day;
        if let Some(from) = append_from.filter(|_| ctx.table_exist("exceptions").unwrap_or(false)) {
            // Exceptions written by an older stocktake lack the columns to go on from: replay.
            match carry_over(ctx, &mut keys, &mut islands).await {
                Ok(()) => start = from,
                Err(_) => islands.clear(),
            }
        }
        while start <= last_day {
            let end = (start + DAYS_PER_PASS - 1).min(last_day);
            walk_days(ctx, start, end, &mut keys, &mut islands).await?;
            start = end + 1;
        }
        finish(keys, islands, &load_counts(ctx).await?, last_day)
    })
}

async fn day_range(ctx: &SessionContext) -> Result<Option<(i64, i64)>> {
    let sql = "select min(arrow_cast(snapshot_date, 'Int32')), max(arrow_cast(snapshot_date, 'Int32')) from coverage";
    let batches = collect(ctx, "exceptions: days", sql).await?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else { return Ok(None) };
    let c = Columns::new(batch);
    Ok(c.int(0)?[0].zip(c.int(1)?[0]))
}

/// The exceptions built before: settled ones are kept as they are, running ones go on.
async fn carry_over(ctx: &SessionContext, keys: &mut SeriesKeys, islands: &mut Walks) -> Result<()> {
    let sql = "select sku, location_id, system, arrow_cast(opened_on, 'Int32'), arrow_cast(last_beyond_on, 'Int32'),
                      peak_abs_delta, arrow_cast(back_within_on, 'Int32')
               from exceptions";
    for batch in collect(ctx, "exceptions: carried over", sql).await? {
        let c = Columns::new(&batch);
        let (skus, locations, systems) = (c.text_array(0)?, c.text_array(1)?, c.text_array(2)?);
        let (opened, last_beyond, peak, back) = (c.int(3)?, c.int(4)?, c.int(5)?, c.int(6)?);
        for (i, id) in keys.ids(&skus, &locations, &systems, batch.num_rows()).into_iter().enumerate() {
            let (Some(id), Some(opened), Some(last_beyond)) = (id, opened[i], last_beyond[i]) else {
                continue;
            };
            let island = Island { opened, last_beyond, peak: peak[i].unwrap_or(0), back: back[i] };
            let walk = islands.entry(id).or_default();
            match island.back {
                Some(_) => walk.closed.push(island),
                None => walk.running = Some(island),
            }
        }
    }
    Ok(())
}

/// Walks the variances of days `first..=last`, each series in day order.
///
/// Only the series that are beyond tolerance in these days or still running from earlier
/// days are read: a day within tolerance changes nothing for any other series, and most
/// series never leave tolerance, so this keeps the rows handed to Rust to a few per cent.
async fn walk_days(ctx: &SessionContext, first: i64, last: i64, keys: &mut SeriesKeys, islands: &mut Walks) -> Result<()> {
    let date = |d: i64| format!("DATE '{}'", super::date_from_days(d));
    ctx.deregister_table(RUNNING).map_err(|e| Error::query("exceptions: running", e))?;
    ctx.register_batch(RUNNING, running_series(keys, islands)?).map_err(|e| Error::query("exceptions: running", e))?;
    let sql = format!(
        "with days as (
             select sku, location_id, system, arrow_cast(snapshot_date, 'Int32') as day, delta,
                    flagged and explained_by is null as beyond
             from variances where snapshot_date >= {} and snapshot_date <= {}
         ),
         walked as (
             select distinct sku, location_id, system from days where beyond
             union
             select sku, location_id, system from {RUNNING}
         )
         select d.sku, d.location_id, d.system, d.day, d.delta, d.beyond
         from days d
         join walked w on w.sku = d.sku and w.location_id = d.location_id and w.system = d.system",
        date(first),
        date(last)
    );
    // Observed (day, delta, beyond) per series id; ids only grow, so this stays indexable.
    let mut days: Vec<Vec<(i64, i64, bool)>> = vec![];
    for batch in collect(ctx, "exceptions: variances", &sql).await? {
        let c = Columns::new(&batch);
        let (skus, locations, systems) = (c.text_array(0)?, c.text_array(1)?, c.text_array(2)?);
        let (day, delta, beyond) = (c.int(3)?, c.int(4)?, c.boolean(5)?);
        for (i, id) in keys.ids(&skus, &locations, &systems, batch.num_rows()).into_iter().enumerate() {
            let (Some(id), Some(day)) = (id, day[i]) else { continue };
            if days.len() < keys.len() {
                days.resize_with(keys.len(), Vec::new);
            }
            days[id as usize].push((day, delta[i].unwrap_or(0), beyond[i].unwrap_or(false)));
        }
    }
    for (id, mut observed) in days.into_iter().enumerate() {
        let id = id as u32;
        observed.sort_unstable_by_key(|o| o.0);
        let beyond_anywhere = observed.iter().any(|o| o.2);
        let walk = match islands.get_mut(&id) {
            Some(walk) => walk,
            // Series that never leave tolerance cost nothing to remember.
            None if !beyond_anywhere => continue,
            None => islands.entry(id).or_default(),
        };
        for (day, delta, beyond) in observed {
            walk.observe(day, delta, beyond);
        }
    }
    Ok(())
}

/// The table of series still beyond tolerance (`walk_days` reads their every day).
const RUNNING: &str = "exceptions_running";

fn running_series(keys: &SeriesKeys, islands: &Walks) -> Result<RecordBatch> {
    let (mut sku, mut location, mut system) = (vec![], vec![], vec![]);
    for (id, _) in islands.iter().filter(|(_, walk)| walk.running.is_some()) {
        let (s, l, y) = keys.key(*id);
        sku.push(s);
        location.push(l);
        system.push(y);
    }
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    let schema = Arc::new(Schema::new(vec![text("sku"), text("location_id"), text("system")]));
    RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(sku)) as ArrayRef, Arc::new(StringArray::from(location)), Arc::new(StringArray::from(system))]).map_err(|e| Error::arrow("listing running exceptions", e))
}

async fn load_counts(ctx: &SessionContext) -> Result<HashMap<(String, String), Vec<i64>>> {
    let mut counts: HashMap<(String, String), Vec<i64>> = HashMap::new();
    let sql = "select distinct sku, location_id, arrow_cast(count_date, 'Int32') from counts";
    for batch in collect(ctx, "exceptions: counts", sql).await? {
        let c = Columns::new(&batch);
        let (skus, locations, days) = (c.text(0)?, c.text(1)?, c.int(2)?);
        for ((sku, location), day) in skus.into_iter().zip(locations).zip(days) {
            if let (Some(sku), Some(location), Some(day)) = (sku, location, day) {
                counts.entry((sku, location)).or_default().push(day);
            }
        }
    }
    Ok(counts)
}

fn finish(keys: SeriesKeys, islands: Walks, counts: &HashMap<(String, String), Vec<i64>>, last_day: i64) -> Result<Vec<RecordBatch>> {
    let (mut sku, mut location, mut system, mut status) = (vec![], vec![], vec![], vec![]);
    let (mut opened, mut closed, mut days_open, mut peak, mut last_beyond, mut back) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    // In key order, as readers expect them.
    let islands: BTreeMap<(&str, &str, &str), Walk> = islands.into_iter().map(|(id, walk)| (keys.key(id), walk)).collect();
    for ((s, l, y), walk) in islands {
        let mut all: Vec<Island> = walk.closed;
        all.extend(walk.running);
        all.sort_by_key(|i| i.opened);
        let counted = counts.get(&(s.to_string(), l.to_string())).map(Vec::as_slice).unwrap_or_default();
        for island in all {
            let count = settling_count(&island, counted);
            let closed_day = count.or(island.back);
            sku.push(s);
            location.push(l);
            system.push(y);
            opened.push(island.opened as i32);
            closed.push(closed_day.map(|d| d as i32));
            days_open.push((closed_day.unwrap_or(last_day) - island.opened) as i32);
            peak.push(island.peak);
            last_beyond.push(island.last_beyond as i32);
            back.push(island.back.map(|d| d as i32));
            status.push(match (count, island.back) {
                (Some(_), _) => "resolved_by_count",
                (None, Some(_)) => "closed",
                (None, None) => "open",
            });
        }
    }
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    let schema = Arc::new(Schema::new(vec![
        text("sku"),
        text("location_id"),
        text("system"),
        Field::new("opened_on", DataType::Date32, false),
        Field::new("closed_on", DataType::Date32, true),
        Field::new("days_open", DataType::Int32, false),
        Field::new("peak_abs_delta", DataType::Int64, false),
        text("status"),
        Field::new("last_beyond_on", DataType::Date32, false),
        Field::new("back_within_on", DataType::Date32, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(sku)),
        Arc::new(StringArray::from(location)),
        Arc::new(StringArray::from(system)),
        Arc::new(Date32Array::from(opened)),
        Arc::new(Date32Array::from(closed)),
        Arc::new(Int32Array::from(days_open)),
        Arc::new(Int64Array::from(peak)),
        Arc::new(StringArray::from(status)),
        Arc::new(Date32Array::from(last_beyond)),
        Arc::new(Date32Array::from(back)),
    ];
    Ok(vec![RecordBatch::try_new(schema, columns).map_err(|e| Error::arrow("building exceptions", e))?])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(days: &[(i64, i64, bool)]) -> Walk {
        let mut w = Walk::default();
        for &(d, delta, beyond) in days {
            w.observe(d, delta, beyond);
        }
        w
    }

    #[test]
    fn runs_beyond_tolerance_open_and_close_exceptions() {
        let w = walk(&[(1, 0, false), (2, 5, true), (3, -9, true), (4, 1, false), (5, 3, true)]);
        assert_eq!(w.closed, [Island { opened: 2, last_beyond: 3, peak: 9, back: Some(4) }]);
        assert_eq!(w.running, Some(Island { opened: 5, last_beyond: 5, peak: 3, back: None }));
    }

    #[test]
    fn a_walk_split_in_two_ends_as_one() {
        let days = [(1, 4, true), (2, 6, true), (3, 0, false), (4, 7, true), (5, 8, true)];
        let whole = walk(&days);
        let mut split = walk(&days[..2]);
        for &(d, delta, beyond) in &days[2..] {
            split.observe(d, delta, beyond);
        }
        assert_eq!((whole.closed, whole.running), (split.closed, split.running));
    }

    #[test]
    fn counts_settle_within_an_exception_or_after_an_open_one() {
        let closed = Island { opened: 10, last_beyond: 12, peak: 3, back: Some(14) };
        assert_eq!(settling_count(&closed, &[9, 13, 11]), Some(11));
        assert_eq!(settling_count(&closed, &[13, 20]), None, "between the last day beyond and the return it settles nothing");
        let open = Island { back: None, ..closed };
        assert_eq!(settling_count(&open, &[20, 13]), Some(13));
    }
}
