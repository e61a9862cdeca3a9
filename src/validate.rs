//! `stocktake validate`: everything a run would need, checked without running it — the
//! pipeline file, its environment variables, the schedule, the reference files and every
//! landing area. Nothing is written.

use std::fmt::Write as _;
use std::path::Path;

use crate::config::Pipeline;
use crate::error::Result;
use crate::schedule::Slots;
use crate::storage::Area;

/// What was checked, as a person reads it, and whether every system can be read.
pub struct Validation {
    pub text: String,
    pub ok: bool,
}

pub async fn validate(path: &Path) -> Result<Validation> {
    // Unknown keys, unset ${VARS}, bad cron or timezone: errors naming file, line and key.
    let pipeline = Pipeline::load(path)?;
    let mut text = format!("pipeline '{}' ({}): configuration ok\n", pipeline.name, path.display());
    if pipeline.schedule.is_some() {
        let slots = Slots::for_pipeline(&pipeline)?;
        let next = slots.next_after(chrono::Utc::now()).map(|s| s.to_rfc3339()).unwrap_or_else(|| "never".into());
        let _ = writeln!(text, "  schedule {} in {}: next run {next}", pipeline.schedule.as_deref().unwrap_or_default(), pipeline.timezone.as_deref().unwrap_or("UTC"));
    }
    let reference = crate::ingest::load_reference(&pipeline).await?;
    let _ = writeln!(text, "  reference: {} SKUs, {} locations, {} aliases, {} bundle lines", reference.skus.len(), reference.locations.len(), reference.aliases.len(), reference.bundles.len());
    let _ = writeln!(text, "  warehouse: {}", crate::storage::to_url(&pipeline.warehouse)?);
    let options = pipeline.storage_options();
    let mut ok = true;
    for system in &pipeline.systems {
        let listed = match Area::open(system.landing(), &options, &pipeline.retry) {
            Ok(area) => area.list().await,
            Err(e) => Err(e),
        };
        match listed {
            Ok(files) => {
                let dated = files.iter().filter(|f| f.date.is_some()).count();
                let newest = files.iter().filter_map(|f| f.date).max().map(|d| d.to_string()).unwrap_or_else(|| "-".into());
                let _ = writeln!(text, "  system {:<16} {:<22} {} files ({dated} dated), newest {newest}", system.name(), system.kind(), files.len());
            }
            Err(e) => {
                ok = false;
                let _ = writeln!(text, "  system {:<16} {:<22} cannot be read: {e}", system.name(), system.kind());
            }
        }
    }
    Ok(Validation { text, ok })
}
