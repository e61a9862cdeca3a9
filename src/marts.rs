//! Builds the marts by running the SQL models in `sql/` with DataFusion. Staging models are
//! views; marts are materialised as Delta tables, in dependency order. Each mart may have a
//! `<model>.test.sql` beside it: queries that return the rows breaking a rule.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;
use tracing::info;

use crate::config::Thresholds;
use crate::{drift, planning};
use crate::error::{Error, Result};
use crate::tables;
use crate::warehouse::{TableSpec, Warehouse, Write, collect, integers, strings};
use crate::changes;

pub struct Model {
    pub name: &'static str,
    pub sql: &'static str,
}

/// How a mart is made: a SQL model, or a statistics function over the session.
pub enum Recipe {
    Sql(&'static str),
    /// A SQL model of one row set per day (`$first_day` to `$last_day`), partitioned by
    /// `snapshot_date`: built a range of days at a time, and only for the days that changed.
    Daily(&'static str),
    /// A SQL model of rows per week: only the weeks from `$first_week` on are recomputed
    /// (every week in a full build; none when no day changed).
    Weekly(&'static str),
    /// A walk over the days (exceptions): given the first new day when the build only
    /// added days after the ones it walked before, else `None` (replay every day).
    Walk(for<'a> fn(&'a SessionContext, &'a Thresholds, Option<i64>) -> BoxFuture<'a, Result<Vec<RecordBatch>>>),
    /// The same, made by a statistics function given the first week to recompute.
    WeeklyRust(for<'a> fn(&'a SessionContext, &'a Thresholds, NaiveDate) -> BoxFuture<'a, Result<Vec<RecordBatch>>>),
    Rust(for<'a> fn(&'a SessionContext, &'a Thresholds) -> BoxFuture<'a, Result<Vec<RecordBatch>>>),
}

pub struct Mart {
    pub name: &'static str,
    pub recipe: Recipe,
    /// Queries returning the rows that break a rule (`<model>.test.sql`).
    pub tests: Option<&'static str>,
}

pub const STAGING: &[Model] = &[
    Model { name: "stg_authority", sql: include_str!("../sql/staging/stg_authority.sql") },
    Model { name: "stg_snapshots", sql: include_str!("../sql/staging/stg_snapshots.sql") },
    Model { name: "stg_transfers", sql: include_str!("../sql/staging/stg_transfers.sql") },
    Model { name: "stg_sales", sql: include_str!("../sql/staging/stg_sales.sql") },
];

/// Marts in dependency order.
pub const MARTS: &[Mart] = &[
    Mart { name: "coverage", recipe: Recipe::Daily(include_str!("../sql/marts/coverage.sql")), tests: None },
    Mart {
        name: "positions",
        recipe: Recipe::Daily(include_str!("../sql/marts/positions.sql")),
        tests: Some(include_str!("../sql/marts/positions.test.sql")),
    },
    Mart {
        name: "variances",
        recipe: Recipe::Daily(include_str!("../sql/marts/variances.sql")),
        tests: Some(include_str!("../sql/marts/variances.test.sql")),
    },
    Mart { name: "sku_classes", recipe: Recipe::Rust(drift::abc::build), tests: None },
    Mart { name: "variance_trends", recipe: Recipe::WeeklyRust(drift::trends::build), tests: None },
    Mart { name: "drift_patterns", recipe: Recipe::Rust(drift::patterns::build), tests: None },
    Mart {
        name: "exceptions",
        recipe: Recipe::Walk(drift::exceptions::build),
        tests: Some(include_str!("../sql/marts/exceptions.test.sql")),
    },
    Mart { name: "kpi_weekly", recipe: Recipe::Weekly(include_str!("../sql/marts/kpi_weekly.sql")), tests: None },
    Mart { name: "cycle_count_plan", recipe: Recipe::Rust(planning::counts::build), tests: None },
    Mart { name: "buffer_recommendations", recipe: Recipe::Rust(planning::buffers::build), tests: None },
    Mart { name: "purchase_recommendations", recipe: Recipe::Rust(planning::orders::build), tests: None },
];

/// Every table a session over the warehouse can see.
pub fn all_tables() -> Vec<&'static str> {
    let mut names: Vec<&str> = tables::RAW.to_vec();
    names.extend(tables::REFERENCE);
    names.extend(MARTS.iter().map(|m| m.name));
    names
}

#[derive(Debug)]
pub struct BuildReport {
    /// Rows written per mart (for day marts, the rows of the days recomputed).
    pub rows: Vec<(&'static str, usize)>,
    /// Model tests that returned rows: (model, first line of the failing query, rows).
    pub failed_tests: Vec<(&'static str, String, usize)>,
    /// Which days the day marts were recomputed for.
    pub scope: changes::Scope,
}

/// Weeks of a weekly SQL model computed at a time (bounds its memory).
const WEEKS_PER_PASS: u64 = 2;

fn monday(day: NaiveDate) -> NaiveDate {
    day.week(chrono::Weekday::Mon).first_day()
}

/// Stands for "every week" in weekly models.
const EARLIEST: NaiveDate = NaiveDate::from_ymd_opt(1900, 1, 1).expect("a valid date");

/// Rows of snapshots per chunk of days: bounds the memory of a day-mart query.
const CHUNK_SNAPSHOT_ROWS: usize = 3_000_000;

/// Builds every mart. Day marts are recomputed only for the days whose inputs changed since
/// the last build, unless `full` (or the change needs it).
pub async fn build(warehouse: &Warehouse, full: bool) -> Result<BuildReport> {
    if warehouse.load("locations").await?.is_none() {
        return Err(Error::Usage(format!(
            "the warehouse at {} holds no ingested data yet: run `stocktake run PIPELINE` (or `stocktake snapshot`) first",
            warehouse.root()
        )));
    }
    let ctx = warehouse.session(&all_tables()).await?;
    for model in STAGING {
        let sql = format!("create or replace view {} as {}", model.name, strip_comments(model.sql));
        collect(&ctx, &format!("model {}", model.name), &sql).await?;
    }
    let thresholds = read_thresholds(&ctx).await?;
    let mut now = changes::current(warehouse, &ctx, &models_text()).await?;
    let last = changes::last(warehouse).await?;
    changes::annotate(&ctx, last.as_ref(), &mut now).await?;
    let mut scope = match full {
        true => changes::Scope::Full("asked for a full build".into()),
        false => changes::scope(last.as_ref(), &now),
    };
    if !matches!(scope, changes::Scope::Full(_)) && !day_marts_current(warehouse).await? {
        scope = changes::Scope::Full("the day marts are missing or partitioned differently".into());
    }
    info!(?scope, "build scope");
    let days = snapshot_days(&ctx).await?;
    // Walks go on from the new days when the build only adds days after those built before.
    let built_until = newest_built_day(&ctx).await?;
    let append_from = match (&scope, built_until) {
        (changes::Scope::From(day), Some(until)) if *day > until => Some((*day - NaiveDate::default()).num_days()),
        _ => None,
    };
    let chunks = chunk_days(&days, &scope, chunk_len(&ctx, days.len()).await?);

    // Weekly marts: the Monday of the first changed day (EARLIEST: every week; None: none).
    let first_week = match &scope {
        changes::Scope::Full(_) => Some(EARLIEST),
        changes::Scope::From(day) => Some(monday(*day)),
        changes::Scope::Nothing => None,
    };
    let mut report = BuildReport { rows: vec![], failed_tests: vec![], scope: scope.clone() };
    let progress = crate::progress::bar("build", MARTS.len() as u64);
    for mart in MARTS {
        progress.set_message(mart.name);
        info!(mart = mart.name, "building mart");
        let started = std::time::Instant::now();
        let rows = match &mart.recipe {
            Recipe::Daily(sql) => {
                let mut rows = 0;
                let whole = matches!(scope, changes::Scope::Full(_));
                for (i, &(first, last)) in chunks.iter().enumerate() {
                    let bind = |sql: &str| bind_days(sql, first, last, thresholds.lag_days);
                    let context = format!("mart {} ({first} to {last})", mart.name);
                    let batches = collect(&ctx, &context, &bind(sql)).await?;
                    rows += batches.iter().map(|b| b.num_rows()).sum::<usize>();
                    let schema = schema_of(&ctx, &context, &bind(sql), &batches).await?;
                    let spec = TableSpec { name: mart.name, schema, partition_by: &["snapshot_date"] };
                    let mode = match whole && i == 0 {
                        true => Write::All,
                        false => Write::Where(format!("snapshot_date >= DATE '{first}' AND snapshot_date <= DATE '{last}'")),
                    };
                    warehouse.write(&spec, batches, mode).await?;
                    warehouse.register(&ctx, &[mart.name]).await?;
                    if let Some(tests) = mart.tests {
                        report.failed_tests.extend(run_tests(&ctx, mart.name, &bind(tests)).await?);
                    }
                }
                if chunks.is_empty() && (whole || warehouse.load(mart.name).await?.is_none()) {
                    let schema = schema_of(&ctx, mart.name, &bind_days(sql, NaiveDate::MIN, NaiveDate::MIN, 0), &[]).await?;
                    warehouse.write(&TableSpec { name: mart.name, schema, partition_by: &["snapshot_date"] }, vec![], Write::All).await?;
                    warehouse.register(&ctx, &[mart.name]).await?;
                }
                rows
            }
            Recipe::Weekly(_) | Recipe::WeeklyRust(_) | Recipe::Walk(_) if first_week.is_none() && warehouse.load(mart.name).await?.is_some() => 0,
            Recipe::Weekly(sql) if !days.is_empty() => {
                let first = first_week.unwrap_or(EARLIEST).max(monday(days[0]));
                let whole = first_week == Some(EARLIEST);
                let mut rows = 0;
                let mut start = first;
                while start <= *days.last().expect("not empty") {
                    let end = start + chrono::Days::new(7 * WEEKS_PER_PASS);
                    let context = format!("mart {} (weeks {start} to {end})", mart.name);
                    let bound = strip_comments(sql).replace("$first_week", &format!("DATE '{start}'")).replace("$end_week", &format!("DATE '{end}'"));
                    let batches = collect(&ctx, &context, &bound).await?;
                    rows += batches.iter().map(|b| b.num_rows()).sum::<usize>();
                    let schema = schema_of(&ctx, &context, &bound, &batches).await?;
                    let mode = match (start == first, whole) {
                        (true, true) => Write::All,
                        (true, false) => Write::Where(format!("week >= DATE '{start}'")),
                        (false, _) => Write::Where(format!("week >= DATE '{start}' AND week < DATE '{end}'")),
                    };
                    warehouse.write(&TableSpec { name: mart.name, schema, partition_by: &[] }, batches, mode).await?;
                    start = end;
                }
                warehouse.register(&ctx, &[mart.name]).await?;
                rows
            }
            recipe => {
                let context = format!("mart {}", mart.name);
                let week = first_week.unwrap_or(NaiveDate::MIN);
                let sql = match recipe {
                    Recipe::Sql(sql) | Recipe::Daily(sql) => Some(sql.to_string()),
                    // No day at all: one pass over every (empty) week.
                    Recipe::Weekly(sql) => Some(strip_comments(sql).replace("$first_week", &format!("DATE '{}'", week.max(EARLIEST))).replace("$end_week", "DATE '9999-12-31'")),
                    Recipe::Rust(_) | Recipe::WeeklyRust(_) | Recipe::Walk(_) => None,
                };
                let batches = match (recipe, &sql) {
                    (Recipe::Rust(build), _) => build(&ctx, &thresholds).await?,
                    (Recipe::WeeklyRust(build), _) => build(&ctx, &thresholds, week.max(EARLIEST)).await?,
                    (Recipe::Walk(build), _) => build(&ctx, &thresholds, append_from).await?,
                    (_, Some(sql)) => collect(&ctx, &context, sql).await?,
                    (_, None) => unreachable!("every other recipe is SQL"),
                };
                let rows = batches.iter().map(|b| b.num_rows()).sum();
                let schema = match (&sql, batches.is_empty()) {
                    (_, false) => batches[0].schema(),
                    (Some(sql), true) => schema_of(&ctx, &context, sql, &[]).await?,
                    (None, true) => return Err(Error::Usage(format!("{context} produced no schema"))),
                };
                let mode = match (recipe, first_week) {
                    (Recipe::Weekly(_) | Recipe::WeeklyRust(_), Some(week)) if week > EARLIEST => Write::Where(format!("week >= DATE '{week}'")),
                    _ => Write::All,
                };
                warehouse.write(&TableSpec { name: mart.name, schema, partition_by: &[] }, batches, mode).await?;
                warehouse.register(&ctx, &[mart.name]).await?;
                if let Some(tests) = mart.tests {
                    report.failed_tests.extend(run_tests(&ctx, mart.name, tests).await?);
                }
                rows
            }
        };
        info!(mart = mart.name, rows, seconds = started.elapsed().as_secs_f64(), peak_rss_mib = peak_rss_mib(), "mart built");
        progress.inc(1);
        report.rows.push((mart.name, rows));
    }
    progress.finish_and_clear();
    changes::save(warehouse, &now).await?;
    Ok(report)
}

/// The process's peak resident memory so far (Linux; `None` elsewhere), for `-v` output.
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? / 1024)
}

/// The schema of a model's result: from its batches, or from its plan when it returned none.
async fn schema_of(ctx: &SessionContext, context: &str, sql: &str, batches: &[RecordBatch]) -> Result<SchemaRef> {
    match batches.first() {
        Some(b) => Ok(b.schema()),
        None => Ok(ctx.sql(sql).await.map_err(|e| Error::query(context, e))?.schema().inner().clone()),
    }
}

/// The model texts, so that a build after a model changed is a full one.
fn models_text() -> String {
    let mut text: Vec<&str> = STAGING.iter().map(|m| m.sql).collect();
    text.extend(MARTS.iter().filter_map(|m| match m.recipe {
        Recipe::Sql(sql) | Recipe::Daily(sql) | Recipe::Weekly(sql) => Some(sql),
        Recipe::Rust(_) | Recipe::WeeklyRust(_) | Recipe::Walk(_) => None,
    }));
    text.join("\n")
}

/// Whether every day mart exists, partitioned by day (warehouses built before day marts
/// were partitioned need one full build).
async fn day_marts_current(warehouse: &Warehouse) -> Result<bool> {
    for mart in MARTS.iter().filter(|m| matches!(m.recipe, Recipe::Daily(_))) {
        let Some(table) = warehouse.load(mart.name).await? else { return Ok(false) };
        let snapshot = table.snapshot().map_err(|e| Error::delta(mart.name, e))?;
        if snapshot.metadata().partition_columns() != &["snapshot_date".to_string()] {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The newest day the last build covered (`coverage` as it stands before this build).
async fn newest_built_day(ctx: &SessionContext) -> Result<Option<NaiveDate>> {
    if !ctx.table_exist("coverage").map_err(|e| Error::query("coverage", e))? {
        return Ok(None);
    }
    let batches = collect(ctx, "reading coverage", "select cast(max(snapshot_date) as varchar) from coverage").await?;
    Ok(batches.iter().find(|b| b.num_rows() > 0).map(|b| strings(b, 0)).transpose()?.and_then(|v| v.into_iter().flatten().next()).and_then(|d| d.parse().ok()))
}

/// Every day that has snapshots, oldest first.
async fn snapshot_days(ctx: &SessionContext) -> Result<Vec<NaiveDate>> {
    let sql = "select distinct cast(snapshot_date as varchar) from snapshots order by 1";
    let mut days = vec![];
    for batch in collect(ctx, "listing snapshot days", sql).await? {
        days.extend(strings(&batch, 0)?.into_iter().flatten().filter_map(|d| d.parse::<NaiveDate>().ok()));
    }
    Ok(days)
}

/// Days per chunk: about `CHUNK_SNAPSHOT_ROWS` snapshot rows.
async fn chunk_len(ctx: &SessionContext, days: usize) -> Result<usize> {
    let batches = collect(ctx, "counting snapshots", "select count(*) from snapshots").await?;
    let rows = batches.first().map(|b| integers(b, 0)).transpose()?.and_then(|v| v.first().copied().flatten()).unwrap_or(0) as usize;
    Ok((CHUNK_SNAPSHOT_ROWS * days.max(1) / rows.max(1)).clamp(1, 366))
}

/// The ranges of days to recompute, `len` days with snapshots at a time. A range runs from
/// the day after the previous one, so days that lost their snapshots are cleared too.
fn chunk_days(days: &[NaiveDate], scope: &changes::Scope, len: usize) -> Vec<(NaiveDate, NaiveDate)> {
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

/// Fills a day model's `$first_day`, `$last_day`, `$lag_first_day` (the first day a lag can
/// look back to) and its lag expressions (see `sql/marts/variances.sql`).
fn bind_days(sql: &str, first: NaiveDate, last: NaiveDate, lag_days: i64) -> String {
    let lag_days = lag_days.max(0);
    let lag_first = first.checked_sub_days(chrono::Days::new(lag_days as u64)).unwrap_or(first);
    let (priors, lag_match) = lag_expressions(lag_days);
    strip_comments(sql)
        .replace("$lag_first_day", &format!("DATE '{lag_first}'"))
        .replace("$first_day", &format!("DATE '{first}'"))
        .replace("$last_day", &format!("DATE '{last}'"))
        .replace("$prior_columns", &priors)
        .replace("$lag_match", &lag_match)
}

/// The previous `lag_days` positions of each SKU-location as window columns, and the days
/// back to the nearest one equal to the system's number in the compared bucket. Rows are
/// days in order, so the previous L rows hold every day within L days back.
fn lag_expressions(lag_days: i64) -> (String, String) {
    let over = "over (partition by sku, location_id order by snapshot_date)";
    let mut priors = String::new();
    let mut arms = String::new();
    let on_hand_bucket = "s.on_hand is not null and p.on_hand is not null";
    for j in 1..=lag_days {
        priors.push_str(&format!(
            ", lag(arrow_cast(snapshot_date, 'Int32'), {j}) {over} as prior_day_{j}, lag(on_hand, {j}) {over} as prior_on_hand_{j}, lag(available, {j}) {over} as prior_available_{j}"
        ));
        arms.push_str(&format!(
            " when p.prior_day_{j} >= s.day_number - {lag_days} and (case when {on_hand_bucket} then p.prior_on_hand_{j} else p.prior_available_{j} end) = (case when {on_hand_bucket} then s.on_hand else s.available end) then cast(s.day_number - p.prior_day_{j} as bigint)"
        ));
    }
    let lag_match = if arms.is_empty() { "cast(null as bigint)".to_string() } else { format!("(case{arms} end)") };
    (priors, lag_match)
}

async fn run_tests(ctx: &SessionContext, model: &'static str, tests: &str) -> Result<Vec<(&'static str, String, usize)>> {
    let mut failed = vec![];
    for query in strip_comments(tests).split(';').map(str::trim).filter(|q| !q.is_empty()) {
        let rows: usize = collect(ctx, &format!("test of {model}"), query).await?.iter().map(|b| b.num_rows()).sum();
        if rows > 0 {
            failed.push((model, query.lines().next().unwrap_or_default().to_string(), rows));
        }
    }
    Ok(failed)
}

/// The pipeline's thresholds as last written to the warehouse.
async fn read_thresholds(ctx: &SessionContext) -> Result<Thresholds> {
    let batches = collect(ctx, "reading thresholds", "select * from thresholds").await?;
    Ok(batches.iter().find(|b| b.num_rows() > 0).map(tables::thresholds_from).unwrap_or_default())
}

/// Drops `--` comments, so a model file can open with its documentation.
fn strip_comments(sql: &str) -> String {
    sql.lines().map(|l| l.split("--").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}
