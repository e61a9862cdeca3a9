//! `stocktake sql`: any query over every warehouse table, printed as a table, CSV or JSON.

use arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};
use crate::marts::all_tables;
use crate::warehouse::{Warehouse, collect};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

pub async fn query(warehouse: &Warehouse, sql: &str) -> Result<Vec<RecordBatch>> {
    let ctx = warehouse.session(&all_tables()).await?;
    collect(&ctx, "query", sql).await
}

pub fn render(batches: &[RecordBatch], format: Format) -> Result<String> {
    match format {
        Format::Table => arrow::util::pretty::pretty_format_batches(batches)
            .map(|t| format!("{t}\n"))
            .map_err(|e| Error::arrow("formatting the result", e)),
        Format::Csv => {
            let mut out = Vec::new();
            {
                let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
                for batch in batches {
                    writer.write(batch).map_err(|e| Error::arrow("writing CSV", e))?;
                }
            }
            Ok(String::from_utf8_lossy(&out).into_owned())
        }
        Format::Json => {
            let mut writer = arrow::json::ArrayWriter::new(Vec::new());
            for batch in batches {
                writer.write(batch).map_err(|e| Error::arrow("writing JSON", e))?;
            }
            writer.finish().map_err(|e| Error::arrow("writing JSON", e))?;
            let mut out = String::from_utf8_lossy(&writer.into_inner()).into_owned();
            if out.is_empty() {
                out.push_str("[]");
            }
            out.push('\n');
            Ok(out)
        }
    }
}
