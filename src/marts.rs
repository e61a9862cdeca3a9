//! Builds the marts by running the SQL models in `sql/` with DataFusion. Staging models are
//! views; marts are materialised as Delta tables, in dependency order. Each mart may have a
//! `<model>.test.sql` beside it: queries that return the rows breaking a rule.

use datafusion::prelude::SessionContext;
use tracing::info;

use crate::error::{Error, Result};
use crate::tables;
use crate::warehouse::{TableSpec, Warehouse, Write, collect};

pub struct Model {
    pub name: &'static str,
    pub sql: &'static str,
    pub tests: Option<&'static str>,
}

pub const STAGING: &[Model] = &[
    Model { name: "stg_authority", sql: include_str!("../sql/staging/stg_authority.sql"), tests: None },
    Model { name: "stg_snapshots", sql: include_str!("../sql/staging/stg_snapshots.sql"), tests: None },
    Model { name: "stg_transfers", sql: include_str!("../sql/staging/stg_transfers.sql"), tests: None },
];

/// Marts in dependency order.
pub const MARTS: &[Model] = &[
    Model {
        name: "positions",
        sql: include_str!("../sql/marts/positions.sql"),
        tests: Some(include_str!("../sql/marts/positions.test.sql")),
    },
    Model {
        name: "variances",
        sql: include_str!("../sql/marts/variances.sql"),
        tests: Some(include_str!("../sql/marts/variances.test.sql")),
    },
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
    let ctx = warehouse.session(&all_tables()).await?;
    for model in STAGING {
        let sql = format!("create or replace view {} as {}", model.name, strip_comments(model.sql));
        collect(&ctx, &format!("model {}", model.name), &sql).await?;
    }
    let mut report = BuildReport { rows: vec![], failed_tests: vec![] };
    for model in MARTS {
        let batches = collect(&ctx, &format!("model sql/marts/{}.sql", model.name), model.sql).await?;
        let rows = batches.iter().map(|b| b.num_rows()).sum();
        let schema = match batches.first() {
            Some(b) => b.schema(),
            None => ctx
                .sql(model.sql)
                .await
                .map_err(|e| Error::query(format!("model {}", model.name), e))?
                .schema()
                .inner()
                .clone(),
        };
        let spec = TableSpec { name: model.name, schema, partition_by: &[] };
        warehouse.write(&spec, batches, Write::All).await?;
        warehouse.register(&ctx, &[model.name]).await?;
        info!(model = model.name, rows, "mart built");
        report.rows.push((model.name, rows));
        if let Some(tests) = model.tests {
            report.failed_tests.extend(run_tests(&ctx, model.name, tests).await?);
        }
    }
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

/// Drops `--` comments, so a model file can open with its documentation.
fn strip_comments(sql: &str) -> String {
    sql.lines().map(|l| l.split("--").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}
