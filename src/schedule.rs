//! `stocktake schedule`: runs pipelines on their cron, in their timezone, unattended.
//!
//! tokio-cron-scheduler only triggers. It turns a job's timezone into a fixed UTC offset
//! when the job is created, which would shift a cron by an hour after a daylight-saving
//! change; so stocktake computes each slot itself (croner over the IANA zone) and arms a
//! one-shot trigger for it. The run ledger (`runs`) is stocktake's own: it is where
//! catch-up after downtime looks for the last slot served.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use futures::FutureExt;
use tokio_cron_scheduler::{Job, JobScheduler};
use tracing::{error, info, warn};

use crate::config::{CatchUp, Pipeline};
use crate::error::{Error, Result};
use crate::ingest::{self, RunOptions, Trigger};
use crate::warehouse::Warehouse;
use crate::marts;

/// Catch-up never runs more slots than this at start (a per-second cron down for a day).
const MAX_CATCH_UP: usize = 1000;

/// Parses a cron expression: five fields, or six with seconds first.
pub fn parse_cron(expression: &str) -> std::result::Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(expression)
        .map_err(|e| format!("schedule '{expression}' is not a cron expression: {e}"))
}

/// A pipeline's cron read in its timezone.
#[derive(Clone)]
pub struct Slots {
    cron: Cron,
    tz: Tz,
}

impl Slots {
    pub fn new(expression: &str, timezone: Option<&str>) -> std::result::Result<Slots, String> {
        let tz = match timezone {
            Some(name) => name.parse::<Tz>().map_err(|_| format!("unknown timezone '{name}'"))?,
            None => Tz::UTC,
        };
        Ok(Slots { cron: parse_cron(expression)?, tz })
    }

    pub fn for_pipeline(pipeline: &Pipeline) -> Result<Slots> {
        let expression = pipeline.schedule.as_deref().ok_or_else(|| {
            Error::Usage(format!("pipeline '{}' has no `schedule` (a cron expression) to run on", pipeline.name))
        })?;
        Slots::new(expression, pipeline.timezone.as_deref()).map_err(Error::Usage)
    }

    /// The first slot strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // croner keeps the start's fraction of a second; slots are whole seconds.
        let t = t.trunc_subsecs(0);
        self.cron.find_next_occurrence(&t.with_timezone(&self.tz), false).ok().map(|d| d.with_timezone(&Utc))
    }

    /// Slots in (after, until], oldest first, at most `limit` of the newest.
    pub fn between(&self, after: DateTime<Utc>, until: DateTime<Utc>, limit: usize) -> Vec<DateTime<Utc>> {
        let mut slots = Vec::new();
        let mut t = after;
        while let Some(next) = self.next_after(t) {
            if next > until {
                break;
            }
            slots.push(next);
            t = next;
        }
        let skip = slots.len().saturating_sub(limit);
        slots.split_off(skip)
    }

    /// The calendar day a slot falls on where the pipeline lives.
    pub fn local_date(&self, slot: DateTime<Utc>) -> NaiveDate {
        slot.with_timezone(&self.tz).date_naive()
    }
}

/// The missed slots a policy runs.
pub fn catch_up(policy: CatchUp, missed: Vec<DateTime<Utc>>) -> Vec<DateTime<Utc>> {
    match policy {
        CatchUp::None => vec![],
        CatchUp::Latest => missed.last().copied().into_iter().collect(),
        CatchUp::All => missed,
    }
}

/// One pipeline under the daemon: at most one run at a time.
struct Runner {
    pipeline: Pipeline,
    warehouse: Warehouse,
    slots: Slots,
    busy: tokio::sync::Mutex<()>,
    /// Set on SIGINT/SIGTERM: triggers after it start nothing.
    stopping: std::sync::atomic::AtomicBool,
}

impl Runner {
    /// Runs the slot unless a run of this pipeline is still going (then the trigger is
    /// skipped and logged: runs never overlap).
    async fn trigger(self: &Arc<Self>, slot: DateTime<Utc>, trigger: Trigger) {
        if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let Ok(_guard) = self.busy.try_lock() else {
            warn!(pipeline = %self.pipeline.name, slot = %slot, "skipped: the previous run is still going");
            return;
        };
        let started_at = Utc::now();
        let options = RunOptions {
            date: Some(self.slots.local_date(slot) - chrono::Days::new(self.pipeline.ingest_days_back.into())),
            scheduled_for: Some(slot),
            trigger,
        };
        // A panic inside a run is caught here, recorded as failed, and the daemon goes on.
        let runner = self.clone();
        let run_options = options.clone();
        let outcome = tokio::spawn(async move { runner.run(&run_options).await }).await;
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("{e}")),
            Err(join) => Some(match join.try_into_panic() {
                Ok(payload) => format!("panic: {}", panic_message(payload.as_ref())),
                Err(e) => format!("run cancelled: {e}"),
            }),
        };
        if let Some(message) = failure {
            error!(pipeline = %self.pipeline.name, slot = %slot, "run failed: {message}");
            if let Err(e) = ingest::record_failed(&self.pipeline, &options, started_at, &message, &self.warehouse).await {
                error!(pipeline = %self.pipeline.name, "could not record the failed run: {e}");
            }
        }
    }

    async fn run(&self, options: &RunOptions) -> Result<()> {
        // Test hooks: a panic inside a run, and a run that certainly outlasts a per-second slot
        // (a run of the small demo can take less than a second).
        let failpoint = std::env::var("STOCKTAKE_FAILPOINT");
        if failpoint.as_deref() == Ok("panic-in-run") {
            panic!("failpoint panic-in-run");
        }
        let report = ingest::run(&self.pipeline, &self.warehouse, options).await?;
        if failpoint.as_deref() == Ok("slow-run") {
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        }
        let build = marts::build(&self.warehouse, false).await?;
        info!(pipeline = %self.pipeline.name, run_id = %report.run_id, status = report.status, trigger = options.trigger.as_str(),
              scheduled_for = ?options.scheduled_for, marts = build.rows.len(), "run finished");
        Ok(())
    }

    /// The newest slot the ledger says was served by the scheduler.
    async fn last_served(&self) -> Result<Option<DateTime<Utc>>> {
        if self.warehouse.load("runs").await?.is_none() {
            return Ok(None);
        }
        let ctx = self.warehouse.session(&["runs"]).await?;
        let sql = format!(
            "select arrow_cast(max(scheduled_for), 'Int64') from runs where pipeline = {} and trigger in ('schedule', 'catch_up')",
            crate::warehouse::sql_string(&self.pipeline.name)
        );
        let batches = crate::warehouse::collect(&ctx, "reading the run ledger", &sql).await?;
        let micros = batches.first().and_then(|b| crate::warehouse::integers(b, 0).ok()).and_then(|v| v.first().copied().flatten());
        Ok(micros.and_then(DateTime::from_timestamp_micros))
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Arms a one-shot trigger for the first slot after `after`; when it fires it runs the
/// slot and arms the next one.
fn arm(scheduler: JobScheduler, runner: Arc<Runner>, after: DateTime<Utc>) -> futures::future::BoxFuture<'static, ()> {
    async move {
        let Some(slot) = runner.slots.next_after(after.max(Utc::now())) else {
            warn!(pipeline = %runner.pipeline.name, "the schedule has no further slots");
            return;
        };
        let wait = (slot - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        let job = Job::new_one_shot_async(wait, move |_id, scheduler| {
            let runner = runner.clone();
            Box::pin(async move {
                // Arm the next slot first, so a long run does not delay it (it is skipped
                // if this one is still going).
                tokio::spawn(arm(scheduler, runner.clone(), slot));
                runner.trigger(slot, Trigger::Schedule).await;
            })
        });
        match job {
            Ok(job) => {
                if let Err(e) = scheduler.add(job).await {
                    error!("could not arm the next run: {e}");
                }
            }
            Err(e) => error!("could not arm the next run: {e}"),
        }
    }
    .boxed()
}

/// Runs the pipelines on their schedules until SIGINT or SIGTERM.
pub async fn serve(paths: &[PathBuf]) -> Result<i32> {
    let mut runners = Vec::new();
    for path in paths {
        let pipeline = Pipeline::load(path)?;
        let slots = Slots::for_pipeline(&pipeline)?;
        let warehouse = Warehouse::for_pipeline(&pipeline)?;
        runners.push(Arc::new(Runner { pipeline, warehouse, slots, busy: Default::default(), stopping: Default::default() }));
    }
    let scheduler_error = |e: tokio_cron_scheduler::JobSchedulerError| Error::Usage(format!("scheduler: {e}"));
    let mut scheduler = JobScheduler::new().await.map_err(scheduler_error)?;
    let now = Utc::now();
    let mut catch_ups = Vec::new();
    for runner in &runners {
        let p = &runner.pipeline;
        info!(pipeline = %p.name, schedule = p.schedule.as_deref().unwrap_or_default(), timezone = p.timezone.as_deref().unwrap_or("UTC"),
              next = ?runner.slots.next_after(now), "scheduled");
        let missed = match runner.last_served().await {
            Ok(Some(last)) => runner.slots.between(last, now, MAX_CATCH_UP),
            Ok(None) => vec![],
            Err(e) => {
                warn!(pipeline = %p.name, "no catch-up: the run ledger cannot be read: {e}");
                vec![]
            }
        };
        let due = catch_up(p.catch_up, missed.clone());
        if !missed.is_empty() {
            info!(pipeline = %p.name, missed = missed.len(), running = due.len(), policy = ?p.catch_up, "catching up");
        }
        let runner_for_catch_up = runner.clone();
        catch_ups.push(tokio::spawn(async move {
            for slot in due {
                runner_for_catch_up.trigger(slot, Trigger::CatchUp).await;
            }
        }));
        arm(scheduler.clone(), runner.clone(), now).await;
    }
    scheduler.start().await.map_err(scheduler_error)?;
    log_ready(&runners);

    wait_for_stop().await?;
    info!("stopping: no new runs; waiting for the ones in progress");
    for runner in &runners {
        runner.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    scheduler.shutdown().await.map_err(scheduler_error)?;
    // A second signal does not wait.
    tokio::spawn(async {
        if wait_for_stop().await.is_ok() {
            warn!("second signal: exiting without waiting (committed tables stay whole)");
            std::process::exit(2);
        }
    });
    // Catch-up loops stop before their next slot; a run in progress holds its pipeline's
    // lock, so taking every lock waits for them.
    for c in catch_ups {
        let _ = c.await;
    }
    for runner in &runners {
        let _ = runner.busy.lock().await;
    }
    info!("stopped");
    Ok(0)
}

fn log_ready(runners: &[Arc<Runner>]) {
    for r in runners {
        info!(pipeline = %r.pipeline.name, "waiting for the next slot");
    }
}

async fn wait_for_stop() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| Error::io("SIGTERM handler", e))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("SIGINT"),
        _ = term.recv() => info!("SIGTERM"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn daily_slot_keeps_local_time_across_daylight_saving() {
        let slots = Slots::new("0 0 6 * * *", Some("America/New_York")).unwrap();
        // 06:00 EDT is 10:00 UTC; after the change on 2026-11-01, 06:00 EST is 11:00 UTC.
        let found = slots.between(utc("2026-10-30T00:00:00Z"), utc("2026-11-03T00:00:00Z"), 100);
        let hours: Vec<_> = found.iter().map(|s| s.format("%m-%d %H:%M").to_string()).collect();
        assert_eq!(hours, ["10-30 10:00", "10-31 10:00", "11-01 11:00", "11-02 11:00"]);
        // Spring forward on 2026-03-08: 06:00 EST (11:00 UTC) then 06:00 EDT (10:00 UTC).
        let found = slots.between(utc("2026-03-07T00:00:00Z"), utc("2026-03-09T00:00:00Z"), 100);
        let hours: Vec<_> = found.iter().map(|s| s.format("%m-%d %H:%M").to_string()).collect();
        assert_eq!(hours, ["03-07 11:00", "03-08 10:00"]);
    }

    #[test]
    fn a_slot_inside_the_changed_hour_runs_once_a_day() {
        let slots = Slots::new("30 1 * * *", Some("America/New_York")).unwrap();
        // 01:30 happens twice on 2026-11-01 (EDT, then EST): one run, not two.
        let fall = slots.between(utc("2026-10-31T12:00:00Z"), utc("2026-11-02T12:00:00Z"), 100);
        let days: Vec<_> = fall.iter().map(|s| slots.local_date(*s).to_string()).collect();
        assert_eq!(days, ["2026-11-01", "2026-11-02"], "{fall:?}");
        let slots = Slots::new("30 2 * * *", Some("America/New_York")).unwrap();
        // 02:30 does not exist on 2026-03-08: the day still gets its run, once.
        let spring = slots.between(utc("2026-03-07T12:00:00Z"), utc("2026-03-09T12:00:00Z"), 100);
        let days: Vec<_> = spring.iter().map(|s| slots.local_date(*s).to_string()).collect();
        assert_eq!(days, ["2026-03-08", "2026-03-09"], "{spring:?}");
    }

    #[test]
    fn catch_up_policies() {
        let slots = Slots::new("0 * * * *", None).unwrap();
        let missed = slots.between(utc("2026-11-23T00:30:00Z"), utc("2026-11-23T04:10:00Z"), 100);
        assert_eq!(missed.len(), 4);
        assert!(catch_up(CatchUp::None, missed.clone()).is_empty());
        assert_eq!(catch_up(CatchUp::Latest, missed.clone()), vec![utc("2026-11-23T04:00:00Z")]);
        assert_eq!(catch_up(CatchUp::All, missed.clone()), missed);
        // The limit keeps the newest slots.
        let capped = slots.between(utc("2026-11-23T00:30:00Z"), utc("2026-11-23T04:10:00Z"), 2);
        assert_eq!(capped, vec![utc("2026-11-23T03:00:00Z"), utc("2026-11-23T04:00:00Z")]);
    }

    #[test]
    fn local_date_is_the_pipelines_day() {
        let slots = Slots::new("0 0 23 * * *", Some("America/Los_Angeles")).unwrap();
        let slot = slots.next_after(Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap()).unwrap();
        assert_eq!(slot, utc("2026-07-02T06:00:00Z"));
        assert_eq!(slots.local_date(slot).to_string(), "2026-07-01");
    }

    #[test]
    fn bad_expressions_and_zones_are_named() {
        assert!(parse_cron("every day").unwrap_err().contains("every day"));
        assert!(Slots::new("0 6 * * *", Some("Mars/Olympus")).err().unwrap().contains("Mars/Olympus"));
    }
}
