//! The warehouse: Delta Lake tables under one root (a local folder by default, or an
//! object-store URL). Every write is one Delta commit, so a reader sees a table version
//! whole or not at all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::execution::SessionState;
use datafusion::prelude::SessionContext;
use deltalake::delta_datafusion::DeltaSessionContext;
use deltalake::{DeltaTable, DeltaTableError};
use deltalake::kernel::transaction::CommitProperties;
use deltalake::operations::write::SchemaMode;
use deltalake::parquet::file::properties::{WriterProperties, WriterPropertiesBuilder};
use deltalake::protocol::SaveMode;
use url::Url;

use crate::error::{Error, Result};
use crate::storage;

/// A table's name, schema and partitioning.
pub struct TableSpec {
    pub name: &'static str,
    pub schema: SchemaRef,
    pub partition_by: &'static [&'static str],
}

/// Every this many commits a table gets a checkpoint (Delta's default: 100). Loading a table
/// reads its newest checkpoint and replays the commits after it, and a run loads every table:
/// with 100, a year of daily runs left up to 99 commits per table to replay, and a session
/// over the tier-M warehouse took 0.9 s to open instead of 0.3 s.
pub const CHECKPOINT_INTERVAL: u64 = 10;

/// The key under which a commit's information records the fingerprint of the table's content
/// (`Warehouse::replace_if_changed`).
const CONTENT: &str = "stocktakeContent";

/// A fingerprint of the rows of `batches` and of their columns' names and types, whatever the
/// order of the rows (a scan, or a map in the pipeline file, may vary it). Rows are compared in
/// Arrow's row format, which encodes every type, nulls included, without formatting text.
pub fn content_fingerprint(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<u64> {
    use std::hash::{Hash, Hasher};
    use arrow::row::{RowConverter, SortField};
    let context = "fingerprinting a table's content";
    let mut hasher = std::hash::DefaultHasher::new();
    for field in schema.fields() {
        (field.name(), field.data_type().to_string()).hash(&mut hasher);
    }
    let converter = RowConverter::new(schema.fields().iter().map(|f| SortField::new(f.data_type().clone())).collect())
        .map_err(|e| Error::arrow(context, e))?;
    let converted = batches.iter().map(|b| converter.convert_columns(b.columns()).map_err(|e| Error::arrow(context, e))).collect::<Result<Vec<_>>>()?;
    // Sorted in place, without copying each row out.
    let mut rows: Vec<&[u8]> = converted.iter().flat_map(|rows| rows.iter().map(|row| row.data())).collect();
    rows.sort_unstable();
    rows.hash(&mut hasher);
    Ok(hasher.finish())
}

/// How a write relates to what the table holds.
pub enum Write {
    /// Replace the whole table.
    All,
    /// Replace the rows matching a SQL predicate (partitions being re-loaded).
    Where(String),
    /// Add to the rows (a table written in parts).
    Append,
}

#[derive(Clone)]
pub struct Warehouse {
    root: Url,
    options: HashMap<String, String>,
    /// Tables loaded before, brought up to date on the next load by reading only the commits
    /// made since: a fresh load reads the table's checkpoint and log again, and a run loads
    /// the same tables many times (each write, each session).
    loaded: Arc<Mutex<HashMap<String, DeltaTable>>>,
    /// The session every write runs in: one partition, so that a write's rows go to one
    /// Parquet writer as they come. delta-rs's own session (a partition per core) spread them
    /// over the cores by day, copying every row into the partition of its day; the marts run
    /// their next computation (or tests) beside each write, which keeps the other core busy.
    /// Tier-M full builds of 90 days (with the day marts' tests and computation as tasks of
    /// their own), ten alternated pairs: 31.1 CPU-s against 32.5 on average, less in seven
    /// pairs; the wall time, 18.4 s against 18.6, is within the machine's noise.
    write_session: SessionState,
}

impl Warehouse {
    /// Opens (creating, for a local folder) the warehouse at a path or URL.
    pub fn open(location: &str) -> Result<Warehouse> {
        Self::open_with(location, storage::storage_options())
    }

    /// The pipeline's warehouse, with its object-store options.
    pub fn for_pipeline(pipeline: &crate::config::Pipeline) -> Result<Warehouse> {
        Self::open_with(&pipeline.warehouse, pipeline.storage_options())
    }

    /// Opens the warehouse with explicit object-store options.
    pub fn open_with(location: &str, options: Vec<(String, String)>) -> Result<Warehouse> {
        let root = storage::to_url(location)?;
        if root.scheme() == "file" {
            let path = root.to_file_path().map_err(|()| Error::Usage(format!("'{location}' is not a local path")))?;
            std::fs::create_dir_all(&path).map_err(|e| Error::io(path.display(), e))?;
        }
        let mut root = root;
        if !root.path().ends_with('/') {
            root.set_path(&format!("{}/", root.path()));
        }
        let one_partition = HashMap::from([("datafusion.execution.target_partitions".to_string(), "1".to_string())]);
        let write_session = DeltaSessionContext::new_with_session_overrides(&one_partition).map_err(|e| Error::Usage(format!("setting up the write session: {e}")))?.state();
        Ok(Warehouse { root, options: options.into_iter().collect(), loaded: Arc::default(), write_session })
    }

    pub fn root(&self) -> &Url {
        &self.root
    }

    pub fn table_url(&self, name: &str) -> Url {
        self.root.join(&format!("{name}/")).expect("table names are plain words")
    }

    /// The table at its latest version, or `None` when nothing has been written to it yet.
    pub async fn load(&self, name: &str) -> Result<Option<DeltaTable>> {
        let url = self.table_url(name);
        if let Ok(path) = url.to_file_path()
            && !path.join("_delta_log").is_dir() {
                self.cache().remove(name);
                return Ok(None);
            }
        let cached = self.cache().get(name).cloned();
        if let Some(mut table) = cached {
            // Another writer may have replaced the table since: then it is loaded afresh.
            if table.update_incremental(None).await.is_ok() {
                self.cache().insert(name.to_string(), table.clone());
                return Ok(Some(table));
            }
        }
        let table = match DeltaTable::try_from_url_with_storage_options(url, self.options.clone()).await {
            Ok(table) if table.version().is_some() => table,
            Ok(_) | Err(DeltaTableError::NotATable(_) | DeltaTableError::InvalidTableLocation(_)) => {
                self.cache().remove(name);
                return Ok(None);
            }
            Err(e) => return Err(Error::delta(name, e)),
        };
        self.cache().insert(name.to_string(), table.clone());
        Ok(Some(table))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, DeltaTable>> {
        // A panic while the lock was held leaves only tables that a load brings up to date.
        self.loaded.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An empty handle for a table that is about to be created.
    async fn create_handle(&self, name: &str) -> Result<DeltaTable> {
        let url = self.table_url(name);
        if let Ok(path) = url.to_file_path() {
            std::fs::create_dir_all(&path).map_err(|e| Error::io(path.display(), e))?;
        }
        // Built without loading: there is no log to read yet.
        deltalake::DeltaTableBuilder::from_url(url)
            .and_then(|b| b.with_storage_options(self.options.clone()).build())
            .map_err(|e| Error::delta(name, e))
    }

    /// Writes `batches` (which may hold no rows) as one commit.
    pub async fn write(&self, spec: &TableSpec, batches: Vec<RecordBatch>, mode: Write) -> Result<()> {
        self.commit(spec, batches, mode, None, writer_properties(&spec.schema)?.build()).await
    }

    /// `write`, with Parquet settings of the caller's (from `writer_properties`).
    pub async fn write_with(&self, spec: &TableSpec, batches: Vec<RecordBatch>, mode: Write, properties: WriterProperties) -> Result<()> {
        self.commit(spec, batches, mode, None, properties).await
    }

    /// Replaces the whole table with `batches` unless it already holds exactly these rows
    /// (compared by `content_fingerprint`, which the commit records): every run writes the
    /// reference tables, and a day's run rarely changes them. Returns whether it wrote.
    pub async fn replace_if_changed(&self, spec: &TableSpec, batches: Vec<RecordBatch>) -> Result<bool> {
        let content = format!("{:016x}", content_fingerprint(&spec.schema, &batches)?);
        if let Some(table) = self.load(spec.name).await? {
            // The newest commit's: any other write since would not have recorded it.
            let newest: Vec<_> = futures::TryStreamExt::try_collect(table.history(Some(1))).await.map_err(|e| Error::delta(spec.name, e))?;
            if newest.first().and_then(|commit| commit.info.get(CONTENT)).and_then(|v| v.as_str()) == Some(content.as_str()) {
                return Ok(false);
            }
        }
        self.commit(spec, batches, Write::All, Some(content), writer_properties(&spec.schema)?.build()).await?;
        Ok(true)
    }

    /// One commit of `batches`, recording the fingerprint of their `content` if given.
    async fn commit(&self, spec: &TableSpec, batches: Vec<RecordBatch>, mode: Write, content: Option<String>, properties: WriterProperties) -> Result<()> {
        let batches = if batches.is_empty() { vec![RecordBatch::new_empty(spec.schema.clone())] } else { batches };
        let existing = self.load(spec.name).await?;
        let table = match existing {
            Some(t) => t,
            None => self.create_handle(spec.name).await?,
        };
        let fresh = table.version().is_none();
        let mut builder = table
            .write(batches)
            .with_partition_columns(spec.partition_by.iter().map(|c| c.to_string()))
            .with_save_mode(if fresh || matches!(mode, Write::Append) { SaveMode::Append } else { SaveMode::Overwrite })
            .with_writer_properties(properties)
            .with_session_state(Arc::new(self.write_session.clone()))
            // Checkpoints on stocktake's cadence, below, whatever the table's own setting.
            .with_commit_properties(
                CommitProperties::default()
                    .with_create_checkpoint(false)
                    .with_metadata(content.map(|c| (CONTENT.to_string(), serde_json::Value::String(c)))),
            );
        match (&mode, fresh) {
            (Write::Where(predicate), false) => builder = builder.with_replace_where(predicate.clone()),
            // A full rebuild may change a mart's columns as its model evolves.
            (Write::All, false) => builder = builder.with_schema_mode(SchemaMode::Overwrite),
            _ => {}
        }
        let written = builder.await.map_err(|e| Error::delta(spec.name, e))?;
        if let Some(version) = written.version()
            && (version + 1) % CHECKPOINT_INTERVAL == 0
            // The commit stands without it: a later load only replays more of the log.
            && let Err(e) = deltalake::checkpoints::create_checkpoint(&written, None).await
        {
            tracing::warn!(table = spec.name, version, error = %e, "checkpoint not written");
        }
        self.cache().insert(spec.name.to_string(), written);
        Ok(())
    }

    /// A DataFusion session with every existing table of `names` registered by name.
    pub async fn session(&self, names: &[&str]) -> Result<SessionContext> {
        let ctx = SessionContext::new_with_config(session_config()?);
        self.register(&ctx, names).await?;
        Ok(ctx)
    }

    /// (Re-)registers the latest version of each existing table of `names`.
    pub async fn register(&self, ctx: &SessionContext, names: &[&str]) -> Result<()> {
        for name in names {
            let Some(table) = self.load(name).await? else { continue };
            table.update_datafusion_session(&ctx.state()).map_err(|e| Error::delta(name, e))?;
            let provider = scan(&table).map_err(|e| Error::query(format!("reading {name}"), e))?;
            ctx.deregister_table(*name).map_err(|e| Error::query(format!("registering {name}"), e))?;
            ctx.register_table(*name, provider).map_err(|e| Error::query(format!("registering {name}"), e))?;
        }
        Ok(())
    }
}

/// A table as DataFusion reads it. Partition columns come as plain strings, not Delta's
/// default dictionaries: grouping or joining on a dictionary column (`system` of `snapshots`)
/// takes DataFusion's row-format path: 60 tier-M days of coverage's grouping by day, system
/// and location took 1.41 s (1.64 CPU-s) with the dictionary, 1.03 s (0.95) with strings.
fn scan(table: &DeltaTable) -> datafusion::error::Result<Arc<dyn datafusion::catalog::TableProvider>> {
    use deltalake::delta_datafusion::{DeltaScanConfig, DeltaScanNext};
    let snapshot = Arc::new(table.snapshot()?.snapshot().clone());
    Ok(Arc::new(DeltaScanNext::new(snapshot, DeltaScanConfig::new().with_wrap_partition_values(false))?))
}

/// DataFusion's settings: its defaults but for the three below, overridden by `DATAFUSION_*`
/// environment variables (`DATAFUSION_EXECUTION_TARGET_PARTITIONS=4` sets
/// `datafusion.execution.target_partitions`).
///
/// Batches of 32 k rows (DataFusion: 8 k): fewer, larger batches through the joins,
/// projections and writes of millions of rows. A tier-M full build took 118 s / 205 CPU-s
/// instead of 130-132 s / 229-231, peak RSS 1.75 GiB instead of 1.69-1.71 (64 k: no faster,
/// 1.91 GiB); every mart identical.
///
/// A hash join hashes its smaller side whole, unpartitioned, up to 10 M rows or 1 GB
/// (DataFusion: 128 k rows, 1 MB): then neither side is repartitioned, which on a few cores
/// costs more than it spreads. The largest build side of a tier-M build is a 14-day chunk of
/// positions (1 M rows): variances computed in 42.9 s instead of 49.8 s, peak RSS unchanged.
fn session_config() -> Result<datafusion::prelude::SessionConfig> {
    let mut config = datafusion::prelude::SessionConfig::from_env().map_err(|e| Error::query("reading DATAFUSION_* settings", e))?;
    if std::env::var_os("DATAFUSION_EXECUTION_BATCH_SIZE").is_none() {
        config = config.with_batch_size(32 * 1024);
    }
    let optimizer = &mut config.options_mut().optimizer;
    if std::env::var_os("DATAFUSION_OPTIMIZER_HASH_JOIN_SINGLE_PARTITION_THRESHOLD_ROWS").is_none() {
        optimizer.hash_join_single_partition_threshold_rows = 10_000_000;
    }
    if std::env::var_os("DATAFUSION_OPTIMIZER_HASH_JOIN_SINGLE_PARTITION_THRESHOLD").is_none() {
        optimizer.hash_join_single_partition_threshold = 1 << 30;
    }
    Ok(config)
}

/// Parquet settings of every table written: DataFusion's (`DATAFUSION_EXECUTION_PARQUET_*`
/// environment variables override them), but
/// - Snappy (the Delta default) unless the compression is set: DataFusion's zstd(3) is slower
///   to encode (writing a tier-M full build's positions and variances took 37 s with zstd,
///   31 s with Snappy, files ~25 % larger);
/// - no dictionary for `sku`: tens of thousands of values per file, each looked up in the
///   dictionary as it is written, for little saving. A tier-M full build took 210 CPU-s
///   instead of 224, variances 6 % larger; reading the column costs no more.
/// - no dictionary for number columns either (unless `DATAFUSION_EXECUTION_PARQUET_DICTIONARY_ENABLED`
///   is set): quantities, costs and deltas rarely fit one, and the day marts are bound by
///   their writes. Tier-M full builds took 100.5 / 95.8 s instead of 102.9 / 110.1 s
///   (positions 25.7 / 23.6 s instead of 28.7 / 28.4, variances 43.3 / 41.4 instead of
///   45.6 / 46.6); text keeps its dictionary, which the marts grouping by it read faster.
pub fn writer_properties(schema: &SchemaRef) -> Result<WriterPropertiesBuilder> {
    let settings = |e| Error::query("reading DATAFUSION_EXECUTION_PARQUET_* settings", e);
    let mut options = datafusion::config::ConfigOptions::from_env().map_err(settings)?.execution.parquet;
    if std::env::var_os("DATAFUSION_EXECUTION_PARQUET_COMPRESSION").is_none() {
        options.compression = Some("snappy".into());
    }
    let column = |name: &str| deltalake::parquet::schema::types::ColumnPath::from(name);
    let mut builder = options.into_writer_properties_builder().map_err(settings)?.set_column_dictionary_enabled(column("sku"), false);
    if std::env::var_os("DATAFUSION_EXECUTION_PARQUET_DICTIONARY_ENABLED").is_none() {
        for field in schema.fields().iter().filter(|f| f.data_type().is_numeric()) {
            builder = builder.set_column_dictionary_enabled(column(field.name()), false);
        }
    }
    Ok(builder)
}

/// A text as a SQL string literal: quoted, its quotes doubled.
pub fn sql_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Runs a query and collects its batches.
pub async fn collect(ctx: &SessionContext, context: &str, sql: &str) -> Result<Vec<RecordBatch>> {
    let frame = ctx.sql(sql).await.map_err(|e| Error::query(context, e))?;
    frame.collect().await.map_err(|e| Error::query(context, e))
}

/// `collect`, with at least one (maybe empty) batch: for rows that are kept as a table, whose
/// schema is needed even when there are none.
pub async fn collect_at_least_one(ctx: &SessionContext, context: &str, sql: &str) -> Result<Vec<RecordBatch>> {
    let frame = ctx.sql(sql).await.map_err(|e| Error::query(context, e))?;
    let schema = frame.schema().inner().clone();
    let mut batches = frame.collect().await.map_err(|e| Error::query(context, e))?;
    if batches.is_empty() {
        batches.push(RecordBatch::new_empty(schema));
    }
    Ok(batches)
}

/// The values a kept table's rows were stamped with (`columns`, one value each: the day and
/// window they were made for), or `None` when the table is not registered, holds no rows, or
/// its rows disagree (then nothing kept can be gone on from).
pub async fn kept_stamps(ctx: &SessionContext, table: &str, columns: &[&str]) -> Result<Option<Vec<i64>>> {
    let context = format!("reading the stamps of {table}");
    if !ctx.table_exist(table).map_err(|e| Error::query(&context, e))? {
        return Ok(None);
    }
    let bounds = columns.iter().map(|c| format!("min({c}), max({c})")).collect::<Vec<_>>().join(", ");
    let batches = collect(ctx, &context, &format!("select {bounds} from {table}")).await?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else { return Ok(None) };
    let mut stamps = vec![];
    for i in 0..columns.len() {
        match (integers(batch, 2 * i)?[0], integers(batch, 2 * i + 1)?[0]) {
            (Some(min), Some(max)) if min == max => stamps.push(min),
            _ => return Ok(None),
        }
    }
    Ok(Some(stamps))
}

/// A column as strings, whatever Arrow string layout the scan produced (Utf8, Utf8View…).
pub fn strings(batch: &RecordBatch, column: usize) -> Result<Vec<Option<String>>> {
    let array = arrow::compute::cast(batch.column(column), &arrow::datatypes::DataType::Utf8)
        .map_err(|e| Error::arrow("reading a text column", e))?;
    let array = arrow::array::cast::as_string_array(&array);
    Ok(array.iter().map(|v| v.map(str::to_string)).collect())
}

/// A column as 64-bit integers (dates become days since the epoch).
pub fn integers(batch: &RecordBatch, column: usize) -> Result<Vec<Option<i64>>> {
    let source = batch.column(column);
    let source = if matches!(source.data_type(), arrow::datatypes::DataType::Date32) {
        arrow::compute::cast(source, &arrow::datatypes::DataType::Int32).map_err(|e| Error::arrow("reading a date column", e))?
    } else {
        source.clone()
    };
    let array = arrow::compute::cast(&source, &arrow::datatypes::DataType::Int64)
        .map_err(|e| Error::arrow("reading a number column", e))?;
    let array = array.as_any().downcast_ref::<arrow::array::Int64Array>().expect("cast to Int64");
    Ok(array.iter().collect())
}

/// A column as floats.
pub fn floats(batch: &RecordBatch, column: usize) -> Result<Vec<Option<f64>>> {
    let array = arrow::compute::cast(batch.column(column), &arrow::datatypes::DataType::Float64)
        .map_err(|e| Error::arrow("reading a number column", e))?;
    let array = array.as_any().downcast_ref::<arrow::array::Float64Array>().expect("cast to Float64");
    Ok(array.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(system: &str, day: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("system", DataType::Utf8, false), Field::new("qty", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![system])), Arc::new(Int64Array::from(vec![day]))]).unwrap()
    }

    #[tokio::test]
    async fn every_tenth_commit_is_checkpointed_and_partitions_read_as_strings() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
        let spec = TableSpec { name: "snapshots", schema: batch("pos", 0).schema(), partition_by: &["system"] };
        let last_checkpoint = || std::fs::read_to_string(dir.path().join("snapshots/_delta_log/_last_checkpoint")).ok();
        for version in 0..10 {
            assert_eq!(last_checkpoint(), None, "no checkpoint before version 9 (at {version})");
            let system = if version % 2 == 0 { "pos" } else { "erp" };
            warehouse.write(&spec, vec![batch(system, version)], Write::Where(format!("system = '{system}'"))).await.unwrap();
        }
        let checkpoint: serde_json::Value = serde_json::from_str(&last_checkpoint().expect("a checkpoint at version 9")).unwrap();
        assert_eq!(checkpoint["version"], 9);

        // A fresh handle loads from the checkpoint and sees the last write of each partition.
        let ctx = Warehouse::open(dir.path().to_str().unwrap()).unwrap().session(&["snapshots"]).await.unwrap();
        let sql = "select system, qty, arrow_typeof(system) from snapshots order by system";
        let batches = collect(&ctx, "test", sql).await.unwrap();
        assert_eq!(strings(&batches[0], 0).unwrap(), [Some("erp".to_string()), Some("pos".to_string())]);
        assert_eq!(integers(&batches[0], 1).unwrap(), [Some(9), Some(8)]);
        let types = strings(&batches[0], 2).unwrap();
        assert!(types.iter().all(|t| !t.as_deref().unwrap_or_default().starts_with("Dictionary")), "partition column read as {types:?}");
    }

    #[tokio::test]
    async fn a_replacement_with_the_same_rows_in_any_order_is_not_committed() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
        let spec = TableSpec { name: "skus", schema: batch("a", 0).schema(), partition_by: &[] };
        let version = || async { warehouse.load("skus").await.unwrap().unwrap().version() };
        assert!(warehouse.replace_if_changed(&spec, vec![batch("a", 1), batch("b", 2)]).await.unwrap());
        assert_eq!(version().await, Some(0));
        // The same rows, in another order and other batches: nothing to write, even from a
        // fresh handle that reads the recorded fingerprint from the log.
        let reopened = Warehouse::open(dir.path().to_str().unwrap()).unwrap();
        assert!(!reopened.replace_if_changed(&spec, vec![batch("b", 2), batch("a", 1)]).await.unwrap());
        assert_eq!(version().await, Some(0));
        // One value changed: a new version with the new rows.
        assert!(warehouse.replace_if_changed(&spec, vec![batch("a", 1), batch("b", 3)]).await.unwrap());
        assert_eq!(version().await, Some(1));
        let ctx = warehouse.session(&["skus"]).await.unwrap();
        let rows = collect(&ctx, "test", "select system, qty from skus order by system").await.unwrap();
        assert_eq!(integers(&rows[0], 1).unwrap(), [Some(1), Some(3)]);
        // After a write that records no fingerprint (any other write), the one recorded before
        // it says nothing: rows that match it are written.
        warehouse.write(&spec, vec![batch("a", 5)], Write::All).await.unwrap();
        assert!(warehouse.replace_if_changed(&spec, vec![batch("a", 1), batch("b", 3)]).await.unwrap());
        assert_eq!(version().await, Some(3));
    }

    #[test]
    fn content_fingerprints_ignore_row_order_but_not_values_or_columns() {
        let schema = batch("a", 0).schema();
        let fingerprint = |batches: &[RecordBatch]| content_fingerprint(&schema, batches).unwrap();
        assert_eq!(fingerprint(&[batch("a", 1), batch("b", 2)]), fingerprint(&[batch("b", 2), batch("a", 1)]));
        assert_ne!(fingerprint(&[batch("a", 1), batch("b", 2)]), fingerprint(&[batch("a", 2), batch("b", 1)]));
        let renamed = Arc::new(Schema::new(vec![Field::new("location", DataType::Utf8, false), Field::new("qty", DataType::Int64, false)]));
        assert_ne!(content_fingerprint(&renamed, &[batch("a", 1)]).unwrap(), fingerprint(&[batch("a", 1)]));
    }
}
