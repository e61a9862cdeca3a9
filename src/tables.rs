//! The raw and reference tables: schemas (the SPEC §4 contract plus lineage columns) and
//! rows → Arrow batches. Marts get their schema from the SQL model that builds them.

use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};

use crate::error::{Error, Result};
use crate::warehouse::TableSpec;

/// Raw tables, in the order `stocktake sql` lists them.
pub const RAW: [&str; 8] = ["snapshots", "movements", "counts", "quarantine", "unmapped_rows", "unmapped_skus", "runs", "run_systems"];
pub const REFERENCE: [&str; 6] = ["skus", "locations", "sku_aliases", "bundles", "authority", "thresholds"];

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}
fn int(name: &str) -> Field {
    Field::new(name, DataType::Int64, true)
}
fn float(name: &str) -> Field {
    Field::new(name, DataType::Float64, true)
}
fn date(name: &str) -> Field {
    Field::new(name, DataType::Date32, true)
}
fn timestamp(name: &str) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true)
}
fn boolean(name: &str) -> Field {
    Field::new(name, DataType::Boolean, true)
}

pub const BUCKETS: [&str; 8] = ["on_hand", "available", "committed", "reserved", "inbound", "in_transit", "unsellable", "pending_inspection"];

fn spec(name: &'static str, partition_by: &'static [&'static str], fields: Vec<Field>) -> TableSpec {
    TableSpec { name, schema: Arc::new(Schema::new(fields)), partition_by }
}

pub static SNAPSHOTS: LazyLock<TableSpec> = LazyLock::new(|| {
    let mut fields = vec![utf8("system"), utf8("location_id"), utf8("sku"), date("snapshot_date"), timestamp("captured_at")];
    fields.extend(BUCKETS.iter().map(|b| int(b)));
    fields.extend([utf8("source_file"), int("source_row"), utf8("run_id")]);
    spec("snapshots", &["system", "snapshot_date"], fields)
});

pub static MOVEMENTS: LazyLock<TableSpec> = LazyLock::new(|| {
    spec("movements", &["system", "load_date"], vec![
        utf8("system"), date("load_date"), timestamp("event_at"), utf8("location_id"), utf8("sku"), utf8("kind"),
        int("qty"), utf8("reason_code"), utf8("reference"), utf8("counterparty_location"), utf8("bundle_sku"),
        utf8("source_file"), int("source_row"), utf8("run_id"),
    ])
});

pub static COUNTS: LazyLock<TableSpec> = LazyLock::new(|| {
    spec("counts", &["system", "load_date"], vec![
        utf8("system"), date("load_date"), date("count_date"), utf8("location_id"), utf8("sku"), int("counted_qty"),
        int("book_qty"), boolean("blind"), utf8("bundle_sku"), utf8("source_file"), int("source_row"), utf8("run_id"),
    ])
});

pub static QUARANTINE: LazyLock<TableSpec> = LazyLock::new(|| {
    spec("quarantine", &["system", "load_date"], vec![
        utf8("run_id"), utf8("system"), date("load_date"), utf8("source_file"), int("source_row"), utf8("field"),
        utf8("raw"), utf8("error"),
    ])
});

pub static UNMAPPED_ROWS: LazyLock<TableSpec> = LazyLock::new(|| {
    spec("unmapped_rows", &["system", "load_date"], vec![
        utf8("system"), date("load_date"), utf8("source_file"), int("source_row"), utf8("location_id"),
        utf8("external_id"), int("units"), utf8("run_id"),
    ])
});

pub static RUNS: LazyLock<TableSpec> = LazyLock::new(|| {
    spec("runs", &[], vec![
        utf8("run_id"), utf8("pipeline"), timestamp("scheduled_for"), timestamp("started_at"), timestamp("finished_at"),
        utf8("status"), int("rows_in"), int("rows_accepted"), int("rows_quarantined"), int("rows_unmapped"), utf8("detail"),
        utf8("trigger"),
    ])
});

pub static RUN_SYSTEMS: LazyLock<TableSpec> = LazyLock::new(|| {
    spec("run_systems", &[], vec![
        utf8("run_id"), utf8("system"), utf8("kind"), utf8("status"), int("files"), int("rows_in"), int("rows_accepted"),
        int("rows_quarantined"), int("rows_unmapped"), utf8("error"),
    ])
});

pub static SKUS: LazyLock<TableSpec> = LazyLock::new(|| {
    spec("skus", &[], vec![
        utf8("sku"), utf8("product_id"), utf8("title"), utf8("option1"), utf8("option2"), float("unit_cost"), float("price"),
        int("case_pack"), int("moq"), float("lead_time_days"), float("lead_time_sd"), boolean("is_bundle"),
    ])
});

pub static LOCATIONS: LazyLock<TableSpec> = LazyLock::new(|| {
    spec("locations", &[], vec![utf8("location_id"), utf8("name"), utf8("location_type"), utf8("region"), utf8("country")])
});

pub static SKU_ALIASES: LazyLock<TableSpec> =
    LazyLock::new(|| spec("sku_aliases", &[], vec![utf8("system"), utf8("external_id"), utf8("sku")]));

pub static BUNDLES: LazyLock<TableSpec> =
    LazyLock::new(|| spec("bundles", &[], vec![utf8("bundle_sku"), utf8("component_sku"), int("qty")]));

pub static AUTHORITY: LazyLock<TableSpec> =
    LazyLock::new(|| spec("authority", &[], vec![utf8("location_type"), utf8("system")]));

/// The pipeline's thresholds as a one-row table: its columns are `Thresholds`' fields.
pub fn thresholds_batch(t: &crate::config::Thresholds) -> Result<(TableSpec, RecordBatch)> {
    let serde_json::Value::Object(fields) = serde_json::to_value(t).expect("thresholds serialise") else { unreachable!() };
    let mut schema = vec![];
    let mut columns: Vec<ArrayRef> = vec![];
    for (name, value) in fields {
        if let Some(i) = value.as_i64() {
            schema.push(int(&name));
            columns.push(Arc::new(Int64Array::from(vec![i])));
        } else if let Some(text) = value.as_str() {
            schema.push(utf8(&name));
            columns.push(Arc::new(StringArray::from(vec![text])));
        } else {
            schema.push(float(&name));
            columns.push(Arc::new(Float64Array::from(vec![value.as_f64()])));
        }
    }
    let spec = spec("thresholds", &[], schema);
    let batch = RecordBatch::try_new(spec.schema.clone(), columns).map_err(|e| Error::arrow("building thresholds", e))?;
    Ok((spec, batch))
}

/// Reads `Thresholds` back from the one-row `thresholds` table; missing columns take defaults.
pub fn thresholds_from(batch: &RecordBatch) -> crate::config::Thresholds {
    let mut fields = serde_json::Map::new();
    for (i, field) in batch.schema().fields().iter().enumerate() {
        let column = batch.column(i);
        let value = match column.data_type() {
            DataType::Int64 => column.as_any().downcast_ref::<Int64Array>().map(|a| serde_json::Value::from(a.value(0))),
            DataType::Float64 => column.as_any().downcast_ref::<Float64Array>().map(|a| serde_json::Value::from(a.value(0))),
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => arrow::compute::cast(column, &DataType::Utf8)
                .ok()
                .map(|a| serde_json::Value::from(arrow::array::cast::as_string_array(&a).value(0).to_string())),
            _ => None,
        };
        if let Some(v) = value {
            fields.insert(field.name().clone(), v);
        }
    }
    serde_json::from_value(serde_json::Value::Object(fields)).unwrap_or_default()
}

/// Column-at-a-time batch building: each call appends one column, in schema order.
pub struct BatchBuilder {
    spec_name: &'static str,
    schema: SchemaRef,
    columns: Vec<ArrayRef>,
}

impl BatchBuilder {
    pub fn new(spec: &TableSpec) -> Self {
        BatchBuilder { spec_name: spec.name, schema: spec.schema.clone(), columns: vec![] }
    }
    pub fn str<'a>(mut self, values: impl Iterator<Item = Option<&'a str>>) -> Self {
        self.columns.push(Arc::new(values.collect::<StringArray>()));
        self
    }
    pub fn int(mut self, values: impl Iterator<Item = Option<i64>>) -> Self {
        self.columns.push(Arc::new(values.collect::<Int64Array>()));
        self
    }
    pub fn float(mut self, values: impl Iterator<Item = Option<f64>>) -> Self {
        self.columns.push(Arc::new(values.collect::<Float64Array>()));
        self
    }
    pub fn boolean(mut self, values: impl Iterator<Item = Option<bool>>) -> Self {
        self.columns.push(Arc::new(values.collect::<BooleanArray>()));
        self
    }
    pub fn date(mut self, values: impl Iterator<Item = Option<NaiveDate>>) -> Self {
        self.columns.push(Arc::new(values.map(|d| d.map(days_since_epoch)).collect::<Date32Array>()));
        self
    }
    pub fn timestamp(mut self, values: impl Iterator<Item = Option<DateTime<Utc>>>) -> Self {
        let array: TimestampMicrosecondArray = values.map(|t| t.map(|t| t.timestamp_micros())).collect();
        self.columns.push(Arc::new(array.with_timezone("UTC")));
        self
    }
    pub fn finish(self) -> Result<RecordBatch> {
        RecordBatch::try_new(self.schema, self.columns).map_err(|e| Error::arrow(format!("building {}", self.spec_name), e))
    }
}

pub fn days_since_epoch(date: NaiveDate) -> i32 {
    (date - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}
