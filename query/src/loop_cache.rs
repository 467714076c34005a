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
//! cached rows count against the session's memory pool. On unless the session's
//! `lanner.cache_recursive_inputs` is off.

use std::fmt;
use std::sync::Arc;

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
use futures::{StreamExt, TryStreamExt, stream};
use tokio::sync::OnceCell;

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
        let on = config
            .extensions
            .get::<LannerOptions>()
            .is_none_or(|o| o.cache_recursive_inputs);
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
        // A leaf costs nothing to run again (and an empty one nothing to keep).
        if plan.children().is_empty() {
            return Ok(plan);
        }
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
    /// One cell per output partition, shared by the copies DataFusion makes of this
    /// node when it resets the recursive term.
    cache: Arc<Vec<OnceCell<Cached>>>,
}

/// One partition's batches, and their memory accounted in the session's pool until
/// the plan is dropped.
#[derive(Debug)]
struct Cached {
    batches: Vec<RecordBatch>,
    _reservation: MemoryReservation,
}

impl CacheExec {
    /// Wraps `input`.
    pub fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        let partitions = input.output_partitioning().partition_count();
        CacheExec {
            properties: Arc::clone(input.properties()),
            cache: Arc::new((0..partitions).map(|_| OnceCell::new()).collect()),
            input,
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
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(
                "CacheExec takes exactly one input".into(),
            ));
        }
        let input = children.swap_remove(0);
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
        let schema = self.schema();
        let cache = Arc::clone(&self.cache);
        let input = Arc::clone(&self.input);
        let fill = async move {
            let cell = cache.get(partition).ok_or_else(|| {
                DataFusionError::Internal(format!("CacheExec has no partition {partition}"))
            })?;
            let batches = cell
                .get_or_try_init(|| async {
                    let reservation = MemoryConsumer::new(format!("CacheExec[{partition}]"))
                        .register(context.memory_pool());
                    let mut batches = Vec::new();
                    let mut s = input.execute(partition, Arc::clone(&context))?;
                    while let Some(b) = s.next().await {
                        let b = b?;
                        reservation.try_grow(b.get_array_memory_size())?;
                        batches.push(b);
                    }
                    Ok::<_, DataFusionError>(Cached {
                        batches,
                        _reservation: reservation,
                    })
                })
                .await?;
            Ok::<_, DataFusionError>(stream::iter(
                batches.batches.iter().cloned().map(Ok).collect::<Vec<_>>(),
            ))
        };
        let s = stream::once(fill).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, s)))
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
}
