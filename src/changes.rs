//! What changed since the last build, so that a build recomputes only the days that need it.
//!
//! A build records the data files of `snapshots`, `movements` and `counts` it read (with the
//! earliest day a ledger file is about), and a fingerprint of everything else its marts
//! depend on (reference tables, thresholds, the models themselves). The next build compares:
//! new or replaced snapshot partitions name their days; new or replaced ledger files reach
//! back to their earliest event; anything else (a changed threshold or SKU master, a new
//! stocktake) means a full build.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::StringArray;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};
use crate::warehouse::{TableSpec, Warehouse, Write, collect, content_fingerprint, strings};

/// Tables whose files are tracked one by one; every other input is fingerprinted.
const TRACKED: [&str; 3] = ["snapshots", "movements", "counts"];
/// Ledger tables partitioned by load date, with the day each row is about.
const LEDGERS: [(&str, &str); 2] = [("movements", "arrow_cast(event_at, 'Date32')"), ("counts", "count_date")];
const FINGERPRINTED: [&str; 5] = ["skus", "locations", "bundles", "authority", "thresholds"];
const STATE_TABLE: &str = "build_state";

/// Which days the day-partitioned marts (positions, variances) must be recomputed for.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// Every day, replacing the tables; the reason is reported.
    Full(String),
    /// Every day from this one on.
    From(NaiveDate),
    /// No day changed.
    Nothing,
}

/// What a build saw: its tracked files (`table/path`, with the earliest event day of a
/// movements file, so that replacing it later says how far back it reached) and the
/// fingerprint of the rest; and what it left: the newest day in `coverage` of each system at
/// each location, which the next build goes on from when it only adds later days.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct State {
    files: BTreeMap<String, Option<NaiveDate>>,
    fingerprint: String,
    pub newest_reports: BTreeMap<(String, String), NaiveDate>,
}

/// The current state of the inputs, read from the warehouse.
pub async fn current(warehouse: &Warehouse, ctx: &SessionContext, models: &str) -> Result<State> {
    let mut files = BTreeMap::new();
    for name in TRACKED {
        let Some(table) = warehouse.load(name).await? else { continue };
        // Paths relative to the table, as its log records them: a warehouse copied or moved
        // elsewhere is the same warehouse, and ledger files are matched to their partitions.
        for file in table.snapshot().map_err(|e| Error::delta(name, e))?.log_data() {
            files.insert(format!("{name}/{}", file.path()), None);
        }
    }
    let mut hasher = std::hash::DefaultHasher::new();
    (env!("CARGO_PKG_VERSION"), models).hash(&mut hasher);
    for name in FINGERPRINTED {
        if warehouse.load(name).await?.is_none() {
            continue;
        }
        let frame = ctx.sql(&format!("select * from {name}")).await.map_err(|e| Error::query(format!("fingerprinting {name}"), e))?;
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await.map_err(|e| Error::query(format!("fingerprinting {name}"), e))?;
        (name, content_fingerprint(&schema, &batches)?).hash(&mut hasher);
    }
    Ok(State { files, fingerprint: format!("{:016x}", hasher.finish()), newest_reports: BTreeMap::new() })
}

/// The state recorded by the last build, if any.
pub async fn last(warehouse: &Warehouse) -> Result<Option<State>> {
    if warehouse.load(STATE_TABLE).await?.is_none() {
        return Ok(None);
    }
    let ctx = warehouse.session(&[STATE_TABLE]).await?;
    let mut state = State::default();
    let sql = format!("select item, value, cast(day as varchar) from {STATE_TABLE}");
    // A state this version cannot read (an older layout) means: build everything.
    let Ok(batches) = collect(&ctx, "reading the last build's state", &sql).await else { return Ok(None) };
    for batch in batches {
        let days = strings(&batch, 2)?;
        for ((item, value), day) in strings(&batch, 0)?.into_iter().zip(strings(&batch, 1)?).zip(days) {
            let day = day.and_then(|d| d.parse().ok());
            match (item.as_deref(), value) {
                (Some("file"), Some(v)) => {
                    state.files.insert(v, day);
                }
                (Some("fingerprint"), Some(v)) => state.fingerprint = v,
                (Some("newest_report"), Some(v)) => {
                    let (Some((system, location)), Some(day)) = (v.split_once(REPORT_SEPARATOR), day) else { return Ok(None) };
                    state.newest_reports.insert((system.to_string(), location.to_string()), day);
                }
                _ => {}
            }
        }
    }
    Ok(Some(state))
}

/// Joins a newest report's system and location in `build_state.value` (neither holds a tab:
/// ingest reads them from single-line CSV fields and folder names).
const REPORT_SEPARATOR: char = '\t';

/// Records the state in `build_state`: one row per item, `day` being a file's earliest event
/// or a system's newest day at a location.
pub async fn save(warehouse: &Warehouse, state: &State) -> Result<()> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("item", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, false),
        Field::new("day", DataType::Date32, true),
    ]));
    let reports = state.newest_reports.iter().map(|((system, location), day)| (format!("{system}{REPORT_SEPARATOR}{location}"), Some(*day)));
    let rows: Vec<(&str, String, Option<NaiveDate>)> = std::iter::once(("fingerprint", state.fingerprint.clone(), None))
        .chain(state.files.iter().map(|(file, day)| ("file", file.clone(), *day)))
        .chain(reports.map(|(value, day)| ("newest_report", value, day)))
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1.as_str()))),
        Arc::new(arrow::array::Date32Array::from_iter(rows.iter().map(|r| r.2.map(|d| (d - NaiveDate::default()).num_days() as i32)))),
    ])
    .map_err(|e| Error::arrow("recording the build state", e))?;
    warehouse.write(&TableSpec { name: STATE_TABLE, schema, partition_by: &[] }, vec![batch], Write::All).await
}

/// The days to recompute, from what the last build saw and what is there now (its
/// movements files annotated by `annotate`).
pub fn scope(last: Option<&State>, now: &State) -> Scope {
    let Some(last) = last else { return Scope::Full("no earlier build".into()) };
    if last.fingerprint != now.fingerprint {
        return Scope::Full("reference data, thresholds or models changed".into());
    }
    let mut first: Option<NaiveDate> = None;
    for (file, earliest) in changed(last, now) {
        let day = match file.split_once('/') {
            Some(("snapshots", _)) => partition_date(file, "snapshot_date"),
            // Movements (and counts) change the marts from their earliest event on; a file
            // with no rows changes nothing.
            Some(("movements" | "counts", _)) => match earliest {
                Some(day) => Some(day),
                None if partition_date(file, "load_date").is_none() => return Scope::Full(format!("cannot tell the days of {file}")),
                None => None,
            },
            _ => None,
        };
        first = first.into_iter().chain(day).min();
    }
    first.map_or(Scope::Nothing, Scope::From)
}

/// Files added or removed between two states, with their earliest event day.
fn changed<'a>(last: &'a State, now: &'a State) -> impl Iterator<Item = (&'a String, Option<NaiveDate>)> {
    let added = now.files.iter().filter(|(f, _)| !last.files.contains_key(*f));
    let removed = last.files.iter().filter(|(f, _)| !now.files.contains_key(*f));
    added.chain(removed).map(|(f, d)| (f, *d))
}

/// Fills in the earliest event day of each ledger file: carried over from the last build, or
/// read from the warehouse for files it did not see.
pub async fn annotate(ctx: &SessionContext, last: Option<&State>, now: &mut State) -> Result<()> {
    for (table, day) in LEDGERS {
        let prefix = format!("{table}/");
        let mut loads = BTreeSet::new();
        for (file, earliest) in now.files.iter_mut().filter(|(f, _)| f.starts_with(&prefix)) {
            match last.and_then(|l| l.files.get(file)) {
                Some(known) => *earliest = *known,
                None => loads.extend(partition_date(file, "load_date")),
            }
        }
        if loads.is_empty() {
            continue;
        }
        let list: Vec<String> = loads.iter().map(|d| format!("DATE '{d}'")).collect();
        let sql = format!(
            "select system, cast(load_date as varchar), cast(min({day}) as varchar)
             from {table} where load_date in ({}) group by system, load_date",
            list.join(", ")
        );
        let mut earliest: BTreeMap<String, NaiveDate> = BTreeMap::new();
        for batch in collect(ctx, &format!("finding the days of new {table}"), &sql).await? {
            let (systems, loads, days) = (strings(&batch, 0)?, strings(&batch, 1)?, strings(&batch, 2)?);
            for ((system, load), day) in systems.into_iter().zip(loads).zip(days) {
                if let (Some(system), Some(load), Some(day)) = (system, load, day.and_then(|d| d.parse().ok())) {
                    earliest.insert(format!("{prefix}system={system}/load_date={load}/"), day);
                }
            }
        }
        for (file, day) in now.files.iter_mut().filter(|(f, d)| f.starts_with(&prefix) && d.is_none()) {
            *day = earliest.iter().find(|(partition, _)| file.starts_with(partition.as_str())).map(|(_, d)| *d);
        }
    }
    Ok(())
}

/// Every day that has snapshots, oldest first, from the snapshot files' partition values (a
/// scan of the table itself would read every row of it).
pub fn snapshot_days(state: &State) -> Vec<NaiveDate> {
    let days: BTreeSet<NaiveDate> =
        state.files.keys().filter(|f| f.starts_with("snapshots/")).filter_map(|f| partition_date(f, "snapshot_date")).collect();
    days.into_iter().collect()
}

/// The value of a `column=YYYY-MM-DD` segment of a partitioned file's path.
fn partition_date(path: &str, column: &str) -> Option<NaiveDate> {
    let prefix = format!("{column}=");
    path.split('/').find_map(|segment| segment.strip_prefix(&prefix)).and_then(|d| d.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(files: &[(&str, Option<&str>)], fingerprint: &str) -> State {
        State {
            files: files.iter().map(|(f, d)| (f.to_string(), d.map(day))).collect(),
            fingerprint: fingerprint.into(),
            newest_reports: BTreeMap::new(),
        }
    }

    fn day(d: &str) -> NaiveDate {
        d.parse().unwrap()
    }

    const SNAP_1: (&str, Option<&str>) = ("snapshots/system=pos/snapshot_date=2026-03-01/a.parquet", None);
    const SNAP_2: (&str, Option<&str>) = ("snapshots/system=pos/snapshot_date=2026-03-02/b.parquet", None);
    const MOVE_1: (&str, Option<&str>) = ("movements/system=pos/load_date=2026-03-01/m.parquet", Some("2026-03-01"));

    #[test]
    fn a_new_day_is_built_from_that_day_or_its_earliest_movement() {
        let before = state(&[SNAP_1, MOVE_1], "f");
        let after = state(&[SNAP_1, SNAP_2, MOVE_1, ("movements/system=pos/load_date=2026-03-02/n.parquet", Some("2026-03-02"))], "f");
        assert_eq!(scope(Some(&before), &after), Scope::From(day("2026-03-02")));
        let late = state(&[SNAP_1, SNAP_2, MOVE_1, ("movements/system=pos/load_date=2026-03-02/n.parquet", Some("2026-02-20"))], "f");
        assert_eq!(scope(Some(&before), &late), Scope::From(day("2026-02-20")));
        assert_eq!(scope(Some(&after), &after), Scope::Nothing);
    }

    #[test]
    fn snapshot_days_come_from_the_snapshot_files() {
        let other_system = ("snapshots/system=erp/snapshot_date=2026-03-02/e.parquet", None);
        let now = state(&[SNAP_2, SNAP_1, other_system, MOVE_1], "f");
        assert_eq!(snapshot_days(&now), [day("2026-03-01"), day("2026-03-02")]);
    }

    #[test]
    fn replaced_partitions_reach_back_to_their_days() {
        let before = state(&[SNAP_1, SNAP_2, MOVE_1], "f");
        let snapshot_replaced = state(&[("snapshots/system=pos/snapshot_date=2026-03-01/c.parquet", None), SNAP_2, MOVE_1], "f");
        assert_eq!(scope(Some(&before), &snapshot_replaced), Scope::From(day("2026-03-01")));
        // The removed file's earliest event counts even when the new one starts later.
        let movements_replaced = state(&[SNAP_1, SNAP_2, ("movements/system=pos/load_date=2026-03-01/z.parquet", Some("2026-03-02"))], "f");
        assert_eq!(scope(Some(&before), &movements_replaced), Scope::From(day("2026-03-01")));
    }

    #[test]
    fn no_history_or_changed_reference_data_rebuild_everything() {
        let now = state(&[SNAP_1], "f");
        assert!(matches!(scope(None, &now), Scope::Full(_)));
        assert!(matches!(scope(Some(&now), &state(&[SNAP_1], "g")), Scope::Full(_)));
    }
}
