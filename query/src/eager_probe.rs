//! A physical optimizer rule: the probe side of a hash join whose probe input ends in
//! a grouping starts at once, beside the build side, instead of after it.
//!
//! A hash join reads its build side to the end before it polls its probe side, so a
//! plan such as `outbound_resolved_2h`'s (the DNS side grouped and built, the
//! `connect` side grouped below the join by [`crate::aggregate_below_join`]) runs its
//! two scans one after the other: while the last build-side partition finishes its
//! files, the other cores have nothing to do. When the probe input is a grouping (an
//! aggregate's final step, reached through projections and repartitions only), the
//! join will read all of it anyway before the grouping emits a row, and what it emits
//! is small; [`EagerProbeExec`] then runs the probe input in a task of its own from
//! the moment the join starts, and hands the join the batches it buffered. Both sides'
//! partitions share the cores until the end, as DuckDB's scheduler shares its pipelines.
//!
//! Not applied when the probe input is not a grouping: reading a large probe side
//! ahead would hold its rows in memory while the build side is read, and would lose
//! what the join's dynamic filter prunes from it once the build side is known. The
//! price where it applies: an inner join whose build side turns out empty, which would
//! not have read its probe side at all, has read it.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::joins::HashJoinExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::stream::RecordBatchReceiverStream;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
    ReplaceChildrenOptions,
};
use futures::StreamExt;

use crate::one_input::only_input;
use crate::prune::LannerOptions;

/// Batches an [`EagerProbeExec`] partition buffers ahead of its consumer.
const BUFFERED_BATCHES: usize = 64;

/// The rule (see the module docs).
#[derive(Debug, Default)]
pub struct EagerProbes;

impl PhysicalOptimizerRule for EagerProbes {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !LannerOptions::on(config, |o| o.eager_probes) {
            return Ok(plan);
        }
        plan.transform_up(|node| {
            let Some(join) = (node.as_ref() as &dyn Any).downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            let probe = join.right();
            if (probe.as_ref() as &dyn Any).is::<EagerProbeExec>() || !ends_in_grouping(probe) {
                return Ok(Transformed::no(node));
            }
            let eager: Arc<dyn ExecutionPlan> = Arc::new(EagerProbeExec::new(Arc::clone(probe)));
            let left = Arc::clone(join.left());
            let options = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
            Ok(Transformed::yes(
                Arc::clone(&node).replace_children(vec![left, eager], options)?,
            ))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "lanner_eager_probes"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether `plan` is the final step of an aggregate, under projections and
/// repartitions only.
fn ends_in_grouping(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let any = plan.as_ref() as &dyn Any;
    if let Some(aggregate) = any.downcast_ref::<AggregateExec>() {
        return matches!(
            aggregate.mode(),
            AggregateMode::Final | AggregateMode::FinalPartitioned | AggregateMode::Single
        ) && !aggregate.group_expr().is_empty();
    }
    if any.is::<ProjectionExec>() || any.is::<RepartitionExec>() {
        return plan.children().first().is_some_and(|c| ends_in_grouping(c));
    }
    false
}

/// Runs each partition of its input in a task of its own from `execute` on, buffering
/// up to [`BUFFERED_BATCHES`] batches for its consumer.
#[derive(Debug)]
pub struct EagerProbeExec {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl EagerProbeExec {
    /// Wraps `input`.
    pub fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        let properties = Arc::clone(input.properties());
        EagerProbeExec { input, properties }
    }
}

impl DisplayAs for EagerProbeExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "EagerProbeExec")
    }
}

impl ExecutionPlan for EagerProbeExec {
    fn name(&self) -> &str {
        "EagerProbeExec"
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
        let input = only_input(children, "EagerProbeExec")?;
        Ok(Arc::new(EagerProbeExec::new(input)))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let mut input = self.input.execute(partition, context)?;
        let mut builder = RecordBatchReceiverStream::builder(input.schema(), BUFFERED_BATCHES);
        let tx = builder.tx();
        builder.spawn(async move {
            while let Some(batch) = input.next().await {
                let failed = batch.is_err();
                if tx.send(batch).await.is_err() || failed {
                    break;
                }
            }
            Ok(())
        });
        Ok(builder.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// `c(k, v)` in two partitions of 500 rows, `d(k, name)` of 20 rows.
    fn context(rule: bool) -> SessionContext {
        let config = SessionConfig::new()
            .with_target_partitions(2)
            .with_batch_size(64)
            .with_option_extension(LannerOptions::default());
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if rule {
            state = state.with_physical_optimizer_rule(Arc::new(EagerProbes));
        }
        let ctx = SessionContext::new_with_state(state.build());
        let c = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, false),
        ]));
        let part = |from: i64| {
            let keys: StringArray = (from..from + 500)
                .map(|i| (i % 13 != 0).then(|| format!("k{}", i % 37)))
                .collect();
            let values = Int64Array::from_iter_values(from..from + 500);
            RecordBatch::try_new(Arc::clone(&c), vec![Arc::new(keys), Arc::new(values)])
                .expect("batch")
        };
        let table =
            MemTable::try_new(Arc::clone(&c), vec![vec![part(0)], vec![part(500)]]).expect("table");
        ctx.register_table("c", Arc::new(table)).expect("c");
        let d = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, false),
            Field::new("name", DataType::Utf8, false),
        ]));
        let keys: StringArray = (0..20).map(|i| Some(format!("k{}", i * 2))).collect();
        let names: StringArray = (0..20).map(|i| Some(format!("n{}", i % 3))).collect();
        let batch = RecordBatch::try_new(d, vec![Arc::new(keys), Arc::new(names)]).expect("batch");
        ctx.register_batch("d", batch).expect("d");
        ctx
    }

    async fn run(ctx: &SessionContext, sql: &str) -> Result<(String, String)> {
        let frame = ctx.sql(sql).await?;
        let plan = frame.create_physical_plan().await?;
        let shown = displayable(plan.as_ref()).indent(true).to_string();
        let batches = datafusion::physical_plan::collect(plan, ctx.task_ctx()).await?;
        Ok((pretty_format_batches(&batches)?.to_string(), shown))
    }

    const GROUPED: &str = "(SELECT k, count(*) AS n, sum(v) AS s FROM c GROUP BY k)";

    #[tokio::test]
    async fn grouped_probe_sides_start_early_and_give_the_same_rows() {
        let (with, without) = (context(true), context(false));
        let queries = [
            format!(
                "SELECT d.name, sum(g.n), max(g.s) FROM d JOIN {GROUPED} g ON d.k = g.k \
                 GROUP BY d.name ORDER BY d.name"
            ),
            format!(
                "SELECT g.k, g.n, d.name FROM {GROUPED} g JOIN d ON d.k = g.k \
                 ORDER BY g.k, d.name"
            ),
            format!(
                "SELECT g.k, h.n FROM {GROUPED} g JOIN {GROUPED} h ON g.k = h.k \
                 WHERE g.n > 20 ORDER BY g.k"
            ),
        ];
        let mut eager = 0;
        for sql in &queries {
            let (rows, plan) = run(&with, sql).await.expect("with the rule");
            let (expected, _) = run(&without, sql).await.expect("without the rule");
            assert_eq!(rows, expected, "{sql}\n{plan}");
            assert!(rows.lines().count() > 5, "{sql}: {rows}");
            eager += plan.matches("EagerProbeExec").count();
        }
        assert!(eager >= 2, "{eager} probe sides started early");
    }

    #[tokio::test]
    async fn probe_sides_that_are_not_groupings_are_left_alone() {
        let ctx = context(true);
        let sql = "SELECT d.name, count(*) FROM c JOIN d ON c.k = d.k GROUP BY d.name";
        let (rows, plan) = run(&ctx, sql).await.expect("query");
        assert!(plan.contains("HashJoinExec"), "{plan}");
        assert!(!plan.contains("EagerProbeExec"), "{plan}");
        assert!(rows.contains("n0"), "{rows}");
    }

    #[tokio::test]
    async fn an_error_on_the_probe_side_ends_the_query() {
        let ctx = context(true);
        let sql = "SELECT d.name, g.r FROM d JOIN \
                   (SELECT k, 10 / (count(*) - count(*)) AS r FROM c GROUP BY k) g \
                   ON d.k = g.k";
        let plan = ctx
            .sql(sql)
            .await
            .expect("plan")
            .create_physical_plan()
            .await
            .expect("physical plan");
        let shown = displayable(plan.as_ref()).indent(true).to_string();
        assert!(shown.contains("EagerProbeExec"), "{shown}");
        let err = datafusion::physical_plan::collect(plan, ctx.task_ctx())
            .await
            .expect_err("division by zero");
        assert!(err.to_string().contains("Divide by zero"), "{err}");
    }
}
