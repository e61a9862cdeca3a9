//! Builds the marts by running the SQL models in `sql/` with DataFusion. Staging models are
//! views; marts are materialised as Delta tables, in dependency order. Each mart may have a
//! `<model>.test.sql` beside it: queries that return the rows breaking a rule.

use arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;
use tracing::info;

use crate::config::Thresholds;
use crate::{drift, planning};
use crate::error::{Error, Result};
use crate::tables;
use crate::warehouse::{TableSpec, Warehouse, Write, collect};

pub struct Model {
    pub name: &'static str,
    pub sql: &'static str,
}

/// How a mart is made: a SQL model, or a statistics function over the session.
pub enum Recipe {
    Sql(&'static str),
    Rust(for<'a> fn(&'a SessionContext, &'a Thresholds) -> BoxFuture<'a, Result<Vec<RecordBatch>>>),
}

pub struct Mart {
    pub name: &'static str,
    pub recipe: Recipe,
    /// Queries returning the rows that break a rule (`<model>.test.sql`).
    pub tests: Option<&'static str>,
}

pub const STAGING: &[Model] = &[
    Model { name: "stg_authority", sql: include_str!("../sql/staging/stg_authority.sql") },
    Model { name: "stg_snapshots", sql: include_str!("../sql/staging/stg_snapshots.sql") },
    Model { name: "stg_transfers", sql: include_str!("../sql/staging/stg_transfers.sql") },
    Model { name: "stg_sales", sql: include_str!("../sql/staging/stg_sales.sql") },
];

/// Marts in dependency order.
pub const MARTS: &[Mart] = &[
    Mart {
        name: "positions",
        recipe: Recipe::Sql(include_str!("../sql/marts/positions.sql")),
        tests: Some(include_str!("../sql/marts/positions.test.sql")),
    },
    Mart {
        name: "variances",
        recipe: Recipe::Sql(include_str!("../sql/marts/variances.sql")),
        tests: Some(include_str!("../sql/marts/variances.test.sql")),
    },
    Mart { name: "sku_classes", recipe: Recipe::Rust(drift::abc::build), tests: None },
    Mart { name: "variance_trends", recipe: Recipe::Rust(drift::trends::build), tests: None },
    Mart { name: "drift_patterns", recipe: Recipe::Rust(drift::patterns::build), tests: None },
    Mart {
        name: "exceptions",
        recipe: Recipe::Sql(include_str!("../sql/marts/exceptions.sql")),
        tests: Some(include_str!("../sql/marts/exceptions.test.sql")),
    },
    Mart { name: "kpi_weekly", recipe: Recipe::Sql(include_str!("../sql/marts/kpi_weekly.sql")), tests: None },
    Mart { name: "cycle_count_plan", recipe: Recipe::Rust(planning::counts::build), tests: None },
    Mart { name: "buffer_recommendations", recipe: Recipe::Rust(planning::buffers::build), tests: None },
    Mart { name: "purchase_recommendations", recipe: Recipe::Rust(planning::orders::build), tests: None },
];

/// Every table a session over the warehouse can see.
pub fn all_tables() -> Vec<&'static str> {
    let mut names: Vec<&str> = tables::RAW.to_vec();
    names.extend(tables::REFERENCE);
    names.extend(MARTS.iter().map(|m| m.name));
    names
}

#[derive(Debug)]
pub struct BuildReport {
    pub rows: Vec<(&'static str, usize)>,
    /// Model tests that returned rows: (model, first line of the failing query, rows).
    pub failed_tests: Vec<(&'static str, String, usize)>,
}

pub async fn build(warehouse: &Warehouse) -> Result<BuildReport> {
    if warehouse.load("locations").await?.is_none() {
        return Err(Error::Usage(format!(
            "the warehouse at {} holds no ingested data yet: run `stocktake run PIPELINE` (or `stocktake snapshot`) first",
            warehouse.root()
        )));
    }
    let ctx = warehouse.session(&all_tables()).await?;
    for model in STAGING {
        let sql = format!("create or replace view {} as {}", model.name, strip_comments(model.sql));
        collect(&ctx, &format!("model {}", model.name), &sql).await?;
    }
    let mut report = BuildReport { rows: vec![], failed_tests: vec![] };
    let thresholds = read_thresholds(&ctx).await?;
    let progress = crate::progress::bar("build", MARTS.len() as u64);
    for mart in MARTS {
        progress.set_message(mart.name);
        info!(mart = mart.name, "building mart");
        let context = format!("mart {}", mart.name);
        let batches = match &mart.recipe {
            Recipe::Sql(sql) => collect(&ctx, &context, sql).await?,
            Recipe::Rust(build) => build(&ctx, &thresholds).await?,
        };
        let rows = batches.iter().map(|b| b.num_rows()).sum();
        let schema = match (batches.first(), &mart.recipe) {
            (Some(b), _) => b.schema(),
            (None, Recipe::Sql(sql)) => ctx.sql(sql).await.map_err(|e| Error::query(&context, e))?.schema().inner().clone(),
            (None, Recipe::Rust(_)) => return Err(Error::Usage(format!("{context} produced no schema"))),
        };
        let spec = TableSpec { name: mart.name, schema, partition_by: &[] };
        warehouse.write(&spec, batches, Write::All).await?;
        warehouse.register(&ctx, &[mart.name]).await?;
        info!(mart = mart.name, rows, "mart built");
        progress.inc(1);
        report.rows.push((mart.name, rows));
        if let Some(tests) = mart.tests {
            report.failed_tests.extend(run_tests(&ctx, mart.name, tests).await?);
        }
    }
    progress.finish_and_clear();
    Ok(report)
}

async fn run_tests(ctx: &SessionContext, model: &'static str, tests: &str) -> Result<Vec<(&'static str, String, usize)>> {
    let mut failed = vec![];
    for query in strip_comments(tests).split(';').map(str::trim).filter(|q| !q.is_empty()) {
        let rows: usize = collect(ctx, &format!("test of {model}"), query).await?.iter().map(|b| b.num_rows()).sum();
        if rows > 0 {
            failed.push((model, query.lines().next().unwrap_or_default().to_string(), rows));
        }
    }
    Ok(failed)
}

/// The pipeline's thresholds as last written to the warehouse.
async fn read_thresholds(ctx: &SessionContext) -> Result<Thresholds> {
    let batches = collect(ctx, "reading thresholds", "select * from thresholds").await?;
    Ok(batches.iter().find(|b| b.num_rows() > 0).map(tables::thresholds_from).unwrap_or_default())
}

/// Drops `--` comments, so a model file can open with its documentation.
fn strip_comments(sql: &str) -> String {
    sql.lines().map(|l| l.split("--").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}
