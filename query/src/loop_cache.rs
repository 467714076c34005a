//! A physical optimizer rule: in a recursive query, the parts of the recursive term
//! that do not read the previous iteration are computed once and replayed.
//!
//! DataFusion runs a recursive CTE's recursive term again at each iteration, the
//! whole plan: in a process tree
//!
//! ```sql
//! WITH RECURSIVE edges AS (SELECT DISTINCT proc_pid, proc_ppid FROM events WHERE ...),
//!   tree AS (SELECT ... FROM edges WHERE proc_pid = 42
//!            UNION ALL SELECT e.* FROM edges e JOIN tree t ON e.proc_ppid = t.proc_pid)
//! ```
//!
//! the scan and de-duplication of `edges` ran once per level of the tree. Every
//! largest subtree of the recursive term without the work table (the previous
//! iteration's rows) is wrapped in a [`CacheExec`], which keeps what its input
//! produced the first time, per partition, and hands it out again afterwards (DataFusion
//! resets a recursive term's state between iterations; the cache survives it). The
//! first run streams through as it is kept. The kept rows count against the session's
//! memory pool: an input larger than the pool allows is not kept, and runs at every
//! iteration as it did without the cache. On unless the session's
//! `lanner.cache_recursive_inputs` is off.

use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::recursive_query::RecursiveQueryExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::work_table::WorkTableExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
    replace_children_if_necessary,
};
use futures::{StreamExt, stream};

use crate::one_input::only_input;
use crate::prune::LannerOptions;

/// The rule (see the module docs).
#[derive(Debug, Default)]
pub struct CacheRecursiveInputs;

impl PhysicalOptimizerRule for CacheRecursiveInputs {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let on = LannerOptions::on(config, |o| o.cache_recursive_inputs);
        if !on {
            return Ok(plan);
        }
        rewrite(plan)
    }

    fn name(&self) -> &str {
        "lanner_cache_recursive_inputs"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Finds the recursive queries of `plan` and caches their recursive terms' invariant
/// parts.
fn rewrite(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    let children: Vec<Arc<dyn ExecutionPlan>> = plan.children().into_iter().cloned().collect();
    if children.is_empty() {
        return Ok(plan);
    }
    let is_recursive = plan.downcast_ref::<RecursiveQueryExec>().is_some();
    let children = children
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            // The recursive term is the second child.
            let c = rewrite(c)?;
            if is_recursive && i == 1 {
                cache_invariants(c)
            } else {
                Ok(c)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    replace_children_if_necessary(plan, children)
}

fn reads_work_table(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.downcast_ref::<WorkTableExec>().is_some()
        || plan.children().into_iter().any(reads_work_table)
}

/// Wraps every largest subtree of `plan` that does not read the work table.
fn cache_invariants(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    if !reads_work_table(&plan) {
        return Ok(Arc::new(CacheExec::new(plan)));
    }
    let children = plan
        .children()
        .into_iter()
        .cloned()
        .map(cache_invariants)
        .collect::<Result<Vec<_>>>()?;
    if children.is_empty() {
        return Ok(plan);
    }
    replace_children_if_necessary(plan, children)
}

/// Runs its input once per partition and replays the batches on later executions.
#[derive(Debug)]
pub struct CacheExec {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
    /// One slot per output partition, shared by the copies DataFusion makes of this
    /// node when it resets the recursive term.
    cache: Arc<Vec<Mutex<Slot>>>,
}

/// What one partition's slot holds.
#[derive(Debug)]
enum Slot {
    /// Not run yet.
    Empty,
    /// Being run for the first time (another execution meanwhile runs its input).
    Filling,
    /// The batches, their memory reserved in the session's pool until the plan is
    /// dropped.
    Filled {
        batches: Arc<[RecordBatch]>,
        _reservation: MemoryReservation,
    },
    /// More than the memory pool would hold: the input runs every time, as without
    /// the cache.
    TooLarge,
}

impl CacheExec {
    /// Whether `partition`'s batches are kept.
    pub fn is_filled(&self, partition: usize) -> bool {
        self.cache
            .get(partition)
            .and_then(|s| s.lock().ok())
            .is_some_and(|s| matches!(*s, Slot::Filled { .. }))
    }

    /// Wraps `input`.
    pub fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        let partitions = input.output_partitioning().partition_count();
        CacheExec {
            properties: Arc::clone(input.properties()),
            cache: Arc::new((0..partitions).map(|_| Mutex::new(Slot::Empty)).collect()),
            input,
        }
    }
}

/// The first run of a partition: its batches pass through and are kept.
struct Fill {
    input: SendableRecordBatchStream,
    /// What is kept so far; `None` once it outgrew the pool (or the input failed).
    kept: Option<Vec<RecordBatch>>,
    reservation: Option<MemoryReservation>,
    cache: Arc<Vec<Mutex<Slot>>>,
    partition: usize,
}

impl Fill {
    fn set(&self, slot: Slot) {
        if let Some(Ok(mut s)) = self.cache.get(self.partition).map(Mutex::lock) {
            *s = slot;
        }
    }

    fn keep(&mut self, batch: &RecordBatch) {
        let fits = match &self.reservation {
            Some(r) => r.try_grow(batch.get_array_memory_size()).is_ok(),
            None => false,
        };
        match (&mut self.kept, fits) {
            (Some(kept), true) => kept.push(batch.clone()),
            (Some(_), false) => {
                self.kept = None;
                self.reservation = None;
                self.set(Slot::TooLarge);
            }
            (None, _) => {}
        }
    }

    fn finish(&mut self) {
        if let (Some(kept), Some(reservation)) = (self.kept.take(), self.reservation.take()) {
            self.set(Slot::Filled {
                batches: kept.into(),
                _reservation: reservation,
            });
        }
    }
}

impl DisplayAs for CacheExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheExec")
    }
}

impl ExecutionPlan for CacheExec {
    fn name(&self) -> &str {
        "CacheExec"
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
        let input = only_input(children, "CacheExec")?;
        let same_shape = input.output_partitioning().partition_count() == self.cache.len();
        if !same_shape {
            return Ok(Arc::new(CacheExec::new(input)));
        }
        // The same cache: a reset between iterations must not drop it.
        Ok(Arc::new(CacheExec {
            input,
            properties: Arc::clone(&self.properties),
            cache: Arc::clone(&self.cache),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let slot = self.cache.get(partition).ok_or_else(|| {
            DataFusionError::Internal(format!("CacheExec has no partition {partition}"))
        })?;
        {
            let mut state = slot
                .lock()
                .map_err(|_| DataFusionError::Internal("CacheExec slot poisoned".into()))?;
            match &*state {
                Slot::Filled { batches, .. } => {
                    let batches = Arc::clone(batches);
                    let replay = stream::iter((0..batches.len()).map(move |i| {
                        batches.get(i).cloned().ok_or_else(|| {
                            DataFusionError::Internal("CacheExec batch out of range".into())
                        })
                    }));
                    return Ok(Box::pin(RecordBatchStreamAdapter::new(
                        self.schema(),
                        replay,
                    )));
                }
                Slot::Filling | Slot::TooLarge => return self.input.execute(partition, context),
                Slot::Empty => *state = Slot::Filling,
            }
        }
        let fill = Fill {
            input: self.input.execute(partition, Arc::clone(&context))?,
            kept: Some(Vec::new()),
            reservation: Some(
                MemoryConsumer::new(format!("CacheExec[{partition}]"))
                    .register(context.memory_pool()),
            ),
            cache: Arc::clone(&self.cache),
            partition,
        };
        let s = stream::unfold(fill, |mut f| async move {
            match f.input.next().await {
                Some(Ok(batch)) => {
                    f.keep(&batch);
                    Some((Ok(batch), f))
                }
                Some(Err(e)) => {
                    // Run again next time.
                    f.kept = None;
                    f.set(Slot::Empty);
                    Some((Err(e), f))
                }
                None => {
                    f.finish();
                    None
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use datafusion::arrow::array::UInt64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    fn context(rule: bool) -> SessionContext {
        let config = SessionConfig::new().with_target_partitions(2);
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if rule {
            state = state.with_physical_optimizer_rule(Arc::new(CacheRecursiveInputs));
        }
        let ctx = SessionContext::new_with_state(state.build());
        // A process tree: 1 <- 2 <- 3 <- 4, 1 <- 5 <- 6, each edge seen twice.
        let pids = [2u64, 3, 4, 5, 6, 2, 3, 4, 5, 6];
        let ppids = [1u64, 2, 3, 1, 5, 1, 2, 3, 1, 5];
        let schema = Schema::new(vec![
            Field::new("pid", DataType::UInt64, false),
            Field::new("ppid", DataType::UInt64, false),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(UInt64Array::from(pids.to_vec())),
                Arc::new(UInt64Array::from(ppids.to_vec())),
            ],
        )
        .unwrap();
        ctx.register_batch("t", batch).unwrap();
        ctx
    }

    const TREE: &str = "WITH RECURSIVE e AS (SELECT DISTINCT pid, ppid FROM t), \
        tree AS (SELECT 1 AS pid, 0 AS depth \
                 UNION ALL SELECT e.pid, tree.depth + 1 FROM e JOIN tree ON e.ppid = tree.pid \
                 WHERE tree.depth < 5) \
        SELECT pid, depth FROM tree ORDER BY pid";

    async fn text(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_level_of_the_tree_with_the_edges_computed_once() {
        let (with, without) = (context(true), context(false));
        let got = text(&with, TREE).await;
        assert_eq!(got, text(&without, TREE).await);
        // Four levels below the root: the replayed edges joined at every iteration.
        for row in ["| 1   | 0     |", "| 4   | 3     |", "| 6   | 2     |"] {
            assert!(got.contains(row), "{got}");
        }
        // Twice in the same session: a plan's cache is its own.
        assert_eq!(text(&with, TREE).await, got);
        let plan = text(&with, &format!("EXPLAIN {TREE}")).await;
        assert!(plan.contains("CacheExec"), "{plan}");
    }

    async fn run_twice(pool_bytes: usize) -> (Vec<RecordBatch>, Vec<RecordBatch>, bool) {
        use datafusion::datasource::memory::MemorySourceConfig;
        use datafusion::execution::memory_pool::GreedyMemoryPool;
        use datafusion::execution::runtime_env::RuntimeEnvBuilder;
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "pid",
                DataType::UInt64,
                false,
            )])),
            vec![Arc::new(UInt64Array::from(
                (0..1000u64).collect::<Vec<_>>(),
            ))],
        )
        .unwrap();
        let input =
            MemorySourceConfig::try_new_exec(&[vec![batch.clone()]], batch.schema(), None).unwrap();
        let cache = CacheExec::new(input);
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(GreedyMemoryPool::new(pool_bytes)))
            .build_arc()
            .unwrap();
        let ctx = Arc::new(TaskContext::default().with_runtime(runtime));
        let collect = |ctx: Arc<TaskContext>| {
            let s = cache.execute(0, ctx).unwrap();
            async move { s.map(|b| b.unwrap()).collect::<Vec<_>>().await }
        };
        let first = collect(Arc::clone(&ctx)).await;
        let second = collect(ctx).await;
        (first, second, cache.is_filled(0))
    }

    #[tokio::test]
    async fn kept_when_the_pool_allows_and_run_again_when_not() {
        let (first, second, filled) = run_twice(1 << 20).await;
        assert_eq!((first.len(), &first), (1, &second));
        assert!(filled);
        // A pool too small for the batch: the same rows, every time, nothing kept.
        let (first, second, filled) = run_twice(16).await;
        assert_eq!((first.len(), &first), (1, &second));
        assert!(!filled);
    }
}
