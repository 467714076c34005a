//! The DataFusion session every client shares, and running one client query on it.
//!
//! [`build_context`] makes the session: the memory pool, no listing cache (new archive
//! files are seen at once), the Parquet reading options ([`session_config`]),
//! information_schema, the [`GuardRule`], grouping by dictionary keys as text
//! ([`crate::group_keys`]), recursive queries' invariant inputs run once
//! ([`crate::loop_cache`]), then the archive's tables and the hunting views.
//! Benchmarks build the same session with it.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::TryStreamExt;

use crate::aggregate_below_join::AggregateBelowJoin;
use crate::archive::Archive;
use crate::dictionary_filter::DictionaryFilters;
use crate::distinct_count::DistinctCountToGroupBy;
use crate::eager_probe::EagerProbes;
use crate::group_keys::DictionaryGroupKeys;
use crate::guard::{GuardRule, Limits, limit_error, read_only};
use crate::key_aggregate::DictionaryKeyAggregation;
use crate::like_patterns::CompileLikePatterns;
use crate::list_elements::ListElements;
use crate::loop_cache::CacheRecursiveInputs;
use crate::narrow_predicate::NarrowPredicates;
use crate::prune::LannerOptions;
use crate::{tables, views};

/// What kind of failure a query met (decides the HTTP status and the log level).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The SQL does not parse or plan (unknown column, type error, ...).
    BadSql,
    /// The statement would write or change the server (DDL, DML, COPY, SET, ...).
    Forbidden,
    /// A limit was hit: timeout, rows, memory.
    Limit,
    /// Reading the archive failed.
    Execution,
}

impl ErrorKind {
    /// Short name, as the HTTP API reports it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::BadSql => "bad_sql",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Limit => "limit",
            ErrorKind::Execution => "execution",
        }
    }
}

/// A query that failed, with a message meant for the person who wrote it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The message.
    pub message: String,
}

impl QueryError {
    /// Classifies a DataFusion error.
    pub fn from_datafusion(e: DataFusionError) -> Self {
        if let Some(l) = limit_error(&e) {
            return QueryError {
                kind: ErrorKind::Limit,
                message: l.to_string(),
            };
        }
        let kind = match e.find_root() {
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_) => ErrorKind::BadSql,
            DataFusionError::ResourcesExhausted(_) => ErrorKind::Limit,
            _ => ErrorKind::Execution,
        };
        let message = match kind {
            ErrorKind::Limit => format!(
                "{} (the server's --memory-mib; narrow the time window or aggregate)",
                e.find_root()
            ),
            _ => e.find_root().to_string(),
        };
        QueryError { kind, message }
    }

    fn forbidden(e: DataFusionError) -> Self {
        QueryError {
            kind: ErrorKind::Forbidden,
            message: format!(
                "lanner-query is read-only: only queries (SELECT, EXPLAIN, SHOW, DESCRIBE) are allowed ({})",
                e.find_root()
            ),
        }
    }
}

/// lanner-query's session settings: information_schema, and the archive's Parquet
/// files read with pruning by statistics, page index and bloom filters, filters pushed
/// into the scans where that pays and reordered by cost (the tables take their Parquet
/// options from here), time windows pruning hour folders ([`LannerOptions`]).
pub fn session_config() -> SessionConfig {
    let mut config = SessionConfig::new().with_information_schema(true);
    {
        let o = config.options_mut();
        let p = &mut o.execution.parquet;
        p.pruning = true;
        p.enable_page_index = true;
        p.bloom_filter_on_read = true;
        // Filters go into the scan where the tables decide it pays
        // (`lanner.selective_pushdown`, see `crate::tables`); `true` here pushes them
        // into every scan.
        p.pushdown_filters = false;
        p.reorder_filters = true;
        o.extensions.insert(LannerOptions::default());
    }
    config
}

/// Builds the session: limits, archive tables, hunting views and table functions.
pub async fn build_context(
    archive: &Archive,
    limits: Limits,
) -> Result<SessionContext, DataFusionError> {
    build_context_with(archive, limits, session_config()).await
}

/// [`build_context`] with other settings than [`session_config`]'s (benchmarks vary
/// them; the tables read Parquet as `config` says).
pub async fn build_context_with(
    archive: &Archive,
    limits: Limits,
    config: SessionConfig,
) -> Result<SessionContext, DataFusionError> {
    let mut runtime = RuntimeEnvBuilder::new()
        .with_object_list_cache_limit(0)
        .with_metadata_cache_limit(limits.metadata_cache_bytes);
    if limits.memory_bytes > 0 {
        runtime = runtime.with_memory_limit(limits.memory_bytes, 1.0);
    }
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime.build_arc()?)
        .with_default_features()
        .with_optimizer_rule(Arc::new(AggregateBelowJoin))
        .with_optimizer_rule(Arc::new(DistinctCountToGroupBy))
        .with_optimizer_rule(Arc::new(DictionaryGroupKeys))
        .with_optimizer_rule(Arc::new(CompileLikePatterns))
        .with_physical_optimizer_rule(Arc::new(CacheRecursiveInputs))
        .with_physical_optimizer_rule(Arc::new(DictionaryKeyAggregation::new(
            tables::partition_columns()
                .into_iter()
                .map(|(name, _)| name)
                .collect(),
        )))
        // Before `ListElements`: the filters it fuses with the list elements above
        // them keep their comparisons on dictionary columns rewritten here.
        .with_physical_optimizer_rule(Arc::new(DictionaryFilters))
        .with_physical_optimizer_rule(Arc::new(NarrowPredicates))
        .with_physical_optimizer_rule(Arc::new(ListElements))
        .with_physical_optimizer_rule(Arc::new(EagerProbes))
        .with_physical_optimizer_rule(Arc::new(GuardRule::new(limits)))
        .build();
    let ctx = SessionContext::new_with_state(state);
    tables::register_tables(&ctx, archive)?;
    views::register(&ctx).await?;
    Ok(ctx)
}

/// A query's result, collected.
#[derive(Clone, Debug)]
pub struct Collected {
    /// Result schema.
    pub schema: SchemaRef,
    /// Result rows.
    pub batches: Vec<RecordBatch>,
}

impl Collected {
    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// The shared session and the limits its queries run under.
#[derive(Clone)]
pub struct Engine {
    ctx: SessionContext,
    limits: Limits,
}

impl Engine {
    /// An engine over `archive`.
    pub async fn new(archive: &Archive, limits: Limits) -> Result<Self, DataFusionError> {
        Ok(Engine {
            ctx: build_context(archive, limits).await?,
            limits,
        })
    }

    /// An engine over `archive` with other settings than [`session_config`]'s.
    pub async fn with_config(
        archive: &Archive,
        limits: Limits,
        config: SessionConfig,
    ) -> Result<Self, DataFusionError> {
        Ok(Engine {
            ctx: build_context_with(archive, limits, config).await?,
            limits,
        })
    }

    /// The session (shared with the Postgres server).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Plans `sql` as a read-only query and starts it.
    pub async fn stream(
        &self,
        sql: &str,
    ) -> Result<(SchemaRef, SendableRecordBatchStream), QueryError> {
        let run = async {
            let state = self.ctx.state();
            let plan = state
                .create_logical_plan(sql)
                .await
                .map_err(QueryError::from_datafusion)?;
            read_only()
                .verify_plan(&plan)
                .map_err(QueryError::forbidden)?;
            let df = self
                .ctx
                .execute_logical_plan(plan)
                .await
                .map_err(QueryError::from_datafusion)?;
            let schema = Arc::new(df.schema().as_arrow().clone());
            let stream = df
                .execute_stream()
                .await
                .map_err(QueryError::from_datafusion)?;
            Ok((schema, stream))
        };
        if self.limits.timeout.is_zero() {
            return run.await;
        }
        // Planning (listing the archive) counts against the timeout too.
        tokio::time::timeout(self.limits.timeout, run)
            .await
            .unwrap_or_else(|_| {
                Err(QueryError {
                    kind: ErrorKind::Limit,
                    message: crate::guard::LimitError::Timeout(self.limits.timeout).to_string(),
                })
            })
    }

    /// Runs `sql` and collects its rows (bounded by the row limit). The query runs in a
    /// task of its own, so the timeout answers on time even while an operator is busy
    /// in a long computation (which stops at its next yield point).
    pub async fn collect(&self, sql: &str) -> Result<Collected, QueryError> {
        let start = std::time::Instant::now();
        let engine = self.clone();
        let sql = sql.to_owned();
        let mut task = tokio::spawn(async move {
            let (schema, stream) = engine.stream(&sql).await?;
            let batches = stream
                .try_collect::<Vec<_>>()
                .await
                .map_err(QueryError::from_datafusion)?;
            Ok(Collected { schema, batches })
        });
        let joined = if self.limits.timeout.is_zero() {
            (&mut task).await
        } else {
            match tokio::time::timeout(self.limits.timeout, &mut task).await {
                Ok(j) => j,
                Err(_) => {
                    task.abort();
                    tracing::debug!(took = ?start.elapsed(), "query timed out");
                    return Err(QueryError {
                        kind: ErrorKind::Limit,
                        message: crate::guard::LimitError::Timeout(self.limits.timeout).to_string(),
                    });
                }
            }
        };
        joined.unwrap_or_else(|e| {
            Err(QueryError {
                kind: ErrorKind::Execution,
                message: format!("query task failed: {e}"),
            })
        })
    }
}
