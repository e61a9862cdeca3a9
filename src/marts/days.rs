//! The days and weeks a build recomputes, and how day models are bound to them.

use chrono::NaiveDate;
use datafusion::prelude::SessionContext;

use super::{MARTS, Recipe, strip_comments};
use crate::changes;
use crate::error::{Error, Result};
use crate::warehouse::{Warehouse, collect, integers, strings};

/// Weeks of a weekly SQL model computed at a time (bounds its memory: kpi_weekly sums its
/// inputs per week and segment as it reads them, so a pass holds little more than its plan;
/// at tier M an 8-week pass peaks at ~210 MB, and 26 passes of two weeks took 28 s, 7 of eight 19 s).
pub(super) const WEEKS_PER_PASS: u64 = 8;

/// The Monday of a day's week (weeks run Monday to Sunday in every weekly mart).
pub(crate) fn monday(day: NaiveDate) -> NaiveDate {
    day.week(chrono::Weekday::Mon).first_day()
}

/// Stands for "every week" in weekly models.
pub(super) const EARLIEST: NaiveDate = NaiveDate::from_ymd_opt(1900, 1, 1).expect("a valid date");

/// Rows of snapshots per chunk of days: bounds the memory of a day-mart query.
pub(super) const CHUNK_SNAPSHOT_ROWS: usize = 3_000_000;

/// Whether every day mart exists, partitioned by day (warehouses built before day marts
/// were partitioned need one full build).
pub(super) async fn day_marts_current(warehouse: &Warehouse) -> Result<bool> {
    for mart in MARTS.iter().filter(|m| matches!(m.recipe, Recipe::Daily { .. })) {
        let Some(table) = warehouse.load(mart.name).await? else { return Ok(false) };
        let snapshot = table.snapshot().map_err(|e| Error::delta(mart.name, e))?;
        if snapshot.metadata().partition_columns() != ["snapshot_date".to_string()] {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The newest day the last build covered (`coverage` as it stands before this build).
pub(super) async fn newest_built_day(ctx: &SessionContext) -> Result<Option<NaiveDate>> {
    if !ctx.table_exist("coverage").map_err(|e| Error::query("coverage", e))? {
        return Ok(None);
    }
    let batches = collect(ctx, "reading coverage", "select cast(max(snapshot_date) as varchar) from coverage").await?;
    Ok(batches.iter().find(|b| b.num_rows() > 0).map(|b| strings(b, 0)).transpose()?.and_then(|v| v.into_iter().flatten().next()).and_then(|d| d.parse().ok()))
}

/// Days per chunk: about `CHUNK_SNAPSHOT_ROWS` snapshot rows.
pub(super) async fn chunk_len(ctx: &SessionContext, days: usize) -> Result<usize> {
    let batches = collect(ctx, "counting snapshots", "select count(*) from snapshots").await?;
    let rows = batches.first().map(|b| integers(b, 0)).transpose()?.and_then(|v| v.first().copied().flatten()).unwrap_or(0) as usize;
    Ok((CHUNK_SNAPSHOT_ROWS * days.max(1) / rows.max(1)).clamp(1, 366))
}

/// The ranges of days to recompute, `len` days with snapshots at a time. A range runs from
/// the day after the previous one, so days that lost their snapshots are cleared too.
pub(super) fn chunk_days(days: &[NaiveDate], scope: &changes::Scope, len: usize) -> Vec<(NaiveDate, NaiveDate)> {
    let todo: Vec<NaiveDate> = match scope {
        changes::Scope::Full(_) => days.to_vec(),
        changes::Scope::From(first) => days.iter().copied().filter(|d| d >= first).collect(),
        changes::Scope::Nothing => vec![],
    };
    let mut chunks = vec![];
    let mut start = match scope {
        changes::Scope::From(first) => Some(*first),
        _ => None,
    };
    for group in todo.chunks(len.max(1)) {
        let first = start.take().map_or(group[0], |s| s.min(group[0]));
        chunks.push((first, *group.last().expect("chunks are not empty")));
        start = group.last().and_then(|d| d.succ_opt());
    }
    if let (changes::Scope::From(first), true) = (scope, chunks.is_empty()) {
        // The changed days lost every snapshot: clear them.
        chunks.push((*first, days.last().copied().map_or(*first, |d| d.max(*first))));
    }
    chunks
}

/// Fills a day model's `$first_day` and `$last_day`.
pub(super) fn bind_days(sql: &str, first: NaiveDate, last: NaiveDate) -> String {
    strip_comments(sql).replace("$first_day", &format!("DATE '{first}'")).replace("$last_day", &format!("DATE '{last}'"))
}
