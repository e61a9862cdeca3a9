//! Drift intelligence: ABC classes, variance trends, drift patterns. The statistics run in
//! Rust over tables the SQL models produce; their results are tables again.

pub mod abc;
pub mod exceptions;
pub mod patterns;
pub mod trends;

use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;

use crate::error::Result;

pub fn date_from_days(days: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::TimeDelta::days(days)
}

/// A two-column text query as a map from the first column to the second (NULLs skipped).
pub async fn text_map(ctx: &datafusion::prelude::SessionContext, context: &str, sql: &str) -> Result<std::collections::HashMap<String, String>> {
    let mut out = std::collections::HashMap::new();
    for batch in crate::warehouse::collect(ctx, context, sql).await? {
        let c = Columns::new(&batch);
        for (key, value) in c.text(0)?.into_iter().zip(c.text(1)?) {
            if let (Some(key), Some(value)) = (key, value) {
                out.insert(key, value);
            }
        }
    }
    Ok(out)
}

/// Columns of a query result by position, typed.
pub struct Columns<'a> {
    batch: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    pub fn new(batch: &'a RecordBatch) -> Self {
        Columns { batch }
    }
    pub fn text(&self, i: usize) -> Result<Vec<Option<String>>> {
        crate::warehouse::strings(self.batch, i)
    }
    pub fn int(&self, i: usize) -> Result<Vec<Option<i64>>> {
        crate::warehouse::integers(self.batch, i)
    }
    pub fn float(&self, i: usize) -> Result<Vec<Option<f64>>> {
        crate::warehouse::floats(self.batch, i)
    }
    pub fn boolean(&self, i: usize) -> Result<Vec<Option<bool>>> {
        let array = arrow::compute::cast(self.batch.column(i), &arrow::datatypes::DataType::Boolean)
            .map_err(|e| crate::Error::arrow("reading a boolean column", e))?;
        Ok(arrow::array::cast::as_boolean_array(&array).iter().collect())
    }
}
