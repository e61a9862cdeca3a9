//! The newest day each system reported at each location, which staleness is judged by
//! (kpi_weekly's stale systems, the stale sources holding purchase recommendations). Taken
//! from `coverage` alone it is a read of one file per day of history, whatever the build
//! adds; a build that only adds days after every day the last build saw goes on from the
//! newest days that build recorded (`changes::State::newest_reports`) and reads the coverage
//! of the new days.
//!
//! Models read the session table `coverage_kept` (system, location_id, newest_day) together
//! with the `coverage` rows after `$coverage_kept_until`: every day of coverage, the kept ones
//! folded to each system's newest at each location. A build that cannot go on keeps nothing,
//! and reads every day.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Date32Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use crate::changes::{Scope, State};
use crate::error::{Error, Result};
use crate::drift::Columns;
use crate::warehouse::collect;

/// Each system's newest day at each location, from the kept days and the coverage after them.
pub const NEWEST: &str = "
select system, location_id, max(newest_day) as newest_day
from (
    select system, location_id, newest_day from coverage_kept
    union all
    select system, location_id, snapshot_date from coverage where snapshot_date > $coverage_kept_until
)
group by system, location_id";

/// Stands for "nothing kept": before every day (and every week, `days::EARLIEST`).
const NOTHING_KEPT: NaiveDate = NaiveDate::from_ymd_opt(1899, 12, 31).expect("a valid date");

/// The day `coverage_kept` runs to, on the session of a build (for marts made by functions).
pub struct KeptUntil(NaiveDate);

/// Registers `coverage_kept`: the last build's newest reports when this build only adds days
/// after all of them (the days they come from are then as that build saw them), else none.
/// Returns the day they run to.
pub fn register(ctx: &SessionContext, last: Option<&State>, scope: &Scope) -> Result<NaiveDate> {
    let empty = BTreeMap::new();
    let kept = match (scope, last) {
        (Scope::From(first), Some(last)) if last.newest_reports.values().all(|day| day < first) => &last.newest_reports,
        _ => &empty,
    };
    let until = kept.values().max().copied().unwrap_or(NOTHING_KEPT);
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    let schema = Arc::new(Schema::new(vec![text("system"), text("location_id"), Field::new("newest_day", DataType::Date32, false)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![
        Arc::new(StringArray::from_iter_values(kept.keys().map(|(system, _)| system))),
        Arc::new(StringArray::from_iter_values(kept.keys().map(|(_, location)| location))),
        Arc::new(Date32Array::from_iter_values(kept.values().map(|day| (*day - NaiveDate::default()).num_days() as i32))),
    ])
    .map_err(|e| Error::arrow("keeping the newest reports", e))?;
    let failed = |e| Error::query("registering coverage_kept", e);
    ctx.register_table("coverage_kept", Arc::new(MemTable::try_new(schema, vec![vec![batch]]).map_err(failed)?)).map_err(failed)?;
    ctx.state_ref().write().config_mut().set_extension(Arc::new(KeptUntil(until)));
    Ok(until)
}

/// Binds `$coverage_kept_until`.
pub fn bind(sql: &str, until: NaiveDate) -> String {
    sql.replace("$coverage_kept_until", &format!("DATE '{until}'"))
}

/// Binds `$coverage_kept_until` to the day set on the session (`register`).
pub fn bind_in(ctx: &SessionContext, sql: &str) -> Result<String> {
    match ctx.state().config().get_extension::<KeptUntil>() {
        Some(kept) => Ok(bind(sql, kept.0)),
        None => Err(Error::Usage("coverage_kept is not registered on this session".into())),
    }
}

/// Each system's newest day at each location, for the next build to go on from.
pub async fn newest(ctx: &SessionContext, until: NaiveDate) -> Result<BTreeMap<(String, String), NaiveDate>> {
    let mut out = BTreeMap::new();
    let sql = format!("select system, location_id, arrow_cast(newest_day, 'Int32') from ({})", bind(NEWEST, until));
    for batch in collect(ctx, "finding each system's newest report", &sql).await? {
        let c = Columns::new(&batch);
        for ((system, location), day) in c.text(0)?.into_iter().zip(c.text(1)?).zip(c.int(2)?) {
            if let (Some(system), Some(location), Some(day)) = (system, location, day) {
                out.insert((system, location), NaiveDate::default() + chrono::Days::new(day as u64));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: &str) -> NaiveDate {
        d.parse().unwrap()
    }

    /// `coverage` of three days: pos at S1 on each, web at S1 on the first only.
    fn session() -> SessionContext {
        let ctx = SessionContext::new();
        let schema = Arc::new(Schema::new(vec![
            Field::new("snapshot_date", DataType::Date32, false),
            Field::new("system", DataType::Utf8, false),
            Field::new("location_id", DataType::Utf8, false),
        ]));
        let days: Vec<i32> = ["2026-03-01", "2026-03-01", "2026-03-02", "2026-03-03"].iter().map(|d| (day(d) - NaiveDate::default()).num_days() as i32).collect();
        let batch = RecordBatch::try_new(schema.clone(), vec![
            Arc::new(Date32Array::from(days)),
            Arc::new(StringArray::from(vec!["pos", "web", "pos", "pos"])),
            Arc::new(StringArray::from(vec!["S1"; 4])),
        ])
        .unwrap();
        ctx.register_batch("coverage", batch).unwrap();
        ctx
    }

    fn last_build(reports: &[(&str, &str)]) -> State {
        let mut state = State::default();
        state.newest_reports = reports.iter().map(|(system, d)| ((system.to_string(), "S1".to_string()), day(d))).collect();
        state
    }

    async fn kept(ctx: &SessionContext) -> Vec<String> {
        let sql = "select concat_ws('|', system, location_id, cast(newest_day as varchar)) from coverage_kept order by 1";
        let batches = collect(ctx, "test", sql).await.unwrap();
        batches.iter().flat_map(|b| Columns::new(b).text(0).unwrap()).map(Option::unwrap).collect()
    }

    #[tokio::test]
    async fn a_build_of_later_days_goes_on_from_the_last_builds_newest_reports() {
        let ctx = session();
        // The last build saw the first two days (say web's later rows were never there: the
        // kept day is what counts for the days it saw).
        let last = last_build(&[("pos", "2026-03-02"), ("web", "2026-02-27")]);
        let until = register(&ctx, Some(&last), &Scope::From(day("2026-03-03"))).unwrap();
        assert_eq!(until, day("2026-03-02"));
        assert_eq!(kept(&ctx).await, ["pos|S1|2026-03-02", "web|S1|2026-02-27"]);
        let newest = newest(&ctx, until).await.unwrap();
        assert_eq!(newest, last_build(&[("pos", "2026-03-03"), ("web", "2026-02-27")]).newest_reports);
        assert_eq!(bind_in(&ctx, "> $coverage_kept_until").unwrap(), "> DATE '2026-03-02'");
    }

    #[tokio::test]
    async fn a_build_that_changes_a_kept_day_reads_every_day() {
        let last = last_build(&[("pos", "2026-03-02"), ("web", "2026-02-27")]);
        for scope in [Scope::From(day("2026-03-02")), Scope::Full("asked".into()), Scope::Nothing] {
            let ctx = session();
            let until = register(&ctx, Some(&last), &scope).unwrap();
            assert_eq!((until, kept(&ctx).await.len()), (NOTHING_KEPT, 0), "{scope:?}");
            // Every day of coverage: web's newest is its own first day, not the one kept.
            assert_eq!(newest(&ctx, until).await.unwrap(), last_build(&[("pos", "2026-03-03"), ("web", "2026-03-01")]).newest_reports);
        }
        assert_eq!(register(&session(), None, &Scope::From(day("2026-03-03"))).unwrap(), NOTHING_KEPT);
    }
}
