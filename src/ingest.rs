//! One run: read every system's landing files, map identity, and commit the raw tables.
//! Every input line ends in exactly one place — a raw table, `quarantine` or
//! `unmapped_rows` — and `run_systems` counts them. A system that cannot be read is recorded
//! and the others go on; re-running the same files replaces, never duplicates.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use datafusion::common::HashMap;
use tracing::{debug, info, warn};

use crate::config::Pipeline;
use crate::error::Result;
use crate::reference::{Reference, Resolved};
use crate::sources::{Buckets, ParsedLine, Record, RowError, SourceConfig};
use crate::storage::{self, Area, DroppedFile};
use crate::tables::{self, BatchBuilder};
use crate::warehouse::{Warehouse, Write};

/// What to ingest, and why.
#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    /// Only files whose path carries this date; all files when `None`.
    pub date: Option<NaiveDate>,
    /// The cron slot this run serves (scheduled and catch-up runs).
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Who started it: `manual`, `schedule` or `catch_up` (recorded in `runs`).
    pub trigger: Trigger,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    #[default]
    Manual,
    Schedule,
    CatchUp,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Schedule => "schedule",
            Trigger::CatchUp => "catch_up",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SystemReport {
    pub system: String,
    pub kind: String,
    pub status: &'static str,
    pub files: i64,
    pub rows_in: i64,
    pub accepted: i64,
    pub quarantined: i64,
    pub unmapped: i64,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: String,
    pub pipeline: String,
    pub status: &'static str,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub systems: Vec<SystemReport>,
}

impl RunReport {
    pub fn total(&self, f: impl Fn(&SystemReport) -> i64) -> i64 {
        self.systems.iter().map(f).sum()
    }
}

/// A system or file name, shared by every row that carries it (a day brings 200 k rows).
type Name = Arc<str>;

struct SnapshotRow {
    system: Name,
    date: NaiveDate,
    location: String,
    sku: String,
    captured_at: Option<DateTime<Utc>>,
    buckets: Buckets,
    file: Name,
    line: usize,
}

struct MovementRow {
    system: Name,
    load_date: Option<NaiveDate>,
    m: crate::sources::MovementRecord,
    sku: String,
    bundle: Option<String>,
    file: Name,
    line: usize,
}

struct CountRow {
    system: Name,
    load_date: Option<NaiveDate>,
    c: crate::sources::CountRecord,
    sku: String,
    bundle: Option<String>,
    file: Name,
    line: usize,
}

struct QuarantineRow {
    system: Name,
    load_date: Option<NaiveDate>,
    file: Name,
    line: usize,
    raw: String,
    error: RowError,
}

struct UnmappedRow {
    system: Name,
    load_date: Option<NaiveDate>,
    file: Name,
    line: usize,
    location: String,
    external_id: String,
    units: Option<i64>,
}

/// Everything one run read, before it is committed.
#[derive(Default)]
struct Loaded {
    snapshots: Vec<SnapshotRow>,
    movements: Vec<MovementRow>,
    counts: Vec<CountRow>,
    quarantine: Vec<QuarantineRow>,
    unmapped: Vec<UnmappedRow>,
    /// (system, load date) partitions this run replaces, per table family.
    snapshot_keys: BTreeSet<(String, Option<NaiveDate>)>,
    movement_keys: BTreeSet<(String, Option<NaiveDate>)>,
    count_keys: BTreeSet<(String, Option<NaiveDate>)>,
    fingerprint: Fingerprint,
    /// The systems' parts, in pipeline order, with their rows where they were read: moving
    /// a day's rows into one list took longer than committing them.
    parts: Vec<Loaded>,
}

impl Loaded {
    /// Adds one system's rows; its fingerprint enters as one value, in pipeline order.
    fn absorb(&mut self, mut part: Loaded) {
        self.snapshot_keys.append(&mut part.snapshot_keys);
        self.movement_keys.append(&mut part.movement_keys);
        self.count_keys.append(&mut part.count_keys);
        self.fingerprint.add(&part.fingerprint.0.to_le_bytes());
        self.parts.push(part);
    }

    /// The rows of one kind: this part's, then its parts' (a system's part has none).
    fn rows<'a, T: 'a>(&'a self, kind: impl Fn(&'a Loaded) -> &'a Vec<T> + 'a) -> impl Iterator<Item = &'a T> + 'a {
        std::iter::once(self).chain(&self.parts).flat_map(move |p| kind(p).iter())
    }
}

pub async fn load_reference(pipeline: &Pipeline) -> Result<Reference> {
    let r = &pipeline.reference;
    let options = pipeline.storage_options();
    let read = |location: &str| {
        let location = location.to_string();
        let options = &options;
        async move { storage::read_file(&location, options, &pipeline.retry).await }
    };
    let skus = read(&r.skus).await?;
    let locations = read(&r.locations).await?;
    let aliases = match &r.sku_aliases {
        Some(p) => Some(read(p).await?),
        None => None,
    };
    let bundles = match &r.bundles {
        Some(p) => Some(read(p).await?),
        None => None,
    };
    Reference::from_files(
        (&r.skus, &skus),
        (&r.locations, &locations),
        r.sku_aliases.as_deref().zip(aliases.as_deref()),
        r.bundles.as_deref().zip(bundles.as_deref()),
    )
}

/// Runs the pipeline's ingest and commits the raw and reference tables.
pub async fn run(pipeline: &Pipeline, warehouse: &Warehouse, options: &RunOptions) -> Result<RunReport> {
    let started_at = Utc::now();
    let clock = std::time::Instant::now();
    let reference = Arc::new(load_reference(pipeline).await?);
    debug!(seconds = clock.elapsed().as_secs_f64(), "reference files read");

    let mut loaded = Loaded::default();
    loaded.fingerprint.add(pipeline.name.as_bytes());
    if let Some(slot) = options.scheduled_for {
        loaded.fingerprint.add(slot.to_rfc3339().as_bytes());
    }
    let storage_options = pipeline.storage_options();
    let progress = crate::progress::bar("snapshot", 0);
    progress.set_message("reading");
    // Systems are read side by side (parsing runs on the blocking pool); their rows are
    // merged in pipeline order, so the result does not depend on which finished first.
    let reads = pipeline.systems.iter().map(|system| {
        ingest_system(system.clone(), reference.clone(), options.date, (&storage_options, &pipeline.retry), progress.clone())
    });
    // The reference tables are written while the files are read (reading needs only the
    // reference in memory); both are done before anything else is committed.
    let (written, parts) = futures::join!(write_reference(pipeline, &reference, warehouse), futures::future::join_all(reads));
    written?;
    let mut reports = Vec::new();
    for (report, part) in parts {
        info!(system = %report.system, status = report.status, rows_in = report.rows_in, accepted = report.accepted,
              quarantined = report.quarantined, unmapped = report.unmapped, "system read");
        for e in &report.errors {
            warn!(system = %report.system, "{e}");
        }
        loaded.absorb(part);
        reports.push(report);
    }
    progress.set_message("committing");
    let run_id = format!(
        "{}-{}-{:016x}",
        pipeline.name,
        options.date.map(|d| d.to_string()).unwrap_or_else(|| "all".into()),
        loaded.fingerprint.0
    );

    debug!(seconds = clock.elapsed().as_secs_f64(), "reference tables written and systems read");
    commit(&loaded, &run_id, warehouse).await?;
    progress.finish_and_clear();
    debug!(seconds = clock.elapsed().as_secs_f64(), "committed");

    let status = if reports.iter().all(|r| r.status == "ok") {
        "ok"
    } else if reports.iter().all(|r| r.status == "failed") {
        "failed"
    } else {
        "partial"
    };
    let report = RunReport {
        run_id,
        pipeline: pipeline.name.clone(),
        status,
        started_at,
        finished_at: Utc::now(),
        systems: reports,
    };
    record_run(&report, options, warehouse).await?;
    debug!(seconds = clock.elapsed().as_secs_f64(), "run recorded");
    Ok(report)
}

async fn ingest_system(
    system: SourceConfig,
    reference: Arc<Reference>,
    date: Option<NaiveDate>,
    (storage_options, retry): (&[(String, String)], &crate::config::RetryPolicy),
    progress: indicatif::ProgressBar,
) -> (SystemReport, Loaded) {
    let mut report = SystemReport { system: system.name().to_string(), kind: system.kind().to_string(), status: "ok", ..Default::default() };
    let mut loaded = Loaded::default();
    let files = match Area::open(system.landing(), storage_options, retry) {
        Ok(area) => match area.list_day(date).await {
            Ok(files) => Some((area, files)),
            Err(e) => {
                report.errors.push(format!("{e:#}"));
                None
            }
        },
        Err(e) => {
            report.errors.push(format!("{e:#}"));
            None
        }
    };
    let Some((area, files)) = files else {
        report.status = "failed";
        return (report, loaded);
    };
    let files: Vec<DroppedFile> = files.into_iter().filter(|f| date.is_none() || f.date == date).collect();
    progress.inc_length(files.len() as u64);
    let system = Arc::new(system);
    let mut unreadable = 0;
    let mut seen = HashMap::new();
    for file in &files {
        progress.inc(1);
        report.files += 1;
        let bytes = match area.read(file).await {
            Ok(b) => b,
            Err(e) => {
                report.errors.push(format!("{e:#}"));
                unreadable += 1;
                continue;
            }
        };
        let (system, reference, file) = (system.clone(), reference.clone(), file.clone());
        let parsed = tokio::task::spawn_blocking(move || {
            read_file(&system, &reference, &file, &bytes, &mut report, &mut seen, &mut loaded);
            (report, seen, loaded)
        })
        .await;
        (report, seen, loaded) = parsed.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    }
    if !report.errors.is_empty() {
        report.status = if unreadable == files.len() && !files.is_empty() { "failed" } else { "partial" };
    }
    (report, loaded)
}

/// Parses one file and places each of its lines as it is read.
fn read_file(
    system: &SourceConfig,
    reference: &Reference,
    file: &DroppedFile,
    bytes: &[u8],
    report: &mut SystemReport,
    seen: &mut HashMap<Box<[u8]>, (Name, usize)>,
    loaded: &mut Loaded,
) {
    loaded.fingerprint.add(system.name().as_bytes());
    loaded.fingerprint.add(file.relative.as_bytes());
    loaded.fingerprint.add(bytes);
    let key = (system.name().to_string(), file.date);
    if system.is_snapshot() {
        loaded.snapshot_keys.insert(key);
    } else if matches!(system, SourceConfig::MovementsCsv(_)) {
        loaded.movement_keys.insert(key);
    } else {
        loaded.count_keys.insert(key);
    }
    let dateless = file.date.is_none().then(|| RowError::new("<path>", format!("no YYYY-MM-DD date in the path '{}'", file.relative)));
    let names = (Name::from(system.name()), Name::from(file.display.as_str()));
    let mut file_error = system.parse(bytes, file.stem(), &mut |mut line| {
        if let Some(error) = &dateless {
            line.result = Err(error.clone());
        }
        report.rows_in += 1;
        match place(&names, file, line, reference, seen, loaded) {
            Placed::Accepted => report.accepted += 1,
            Placed::Quarantined => report.quarantined += 1,
            Placed::Unmapped => report.unmapped += 1,
        }
    });
    if let Some(error) = dateless {
        file_error.get_or_insert(crate::sources::RowErrorAt { line: 0, error });
    }
    if let Some(fe) = &file_error {
        report.errors.push(format!("{}:{}: field '{}': {}", file.display, fe.line, fe.error.field, fe.error.message));
    }
}

enum Placed {
    Accepted,
    Quarantined,
    Unmapped,
}

/// Sends one line to exactly one of: a raw table, quarantine, unmapped.
fn place(
    (system_name, file_name): &(Name, Name),
    file: &DroppedFile,
    line: ParsedLine,
    reference: &Reference,
    seen: &mut HashMap<Box<[u8]>, (Name, usize)>,
    loaded: &mut Loaded,
) -> Placed {
    let system: &str = system_name;
    let load_date = file.date;
    let quarantine = |loaded: &mut Loaded, error: RowError| {
        loaded.quarantine.push(QuarantineRow { system: system_name.clone(), load_date, file: file_name.clone(), line: line.line, raw: line.raw(), error });
        Placed::Quarantined
    };
    let record = match &line.result {
        Ok(r) => r,
        Err(e) => return quarantine(loaded, e.clone()),
    };
    if reference.location(record.location()).is_none() {
        let e = RowError::new("location", format!("unknown location '{}' (not in the locations reference)", record.location()));
        return quarantine(loaded, e);
    }
    let resolved = reference.resolve(system, record.external_id());
    if resolved == Resolved::Unmapped {
        let units = match &record {
            Record::Snapshot(s) => s.buckets.on_hand.or(s.buckets.available),
            Record::Movement(m) => Some(m.qty),
            Record::Count(c) => Some(c.counted_qty),
        };
        loaded.unmapped.push(UnmappedRow {
            system: system_name.clone(),
            load_date,
            file: file_name.clone(),
            line: line.line,
            location: record.location().to_string(),
            external_id: record.external_id().to_string(),
            units,
        });
        return Placed::Unmapped;
    }
    let (sku, parts): (&str, Option<&[(String, i64)]>) = match resolved {
        Resolved::Sku(s) => (s, None),
        Resolved::Bundle(s, parts) => (s, Some(parts)),
        Resolved::Unmapped => unreachable!("handled above"),
    };
    let duplicate_key = duplicate_key(load_date, record, sku);
    if let Some((first_file, first_line)) = seen.get(&duplicate_key) {
        let e = RowError::new("<line>", format!("duplicate of {first_file}:{first_line}"));
        return quarantine(loaded, e);
    }
    seen.insert(duplicate_key, (file_name.clone(), line.line));
    let Ok(record) = line.result else { unreachable!("a line in error is quarantined above") };
    match record {
        Record::Snapshot(s) => loaded.snapshots.push(SnapshotRow {
            system: system_name.clone(),
            date: load_date.expect("dateless files are quarantined"),
            location: s.location,
            sku: sku.to_string(),
            captured_at: s.captured_at,
            buckets: s.buckets,
            file: file_name.clone(),
            line: line.line,
        }),
        // A kit sold or counted moves its components: explode it.
        Record::Movement(m) => {
            for (component, per_kit) in components(sku, parts) {
                let mut m = m.clone();
                m.qty *= per_kit;
                loaded.movements.push(MovementRow {
                    system: system_name.clone(),
                    load_date,
                    m,
                    sku: component,
                    bundle: parts.map(|_| sku.to_string()),
                    file: file_name.clone(),
                    line: line.line,
                });
            }
        }
        Record::Count(c) => {
            for (component, per_kit) in components(sku, parts) {
                let mut c = c.clone();
                c.counted_qty *= per_kit;
                loaded.counts.push(CountRow {
                    system: system_name.clone(),
                    load_date,
                    c,
                    sku: component,
                    bundle: parts.map(|_| sku.to_string()),
                    file: file_name.clone(),
                    line: line.line,
                });
            }
        }
    }
    Placed::Accepted
}

/// What two lines of one system share when one repeats the other, as bytes: formatting it
/// as text took longer than reading the line (a day brings 200 k lines).
fn duplicate_key(load_date: Option<NaiveDate>, record: &Record, sku: &str) -> Box<[u8]> {
    let mut key = Vec::with_capacity(64);
    // 0xFF never occurs in UTF-8: it ends each text unambiguously.
    let text = |key: &mut Vec<u8>, text: &str| {
        key.extend_from_slice(text.as_bytes());
        key.push(0xFF);
    };
    match record {
        Record::Snapshot(s) => {
            key.extend_from_slice(&load_date.map_or(i32::MIN, |d| d.num_days_from_ce()).to_le_bytes());
            text(&mut key, &s.location);
            text(&mut key, sku);
        }
        Record::Movement(m) => {
            key.extend_from_slice(&m.event_at.timestamp().to_le_bytes());
            key.extend_from_slice(&m.event_at.timestamp_subsec_nanos().to_le_bytes());
            text(&mut key, &m.location);
            text(&mut key, sku);
            text(&mut key, &m.kind);
            key.extend_from_slice(&m.qty.to_le_bytes());
            key.push(m.reference.is_some() as u8);
            text(&mut key, m.reference.as_deref().unwrap_or_default());
        }
        Record::Count(c) => {
            key.extend_from_slice(&c.count_date.num_days_from_ce().to_le_bytes());
            text(&mut key, &c.location);
            text(&mut key, sku);
        }
    }
    key.into_boxed_slice()
}

fn components(sku: &str, parts: Option<&[(String, i64)]>) -> Vec<(String, i64)> {
    match parts {
        Some(parts) => parts.to_vec(),
        None => vec![(sku.to_string(), 1)],
    }
}

/// SQL predicate selecting the partitions a run replaces.
fn replace_predicate(keys: &BTreeSet<(String, Option<NaiveDate>)>, date_column: &str) -> Option<String> {
    if keys.is_empty() {
        return None;
    }
    let mut by_system: std::collections::BTreeMap<&str, (Vec<String>, bool)> = Default::default();
    for (system, date) in keys {
        let entry = by_system.entry(system).or_default();
        match date {
            Some(d) => entry.0.push(format!("DATE '{d}'")),
            None => entry.1 = true,
        }
    }
    let clauses: Vec<String> = by_system
        .into_iter()
        .map(|(system, (dates, dateless))| {
            let mut date_terms = Vec::new();
            if !dates.is_empty() {
                date_terms.push(format!("{date_column} IN ({})", dates.join(", ")));
            }
            if dateless {
                date_terms.push(format!("{date_column} IS NULL"));
            }
            format!("(system = {} AND ({}))", crate::warehouse::sql_string(system), date_terms.join(" OR "))
        })
        .collect();
    Some(clauses.join(" OR "))
}

async fn write_replacing(warehouse: &Warehouse, spec: &crate::warehouse::TableSpec, batch: arrow::record_batch::RecordBatch, predicate: Option<String>) -> Result<()> {
    match predicate {
        Some(p) => warehouse.write(spec, vec![batch], Write::Where(p)).await,
        // Nothing of this table was re-loaded: only make sure it exists.
        None if warehouse.load(spec.name).await?.is_none() => warehouse.write(spec, vec![], Write::All).await,
        None => Ok(()),
    }
}

async fn commit(loaded: &Loaded, run_id: &str, warehouse: &Warehouse) -> Result<()> {
    let clock = std::time::Instant::now();
    let rid = Some(run_id);
    let s = || loaded.rows(|l| &l.snapshots);
    let mut b = BatchBuilder::new(&tables::SNAPSHOTS)
        .str(s().map(|r| Some(&*r.system)))
        .str(s().map(|r| Some(r.location.as_str())))
        .str(s().map(|r| Some(r.sku.as_str())))
        .date(s().map(|r| Some(r.date)))
        .timestamp(s().map(|r| Some(r.captured_at.unwrap_or_else(|| r.date.and_hms_opt(0, 0, 0).expect("midnight").and_utc()))));
    for bucket in tables::BUCKETS {
        b = b.int(s().map(|r| bucket_value(&r.buckets, bucket)));
    }
    let batch = b
        .str(s().map(|r| Some(&*r.file)))
        .int(s().map(|r| Some(r.line as i64)))
        .str(s().map(|_| rid))
        .finish()?;
    let snapshots = write_replacing(warehouse, &tables::SNAPSHOTS, batch, replace_predicate(&loaded.snapshot_keys, "snapshot_date"));

    let m = || loaded.rows(|l| &l.movements);
    let batch = BatchBuilder::new(&tables::MOVEMENTS)
        .str(m().map(|r| Some(&*r.system)))
        .date(m().map(|r| r.load_date))
        .timestamp(m().map(|r| Some(r.m.event_at)))
        .str(m().map(|r| Some(r.m.location.as_str())))
        .str(m().map(|r| Some(r.sku.as_str())))
        .str(m().map(|r| Some(r.m.kind.as_str())))
        .int(m().map(|r| Some(r.m.qty)))
        .str(m().map(|r| r.m.reason_code.as_deref()))
        .str(m().map(|r| r.m.reference.as_deref()))
        .str(m().map(|r| r.m.counterparty.as_deref()))
        .str(m().map(|r| r.bundle.as_deref()))
        .str(m().map(|r| Some(&*r.file)))
        .int(m().map(|r| Some(r.line as i64)))
        .str(m().map(|_| rid))
        .finish()?;
    let movements = write_replacing(warehouse, &tables::MOVEMENTS, batch, replace_predicate(&loaded.movement_keys, "load_date"));

    let all_keys: BTreeSet<_> = loaded.snapshot_keys.iter().chain(&loaded.movement_keys).chain(&loaded.count_keys).cloned().collect();
    let q = || loaded.rows(|l| &l.quarantine);
    let messages: Vec<String> = q().map(|r| format!("{}:{}: field '{}': {}", r.file, r.line, r.error.field, r.error.message)).collect();
    let batch = BatchBuilder::new(&tables::QUARANTINE)
        .str(q().map(|_| rid))
        .str(q().map(|r| Some(&*r.system)))
        .date(q().map(|r| r.load_date))
        .str(q().map(|r| Some(&*r.file)))
        .int(q().map(|r| Some(r.line as i64)))
        .str(q().map(|r| Some(r.error.field.as_str())))
        .str(q().map(|r| Some(r.raw.as_str())))
        .str(messages.iter().map(|m| Some(m.as_str())))
        .finish()?;
    let quarantine = write_replacing(warehouse, &tables::QUARANTINE, batch, replace_predicate(&all_keys, "load_date"));

    let u = || loaded.rows(|l| &l.unmapped);
    let batch = BatchBuilder::new(&tables::UNMAPPED_ROWS)
        .str(u().map(|r| Some(&*r.system)))
        .date(u().map(|r| r.load_date))
        .str(u().map(|r| Some(&*r.file)))
        .int(u().map(|r| Some(r.line as i64)))
        .str(u().map(|r| Some(r.location.as_str())))
        .str(u().map(|r| Some(r.external_id.as_str())))
        .int(u().map(|r| r.units))
        .str(u().map(|_| rid))
        .finish()?;
    let unmapped = write_replacing(warehouse, &tables::UNMAPPED_ROWS, batch, replace_predicate(&all_keys, "load_date"));
    // Separate tables, each its own commit: written side by side. Counts come after the
    // snapshots, whose book quantities they freeze.
    futures::try_join!(snapshots, movements, quarantine, unmapped)?;
    debug!(seconds = clock.elapsed().as_secs_f64(), "snapshots, movements, quarantine and unmapped rows written");
    let book = book_quantities(loaded, warehouse).await?;
    let c = || loaded.rows(|l| &l.counts);
    let batch = BatchBuilder::new(&tables::COUNTS)
        .str(c().map(|r| Some(&*r.system)))
        .date(c().map(|r| r.load_date))
        .date(c().map(|r| Some(r.c.count_date)))
        .str(c().map(|r| Some(r.c.location.as_str())))
        .str(c().map(|r| Some(r.sku.as_str())))
        .int(c().map(|r| Some(r.c.counted_qty)))
        .int(c().map(|r| book.get(&(r.c.count_date, r.c.location.clone(), r.sku.clone())).copied().flatten()))
        .boolean(c().map(|r| Some(r.c.blind)))
        .str(c().map(|r| r.bundle.as_deref()))
        .str(c().map(|r| Some(&*r.file)))
        .int(c().map(|r| Some(r.line as i64)))
        .str(c().map(|_| rid))
        .finish()?;
    write_replacing(warehouse, &tables::COUNTS, batch, replace_predicate(&loaded.count_keys, "load_date")).await?;
    debug!(seconds = clock.elapsed().as_secs_f64(), "counts written");
    rebuild_unmapped_skus(warehouse).await
}

fn bucket_value(b: &Buckets, name: &str) -> Option<i64> {
    match name {
        "on_hand" => b.on_hand,
        "available" => b.available,
        "committed" => b.committed,
        "reserved" => b.reserved,
        "inbound" => b.inbound,
        "in_transit" => b.in_transit,
        "unsellable" => b.unsellable,
        "pending_inspection" => b.pending_inspection,
        other => unreachable!("unknown bucket {other}"),
    }
}

/// The authoritative on-hand at each count's location, from the newest snapshot on or before
/// the count date (at most a week older), frozen into `counts.book_qty` when the count is
/// loaded: a later correction of the snapshot does not rewrite history.
async fn book_quantities(loaded: &Loaded, warehouse: &Warehouse) -> Result<HashMap<(NaiveDate, String, String), Option<i64>>> {
    let Some(first) = loaded.rows(|l| &l.counts).map(|c| c.c.count_date).min() else { return Ok(HashMap::new()) };
    let last = loaded.rows(|l| &l.counts).map(|c| c.c.count_date).max().expect("non-empty");
    let ctx = warehouse.session(&["snapshots", "locations", "authority"]).await?;
    let sql = format!(
        "select arrow_cast(s.snapshot_date, 'Int32'), s.location_id, s.sku, s.on_hand
         from snapshots s
         join locations l on l.location_id = s.location_id
         join authority a on a.location_type = l.location_type and a.system = s.system
         where s.snapshot_date between DATE '{}' and DATE '{last}'",
        first - chrono::Days::new(7)
    );
    let batches = crate::warehouse::collect(&ctx, "looking up book quantities for counts", &sql).await?;
    let mut history: HashMap<(String, String), std::collections::BTreeMap<i64, Option<i64>>> = HashMap::new();
    for batch in batches {
        let days = crate::warehouse::integers(&batch, 0)?;
        let locations = crate::warehouse::strings(&batch, 1)?;
        let skus = crate::warehouse::strings(&batch, 2)?;
        let on_hand = crate::warehouse::integers(&batch, 3)?;
        for (((day, location), sku), qty) in days.into_iter().zip(locations).zip(skus).zip(on_hand) {
            if let (Some(day), Some(location), Some(sku)) = (day, location, sku) {
                history.entry((location, sku)).or_default().insert(day, qty);
            }
        }
    }
    let mut book = HashMap::new();
    for c in loaded.rows(|l| &l.counts) {
        let day = tables::days_since_epoch(c.c.count_date) as i64;
        let qty = history
            .get(&(c.c.location.clone(), c.sku.clone()))
            .and_then(|h| h.range(day - 7..=day).next_back())
            .and_then(|(_, q)| *q);
        book.insert((c.c.count_date, c.c.location.clone(), c.sku.clone()), qty);
    }
    Ok(book)
}

async fn rebuild_unmapped_skus(warehouse: &Warehouse) -> Result<()> {
    let ctx = warehouse.session(&["unmapped_rows"]).await?;
    let sql = "select system, external_id, min(load_date) as first_seen, max(load_date) as last_seen,
                      count(*) as rows, sum(units) as units
               from unmapped_rows group by system, external_id order by system, external_id";
    let batches = crate::warehouse::collect(&ctx, "building unmapped_skus", sql).await?;
    let spec = crate::warehouse::TableSpec {
        name: "unmapped_skus",
        schema: batches.first().map(|b| b.schema()).unwrap_or_else(unmapped_skus_schema),
        partition_by: &[],
    };
    warehouse.write(&spec, batches, Write::All).await
}

fn unmapped_skus_schema() -> arrow::datatypes::SchemaRef {
    use arrow::datatypes::{DataType, Field, Schema};
    std::sync::Arc::new(Schema::new(vec![
        Field::new("system", DataType::Utf8, true),
        Field::new("external_id", DataType::Utf8, true),
        Field::new("first_seen", DataType::Date32, true),
        Field::new("last_seen", DataType::Date32, true),
        Field::new("rows", DataType::Int64, false),
        Field::new("units", DataType::Int64, true),
    ]))
}

async fn write_reference(pipeline: &Pipeline, r: &Reference, warehouse: &Warehouse) -> Result<()> {
    let s = &r.skus;
    let batch = BatchBuilder::new(&tables::SKUS)
        .str(s.iter().map(|x| Some(x.sku.as_str())))
        .str(s.iter().map(|x| Some(x.product_id.as_str())))
        .str(s.iter().map(|x| Some(x.title.as_str())))
        .str(s.iter().map(|x| x.option1.as_deref()))
        .str(s.iter().map(|x| x.option2.as_deref()))
        .float(s.iter().map(|x| Some(x.unit_cost)))
        .float(s.iter().map(|x| Some(x.price)))
        .int(s.iter().map(|x| Some(x.case_pack)))
        .int(s.iter().map(|x| Some(x.moq)))
        .float(s.iter().map(|x| Some(x.lead_time_days)))
        .float(s.iter().map(|x| Some(x.lead_time_sd)))
        .boolean(s.iter().map(|x| Some(x.is_bundle)))
        .finish()?;
    let skus = batch;
    let l = &r.locations;
    let batch = BatchBuilder::new(&tables::LOCATIONS)
        .str(l.iter().map(|x| Some(x.location_id.as_str())))
        .str(l.iter().map(|x| Some(x.name.as_str())))
        .str(l.iter().map(|x| Some(x.location_type.as_str())))
        .str(l.iter().map(|x| Some(x.region.as_str())))
        .str(l.iter().map(|x| Some(x.country.as_str())))
        .finish()?;
    let locations = batch;
    let a = &r.aliases;
    let batch = BatchBuilder::new(&tables::SKU_ALIASES)
        .str(a.iter().map(|x| Some(x.system.as_str())))
        .str(a.iter().map(|x| Some(x.external_id.as_str())))
        .str(a.iter().map(|x| Some(x.sku.as_str())))
        .finish()?;
    let aliases = batch;
    let b = &r.bundles;
    let batch = BatchBuilder::new(&tables::BUNDLES)
        .str(b.iter().map(|x| Some(x.bundle_sku.as_str())))
        .str(b.iter().map(|x| Some(x.component_sku.as_str())))
        .int(b.iter().map(|x| Some(x.qty)))
        .finish()?;
    let bundles = batch;
    let batch = BatchBuilder::new(&tables::AUTHORITY)
        .str(pipeline.authority.keys().map(|k| Some(k.as_str())))
        .str(pipeline.authority.values().map(|v| Some(v.as_str())))
        .finish()?;
    let authority = batch;
    let (thresholds_spec, thresholds) = tables::thresholds_batch(&pipeline.thresholds)?;
    // Six small tables, each its own commit: written side by side.
    let tables = [
        (&*tables::SKUS, skus),
        (&*tables::LOCATIONS, locations),
        (&*tables::SKU_ALIASES, aliases),
        (&*tables::BUNDLES, bundles),
        (&*tables::AUTHORITY, authority),
        (&thresholds_spec, thresholds),
    ];
    futures::future::try_join_all(tables.into_iter().map(|(spec, batch)| warehouse.replace_if_changed(spec, vec![batch]))).await?;
    Ok(())
}

async fn record_run(report: &RunReport, options: &RunOptions, warehouse: &Warehouse) -> Result<()> {
    let detail = report
        .systems
        .iter()
        .map(|s| {
            format!(
                "{{\"system\":{:?},\"status\":{:?},\"rows_in\":{},\"accepted\":{},\"quarantined\":{},\"unmapped\":{},\"errors\":{}}}",
                s.system, s.status, s.rows_in, s.accepted, s.quarantined, s.unmapped,
                serde_json::to_string(&s.errors).unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    let one = |v: i64| std::iter::once(Some(v));
    // A manual run of every file serves no slot: NULL.
    let scheduled = options.scheduled_for.or_else(|| options.date.map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()));
    let batch = BatchBuilder::new(&tables::RUNS)
        .str(std::iter::once(Some(report.run_id.as_str())))
        .str(std::iter::once(Some(report.pipeline.as_str())))
        .timestamp(std::iter::once(scheduled))
        .timestamp(std::iter::once(Some(report.started_at)))
        .timestamp(std::iter::once(Some(report.finished_at)))
        .str(std::iter::once(Some(report.status)))
        .int(one(report.total(|s| s.rows_in)))
        .int(one(report.total(|s| s.accepted)))
        .int(one(report.total(|s| s.quarantined)))
        .int(one(report.total(|s| s.unmapped)))
        .str(std::iter::once(Some(format!("[{detail}]").as_str())))
        .str(std::iter::once(Some(options.trigger.as_str())))
        .finish()?;
    let predicate = format!("run_id = {}", crate::warehouse::sql_string(&report.run_id));
    write_replacing(warehouse, &tables::RUNS, batch, Some(predicate.clone())).await?;
    let s = &report.systems;
    let errors: Vec<String> = s.iter().map(|x| x.errors.join("; ")).collect();
    let batch = BatchBuilder::new(&tables::RUN_SYSTEMS)
        .str(s.iter().map(|_| Some(report.run_id.as_str())))
        .str(s.iter().map(|x| Some(x.system.as_str())))
        .str(s.iter().map(|x| Some(x.kind.as_str())))
        .str(s.iter().map(|x| Some(x.status)))
        .int(s.iter().map(|x| Some(x.files)))
        .int(s.iter().map(|x| Some(x.rows_in)))
        .int(s.iter().map(|x| Some(x.accepted)))
        .int(s.iter().map(|x| Some(x.quarantined)))
        .int(s.iter().map(|x| Some(x.unmapped)))
        .str(errors.iter().map(|e| (!e.is_empty()).then_some(e.as_str())))
        .finish()?;
    write_replacing(warehouse, &tables::RUN_SYSTEMS, batch, Some(predicate)).await
}

/// Records a run that died (a panic) before it could report: status `failed`, the message
/// in `detail`, so the ledger shows it and catch-up does not run the slot again.
pub async fn record_failed(pipeline: &Pipeline, options: &RunOptions, started_at: DateTime<Utc>, message: &str, warehouse: &Warehouse) -> Result<String> {
    let mut fingerprint = Fingerprint::default();
    fingerprint.add(pipeline.name.as_bytes());
    fingerprint.add(format!("{:?}", options.scheduled_for).as_bytes());
    fingerprint.add(b"failed");
    let date = options.date.map(|d| d.to_string()).unwrap_or_else(|| "all".into());
    let report = RunReport {
        run_id: format!("{}-{date}-{:016x}", pipeline.name, fingerprint.0),
        pipeline: pipeline.name.clone(),
        status: "failed",
        started_at,
        finished_at: Utc::now(),
        systems: vec![SystemReport {
            system: "*".into(),
            kind: "run".into(),
            status: "failed",
            errors: vec![message.to_string()],
            ..Default::default()
        }],
    };
    record_run(&report, options, warehouse).await?;
    Ok(report.run_id)
}

/// FNV-1a over everything a run read: the same files give the same run id, so re-running
/// them rewrites identical rows.
#[derive(Default)]
struct Fingerprint(u64);

impl Fingerprint {
    fn add(&mut self, bytes: &[u8]) {
        if self.0 == 0 {
            self.0 = 0xcbf2_9ce4_8422_2325;
        }
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // Separator, so ("ab","c") and ("a","bc") differ.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }
}
