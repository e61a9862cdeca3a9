//! `stocktake plan counts|buffers|orders --out FILE`: plans as CSV or XLSX (by extension).
//! Count sheets are blind — no expected quantity — and come back through `counts_csv`.

use std::path::Path;

use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;

use crate::drift::Columns;
use crate::error::{Error, Result};
use crate::warehouse::{Warehouse, collect};

pub enum Cell {
    Text(String),
    Number(f64),
    Empty,
}

pub struct Sheet {
    pub name: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// Which plan to write.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Plan {
    Counts,
    Buffers,
    Orders,
}

/// Query results as sheets, one per value of column `split_by` (or one sheet `name`).
pub fn to_sheets(name: &str, batches: &[RecordBatch], split_by: Option<usize>) -> Result<Vec<Sheet>> {
    let Some(first) = batches.first() else { return Ok(vec![]) };
    let header: Vec<String> = first.schema().fields().iter().map(|f| f.name().clone()).collect();
    let mut sheets: Vec<Sheet> = vec![];
    for b in batches {
        let c = Columns::new(b);
        let columns: Vec<Vec<Cell>> = (0..b.num_columns())
            .map(|i| match b.schema().field(i).data_type() {
                DataType::Int64 | DataType::Int32 | DataType::Float64 => Ok(c.float(i)?.into_iter().map(|v| v.map(Cell::Number).unwrap_or(Cell::Empty)).collect()),
                _ => {
                    let text = arrow::compute::cast(b.column(i), &DataType::Utf8).map_err(|e| Error::arrow("writing a sheet", e))?;
                    let text = arrow::array::cast::as_string_array(&text);
                    Ok(text.iter().map(|v| v.map(|s| Cell::Text(s.to_string())).unwrap_or(Cell::Empty)).collect())
                }
            })
            .collect::<Result<_>>()?;
        let mut columns: Vec<std::vec::IntoIter<Cell>> = columns.into_iter().map(Vec::into_iter).collect();
        for _ in 0..b.num_rows() {
            let row: Vec<Cell> = columns.iter_mut().map(|c| c.next().unwrap_or(Cell::Empty)).collect();
            let sheet_name = match split_by.map(|i| &row[i]) {
                Some(Cell::Text(t)) => t.clone(),
                _ => name.to_string(),
            };
            match sheets.iter_mut().find(|s| s.name == sheet_name) {
                Some(s) => s.rows.push(row),
                None => sheets.push(Sheet { name: sheet_name, header: header.clone(), rows: vec![row] }),
            }
        }
    }
    Ok(sheets)
}

/// Writes `.csv` (every sheet's rows under one header) or `.xlsx` (a worksheet per sheet).
pub fn write(path: &Path, header: &[&str], sheets: &[Sheet]) -> Result<()> {
    let display = path.display().to_string();
    match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => {
            let mut w = csv::Writer::from_path(path).map_err(|e| Error::Usage(format!("{display}: {e}")))?;
            w.write_record(header).map_err(|e| Error::Usage(format!("{display}: {e}")))?;
            for row in sheets.iter().flat_map(|s| &s.rows) {
                let fields = row.iter().map(|c| match c {
                    Cell::Text(t) => t.clone(),
                    Cell::Number(n) if n.fract() == 0.0 => format!("{n:.0}"),
                    Cell::Number(n) => format!("{n}"),
                    Cell::Empty => String::new(),
                });
                w.write_record(fields).map_err(|e| Error::Usage(format!("{display}: {e}")))?;
            }
            w.flush().map_err(|e| Error::io(&display, e))
        }
        Some("xlsx") => {
            let xlsx = |source| Error::Xlsx { path: display.clone(), source };
            let mut book = rust_xlsxwriter::Workbook::new();
            let bold = rust_xlsxwriter::Format::new().set_bold();
            for sheet in sheets {
                let ws = book.add_worksheet();
                ws.set_name(&sheet.name).map_err(xlsx)?;
                for (col, name) in header.iter().enumerate() {
                    ws.write_string_with_format(0, col as u16, *name, &bold).map_err(xlsx)?;
                }
                for (r, row) in sheet.rows.iter().enumerate() {
                    for (col, cell) in row.iter().enumerate() {
                        let (r, col) = (r as u32 + 1, col as u16);
                        match cell {
                            Cell::Text(t) => ws.write_string(r, col, t).map(|_| ()).map_err(xlsx)?,
                            Cell::Number(n) => ws.write_number(r, col, *n).map(|_| ()).map_err(xlsx)?,
                            Cell::Empty => {}
                        }
                    }
                }
                ws.autofit();
            }
            book.save(path).map_err(xlsx)
        }
        _ => Err(Error::Usage(format!("{display}: write .csv or .xlsx"))),
    }
}

/// Blind count sheets for what is due within `days` of the plan's first day.
const COUNT_SHEET: &str = "
select arrow_cast(p.next_due, 'Utf8') as date, p.location_id as location, p.sku, k.title, k.option1, k.option2,
       cast(null as varchar) as counted_qty, 'yes' as blind, cast(null as varchar) as counter, p.reason
from cycle_count_plan p
join skus k on k.sku = p.sku
where arrow_cast(p.next_due, 'Int32') <= (select max(arrow_cast(snapshot_date, 'Int32')) from positions) + {days}
order by p.location_id, p.next_due, p.sku";

/// Writes a plan; returns the number of rows written.
pub async fn write_plan(warehouse: &Warehouse, plan: Plan, out: &Path, days: i64) -> Result<usize> {
    let ctx = warehouse.session(&crate::marts::all_tables()).await?;
    let (sql, name, split) = match plan {
        Plan::Counts => (COUNT_SHEET.replace("{days}", &days.to_string()), "counts", Some(1)),
        Plan::Buffers => ("select * from buffer_recommendations order by system, sku".to_string(), "buffers", None),
        Plan::Orders => ("select * from purchase_recommendations order by region, sku".to_string(), "orders", Some(1)),
    };
    let batches = collect(&ctx, &format!("plan {name}"), &sql).await?;
    let header: Vec<String> = match batches.first() {
        Some(b) => b.schema().fields().iter().map(|f| f.name().clone()).collect(),
        None => ctx.sql(&sql).await.map_err(|e| Error::query("plan", e))?.schema().fields().iter().map(|f| f.name().clone()).collect(),
    };
    let sheets = to_sheets(name, &batches, split)?;
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    write(out, &header, &sheets)?;
    Ok(sheets.iter().map(|s| s.rows.len()).sum())
}
