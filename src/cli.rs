//! Command line: parsing and dispatch. Each command returns its exit code.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};

use crate::config::Pipeline;
use crate::error::{Error, Result};
use crate::ingest::{self, RunOptions, RunReport};
use crate::query::{self, Format};
use crate::warehouse::Warehouse;
use crate::{demo, marts};

#[derive(Debug, Parser)]
#[command(name = "stocktake", version, about = "Inventory-truth warehouse: which stock number is true, and why the others drift.")]
pub struct Cli {
    /// More log output (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a demo merchant, write its systems' exports, ingest them and build the marts.
    Demo {
        /// Seed of the demo world; the same seed gives the same files and tables.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Days of history.
        #[arg(long, default_value_t = 120)]
        days: u32,
        /// Last day of history.
        #[arg(long, default_value = "2026-10-31")]
        end: NaiveDate,
        /// Folder for the landing area, reference files, pipeline and ground truth.
        #[arg(long, default_value = "stocktake-demo")]
        dir: PathBuf,
        /// Warehouse path or URL.
        #[arg(long, env = "STOCKTAKE_WAREHOUSE", default_value = "./warehouse")]
        warehouse: String,
    },
    /// Generate a benchmark merchant of a scale tier: S (1k SKUs, 5 locations, 90 days),
    /// M (20k SKUs, 40 locations, 60k SKU-locations, 365 days) or L (10× M), with its pipeline.
    Generate {
        #[arg(long, default_value = "S")]
        tier: String,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Last day of history.
        #[arg(long, default_value = "2026-10-31")]
        end: NaiveDate,
        /// Days of history instead of the tier's own.
        #[arg(long)]
        days: Option<usize>,
        #[arg(long, default_value = "scale")]
        dir: PathBuf,
        /// Warehouse path or URL written into the generated pipeline.
        #[arg(long, default_value = "./scale-warehouse")]
        warehouse: String,
    },
    /// Ingest a pipeline's landing files, then build the marts.
    Run {
        pipeline: PathBuf,
        /// Only the files of this day (YYYY-MM-DD); every file when omitted.
        #[arg(long)]
        date: Option<NaiveDate>,
    },
    /// Ingest a pipeline's landing files into the raw tables, without building marts.
    Snapshot {
        pipeline: PathBuf,
        #[arg(long)]
        date: Option<NaiveDate>,
    },
    /// Run pipelines on their cron schedules until SIGINT/SIGTERM, catching up missed runs.
    Schedule {
        #[arg(required = true)]
        pipelines: Vec<PathBuf>,
    },
    /// Check a pipeline (keys, environment, schedule, reference files, landing areas)
    /// without running it.
    Validate { pipeline: PathBuf },
    /// The daily sync check: the top SKUs by revenue, every system against the true count.
    /// Exit 1 when anything is out beyond tolerance and unexplained, 0 when clean.
    Check {
        pipeline: PathBuf,
        /// How many SKUs, by revenue over the demand window.
        #[arg(long, default_value_t = 30)]
        top: usize,
    },
    /// Triage one SKU: identity, ledger, policy, publish, and every movement since the
    /// systems last agreed.
    Explain {
        #[arg(long)]
        sku: String,
        #[arg(long)]
        location: Option<String>,
        #[arg(long, env = "STOCKTAKE_WAREHOUSE", default_value = "./warehouse")]
        warehouse: String,
    },
    /// Serve every table over the PostgreSQL wire protocol (psql, DBeaver, Metabase,
    /// Grafana). Read-only. Anything but loopback needs STOCKTAKE_SERVE_PASSWORD.
    Serve {
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        #[arg(long, default_value_t = 5433)]
        port: u16,
        /// Seconds between picking up newly committed table versions.
        #[arg(long, default_value_t = 30)]
        refresh: u64,
        #[arg(long, env = "STOCKTAKE_WAREHOUSE", default_value = "./warehouse")]
        warehouse: String,
    },
    /// An interactive SQL prompt with history (`sql/examples/` has queries to start from).
    Shell {
        #[arg(long, env = "STOCKTAKE_WAREHOUSE", default_value = "./warehouse")]
        warehouse: String,
    },
    /// Write the weekly leadership report: one self-contained HTML file with SVG charts.
    Report {
        #[arg(long, default_value = "report.html")]
        out: PathBuf,
        #[arg(long, env = "STOCKTAKE_WAREHOUSE", default_value = "./warehouse")]
        warehouse: String,
    },
    /// Build the marts from the raw tables.
    Build {
        #[arg(long, env = "STOCKTAKE_WAREHOUSE", default_value = "./warehouse")]
        warehouse: String,
        /// Recompute every day of positions and variances, not only the days whose
        /// snapshots or movements changed since the last build.
        #[arg(long)]
        full: bool,
    },
    /// Write a plan: blind count sheets, channel buffers or purchase recommendations.
    Plan {
        #[arg(value_enum)]
        plan: crate::planning::sheets::Plan,
        /// Output file: .csv, or .xlsx (a worksheet per location or region).
        #[arg(long)]
        out: PathBuf,
        /// Count sheets: what is due within this many days of the newest snapshot.
        #[arg(long, default_value_t = 0)]
        days: i64,
        #[arg(long, env = "STOCKTAKE_WAREHOUSE", default_value = "./warehouse")]
        warehouse: String,
    },
    /// Run a SQL query over every warehouse table.
    Sql {
        query: String,
        #[arg(long, env = "STOCKTAKE_WAREHOUSE", default_value = "./warehouse")]
        warehouse: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

pub fn run(cli: Cli) -> Result<i32> {
    init_logging(cli.verbose, cli.quiet);
    crate::progress::set_quiet(cli.quiet);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?;
    runtime.block_on(dispatch(cli.command, cli.quiet))
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("STOCKTAKE_LOG")
        // Dependencies log their own recoverable errors loudly; show them only with -vv.
        .unwrap_or_else(|_| {
            let others = if verbose >= 2 { "warn" } else { "off" };
            tracing_subscriber::EnvFilter::new(format!("stocktake={level},{others}"))
        });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

async fn dispatch(command: Command, quiet: bool) -> Result<i32> {
    match command {
        Command::Demo { seed, days, end, dir, warehouse } => {
            let options = demo::DemoOptions { seed, days, end, dir, warehouse };
            let summary = demo::run(&options).await?;
            if !quiet {
                print!("{summary}");
            }
            Ok(0)
        }
        Command::Generate { tier, seed, end, days, dir, warehouse } => {
            let mut shape = demo::scale::Shape::tier(&tier)?;
            shape.days = days.unwrap_or(shape.days).max(1);
            let generated = demo::scale::generate(&shape, seed, end, &dir, &warehouse)?;
            if !quiet {
                println!(
                    "tier {tier}: {} SKUs, {} locations, {} SKU-locations, {} days from {} to {end}",
                    shape.skus, shape.locations(), generated.sku_locations, shape.days, generated.start
                );
                println!("wrote {} files ({} snapshot rows); pipeline {}", generated.files, generated.snapshot_rows, generated.pipeline_path.display());
            }
            Ok(0)
        }
        Command::Run { pipeline, date } => {
            let pipeline = Pipeline::load(&pipeline)?;
            let warehouse = Warehouse::for_pipeline(&pipeline)?;
            let report = ingest::run(&pipeline, &warehouse, &RunOptions { date, ..Default::default() }).await?;
            if !quiet {
                print!("{}", describe_run(&report));
            }
            let build = marts::build(&warehouse, false).await?;
            if !quiet {
                print!("{}", describe_build(&build));
            }
            report_failed_tests(&build);
            Ok(run_exit_code(&report))
        }
        Command::Snapshot { pipeline, date } => {
            let pipeline = Pipeline::load(&pipeline)?;
            let warehouse = Warehouse::for_pipeline(&pipeline)?;
            let report = ingest::run(&pipeline, &warehouse, &RunOptions { date, ..Default::default() }).await?;
            if !quiet {
                print!("{}", describe_run(&report));
            }
            Ok(run_exit_code(&report))
        }
        Command::Schedule { pipelines } => crate::schedule::serve(&pipelines).await,
        Command::Validate { pipeline } => {
            let validation = crate::validate::validate(&pipeline).await?;
            if !quiet {
                print!("{}", validation.text);
            }
            Ok(if validation.ok { 0 } else { 2 })
        }
        Command::Check { pipeline, top } => {
            let pipeline = Pipeline::load(&pipeline)?;
            let warehouse = Warehouse::for_pipeline(&pipeline)?;
            let check = crate::check::daily_sync(&warehouse, top).await?;
            print!("{}", check.text);
            Ok(if check.flagged > 0 { 1 } else { 0 })
        }
        Command::Explain { sku, location, warehouse } => {
            let warehouse = Warehouse::open(&warehouse)?;
            print!("{}", crate::explain::explain(&warehouse, &sku, location.as_deref()).await?);
            Ok(0)
        }
        Command::Serve { host, port, refresh, warehouse } => {
            let warehouse = Warehouse::open(&warehouse)?;
            let password = std::env::var("STOCKTAKE_SERVE_PASSWORD").ok().filter(|p| !p.is_empty());
            let options = crate::serve::ServeOptions { host, port, password, refresh: std::time::Duration::from_secs(refresh) };
            crate::serve::serve(&warehouse, options).await
        }
        Command::Shell { warehouse } => crate::shell::shell(&Warehouse::open(&warehouse)?).await,
        Command::Report { out, warehouse } => {
            crate::report::write(&Warehouse::open(&warehouse)?, &out).await?;
            if !quiet {
                println!("wrote {}", out.display());
            }
            Ok(0)
        }
        Command::Build { warehouse, full } => {
            let warehouse = Warehouse::open(&warehouse)?;
            let build = marts::build(&warehouse, full).await?;
            if !quiet {
                print!("{}", describe_build(&build));
            }
            report_failed_tests(&build);
            Ok(if build.failed_tests.is_empty() { 0 } else { 2 })
        }
        Command::Plan { plan, out, days, warehouse } => {
            let warehouse = Warehouse::open(&warehouse)?;
            let rows = crate::planning::sheets::write_plan(&warehouse, plan, &out, days).await?;
            if !quiet {
                println!("wrote {rows} rows to {}", out.display());
            }
            Ok(0)
        }
        Command::Sql { query: sql, warehouse, format } => {
            let warehouse = Warehouse::open(&warehouse)?;
            let batches = query::query(&warehouse, &sql).await?;
            print!("{}", query::render(&batches, format)?);
            Ok(0)
        }
    }
}

/// A partial or failed run is an error for whoever scheduled it, even though the systems that
/// could be read were committed.
fn run_exit_code(report: &RunReport) -> i32 {
    if report.status == "ok" { 0 } else { 2 }
}

fn describe_build(build: &marts::BuildReport) -> String {
    let days = match &build.scope {
        crate::changes::Scope::Full(reason) => format!("every day ({reason})"),
        crate::changes::Scope::From(day) => format!("the days from {day} on"),
        crate::changes::Scope::Nothing => "no day (no snapshots or movements changed)".to_string(),
    };
    let mut out = format!("positions and variances recomputed for {days}\n");
    for (name, rows) in &build.rows {
        out.push_str(&format!("built {name}: {rows} rows\n"));
    }
    out
}

fn report_failed_tests(build: &marts::BuildReport) {
    for (model, query, rows) in &build.failed_tests {
        eprintln!("stocktake: model test failed: {model}: {rows} rows break `{query}`");
    }
}

/// The per-system accounting of a run, as a person reads it.
pub fn describe_run(report: &RunReport) -> String {
    let mut out = format!("run {} — {}\n", report.run_id, report.status);
    out.push_str(&format!(
        "  {:<16} {:<22} {:>7} {:>9} {:>9} {:>11} {:>9}\n",
        "system", "kind", "status", "rows in", "accepted", "quarantined", "unmapped"
    ));
    for s in &report.systems {
        out.push_str(&format!(
            "  {:<16} {:<22} {:>7} {:>9} {:>9} {:>11} {:>9}\n",
            s.system, s.kind, s.status, s.rows_in, s.accepted, s.quarantined, s.unmapped
        ));
        for e in &s.errors {
            out.push_str(&format!("    ! {e}\n"));
        }
    }
    out
}
