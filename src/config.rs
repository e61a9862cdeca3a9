//! Pipeline files (`pipelines/*.toml`): what to ingest, where the warehouse is, and which
//! system is authoritative for each kind of location. Unknown keys are errors.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::sources::SourceConfig;

/// One pipeline: a merchant's systems feeding one warehouse.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Name recorded in `runs`; also names the pipeline on the command line.
    pub name: String,
    /// Cron expression for `stocktake schedule` (seconds field optional).
    #[serde(default)]
    pub schedule: Option<String>,
    /// IANA timezone the schedule is read in (default UTC).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Warehouse location: a local folder (default `./warehouse`) or an object-store URL
    /// such as `s3://bucket/prefix`. `${ENV_VAR}` is replaced from the environment.
    #[serde(default = "default_warehouse")]
    pub warehouse: String,
    /// Missed runs when `stocktake schedule` starts after downtime: `none` skips them,
    /// `latest` (default) runs the most recent one, `all` runs each in order.
    #[serde(default)]
    pub catch_up: CatchUp,
    /// A scheduled run on local day D ingests the files dated D − `ingest_days_back`
    /// (1 when the systems export yesterday's stock overnight).
    #[serde(default)]
    pub ingest_days_back: u32,
    /// Object-store options for the warehouse, landing and reference URLs, e.g.
    /// `aws_endpoint`, `aws_region`, `aws_access_key_id = "${AWS_ACCESS_KEY_ID}"`. Values
    /// are expanded from the environment only when used, so secrets never reach logs;
    /// `AWS_*` environment variables apply as well.
    #[serde(default)]
    pub storage: BTreeMap<String, String>,
    /// Retries of transient source errors (network, throttling, timeouts).
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Reference files: the canonical SKUs, locations, aliases and bundles.
    pub reference: ReferenceFiles,
    /// Location type → the system whose number is true there, e.g. `store = "pos"`.
    pub authority: BTreeMap<String, String>,
    /// Tolerances; every one has a default from the SPEC.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// The systems to ingest, each with its `kind` of export.
    #[serde(default)]
    pub systems: Vec<SourceConfig>,
}

/// Paths (or URLs) of the reference CSV files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceFiles {
    /// `sku, product_id, title, option1, option2, unit_cost, price, case_pack, moq,
    /// lead_time_days, lead_time_sd, is_bundle`
    pub skus: String,
    /// `location_id, name, type, region, country`
    pub locations: String,
    /// `system, external_id, sku` — per-system ids that name a canonical SKU.
    #[serde(default)]
    pub sku_aliases: Option<String>,
    /// `bundle_sku, component_sku, qty` — kits sold as one, stocked as components.
    #[serde(default)]
    pub bundles: Option<String>,
}

/// Tolerances and test settings for the marts (SPEC §5). Every one has a default; the
/// pipeline's values are written to the `thresholds` table, where the SQL models and the
/// statistics read them.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// A variance is flagged when |delta| > max(flag_pct × |authoritative|, flag_units).
    pub flag_pct: f64,
    /// See `flag_pct`.
    pub flag_units: i64,
    /// A system matching the authoritative value of one of the previous `lag_days` days is
    /// explained as lag.
    pub lag_days: i64,
    /// ABC: SKUs whose cumulative usage-value share before them is below this are class A.
    pub abc_a_share: f64,
    /// ABC: … below this (and not A) are class B; the rest are C.
    pub abc_b_share: f64,
    /// Count tolerance for inventory record accuracy, class A (share of book quantity).
    pub tolerance_a: f64,
    /// Count tolerance, class B.
    pub tolerance_b: f64,
    /// Count tolerance, class C.
    pub tolerance_c: f64,
    /// No drift pattern is claimed on fewer observations than this.
    pub min_observations: i64,
    /// Days of history the pattern tests look at (the most recent ones).
    pub pattern_window_days: i64,
    /// Days of history drift_patterns reads at all: month-end and integration-lag tests and
    /// the systems' base rates use all of them (so memory and time do not grow with history).
    pub pattern_history_days: i64,
    /// Significance level of the pattern tests.
    pub pattern_alpha: f64,
    /// Persistent: flagged on at least this share of the window's days.
    pub persistent_share: f64,
    /// Fixed offset: one non-zero delta makes up at least this share of the non-zero deltas.
    pub fixed_offset_share: f64,
    /// Integration lag: shifts of 1..=max_lag_days days are tried.
    pub max_lag_days: i64,
    /// Weeks in the trailing window of the variance trend test.
    pub trend_weeks: i64,
    /// Significance level of the trend test (worsening / improving vs flat).
    pub trend_alpha: f64,
    /// A system whose newest snapshot is older than this many days is stale.
    pub stale_after_days: i64,
    /// Cycle counts per year, class A.
    pub counts_per_year_a: i64,
    /// Cycle counts per year, class B.
    pub counts_per_year_b: i64,
    /// Cycle counts per year, class C.
    pub counts_per_year_c: i64,
    /// SKU-locations one location can count in a working day.
    pub count_capacity_per_day: i64,
    /// Location types the merchant counts itself (comma-separated); FBA is Amazon's to count.
    pub count_location_types: String,
    /// An exception open longer than this brings its SKU-location's count forward.
    pub bring_forward_after_days: i64,
    /// Service level (cycle service probability) for class A; B and C below.
    pub service_level_a: f64,
    pub service_level_b: f64,
    pub service_level_c: f64,
    /// Days between purchase reviews: the order-up-to level covers one more review period.
    pub review_period_days: i64,
    /// Days of sales history the demand mean and spread are measured over.
    pub demand_window_days: i64,
    /// Systems customers buy through (comma-separated): these get channel buffers.
    pub selling_systems: String,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            flag_pct: 0.03,
            flag_units: 10,
            lag_days: 3,
            abc_a_share: 0.80,
            abc_b_share: 0.95,
            tolerance_a: 0.01,
            tolerance_b: 0.03,
            tolerance_c: 0.05,
            min_observations: 10,
            pattern_window_days: 30,
            pattern_history_days: 120,
            pattern_alpha: 0.01,
            persistent_share: 0.6,
            fixed_offset_share: 0.6,
            max_lag_days: 7,
            trend_weeks: 8,
            trend_alpha: 0.05,
            stale_after_days: 2,
            counts_per_year_a: 12,
            counts_per_year_b: 4,
            counts_per_year_c: 1,
            count_capacity_per_day: 40,
            count_location_types: "store,warehouse,3pl".into(),
            bring_forward_after_days: 7,
            service_level_a: 0.99,
            service_level_b: 0.95,
            service_level_c: 0.90,
            review_period_days: 7,
            demand_window_days: 56,
            selling_systems: "pos,shopify,seller_central".into(),
        }
    }
}

/// What `stocktake schedule` does with runs missed while it was down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    None,
    #[default]
    Latest,
    All,
}

/// Exponential backoff with jitter: attempt n waits a random time in
/// [½, 1] × min(initial × 2ⁿ⁻¹, max) before trying again.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Tries in all, the first included (1 = no retry).
    pub attempts: u32,
    /// Wait before the second try, in milliseconds.
    pub initial_backoff_ms: u64,
    /// Ceiling of any one wait, in milliseconds.
    pub max_backoff_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 4, initial_backoff_ms: 500, max_backoff_ms: 10_000 }
    }
}

fn default_warehouse() -> String {
    "./warehouse".to_string()
}

impl Pipeline {
    /// Reads and checks a pipeline file. Errors name the file, the line and the key.
    pub fn load(path: &Path) -> Result<Pipeline> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path.display(), e))?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Pipeline> {
        let mut pipeline: Pipeline = toml::from_str(text).map_err(|e| {
            let mut line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
            // Inside a `kind`-tagged system the span covers the whole table: point at the key.
            if let Some(key) = e.message().strip_prefix("unknown field `").and_then(|m| m.split('`').next()) {
                line = key_line(text, key, line).unwrap_or(line);
            }
            Error::Config { file: path.to_path_buf(), line, message: e.message().to_string() }
        })?;
        pipeline.check(text, path)?;
        check_env_references(text, path)?;
        pipeline.expand_locations()?;
        Ok(pipeline)
    }

    /// Object-store options with `${ENV_VAR}` expanded: call only where they are used.
    pub fn storage_options(&self) -> Vec<(String, String)> {
        let mut options = crate::storage::storage_options();
        for (key, value) in &self.storage {
            // Checked at load time; a variable unset since then expands to nothing.
            options.push((key.to_ascii_lowercase(), expand_env(value).unwrap_or_default()));
        }
        options
    }

    /// Locations may name their bucket or host through the environment.
    fn expand_locations(&mut self) -> Result<()> {
        let expand = |v: &mut String| -> Result<()> {
            *v = expand_env(v).map_err(Error::Usage)?;
            Ok(())
        };
        expand(&mut self.warehouse)?;
        expand(&mut self.reference.skus)?;
        expand(&mut self.reference.locations)?;
        if let Some(v) = &mut self.reference.sku_aliases {
            expand(v)?;
        }
        if let Some(v) = &mut self.reference.bundles {
            expand(v)?;
        }
        for system in &mut self.systems {
            expand(system.landing_mut())?;
        }
        Ok(())
    }

    /// Consistency checks serde cannot express.
    fn check(&self, text: &str, path: &Path) -> Result<()> {
        let bad = |key: &str, message: String| Error::Config {
            file: path.to_path_buf(),
            line: find_line(text, key),
            message,
        };
        let mut seen = std::collections::HashSet::new();
        for system in &self.systems {
            if !seen.insert((system.name(), system.kind())) {
                return Err(bad(
                    system.name(),
                    format!("system '{}' of kind {} is listed twice", system.name(), system.kind()),
                ));
            }
        }
        for (location_type, system) in &self.authority {
            if !self.systems.iter().any(|s| s.name() == system && s.is_snapshot()) {
                return Err(bad(
                    location_type,
                    format!(
                        "authority.{location_type} names system '{system}', which no snapshot \
                         system in this pipeline has"
                    ),
                ));
            }
        }
        for (key, value) in &self.storage {
            let secret = ["secret", "password", "token", "access_key_id"].iter().any(|w| key.to_ascii_lowercase().contains(w));
            if secret && !value.trim().starts_with("${") {
                return Err(bad(key, format!("storage.{key} holds a literal secret; write \"${{ENV_VAR}}\" and set it in the environment")));
            }
        }
        if self.retry.attempts == 0 || self.retry.initial_backoff_ms > self.retry.max_backoff_ms {
            return Err(bad("[retry]", "retry: attempts must be ≥ 1 and initial_backoff_ms ≤ max_backoff_ms".into()));
        }
        if let Some(schedule) = &self.schedule {
            crate::schedule::parse_cron(schedule).map_err(|m| bad("schedule", m))?;
        }
        if let Some(tz) = &self.timezone {
            tz.parse::<chrono_tz::Tz>().map_err(|_| bad("timezone", format!("unknown timezone '{tz}' (an IANA name such as America/New_York)")))?;
        }
        let t = &self.thresholds;
        let levels = [t.service_level_a, t.service_level_b, t.service_level_c];
        if !(0.0..1.0).contains(&t.flag_pct)
            || t.lag_days < 0
            || !(t.abc_a_share < t.abc_b_share && t.abc_b_share <= 1.0)
            || levels.iter().any(|l| !(0.5..1.0).contains(l))
            || t.count_capacity_per_day < 1
        {
            return Err(bad("[thresholds]", "thresholds out of range (flag_pct in [0, 1), lag_days ≥ 0, abc_a_share < abc_b_share ≤ 1, service levels in [0.5, 1), count_capacity_per_day ≥ 1)".into()));
        }
        Ok(())
    }

    pub fn snapshot_systems(&self) -> impl Iterator<Item = &SourceConfig> {
        self.systems.iter().filter(|s| s.is_snapshot())
    }
}

/// Replaces every `${NAME}` with the environment variable NAME; the error names a missing one.
pub fn expand_env(value: &str) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| format!("unclosed '${{' in '{value}'"))?;
        let name = &after[..end];
        let var = std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))?;
        out.push_str(&var);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Every `${NAME}` in the file must be set: the error names the line and key, never a value.
fn check_env_references(text: &str, path: &Path) -> Result<()> {
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with('#') || !line.contains("${") {
            continue;
        }
        let key = line.split('=').next().unwrap_or("").trim().trim_matches('"');
        let value = line.split_once('=').map(|(_, v)| v).unwrap_or(line);
        expand_env(value).map_err(|m| Error::Config { file: path.to_path_buf(), line: i + 1, message: format!("key '{key}': {m}") })?;
    }
    Ok(())
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

/// Line of the first `key = …` at or after line `from`.
fn key_line(text: &str, key: &str, from: usize) -> Option<usize> {
    text.lines().enumerate().skip(from.saturating_sub(1)).find_map(|(i, l)| {
        let rest = l.trim_start().strip_prefix(key)?;
        rest.trim_start().starts_with('=').then_some(i + 1)
    })
}

/// Line of the first mention of `needle`, for errors found after parsing.
fn find_line(text: &str, needle: &str) -> usize {
    text.find(needle).map(|at| line_of(text, at)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "t"
[reference]
skus = "skus.csv"
locations = "locations.csv"
[authority]
store = "pos"
[[systems]]
name = "pos"
kind = "csv"
landing = "landing/pos"
[systems.columns]
sku = "Item"
location = "Store"
on_hand = "Qty"
"#;

    #[test]
    fn minimal_pipeline_parses_with_defaults() {
        let p = Pipeline::parse(MINIMAL, Path::new("t.toml")).unwrap();
        assert_eq!(p.warehouse, "./warehouse");
        assert_eq!(p.thresholds.flag_units, 10);
        assert_eq!(p.systems.len(), 1);
        assert_eq!(p.systems[0].name(), "pos");
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let text = MINIMAL.replace("landing = \"landing/pos\"", "landing = \"x\"\nlandnig = 1");
        let err = Pipeline::parse(&text, Path::new("p.toml")).unwrap_err().to_string();
        assert!(err.starts_with("p.toml:12:"), "{err}");
        assert!(err.contains("landnig"), "{err}");
    }

    #[test]
    fn authority_must_name_a_system() {
        let text = MINIMAL.replace("store = \"pos\"", "store = \"till\"");
        let err = Pipeline::parse(&text, Path::new("p.toml")).unwrap_err().to_string();
        assert!(err.contains("p.toml:7:") && err.contains("'till'"), "{err}");
    }
}
