//! Safe by default: clients may only read, and every query runs under limits.
//!
//! - [`read_only`]: the `SQLOptions` every client's SQL is planned with: no DDL
//!   (`CREATE [EXTERNAL] TABLE`, `CREATE VIEW`, `DROP`), no DML (`INSERT`, `COPY`), no
//!   statements that change the session (`SET`, `PREPARE`, transactions). There are no
//!   table functions that read files, and URL tables (`SELECT * FROM '/etc/passwd'`) are
//!   off, so SQL reads only the archive's tables;
//! - [`GuardExec`]: wraps the root of every physical plan (installed by [`GuardRule`]
//!   as the last physical optimizer rule, so the HTTP, CLI and Postgres paths all get
//!   it): the query fails once it has run longer than the timeout or produced more rows
//!   than the row limit. The memory limit is the session's memory pool.

use std::any::Any;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SQLOptions;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::{Stream, StreamExt};
use std::future::Future as _;

use crate::one_input::only_input;

/// Limits every query runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Memory pool of the whole process, in bytes (0: unbounded).
    pub memory_bytes: usize,
    /// Longest a query may run (zero: no limit).
    pub timeout: Duration,
    /// Most rows a query may return (0: no limit).
    pub max_rows: usize,
    /// Parquet footers and page indexes kept in memory between queries, in bytes
    /// (DataFusion's file metadata cache; outside the memory pool). A day of the bench
    /// archive (96 files) takes ~42 MiB.
    pub metadata_cache_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 2 << 30,
            timeout: Duration::from_secs(60),
            max_rows: 1_000_000,
            metadata_cache_bytes: 256 << 20,
        }
    }
}

/// A limit a query ran into.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    /// The query ran too long.
    #[error(
        "query timed out after {0:?} (the server's --timeout; narrow the time window or add filters)"
    )]
    Timeout(Duration),
    /// The query returned too many rows.
    #[error(
        "query returned more than {0} rows (the server's --max-rows; add a LIMIT, aggregate, or narrow the filters)"
    )]
    TooManyRows(usize),
}

/// The options client SQL is planned with: queries only.
pub fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Name of [`GuardRule`] among the session's physical optimizer rules.
pub const GUARD_RULE: &str = "lanner_guard";

/// Physical optimizer rule that puts a [`GuardExec`] on top of every plan.
#[derive(Debug)]
pub struct GuardRule {
    limits: Limits,
}

impl GuardRule {
    /// A rule enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        GuardRule { limits }
    }
}

impl PhysicalOptimizerRule for GuardRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if (plan.as_ref() as &dyn Any).is::<GuardExec>()
            || (self.limits.timeout.is_zero() && self.limits.max_rows == 0)
        {
            return Ok(plan);
        }
        Ok(Arc::new(GuardExec::new(plan, self.limits)))
    }

    fn name(&self) -> &str {
        GUARD_RULE
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Enforces the timeout and the row limit on its input (the root of a query's plan).
#[derive(Debug)]
pub struct GuardExec {
    input: Arc<dyn ExecutionPlan>,
    limits: Limits,
    properties: Arc<PlanProperties>,
    started: Arc<OnceLock<Instant>>,
    rows: Arc<AtomicUsize>,
}

impl GuardExec {
    /// Wraps `input`.
    pub fn new(input: Arc<dyn ExecutionPlan>, limits: Limits) -> Self {
        let properties = Arc::clone(input.properties());
        GuardExec {
            input,
            limits,
            properties,
            started: Arc::new(OnceLock::new()),
            rows: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl DisplayAs for GuardExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GuardExec: timeout={:?}, max_rows={}",
            self.limits.timeout, self.limits.max_rows
        )
    }
}

impl ExecutionPlan for GuardExec {
    fn name(&self) -> &str {
        "GuardExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = only_input(children, "GuardExec")?;
        Ok(Arc::new(GuardExec::new(input, self.limits)))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let schema = input.schema();
        let started = *self.started.get_or_init(Instant::now);
        let deadline = (!self.limits.timeout.is_zero()).then(|| {
            Box::pin(tokio::time::sleep_until(
                (started + self.limits.timeout).into(),
            ))
        });
        let stream = GuardStream {
            input,
            deadline,
            timeout: self.limits.timeout,
            max_rows: self.limits.max_rows,
            rows: Arc::clone(&self.rows),
            done: false,
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

struct GuardStream {
    input: SendableRecordBatchStream,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    timeout: Duration,
    max_rows: usize,
    rows: Arc<AtomicUsize>,
    done: bool,
}

impl Stream for GuardStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        // The clock is read directly: a timer only fires once the worker gets back to
        // the scheduler, which a busy query may not do for a while.
        let late = self.deadline.as_mut().is_some_and(|d| {
            Instant::now() >= d.deadline().into_std() || d.as_mut().poll(cx).is_ready()
        });
        if late {
            self.done = true;
            let e = LimitError::Timeout(self.timeout);
            return Poll::Ready(Some(Err(DataFusionError::External(Box::new(e)))));
        }
        match self.input.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(batch))) => {
                let n = batch.num_rows();
                let total = self.rows.fetch_add(n, Ordering::Relaxed) + n;
                if self.max_rows > 0 && total > self.max_rows {
                    self.done = true;
                    let e = LimitError::TooManyRows(self.max_rows);
                    return Poll::Ready(Some(Err(DataFusionError::External(Box::new(e)))));
                }
                Poll::Ready(Some(Ok(batch)))
            }
            other => other,
        }
    }
}

/// The limit error inside a DataFusion error, if that is what it is.
pub fn limit_error(e: &DataFusionError) -> Option<&LimitError> {
    match e.find_root() {
        DataFusionError::External(inner) => inner.downcast_ref::<LimitError>(),
        _ => None,
    }
}
