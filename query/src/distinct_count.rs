//! An optimizer rule: `count(DISTINCT x)` beside plain counts, sums, minima and
//! maxima is computed by grouping on `x` first.
//!
//! ```sql
//! SELECT image, exe, count(*), count(DISTINCT container_id) FROM events GROUP BY image, exe
//! ```
//!
//! is planned by DataFusion as one aggregate keeping, per group, the set of distinct
//! values seen (its rule for this, `single_distinct_aggregation_to_group_by`, leaves
//! `count(*)` out). This rule rewrites it as DataFusion does for sums and extends it to
//! counts:
//!
//! ```sql
//! SELECT image, exe, sum(n), count(x) FROM
//!   (SELECT image, exe, container_id AS x, count(*) AS n FROM events GROUP BY image, exe, x)
//! GROUP BY image, exe
//! ```
//!
//! Both aggregates are then plain `GROUP BY`s, whose first phase
//! [`crate::key_aggregate`] runs on dictionary keys. A count is the sum of the inner
//! counts (never null: every outer group has an inner row); `count(DISTINCT x)` is the
//! count of the inner groups' non-null `x`. Only with a `GROUP BY` (without one, an
//! empty input must still give one row of zero counts). On unless the session's
//! `lanner.distinct_counts` is off.

use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, Result};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::expr::{AggregateFunction, AggregateFunctionParams};
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use crate::prune::LannerOptions;
use crate::split_aggregate::{Again, column_of, restore_names, rewrite_aggregates};

/// The rule (see the module docs).
#[derive(Debug, Default)]
pub struct DistinctCountToGroupBy;

impl OptimizerRule for DistinctCountToGroupBy {
    fn name(&self) -> &str {
        "lanner_distinct_count_to_group_by"
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let on = LannerOptions::on(&config.options(), |o| o.distinct_counts);
        if !on {
            return Ok(Transformed::no(plan));
        }
        rewrite_aggregates(plan, Shape::of, rewrite)
    }
}

/// How each aggregate of an eligible `Aggregate` is split.
enum Part {
    /// `count(DISTINCT x)`: the count of the inner groups' `x`.
    DistinctCount,
    /// `count`, `sum`, `min`, `max`: computed again over the inner values.
    Again(Again),
}

struct Shape {
    /// The distinct argument.
    distinct: Expr,
    parts: Vec<Part>,
}

impl Shape {
    /// The shape of `agg` when this rule applies: grouped, one distinct argument counted,
    /// at least one plain count beside it, nothing but counts, sums, minima and maxima,
    /// without filters or orderings.
    fn of(agg: &Aggregate) -> Option<Shape> {
        if agg.group_expr.is_empty()
            || agg
                .group_expr
                .iter()
                .any(|e| matches!(e, Expr::GroupingSet(_)))
        {
            return None;
        }
        let mut distinct: Option<&Expr> = None;
        let mut parts = Vec::with_capacity(agg.aggr_expr.len());
        let mut plain_count = false;
        for e in &agg.aggr_expr {
            let Expr::AggregateFunction(AggregateFunction {
                func,
                params:
                    AggregateFunctionParams {
                        distinct: is_distinct,
                        args,
                        filter: None,
                        order_by,
                        null_treatment: None,
                    },
            }) = e
            else {
                return None;
            };
            if !order_by.is_empty() {
                return None;
            }
            let name = func.name().to_ascii_lowercase();
            if *is_distinct {
                let [arg] = args.as_slice() else {
                    return None;
                };
                if name != "count" || distinct.is_some_and(|d| d != arg) {
                    return None;
                }
                distinct = Some(arg);
                parts.push(Part::DistinctCount);
                continue;
            }
            plain_count |= name == "count";
            parts.push(Part::Again(Again::of(&name)?));
        }
        Some(Shape {
            distinct: distinct?.clone(),
            parts,
        })
        .filter(|_| plain_count)
    }
}

const DISTINCT: &str = "__lanner_distinct";

fn rewrite(agg: Aggregate, shape: Shape) -> Result<LogicalPlan> {
    let keys = agg.group_expr.len();
    let mut inner_group = agg.group_expr.clone();
    inner_group.push(shape.distinct.clone().alias(DISTINCT));
    let inner_aggs: Vec<Expr> = agg
        .aggr_expr
        .iter()
        .zip(&shape.parts)
        .enumerate()
        .filter(|(_, (_, part))| !matches!(part, Part::DistinctCount))
        .map(|(i, (e, _))| e.clone().alias(format!("__lanner_inner_{i}")))
        .collect();
    let inner = LogicalPlan::Aggregate(Aggregate::try_new(
        Arc::clone(&agg.input),
        inner_group,
        inner_aggs,
    )?);
    let outer_group: Vec<Expr> = (0..keys).map(|i| column_of(inner.schema(), i)).collect();
    let mut next_inner = keys + 1;
    let mut outer_aggs = Vec::with_capacity(shape.parts.len());
    for (i, part) in shape.parts.iter().enumerate() {
        let e = match part {
            Part::DistinctCount => count(Expr::Column(Column::new_unqualified(DISTINCT))),
            Part::Again(again) => {
                next_inner += 1;
                again.over(column_of(inner.schema(), next_inner - 1))
            }
        };
        outer_aggs.push(e.alias(format!("__lanner_outer_{i}")));
    }
    let outer = LogicalPlan::Aggregate(Aggregate::try_new(
        Arc::new(inner),
        outer_group,
        outer_aggs,
    )?);
    restore_names(&agg.schema, outer)
}

#[cfg(test)]
mod tests {
    use super::*;

    use datafusion::arrow::array::{Array, DictionaryArray, Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    fn context(rule: bool) -> SessionContext {
        let config = SessionConfig::new()
            .with_target_partitions(2)
            .with_option_extension(LannerOptions::default());
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if rule {
            state = state.with_optimizer_rule(Arc::new(DistinctCountToGroupBy));
        }
        let ctx = SessionContext::new_with_state(state.build());
        let image: DictionaryArray<Int32Type> = ["a", "a", "b", "a", "b", "b", "a", "c"]
            .into_iter()
            .map(Some)
            .collect();
        let exe: DictionaryArray<Int32Type> = [
            Some("sh"),
            Some("sh"),
            Some("cat"),
            None,
            Some("cat"),
            Some("sh"),
            Some("sh"),
            Some("sh"),
        ]
        .into_iter()
        .collect();
        let container: DictionaryArray<Int32Type> = [
            Some("c1"),
            Some("c2"),
            Some("c1"),
            Some("c1"),
            None,
            Some("c3"),
            Some("c2"),
            None,
        ]
        .into_iter()
        .collect();
        let n = Int64Array::from(vec![
            Some(1),
            None,
            Some(3),
            Some(4),
            Some(5),
            None,
            Some(7),
            None,
        ]);
        let schema = Schema::new(vec![
            Field::new("image", image.data_type().clone(), false),
            Field::new("exe", exe.data_type().clone(), true),
            Field::new("container", container.data_type().clone(), true),
            Field::new("n", DataType::Int64, true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(image),
                Arc::new(exe),
                Arc::new(container),
                Arc::new(n),
            ],
        )
        .unwrap();
        ctx.register_batch("t", batch).unwrap();
        ctx
    }

    async fn rows(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        pretty_format_batches(&batches).unwrap().to_string()
    }

    #[tokio::test]
    async fn same_answers_as_datafusion() {
        let (with, without) = (context(true), context(false));
        for sql in [
            "SELECT image, exe, count(*) AS c, count(DISTINCT container) AS d FROM t \
             GROUP BY image, exe ORDER BY image, exe",
            "SELECT image, count(DISTINCT container), count(n), sum(n), min(n), max(n), \
             count(*) FROM t GROUP BY image ORDER BY image",
            "SELECT exe, count(*) AS c, count(DISTINCT image) AS d FROM t GROUP BY exe \
             HAVING count(*) < 4 ORDER BY c, exe",
            "SELECT image, count(*), count(DISTINCT container) AS d1, \
             count(DISTINCT container) AS d2 FROM t WHERE n IS NULL GROUP BY image \
             ORDER BY image",
            // Left alone: no GROUP BY, two distinct arguments, avg.
            "SELECT count(*), count(DISTINCT container) FROM t",
            "SELECT image, count(*), count(DISTINCT container), count(DISTINCT exe) FROM t \
             GROUP BY image ORDER BY image",
            "SELECT image, avg(n), count(DISTINCT container) FROM t GROUP BY image ORDER BY image",
            // An empty input.
            "SELECT image, count(*), count(DISTINCT container) FROM t WHERE n > 100 \
             GROUP BY image",
        ] {
            assert_eq!(rows(&with, sql).await, rows(&without, sql).await, "{sql}");
        }
    }

    #[tokio::test]
    async fn plans_two_plain_aggregates() {
        let ctx = context(true);
        let sql = "EXPLAIN SELECT image, count(*), count(DISTINCT container) FROM t GROUP BY image";
        let text = rows(&ctx, sql).await;
        assert!(
            text.contains("t.container AS __lanner_distinct]]"),
            "{text}"
        );
        assert!(!text.contains("aggr=[[count(DISTINCT"), "{text}");
        ctx.sql("SET lanner.distinct_counts = false").await.unwrap();
        let text = rows(&ctx, sql).await;
        assert!(text.contains("count(DISTINCT t.container)]]"), "{text}");
    }
}
