//! The Postgres wire protocol (`--pg ADDR`), so psql, Grafana's PostgreSQL datasource
//! and Metabase connect. Built on datafusion-postgres (pgwire) over the shared session,
//! with `pg_catalog` for the clients' introspection queries.
//!
//! The read-only rules hold here too: [`ReadOnlyHook`] runs before every statement, on
//! the simple and the extended protocol. It lets through queries (checked with the
//! same [`crate::guard::read_only`] options as the HTTP API), `EXPLAIN`, `SHOW`,
//! `DESCRIBE`, transaction statements (which clients send and which change nothing),
//! and `SET` of client session variables, but not `SET datafusion.*` (the shared
//! server's settings, memory limit included). Everything else is refused with SQLSTATE
//! `42501`. The timeout and row limit apply through the plan's `GuardExec`.
//!
//! Authentication: none, or a user and password (`--pg-user`, `--pg-password`),
//! checked with the cleartext password flow; add TLS with `--pg-tls-cert`/`--pg-tls-key`
//! when the password crosses a network.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Set, Statement};
use datafusion_postgres::auth::AuthManager;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire::api::auth::cleartext::CleartextPasswordAuthStartupHandler;
use datafusion_postgres::pgwire::api::auth::noop::NoopStartupHandler;
use datafusion_postgres::pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
};
use datafusion_postgres::pgwire::api::cancel::DefaultCancelHandler;
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::results::Response;
use datafusion_postgres::pgwire::api::{ClientInfo, ConnectionManager, PgWireServerHandlers};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use datafusion_postgres::{DfSessionService, QueryHook, ServerOptions};
use futures::Sink;

use crate::guard::read_only;
use crate::metrics::{Client, Metrics};

/// Postgres server settings.
#[derive(Clone, Debug, Default)]
pub struct PgConfig {
    /// `host:port` to listen on.
    pub addr: String,
    /// User and password required to log in (`None`: no authentication).
    pub login: Option<(String, String)>,
    /// TLS certificate and key (PEM files).
    pub tls: Option<(String, String)>,
}

/// Why a statement is refused, or `None` when it may run.
pub async fn refusal(ctx: &SessionContext, statement: &Statement) -> Option<String> {
    let verify = async || -> Option<String> {
        // Plan it (cheap: nothing is listed or read) and apply the read-only options.
        let state = ctx.state();
        let plan = state
            .statement_to_plan(DfStatement::Statement(Box::new(statement.clone())))
            .await;
        match plan {
            Ok(plan) => read_only()
                .verify_plan(&plan)
                .err()
                .map(|e| e.find_root().to_string()),
            // Let the normal path report planning errors with its own message.
            Err(_) => None,
        }
    };
    let server_setting = |name: &str| name.to_ascii_lowercase().starts_with("datafusion");
    match statement {
        Statement::Query(_) | Statement::Explain { .. } | Statement::ExplainTable { .. } => {
            verify().await
        }
        Statement::ShowFunctions { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowViews { .. }
        | Statement::ShowCreate { .. }
        | Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. } => None,
        Statement::Set(set) => {
            let names: Vec<String> = match set {
                Set::SingleAssignment { variable, .. } => vec![variable.to_string()],
                Set::ParenthesizedAssignments { variables, .. } => {
                    variables.iter().map(ToString::to_string).collect()
                }
                Set::MultipleAssignments { assignments } => {
                    assignments.iter().map(|a| a.name.to_string()).collect()
                }
                _ => vec![],
            };
            names
                .iter()
                .any(|n| server_setting(n))
                .then(|| "the server's datafusion.* settings cannot be changed by clients".into())
        }
        other => Some(format!(
            "{} statements are not allowed",
            statement_kind(other)
        )),
    }
}

fn statement_kind(s: &Statement) -> String {
    let text = s.to_string();
    let words: Vec<&str> = text.split_whitespace().take(3).collect();
    let mut kind = words
        .first()
        .copied()
        .unwrap_or("these")
        .to_ascii_uppercase();
    if matches!(kind.as_str(), "CREATE" | "DROP" | "ALTER")
        && let Some(w) = words.get(1)
    {
        kind.push(' ');
        kind.push_str(&w.to_ascii_uppercase());
        if w.eq_ignore_ascii_case("external")
            && let Some(w) = words.get(2)
        {
            kind.push(' ');
            kind.push_str(&w.to_ascii_uppercase());
        }
    }
    kind
}

fn refused(why: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_owned(),
        "42501".to_owned(),
        format!("lanner-query is read-only: {why}"),
    )))
}

/// Refuses statements that would write or change the server (see the module doc).
#[derive(Debug)]
pub struct ReadOnlyHook {
    metrics: Arc<Metrics>,
}

impl ReadOnlyHook {
    async fn check(&self, ctx: &SessionContext, statement: &Statement) -> Option<PgWireError> {
        match refusal(ctx, statement).await {
            Some(why) => {
                self.metrics
                    .query(Client::Pg, Err(crate::engine::ErrorKind::Forbidden));
                Some(refused(&why))
            }
            None => {
                self.metrics.query(Client::Pg, Ok(()));
                None
            }
        }
    }
}

#[async_trait]
impl QueryHook for ReadOnlyHook {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        session_context: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        self.check(session_context, statement).await.map(Err)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        session_context: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        self.check(session_context, statement).await.map(Err)
    }

    async fn handle_extended_query(
        &self,
        _statement: &Statement,
        _logical_plan: &LogicalPlan,
        _params: &ParamValues,
        _session_context: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        // Checked when the statement was parsed.
        None
    }
}

/// Accepts the configured user with the configured password.
#[derive(Debug)]
struct OnePassword {
    user: String,
    password: String,
}

#[async_trait]
impl AuthSource for OnePassword {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let user = login.user().unwrap_or_default();
        if user == self.user {
            Ok(Password::new(None, self.password.as_bytes().to_vec()))
        } else {
            Err(PgWireError::InvalidPassword(user.to_owned()))
        }
    }
}

/// No authentication.
struct Open {
    connections: Arc<ConnectionManager>,
}

#[async_trait]
impl NoopStartupHandler for Open {
    fn connection_manager(&self) -> Option<Arc<ConnectionManager>> {
        Some(Arc::clone(&self.connections))
    }
}

enum Startup {
    Open(Open),
    Password(Box<CleartextPasswordAuthStartupHandler<OnePassword, DefaultServerParameterProvider>>),
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match self {
            Startup::Open(h) => h.on_startup(client, message).await,
            Startup::Password(h) => h.on_startup(client, message).await,
        }
    }
}

struct Handlers {
    service: Arc<DfSessionService>,
    startup: Arc<Startup>,
    cancel: Arc<DefaultCancelHandler>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.service)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.service)
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::clone(&self.startup)
    }

    fn cancel_handler(&self) -> Arc<impl datafusion_postgres::pgwire::api::cancel::CancelHandler> {
        Arc::clone(&self.cancel)
    }
}

/// Errors starting the Postgres server.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// `--pg` is not `host:port`.
    #[error("--pg {0:?} is not host:port")]
    Addr(String),
    /// `pg_catalog` could not be set up.
    #[error("setting up pg_catalog: {0}")]
    Catalog(String),
    /// Listening or serving failed.
    #[error("postgres server on {addr}: {source}")]
    Io {
        /// Address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Adds `pg_catalog` and the Postgres compatibility functions to `ctx`.
pub fn setup_catalog(ctx: &SessionContext) -> Result<(), PgError> {
    datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog(
        ctx,
        "datafusion",
        Arc::new(AuthManager::default()),
    )
    .map_err(|e| PgError::Catalog(e.to_string()))
}

/// Serves `ctx` over the Postgres protocol until the task is dropped.
pub async fn serve(
    ctx: Arc<SessionContext>,
    config: PgConfig,
    metrics: Arc<Metrics>,
) -> Result<(), PgError> {
    let (host, port) = config
        .addr
        .rsplit_once(':')
        .and_then(|(h, p)| {
            Some((
                h.trim_matches(['[', ']']).to_owned(),
                p.parse::<u16>().ok()?,
            ))
        })
        .ok_or_else(|| PgError::Addr(config.addr.clone()))?;
    let hooks: Vec<Arc<dyn QueryHook>> = vec![
        Arc::new(ReadOnlyHook { metrics }),
        Arc::new(SetShowHook),
        Arc::new(TransactionStatementHook),
    ];
    let service = Arc::new(DfSessionService::new_with_hooks(ctx, hooks));
    let connections = Arc::new(ConnectionManager::new());
    let startup = match &config.login {
        None => Startup::Open(Open {
            connections: Arc::clone(&connections),
        }),
        Some((user, password)) => Startup::Password(Box::new(
            CleartextPasswordAuthStartupHandler::new(
                OnePassword {
                    user: user.clone(),
                    password: password.clone(),
                },
                DefaultServerParameterProvider::default(),
            )
            .with_connection_manager(Arc::clone(&connections)),
        )),
    };
    let handlers = Arc::new(Handlers {
        service,
        startup: Arc::new(startup),
        cancel: Arc::new(DefaultCancelHandler::new(connections)),
    });
    let mut opts = ServerOptions::new().with_host(host).with_port(port);
    if let Some((cert, key)) = config.tls {
        opts = opts
            .with_tls_cert_path(Some(cert))
            .with_tls_key_path(Some(key));
    }
    datafusion_postgres::serve_with_handlers(handlers, &opts)
        .await
        .map_err(|source| PgError::Io {
            addr: config.addr,
            source,
        })
}
