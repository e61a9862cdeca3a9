//! Builds the marts by running the SQL models in `sql/` with DataFusion. Staging models are
//! views; marts are materialised as Delta tables, in dependency order. Each mart may have a
//! `<model>.test.sql` beside it: queries that return the rows breaking a rule (a day mart's
//! run on each range of days as it is computed).

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::future::BoxFuture;
use tracing::{debug, info};

use crate::config::Thresholds;
use crate::{drift, planning};
use crate::error::{Error, Result};
use crate::tables;
use crate::warehouse::{TableSpec, Warehouse, Write, collect};
use crate::changes;

mod days;
mod lag;
pub mod reports;
use days::*;
pub(crate) use days::monday;

pub struct Model {
    pub name: &'static str,
    pub sql: &'static str,
}

/// What a statistics function returns: the mart's rows, later.
pub type Batches<'a> = BoxFuture<'a, Result<Vec<RecordBatch>>>;

/// Finishes a day mart's rows for a range of days (first, last).
pub type DayStep = for<'a> fn(&'a SessionContext, Vec<RecordBatch>, (NaiveDate, NaiveDate), &'a Thresholds) -> Batches<'a>;

/// The mart's rows and the state kept for the next build.
pub type Kept<'a> = BoxFuture<'a, Result<(Vec<RecordBatch>, Vec<RecordBatch>)>>;

/// How a mart is made: a SQL model, or a statistics function over the session.
pub enum Recipe {
    Sql(&'static str),
    /// A SQL model of one row set per day (`$first_day` to `$last_day`), partitioned by
    /// `snapshot_date`: built a range of days at a time, and only for the days that changed;
    /// `then` finishes each range's rows (the variances' lag matching).
    Daily { sql: &'static str, then: Option<DayStep> },
    /// A SQL model of rows per week: only the weeks from `$first_week` on are recomputed
    /// (every week in a full build; none when no day changed).
    Weekly(&'static str),
    /// Made by a function that may go on from what it built before (the exceptions' walk,
    /// the week's ABC classes): given the first new day when the build only added days after
    /// the ones built before, else `None` (make everything again).
    Walk(for<'a> fn(&'a SessionContext, &'a Thresholds, Option<i64>) -> Batches<'a>),
    /// A `Walk` that keeps what it needs to go on in tables of its own (`state`, and any it
    /// writes itself among `also_kept`): given the first new day, with those tables in the
    /// session, when the build only adds days; returns the mart's rows and the state to keep.
    Sliding {
        state: &'static str,
        also_kept: &'static [&'static str],
        build: for<'a> fn(&'a Warehouse, &'a SessionContext, &'a Thresholds, Option<i64>) -> Kept<'a>,
    },
    /// The same, made by a statistics function given the first week to recompute.
    WeeklyRust(for<'a> fn(&'a SessionContext, &'a Thresholds, NaiveDate) -> Batches<'a>),
    Rust(for<'a> fn(&'a SessionContext, &'a Thresholds) -> Batches<'a>),
}

pub struct Mart {
    pub name: &'static str,
    pub recipe: Recipe,
    /// The marts it reads: it is built once they are (checked against its SQL or source by
    /// the unit test `every_mart_is_built_after_the_marts_it_reads`).
    pub reads: &'static [&'static str],
    /// Queries returning the rows that break a rule (`<model>.test.sql`).
    pub tests: Option<&'static str>,
}

impl Mart {
    /// The model's SQL, for marts made by one.
    fn recipe_sql(&self) -> Option<&'static str> {
        match self.recipe {
            Recipe::Sql(sql) | Recipe::Daily { sql, .. } | Recipe::Weekly(sql) => Some(sql),
            Recipe::Rust(_) | Recipe::WeeklyRust(_) | Recipe::Walk(_) | Recipe::Sliding { .. } => None,
        }
    }
}

pub const STAGING: &[Model] = &[
    Model { name: "stg_authority", sql: include_str!("../../sql/staging/stg_authority.sql") },
    Model { name: "stg_snapshots", sql: include_str!("../../sql/staging/stg_snapshots.sql") },
    Model { name: "stg_transfers", sql: include_str!("../../sql/staging/stg_transfers.sql") },
    Model { name: "stg_sales", sql: include_str!("../../sql/staging/stg_sales.sql") },
];

/// Marts in dependency order.
pub const MARTS: &[Mart] = &[
    Mart { name: "coverage", reads: &[], recipe: Recipe::Daily { sql: include_str!("../../sql/marts/coverage.sql"), then: None }, tests: None },
    Mart {
        name: "positions",
        reads: &[],
        recipe: Recipe::Daily { sql: include_str!("../../sql/marts/positions.sql"), then: None },
        tests: Some(include_str!("../../sql/marts/positions.test.sql")),
    },
    Mart {
        name: "variances",
        reads: &["coverage", "positions"],
        recipe: Recipe::Daily { sql: include_str!("../../sql/marts/variances.sql"), then: Some(|ctx, rows, days, t| Box::pin(lag::match_lags(ctx, rows, days, t.lag_days))) },
        tests: Some(include_str!("../../sql/marts/variances.test.sql")),
    },
    Mart { name: "sku_classes", reads: &["coverage", "positions"], recipe: Recipe::Walk(drift::abc::build), tests: None },
    Mart { name: "variance_trends", reads: &["variances", "sku_classes"], recipe: Recipe::WeeklyRust(drift::trends::build), tests: None },
    Mart {
        name: "drift_patterns",
        reads: &["coverage", "positions", "variances", "sku_classes"],
        recipe: Recipe::Sliding { state: drift::patterns::STATE, also_kept: &[drift::points::TABLE], build: drift::patterns::build },
        tests: None,
    },
    Mart {
        name: "exceptions",
        reads: &["coverage", "variances"],
        recipe: Recipe::Walk(drift::exceptions::build),
        tests: Some(include_str!("../../sql/marts/exceptions.test.sql")),
    },
    Mart { name: "kpi_weekly", reads: &["coverage", "variances", "sku_classes", "exceptions"], recipe: Recipe::Weekly(include_str!("../../sql/marts/kpi_weekly.sql")), tests: None },
    Mart { name: "cycle_count_plan", reads: &["coverage", "positions", "sku_classes", "drift_patterns", "exceptions"], recipe: Recipe::Rust(planning::counts::build), tests: None },
    Mart {
        name: "buffer_recommendations",
        reads: &["coverage", "positions", "variances", "sku_classes", "drift_patterns"],
        recipe: Recipe::Sliding { state: planning::buffers::STATE, also_kept: &[], build: planning::buffers::build },
        tests: None,
    },
    Mart { name: "purchase_recommendations", reads: &["coverage", "positions", "variances", "sku_classes", "exceptions"], recipe: Recipe::Rust(planning::orders::build), tests: None },
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

/// Builds every mart. Day marts are recomputed only for the days whose inputs changed since
/// the last build, unless `full` (or the change needs it).
pub async fn build(warehouse: &Warehouse, full: bool) -> Result<BuildReport> {
    if warehouse.load("locations").await?.is_none() {
        return Err(Error::Usage(format!(
            "the warehouse at {} holds no ingested data yet: run `stocktake run PIPELINE` (or `stocktake snapshot`) first",
            warehouse.root()
        )));
    }
    let clock = std::time::Instant::now();
    let ctx = warehouse.session(&all_tables()).await?;
    ctx.state_ref().write().config_mut().set_extension(std::sync::Arc::new(planning::SharedWindowSales::default()));
    debug!(seconds = clock.elapsed().as_secs_f64(), "tables registered");
    for model in STAGING {
        let sql = format!("create or replace view {} as {}", model.name, strip_comments(model.sql));
        collect(&ctx, &format!("model {}", model.name), &sql).await?;
    }
    let thresholds = read_thresholds(&ctx).await?;
    let mut now = changes::current(warehouse, &ctx, &models_text()).await?;
    debug!(seconds = clock.elapsed().as_secs_f64(), "inputs listed and fingerprinted");
    let last = changes::last(warehouse).await?;
    changes::annotate(&ctx, last.as_ref(), &mut now).await?;
    debug!(seconds = clock.elapsed().as_secs_f64(), "changes since the last build found");
    let mut scope = match full {
        true => changes::Scope::Full("asked for a full build".into()),
        false => changes::scope(last.as_ref(), &now),
    };
    if !matches!(scope, changes::Scope::Full(_)) && !day_marts_current(warehouse).await? {
        scope = changes::Scope::Full("the day marts are missing or partitioned differently".into());
    }
    info!(?scope, seconds = clock.elapsed().as_secs_f64(), "build scope");
    let coverage_kept_until = reports::register(&ctx, last.as_ref(), &scope)?;
    let days = changes::snapshot_days(&now);
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
    debug!(seconds = clock.elapsed().as_secs_f64(), "days planned");
    let authoritative_systems = authoritative_systems(&ctx).await?;
    let plan = Plan { thresholds, authoritative_systems, whole: matches!(scope, changes::Scope::Full(_)), days, chunks, first_week, append_from };

    let mut report = BuildReport { rows: vec![], failed_tests: vec![], scope };
    let progress = crate::progress::bar("build", MARTS.len() as u64);
    let plan = std::sync::Arc::new(plan);
    // Each mart starts once the marts it reads are built. Side by side only in a build of a
    // few days: such marts are small queries whose tails run on one core (a final aggregate,
    // the statistics in Rust, a commit), and one after the other they leave the second core
    // idle. In a full build each mart keeps both cores busy, and the last five marts took
    // 8.2 / 10.9 s side by side against 8.3 / 9.4 s one after the other (tier M).
    let side_by_side = if plan.whole { 1 } else { MARTS.len() };
    let one = |mart: &'static Mart| {
        let (warehouse, ctx, plan, progress) = (warehouse.clone(), ctx.clone(), plan.clone(), progress.clone());
        let build = async move {
            progress.set_message(mart.name);
            info!(mart = mart.name, "building mart");
            let started = std::time::Instant::now();
            let built = build_mart(&warehouse, &ctx, mart, &plan).await;
            if let Ok((rows, _)) = &built {
                info!(mart = mart.name, rows, seconds = started.elapsed().as_secs_f64(), peak_rss_mib = peak_rss_mib(), cpu_seconds = cpu_seconds(), "mart built");
            }
            progress.inc(1);
            built
        };
        // Side by side, a task of its own per mart, so that the runtime's threads share the
        // marts: one future holding them all would run every mart's Rust work on one thread.
        // One at a time, on this thread: as fast (tier-M full builds 55.9 / 57.2 / 59.1 s
        // against 57.0 / 57.8 / 56.2 s as tasks) with 1.2 GiB peak RSS instead of 1.5.
        let built: futures::future::BoxFuture<'static, Result<(usize, FailedTests)>> = if side_by_side == 1 {
            Box::pin(build)
        } else {
            Box::pin(joined(tokio::spawn(build), format!("building mart {}", mart.name)))
        };
        async move { (mart, built.await) }
    };
    let mut running = futures::stream::FuturesUnordered::new();
    let (mut built, mut failure) = (std::collections::HashSet::new(), None);
    let mut waiting: Vec<&'static Mart> = MARTS.iter().collect();
    loop {
        // After a failure nothing more starts, but every mart started finishes (none is
        // dropped halfway through its commit) before the failure is reported.
        while failure.is_none() && running.len() < side_by_side {
            let Some(next) = waiting.iter().position(|m| m.reads.iter().all(|r| built.contains(r))) else { break };
            running.push(one(waiting.remove(next)));
        }
        let Some((mart, result)) = futures::StreamExt::next(&mut running).await else { break };
        match result {
            Ok((rows, failed)) => {
                built.insert(mart.name);
                report.rows.push((mart.name, rows));
                report.failed_tests.extend(failed);
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if let Some(mart) = waiting.first() {
        return Err(Error::Usage(format!("mart {} reads marts that are never built: {:?}", mart.name, mart.reads)));
    }
    report.rows.sort_by_key(|(name, _)| MARTS.iter().position(|m| m.name == *name));
    progress.finish_and_clear();
    now.newest_reports = reports::newest(&ctx, coverage_kept_until).await?;
    changes::save(warehouse, &now).await?;
    Ok(report)
}

/// One mart: its rows written, and the model tests that failed.
async fn build_mart(warehouse: &Warehouse, ctx: &SessionContext, mart: &Mart, plan: &Plan) -> Result<(usize, FailedTests)> {
    let mut failed = vec![];
    let rows = match &mart.recipe {
        Recipe::Daily { sql, then } => build_days(warehouse, ctx, mart, sql, *then, plan, &mut failed).await?,
        Recipe::Weekly(_) | Recipe::WeeklyRust(_) | Recipe::Walk(_) | Recipe::Sliding { .. } if plan.first_week.is_none() && warehouse.load(mart.name).await?.is_some() => 0,
        Recipe::Weekly(sql) => build_weeks(warehouse, ctx, mart, sql, plan).await?,
        _ => build_whole(warehouse, ctx, mart, plan, &mut failed).await?,
    };
    Ok((rows, failed))
}

/// What this build recomputes, shared by every mart.
struct Plan {
    thresholds: Thresholds,
    /// `$authoritative_systems` of the day models.
    authoritative_systems: String,
    /// Every day (the tables are replaced).
    whole: bool,
    /// Every day with snapshots, oldest first.
    days: Vec<NaiveDate>,
    /// The ranges of days the day marts are recomputed for.
    chunks: Vec<(NaiveDate, NaiveDate)>,
    first_week: Option<NaiveDate>,
    /// The first new day (days since the epoch) when the build only adds days.
    append_from: Option<i64>,
}

type FailedTests = Vec<(&'static str, String, usize)>;

/// A day mart, one range of days at a time, each commit replacing whole days: a reader sees
/// every day either as it was or as rebuilt, never a table missing days. In a full build the
/// first range also takes every earlier day and the last every later one, so days that lost
/// their snapshots go.
async fn build_days(warehouse: &Warehouse, ctx: &SessionContext, mart: &Mart, sql: &'static str, then: Option<DayStep>, plan: &Plan, failed: &mut FailedTests) -> Result<usize> {
    let bind = |sql: &str, (first, last): (NaiveDate, NaiveDate)| bind_days(sql, first, last, &plan.authoritative_systems);
    // A range's computation and its tests are tasks of their own: polled together with the
    // write in this one future, the Rust work of each (lag matching, a test's grouping) held
    // up the others, and the write's commit waited for it.
    let compute = |chunk: (NaiveDate, NaiveDate)| {
        let (ctx, systems, thresholds) = (ctx.clone(), plan.authoritative_systems.clone(), plan.thresholds.clone());
        let name = mart.name;
        joined(tokio::spawn(async move {
            let clock = std::time::Instant::now();
            let bound = bind_chunk(&ctx, sql, chunk, &systems).await?;
            let mut batches = collect(&ctx, &format!("mart {name} ({} to {})", chunk.0, chunk.1), &bound).await?;
            if let Some(then) = then {
                batches = then(&ctx, batches, chunk, &thresholds).await?;
            }
            Ok::<_, Error>((batches, clock.elapsed().as_secs_f64()))
        }), format!("mart {name} ({} to {})", chunk.0, chunk.1))
    };
    let mut rows = 0;
    // The next range is computed while this one is written and tested (a day mart reads
    // only other tables): computing and writing each leave part of the cores idle.
    let mut next = match plan.chunks.first() {
        Some(&chunk) => Some(compute(chunk).await?),
        None => None,
    };
    for (i, &(first, last)) in plan.chunks.iter().enumerate() {
        let (batches, computed) = next.take().expect("computed before its turn");
        rows += batches.iter().map(|b| b.num_rows()).sum::<usize>();
        let context = format!("mart {} ({first} to {last})", mart.name);
        let schema = schema_of(ctx, &context, &for_schema(bind(sql, (first, last))), &batches).await?;
        let spec = TableSpec { name: mart.name, schema, partition_by: &["snapshot_date"] };
        let from = (!(plan.whole && i == 0)).then(|| format!("snapshot_date >= DATE '{first}'"));
        let to = (i + 1 < plan.chunks.len()).then(|| format!("snapshot_date <= DATE '{last}'"));
        let mode = match (from, to) {
            (None, None) => Write::All,
            (Some(p), None) | (None, Some(p)) => Write::Where(p),
            (Some(a), Some(b)) => Write::Where(format!("{a} AND {b}")),
        };
        let tests = mart.tests.map(|tests| tokio::spawn(test_chunk(ctx.copied_config(), mart.name, bind(tests, (first, last)), spec.schema.clone(), batches.clone())));
        let test = async {
            let clock = std::time::Instant::now();
            let failed = match tests {
                Some(task) => joined(task, format!("test of {}", mart.name)).await?,
                None => vec![],
            };
            Ok::<_, Error>((failed, clock.elapsed().as_secs_f64()))
        };
        let write = async {
            let clock = std::time::Instant::now();
            match warehouse.write(&spec, batches.clone(), mode).await {
                // A full build after the model's columns changed cannot replace days of the
                // old table: it replaces the table.
                Err(_) if plan.whole && i == 0 => warehouse.write(&spec, batches, Write::All).await?,
                result => result?,
            }
            warehouse.register(ctx, &[mart.name]).await?;
            Ok::<_, Error>(clock.elapsed().as_secs_f64())
        };
        let (written, (failed_tests, tested), computed_next) = match plan.chunks.get(i + 1) {
            Some(&chunk) => {
                let (written, tested, computed) = tokio::join!(write, test, compute(chunk));
                (written?, tested?, Some(computed?))
            }
            None => {
                let (written, tested) = tokio::join!(write, test);
                (written?, tested?, None)
            }
        };
        next = computed_next;
        failed.extend(failed_tests);
        debug!(mart = mart.name, %first, %last, computed, written, tested, "days built");
    }
    if plan.chunks.is_empty() && (plan.whole || warehouse.load(mart.name).await?.is_none()) {
        let schema = schema_of(ctx, mart.name, &for_schema(bind_days(sql, NaiveDate::MIN, NaiveDate::MIN, &plan.authoritative_systems)), &[]).await?;
        warehouse.write(&TableSpec { name: mart.name, schema, partition_by: &["snapshot_date"] }, vec![], Write::All).await?;
        warehouse.register(ctx, &[mart.name]).await?;
    }
    Ok(rows)
}

/// A weekly SQL mart, computed `WEEKS_PER_PASS` weeks at a time from the first week to
/// recompute (the last pass takes every later week: counts and movements can be dated after
/// the newest snapshot), and written in one commit so a reader sees it whole.
async fn build_weeks(warehouse: &Warehouse, ctx: &SessionContext, mart: &Mart, sql: &str, plan: &Plan) -> Result<usize> {
    let whole = plan.whole || plan.days.is_empty();
    let first = if whole { EARLIEST } else { plan.first_week.unwrap_or(EARLIEST) };
    let (oldest, newest) = match (plan.days.first(), plan.days.last()) {
        (Some(oldest), Some(newest)) => (monday(*oldest), *newest),
        _ => (EARLIEST, EARLIEST),
    };
    let far_future = NaiveDate::from_ymd_opt(9999, 12, 31).expect("a valid date");
    let mut batches = vec![];
    let mut start = first;
    let mut bound;
    loop {
        let end = start.max(oldest) + chrono::Days::new(7 * WEEKS_PER_PASS);
        let end = if end > newest { far_future } else { end };
        bound = reports::bind_in(ctx, &strip_comments(sql))?.replace("$first_week", &format!("DATE '{start}'")).replace("$end_week", &format!("DATE '{end}'"));
        batches.extend(collect(ctx, &format!("mart {} (weeks {start} to {end})", mart.name), &bound).await?);
        if end == far_future {
            break;
        }
        start = end;
    }
    let rows = batches.iter().map(|b| b.num_rows()).sum();
    let schema = schema_of(ctx, mart.name, &bound, &batches).await?;
    let mode = if whole { Write::All } else { Write::Where(format!("week >= DATE '{first}'")) };
    warehouse.write(&TableSpec { name: mart.name, schema, partition_by: &[] }, batches, mode).await?;
    warehouse.register(ctx, &[mart.name]).await?;
    Ok(rows)
}

/// A mart computed whole (or, for weekly statistics, from the first week to recompute) and
/// written in one commit.
async fn build_whole(warehouse: &Warehouse, ctx: &SessionContext, mart: &Mart, plan: &Plan, failed: &mut FailedTests) -> Result<usize> {
    let context = format!("mart {}", mart.name);
    let week = plan.first_week.unwrap_or(EARLIEST).max(EARLIEST);
    let mut kept = None;
    let batches = match mart.recipe {
        Recipe::Sql(sql) => collect(ctx, &context, sql).await?,
        Recipe::Rust(build) => build(ctx, &plan.thresholds).await?,
        Recipe::WeeklyRust(build) => build(ctx, &plan.thresholds, week).await?,
        Recipe::Walk(build) => build(ctx, &plan.thresholds, plan.append_from).await?,
        Recipe::Sliding { state, also_kept, build } => {
            if plan.append_from.is_some() {
                warehouse.register(ctx, &[state]).await?;
                warehouse.register(ctx, also_kept).await?;
            }
            let (rows, state_rows) = build(warehouse, ctx, &plan.thresholds, plan.append_from).await?;
            kept = Some((state, state_rows));
            rows
        }
        Recipe::Daily { .. } | Recipe::Weekly(_) => unreachable!("built by build_days and build_weeks"),
    };
    let rows = batches.iter().map(|b| b.num_rows()).sum();
    let schema = match (mart.recipe_sql(), batches.is_empty()) {
        (_, false) => batches[0].schema(),
        (Some(sql), true) => schema_of(ctx, &context, sql, &[]).await?,
        (None, true) => return Err(Error::Usage(format!("{context} produced no schema"))),
    };
    let mode = match mart.recipe {
        Recipe::WeeklyRust(_) if week > EARLIEST => Write::Where(format!("week >= DATE '{week}'")),
        _ => Write::All,
    };
    warehouse.write(&TableSpec { name: mart.name, schema, partition_by: &[] }, batches, mode).await?;
    warehouse.register(ctx, &[mart.name]).await?;
    // The state last: if writing it fails, the build fails and the next one, finding the
    // new days already built, counts afresh instead of going on from stale state.
    if let Some((state, rows)) = kept {
        let schema = rows.first().map(|b| b.schema()).ok_or_else(|| Error::Usage(format!("{context} kept no schema")))?;
        warehouse.write(&TableSpec { name: state, schema, partition_by: &[] }, rows, Write::All).await?;
    }
    if let Some(tests) = mart.tests {
        failed.extend(run_tests(ctx, mart.name, tests).await?);
    }
    Ok(rows)
}

/// CPU time of the whole process so far (user + system; Linux, `None` elsewhere), for `-v`
/// output: against the wall time it shows how much of a build keeps both cores busy.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // Clock ticks: 100 per second on every Linux this runs on (USER_HZ).
    Some(ticks / 100.0)
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

/// The model texts, so that a build after a model changed is a full one (with the method of
/// the lag matching stocktake does after the variances model).
fn models_text() -> String {
    let mut text: Vec<String> = STAGING.iter().map(|m| m.sql.to_string()).collect();
    text.extend(MARTS.iter().filter_map(Mart::recipe_sql).map(str::to_string));
    text.push(lag::METHOD.to_string());
    text.join("\n")
}

/// A day mart's tests, run on the rows just computed for a range of days: in a session of
/// their own, where the mart's name stands for those rows. Read back from the table written,
/// they were decoded again: 77 M rows, every column, in a tier-M full build.
///
/// The session runs each query as one partition: the tests run beside the write and the next
/// range's computation, which keep the other core busy, and a uniqueness test over two
/// partitions grouped every row twice (once per partition, then again after hashing the
/// rows across to their final group), when nearly every group is one row.
async fn test_chunk(config: SessionConfig, model: &'static str, tests: String, schema: SchemaRef, rows: Vec<RecordBatch>) -> Result<FailedTests> {
    let failed = |e| Error::query(format!("test of {model}"), e);
    let chunk = SessionContext::new_with_config(config.with_target_partitions(1));
    let table = datafusion::datasource::MemTable::try_new(schema, vec![rows]).map_err(failed)?;
    chunk.register_table(model, std::sync::Arc::new(table)).map_err(failed)?;
    run_tests(&chunk, model, &tests).await
}

/// What a spawned task returned, or that it stopped (panicked) while doing `what`.
async fn joined<T>(task: tokio::task::JoinHandle<Result<T>>, what: String) -> Result<T> {
    task.await.unwrap_or_else(|e| Err(Error::Usage(format!("{what} stopped: {e}"))))
}

async fn run_tests(ctx: &SessionContext, model: &'static str, tests: &str) -> Result<FailedTests> {
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
pub(crate) fn strip_comments(sql: &str) -> String {
    sql.lines().map(|l| l.split("--").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The day marts' tests, run on a range's rows as `build_days` runs them, report each
    /// rule broken with its rows: a position twice on a day, one without a region, a delta
    /// that is not system − authoritative, an explanation not documented.
    #[tokio::test]
    async fn day_mart_tests_report_the_rows_breaking_a_rule() {
        let ctx = SessionContext::new();
        let (first, last) = (NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(), NaiveDate::from_ymd_opt(2026, 3, 2).unwrap());
        let rows = |sql: &str| {
            let ctx = ctx.clone();
            let sql = sql.to_string();
            async move { ctx.sql(&sql).await.unwrap().collect().await.unwrap() }
        };
        let positions = rows(
            "select arrow_cast(d, 'Date32') as snapshot_date, sku, 'L1' as location_id, region, 'pos' as authoritative_system
             from (values ('2026-03-01', 'S1', 'east'), ('2026-03-01', 'S2', 'east'), ('2026-03-02', 'S1', 'east'), ('2026-03-02', 'S1', 'east'), ('2026-03-02', 'S2', null)) t(d, sku, region)",
        )
        .await;
        let positions_tests = MARTS.iter().find(|m| m.name == "positions").and_then(|m| m.tests).unwrap();
        let failed = test_chunk(ctx.copied_config(), "positions", bind_days(positions_tests, first, last, ""), positions[0].schema(), positions).await.unwrap();
        let failed: Vec<(String, usize)> = failed.into_iter().map(|(_, query, rows)| (query, rows)).collect();
        assert_eq!(failed, vec![("select snapshot_date, sku, location_id, count(*) as n".to_string(), 1), ("select * from positions".to_string(), 1)]);

        let variances = rows(
            "select arrow_cast('2026-03-02', 'Date32') as snapshot_date, system, 'pos' as authoritative_system, system_qty, authoritative_qty, delta, explained_by
             from (values ('erp', 5, 3, 2, 'lag'), ('erp', 5, 3, 1, null), ('pos', 3, 3, 0, null), ('web', 4, 3, 1, 'guess')) t(system, system_qty, authoritative_qty, delta, explained_by)",
        )
        .await;
        let variances_tests = MARTS.iter().find(|m| m.name == "variances").and_then(|m| m.tests).unwrap();
        let failed = test_chunk(ctx.copied_config(), "variances", bind_days(variances_tests, first, last, ""), variances[0].schema(), variances).await.unwrap();
        assert_eq!(failed.iter().map(|f| f.2).collect::<Vec<_>>(), vec![2, 1]);

        // Rows that keep every rule: nothing reported.
        let good = rows("select arrow_cast('2026-03-02', 'Date32') as snapshot_date, 'S1' as sku, 'L1' as location_id, 'east' as region, 'pos' as authoritative_system").await;
        assert!(test_chunk(ctx.copied_config(), "positions", bind_days(positions_tests, first, last, ""), good[0].schema(), good).await.unwrap().is_empty());
    }

    /// `build_days` computes a day mart's next range while writing the last: that is only
    /// right if the mart's query does not read the mart itself.
    #[test]
    fn day_marts_do_not_read_their_own_table() {
        let mut day_marts = 0;
        for mart in MARTS {
            let Recipe::Daily { sql, .. } = mart.recipe else { continue };
            day_marts += 1;
            let words: Vec<String> = strip_comments(sql).split(|c: char| !(c.is_alphanumeric() || c == '_')).map(str::to_lowercase).collect();
            assert!(!words.iter().any(|w| w == mart.name), "{} reads its own table", mart.name);
        }
        assert_eq!(day_marts, 3);
    }

    /// Where each mart's reads are written: its SQL model, or the source of the function
    /// that makes it (with the shared helpers it calls).
    fn sources(mart: &Mart) -> Vec<&'static str> {
        let planning = include_str!("../planning/mod.rs");
        match mart.name {
            "sku_classes" => vec![include_str!("../drift/abc.rs"), planning],
            "variance_trends" => vec![include_str!("../drift/trends.rs"), include_str!("../../sql/marts/variance_trends.sql")],
            "drift_patterns" => vec![include_str!("../drift/patterns.rs"), planning],
            "exceptions" => vec![include_str!("../drift/exceptions.rs"), include_str!("../drift/mod.rs")],
            "cycle_count_plan" => vec![include_str!("../planning/counts.rs"), planning],
            "buffer_recommendations" => vec![include_str!("../planning/buffers.rs"), planning],
            "purchase_recommendations" => vec![include_str!("../planning/orders.rs"), planning],
            "variances" => vec![include_str!("../../sql/marts/variances.sql"), include_str!("lag.rs"), days::COMPARED_SYSTEMS],
            _ => vec![mart.recipe_sql().expect("a mart made by a function is listed above")],
        }
    }

    /// A mart is built only after the marts it reads (side by side in a daily build, so one
    /// read too early would see yesterday's table): every other mart named anywhere in its
    /// SQL, source (Rust comments included) or tests must be in its `reads`, and `MARTS`
    /// lists every mart after those it reads (a full build takes them in that order).
    #[test]
    fn every_mart_is_built_after_the_marts_it_reads() {
        for (i, mart) in MARTS.iter().enumerate() {
            for source in sources(mart).into_iter().chain(mart.tests) {
                // SQL comments (`--`, in models and in SQL strings) read nothing.
                let text = strip_comments(source.split("#[cfg(test)]").next().unwrap_or_default()).to_lowercase();
                let words: Vec<&str> = text.split(|c: char| !(c.is_alphanumeric() || c == '_')).collect();
                for other in MARTS.iter().filter(|o| o.name != mart.name && words.contains(&o.name)) {
                    assert!(mart.reads.contains(&other.name), "{} names {} but does not list it in `reads`", mart.name, other.name);
                }
            }
            for read in mart.reads {
                let position = MARTS.iter().position(|m| m.name == *read);
                assert!(position.is_some_and(|p| p < i), "{} reads {read}, which MARTS does not list before it", mart.name);
            }
        }
    }
}
