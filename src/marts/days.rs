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

/// Fills a day model's `$first_day`, `$last_day` and `$authoritative_systems` (a SQL list).
pub(super) fn bind_days(sql: &str, first: NaiveDate, last: NaiveDate, authoritative_systems: &str) -> String {
    strip_comments(sql)
        .replace("$first_day", &format!("DATE '{first}'"))
        .replace("$last_day", &format!("DATE '{last}'"))
        .replace("$authoritative_systems", authoritative_systems)
}

/// The systems compared to the authoritative one at some location on the days `first` to
/// `last` (`coverage` of those days must be built), as a SQL list (`NULL` when none is):
/// `$compared_systems` of a day model. Filtering `snapshots` on them skips the partitions of
/// systems that report only where they are authoritative (at tier M the POS, the 3PL's WMS
/// and Seller Central: a quarter of a day's rows), which the variances would read and join
/// only to drop.
async fn compared_systems(ctx: &SessionContext, first: NaiveDate, last: NaiveDate) -> Result<String> {
    sql_list(ctx, &format!("listing the systems compared from {first} to {last}"), &bind_days(COMPARED_SYSTEMS, first, last, "")).await
}

/// A day model bound to the days `first` to `last`: `bind_days`, then `$compared_systems`
/// looked up when the model uses it.
pub(super) async fn bind_chunk(ctx: &SessionContext, sql: &str, (first, last): (NaiveDate, NaiveDate), authoritative_systems: &str) -> Result<String> {
    let bound = bind_days(sql, first, last, authoritative_systems);
    if !bound.contains("$compared_systems") {
        return Ok(bound);
    }
    Ok(bound.replace("$compared_systems", &compared_systems(ctx, first, last).await?))
}

/// A bound day model to plan for its columns alone, reading no rows: its lists left empty.
pub(super) fn for_schema(sql: String) -> String {
    sql.replace("$compared_systems", "NULL")
}

/// The query behind `compared_systems` (named among the variances' sources, so the mart
/// dependency test sees that it reads `coverage`).
pub(super) const COMPARED_SYSTEMS: &str = "select distinct c.system from coverage c join stg_authority a on a.location_id = c.location_id
    where c.snapshot_date >= $first_day and c.snapshot_date <= $last_day and c.system <> a.authoritative_system order by 1";

/// The systems authoritative at some location, as a SQL list (`NULL` when none is, which
/// matches nothing). Filtering `snapshots` on them skips the other systems' partitions: at
/// tier M, the storefront's and the planning tool's, half of a day's rows.
pub(super) async fn authoritative_systems(ctx: &SessionContext) -> Result<String> {
    let sql = "select distinct authoritative_system from stg_authority where authoritative_system is not null order by 1";
    sql_list(ctx, "listing the authoritative systems", sql).await
}

/// The texts a query returns, as a SQL list of literals (`NULL`, which matches nothing, when
/// it returns none).
async fn sql_list(ctx: &SessionContext, context: &str, sql: &str) -> Result<String> {
    let mut texts = vec![];
    for batch in collect(ctx, context, sql).await? {
        texts.extend(strings(&batch, 0)?.into_iter().flatten().map(|s| crate::warehouse::sql_string(&s)));
    }
    Ok(if texts.is_empty() { "NULL".into() } else { texts.join(", ") })
}
