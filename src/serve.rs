//! `stocktake serve`: every warehouse table over the PostgreSQL wire protocol
//! (datafusion-postgres), so psql, DBeaver, Metabase and Grafana connect. Read-only; on
//! loopback by default; anywhere else only with a password (from the environment).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire::api::auth::cleartext::CleartextPasswordAuthStartupHandler;
use datafusion_postgres::pgwire::api::auth::noop::NoopStartupHandler;
use datafusion_postgres::pgwire::api::auth::{AuthSource, DefaultServerParameterProvider, LoginInfo, Password};
use datafusion_postgres::pgwire::api::results::Response;
use datafusion_postgres::pgwire::api::{ClientInfo, PgWireServerHandlers};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::{DfSessionService, QueryHook, ServerOptions};
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::warehouse::Warehouse;

/// Where and how to listen.
pub struct ServeOptions {
    pub host: IpAddr,
    pub port: u16,
    /// Required unless `host` is a loopback address.
    pub password: Option<String>,
    /// How often newly committed table versions are picked up.
    pub refresh: Duration,
}

/// Refuses every statement that is not a read: the warehouse is written by runs only.
struct ReadOnly;

fn refuse(statement: &Statement) -> Option<PgWireResult<Response>> {
    let allowed = matches!(
        statement,
        Statement::Query(_)
            | Statement::Explain { .. }
            | Statement::ExplainTable { .. }
            | Statement::ShowVariable { .. }
            | Statement::ShowTables { .. }
            | Statement::ShowColumns { .. }
            | Statement::Set(_)
            | Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::Declare { .. }
            | Statement::Fetch { .. }
            | Statement::Close { .. }
            | Statement::Discard { .. }
            | Statement::Deallocate { .. }
    );
    if allowed {
        return None;
    }
    let first_word = statement.to_string().split_whitespace().next().unwrap_or("this").to_uppercase();
    let message = format!("stocktake serve is read-only: {first_word} is refused; the warehouse is written by `stocktake run` only");
    Some(Err(PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".into(), "25006".into(), message)))))
}

#[async_trait]
impl QueryHook for ReadOnly {
    async fn handle_simple_query(&self, statement: &Statement, _ctx: &SessionContext, _client: &mut dyn HookClient) -> Option<PgWireResult<Response>> {
        refuse(statement)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        refuse(statement).map(|r| r.map(|_| unreachable!("refuse only returns errors")))
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        refuse(statement)
    }
}

/// The password from the environment, for any user name.
#[derive(Debug)]
struct EnvPassword(String);

#[async_trait]
impl AuthSource for EnvPassword {
    async fn get_password(&self, _login: &LoginInfo) -> PgWireResult<Password> {
        Ok(Password::new(None, self.0.as_bytes().to_vec()))
    }
}

struct Open;
impl NoopStartupHandler for Open {}

/// The wire handlers: the DataFusion session behind either no authentication (loopback)
/// or a cleartext password check (meant to sit behind TLS or a private network).
struct Handlers<S> {
    session: Arc<DfSessionService>,
    startup: Arc<S>,
}

impl<S: datafusion_postgres::pgwire::api::auth::StartupHandler + Send + Sync + 'static> PgWireServerHandlers for Handlers<S> {
    fn simple_query_handler(&self) -> Arc<impl datafusion_postgres::pgwire::api::query::SimpleQueryHandler> {
        self.session.clone()
    }
    fn extended_query_handler(&self) -> Arc<impl datafusion_postgres::pgwire::api::query::ExtendedQueryHandler> {
        self.session.clone()
    }
    fn startup_handler(&self) -> Arc<impl datafusion_postgres::pgwire::api::auth::StartupHandler> {
        self.startup.clone()
    }
}

/// Checks the listening policy: anything but loopback needs a password.
pub fn check_policy(options: &ServeOptions) -> Result<()> {
    if !options.host.is_loopback() && options.password.as_deref().is_none_or(str::is_empty) {
        return Err(Error::Usage(format!(
            "refusing to listen on {} without a password: set STOCKTAKE_SERVE_PASSWORD (or listen on 127.0.0.1)",
            options.host
        )));
    }
    Ok(())
}

pub async fn serve(warehouse: &Warehouse, options: ServeOptions) -> Result<i32> {
    check_policy(&options)?;
    let names = crate::marts::all_tables();
    let ctx = Arc::new(warehouse.session(&names).await?);
    // New runs commit new table versions; pick them up without a restart.
    let (refresh_ctx, refresh_warehouse, refresh) = (ctx.clone(), warehouse.clone(), options.refresh);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(refresh).await;
            if let Err(e) = refresh_warehouse.register(&refresh_ctx, &crate::marts::all_tables()).await {
                warn!("refreshing tables: {e}");
            }
        }
    });
    let hooks: Vec<Arc<dyn QueryHook>> = vec![Arc::new(ReadOnly), Arc::new(CursorStatementHook), Arc::new(SetShowHook), Arc::new(TransactionStatementHook)];
    let session = Arc::new(DfSessionService::new_with_hooks(ctx, hooks));
    let server = ServerOptions::new().with_host(options.host.to_string()).with_port(options.port);
    let auth = if options.password.is_some() { "password" } else { "none (loopback)" };
    info!(host = %options.host, port = options.port, auth, "serving the warehouse over the PostgreSQL protocol");
    eprintln!("stocktake: serving {} on {}:{} (read-only, authentication: {auth})", warehouse.root(), options.host, options.port);
    let served = match options.password {
        Some(password) => {
            let startup = CleartextPasswordAuthStartupHandler::new(EnvPassword(password), DefaultServerParameterProvider::default());
            tokio::select! {
                r = datafusion_postgres::serve_with_handlers(Arc::new(Handlers { session, startup: Arc::new(startup) }), &server) => r,
                _ = tokio::signal::ctrl_c() => Ok(()),
            }
        }
        None => tokio::select! {
            r = datafusion_postgres::serve_with_handlers(Arc::new(Handlers { session, startup: Arc::new(Open) }), &server) => r,
            _ = tokio::signal::ctrl_c() => Ok(()),
        },
    };
    served.map_err(|e| Error::io(format!("{}:{}", options.host, options.port), e))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(host: &str, password: Option<&str>) -> ServeOptions {
        ServeOptions { host: host.parse().unwrap(), port: 0, password: password.map(str::to_string), refresh: Duration::from_secs(60) }
    }

    #[test]
    fn loopback_needs_no_password_anything_else_does() {
        assert!(check_policy(&options("127.0.0.1", None)).is_ok());
        assert!(check_policy(&options("::1", None)).is_ok());
        let err = check_policy(&options("0.0.0.0", None)).unwrap_err().to_string();
        assert!(err.contains("without a password"), "{err}");
        assert!(check_policy(&options("0.0.0.0", Some(""))).is_err());
        assert!(check_policy(&options("0.0.0.0", Some("s3cret"))).is_ok());
    }

    #[test]
    fn only_reads_pass() {
        let parse = |sql: &str| datafusion::sql::sqlparser::parser::Parser::parse_sql(&datafusion::sql::sqlparser::dialect::PostgreSqlDialect {}, sql).unwrap().remove(0);
        assert!(refuse(&parse("select * from positions")).is_none());
        assert!(refuse(&parse("show timezone")).is_none());
        for sql in ["insert into runs values (1)", "delete from snapshots", "drop table positions", "create table x (a int)", "update skus set price = 0", "truncate snapshots"] {
            let Some(Err(PgWireError::UserError(info))) = refuse(&parse(sql)) else { panic!("{sql} was not refused") };
            assert!(info.message.contains("read-only"), "{}", info.message);
        }
    }
}
