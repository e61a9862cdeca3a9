//! `stocktake demo`: a realistic merchant, its systems' exports in their real formats, the
//! full pipeline over them, and a short summary.

mod export;
mod faults;
mod rng;
pub mod scale;
mod simulate;
mod world;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::NaiveDate;

use crate::config::Pipeline;
use crate::error::{Error, Result};
use crate::ingest::{self, RunOptions};
use crate::marts;
use crate::warehouse::{Warehouse, collect, integers, strings};

pub struct DemoOptions {
    pub seed: u64,
    pub days: u32,
    pub end: NaiveDate,
    pub dir: PathBuf,
    pub warehouse: String,
}

/// The demo pipeline, with its paths pointed at `dir` and `warehouse`.
pub fn pipeline_text(dir: &Path, warehouse: &str) -> String {
    point_pipeline(include_str!("../../pipelines/demo.toml"), "stocktake-demo", "./warehouse", dir, warehouse)
}

/// A shipped pipeline with its folder `prefix` replaced by `dir` and its default warehouse by
/// `warehouse`.
fn point_pipeline(template: &str, prefix: &str, default_warehouse: &str, dir: &Path, warehouse: &str) -> String {
    let dir = dir.to_string_lossy().replace('\\', "/");
    template
        .replace(&format!("\"{prefix}/"), &format!("\"{dir}/"))
        .replace(&format!("warehouse = \"{default_warehouse}\""), &format!("warehouse = \"{warehouse}\""))
}

/// Generates the demo files under `dir` without running anything.
pub fn generate(options: &DemoOptions) -> Result<GeneratedDemo> {
    if options.days < 14 {
        return Err(Error::Usage("the demo needs at least 14 days of history".into()));
    }
    let days = options.days as usize;
    let start = options.end - chrono::Days::new(days as u64 - 1);
    let mut rng = rng::Rng::new(options.seed);
    let world = world::World::generate(&mut rng);
    let faults = faults::choose(&world, days, &mut rng);
    let history = simulate::simulate(&world, start, days, faults, &mut rng);

    // The landing folder is the demo's own: clear it so files of an earlier, longer demo do
    // not linger.
    let landing = options.dir.join("landing");
    if landing.exists() {
        std::fs::remove_dir_all(&landing).map_err(|e| Error::io(landing.display(), e))?;
    }
    let files = export::write_all(&options.dir, &world, &history, options.seed)?;
    let pipeline_path = options.dir.join("pipeline.toml");
    std::fs::write(&pipeline_path, pipeline_text(&options.dir, &options.warehouse)).map_err(|e| Error::io(pipeline_path.display(), e))?;
    Ok(GeneratedDemo {
        pipeline_path,
        files,
        skus: world.products.len(),
        bundles: world.products.iter().filter(|p| p.is_bundle()).count(),
        faults: history.faults.len(),
        start,
    })
}

pub struct GeneratedDemo {
    pub pipeline_path: PathBuf,
    pub files: usize,
    pub skus: usize,
    pub bundles: usize,
    pub faults: usize,
    pub start: NaiveDate,
}

/// Generates, ingests, builds, and returns the summary to print.
pub async fn run(options: &DemoOptions) -> Result<String> {
    let clock = Instant::now();
    let generated = generate(options)?;
    let generated_in = clock.elapsed();
    let pipeline = Pipeline::load(&generated.pipeline_path)?;
    let warehouse = Warehouse::for_pipeline(&pipeline)?;
    let report = ingest::run(&pipeline, &warehouse, &RunOptions::default()).await?;
    let ingested_in = clock.elapsed();
    let build = marts::build(&warehouse, false).await?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "stocktake demo — seed {}, {} days ({} to {}), {} SKUs ({} bundles), 6 locations, {} faults injected",
        options.seed, options.days, generated.start, options.end, generated.skus, generated.bundles, generated.faults
    );
    let _ = writeln!(out, "wrote {} export files under {}/landing ({:.1}s)", generated.files, options.dir.display(), generated_in.as_secs_f64());
    out.push('\n');
    out.push_str(&crate::cli::describe_run(&report));
    let _ = writeln!(out, "  ingested in {:.1}s", (ingested_in - generated_in).as_secs_f64());
    out.push('\n');
    for (name, rows) in &build.rows {
        let _ = writeln!(out, "built {name}: {rows} rows");
    }
    for (model, query, rows) in &build.failed_tests {
        let _ = writeln!(out, "MODEL TEST FAILED: {model}: {rows} rows break `{query}`");
    }
    out.push('\n');
    out.push_str(&flagged_summary(&warehouse).await?);
    let report_path = options.dir.join("report.html");
    crate::report::write(&warehouse, &report_path).await?;
    let _ = writeln!(out, "\nwrote the weekly report: {}", report_path.display());
    let _ = writeln!(out, "finished in {:.1}s. Ground truth of injected faults: {}/ground_truth.csv", clock.elapsed().as_secs_f64(), options.dir.display());
    let _ = writeln!(out, "next: stocktake sql \"select * from variances where flagged and explained_by is null limit 10\"");
    Ok(out)
}

/// Flagged variances by location and system: over the whole history, and how many of those
/// are explained (in transit, receiving, lag) rather than real.
async fn flagged_summary(warehouse: &Warehouse) -> Result<String> {
    let ctx = warehouse.session(&["variances", "positions"]).await?;
    let sql = "select location_id, system,
                      count(*) as compared,
                      sum(case when flagged then 1 else 0 end) as flagged,
                      sum(case when flagged and explained_by is not null then 1 else 0 end) as explained,
                      sum(case when flagged and snapshot_date = (select max(snapshot_date) from variances) then 1 else 0 end) as flagged_last_day
               from variances group by location_id, system order by location_id, system";
    let batches = collect(&ctx, "demo summary", sql).await?;
    let mut out = String::from("flagged variances (whole history; explained = in transit, receiving or lag):\n");
    let _ = writeln!(out, "  {:<10} {:<15} {:>9} {:>8} {:>10} {:>14}", "location", "system", "compared", "flagged", "explained", "flagged today");
    for b in &batches {
        let (locations, systems) = (strings(b, 0)?, strings(b, 1)?);
        let numbers: Vec<Vec<Option<i64>>> = (2..6).map(|c| integers(b, c)).collect::<Result<_>>()?;
        for i in 0..b.num_rows() {
            let n = |c: usize| numbers[c][i].unwrap_or(0);
            let _ = writeln!(
                out,
                "  {:<10} {:<15} {:>9} {:>8} {:>10} {:>14}",
                locations[i].as_deref().unwrap_or(""), systems[i].as_deref().unwrap_or(""), n(0), n(1), n(2), n(3)
            );
        }
    }
    Ok(out)
}
