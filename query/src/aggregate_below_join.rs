//! An optimizer rule: an aggregate over an inner join with a grouped side is computed
//! in part below the join, on the other side.
//!
//! ```sql
//! WITH dns AS (SELECT DISTINCT container_id, dns_name, dns_answers[1] AS ip FROM events
//!              WHERE evt_type = 'sendto')
//! SELECT c.container_name, d.dns_name, c.fd_sip, count(*) AS connects
//! FROM events c JOIN dns d ON c.container_id = d.container_id AND c.fd_sip = d.ip
//! WHERE c.evt_type = 'connect' GROUP BY c.container_name, d.dns_name, c.fd_sip
//! ```
//!
//! joins every `connect` event with its name, then groups the joined rows. This rule
//! groups the events first, by the columns of theirs that the query groups by and
//! joins on, and counts each group; the join then meets one row per group, and the
//! aggregate above it adds the counts up:
//!
//! ```sql
//! SELECT c.container_name, d.dns_name, c.fd_sip, sum(c.n) AS connects
//! FROM (SELECT container_id, container_name, fd_sip, count(*) AS n FROM events
//!       WHERE evt_type = 'connect' GROUP BY container_id, container_name, fd_sip) c
//! JOIN dns d ON c.container_id = d.container_id AND c.fd_sip = d.ip
//! GROUP BY c.container_name, d.dns_name, c.fd_sip
//! ```
//!
//! A joined row is a pair of one row of each side; a group of the pushed side's rows,
//! all equal in the join keys, meets the same rows of the other side, so each of its
//! aggregates is repeated as often as each row would have been: counts and integer
//! sums add up (a sum of sums), minima and maxima are the same over the groups' minima
//! and maxima. Applies to `count`, integer `sum`, `min` and `max` without `DISTINCT`,
//! filters or orderings, all reading the pushed side, over an inner equijoin without
//! another condition (its keys may be casts: the groups are by the columns they
//! read), grouped by columns (at least one). It needs no statistics: the
//! other side must already be grouped (a `DISTINCT`, a `GROUP BY`), which is what
//! makes a join with it many-to-few, and the pushed side must not be (the rule does
//! not apply to its own output twice). The grouping below the join runs on the scan's
//! dictionary keys ([`crate::key_aggregate`]) where it can. On unless the session's
//! `lanner.aggregates_below_joins` is off.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchema, Result};
use datafusion::logical_expr::expr::{AggregateFunction, AggregateFunctionParams};
use datafusion::logical_expr::{Aggregate, Expr, ExprSchemable, Join, JoinType, LogicalPlan};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use crate::prune::LannerOptions;
use crate::split_aggregate::{Again, column_of, restore_names, rewrite_aggregates};

/// The rule (see the module docs).
#[derive(Debug, Default)]
pub struct AggregateBelowJoin;

impl OptimizerRule for AggregateBelowJoin {
    fn name(&self) -> &str {
        "lanner_aggregate_below_join"
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let on = LannerOptions::on(&config.options(), |o| o.aggregates_below_joins);
        if !on {
            return Ok(Transformed::no(plan));
        }
        rewrite_aggregates(plan, Shape::of, rewrite)
    }
}

/// Which input of the join the aggregates move to.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Left,
    Right,
}

struct Shape {
    side: Side,
    /// Each aggregate without its alias, and how it is computed again.
    aggregates: Vec<(Expr, Again)>,
}

impl Shape {
    /// The shape of `agg` when this rule applies (see the module docs).
    fn of(agg: &Aggregate) -> Option<Shape> {
        let join = join_under(&agg.input)?;
        if join.join_type != JoinType::Inner
            || join.filter.is_some()
            || join.null_aware
            || join.on.is_empty()
            || agg.aggr_expr.is_empty()
            // Without groups the aggregate gives one row even over no rows, where a
            // count is 0 but a sum of counts null.
            || agg.group_expr.is_empty()
            || !agg.group_expr.iter().all(|e| matches!(e, Expr::Column(_)))
            || join
                .on
                .iter()
                .any(|(l, r)| l.is_volatile() || r.is_volatile())
        {
            return None;
        }
        let side = if !is_grouped(&join.left) && is_grouped(&join.right) {
            Side::Left
        } else if !is_grouped(&join.right) && is_grouped(&join.left) {
            Side::Right
        } else {
            return None;
        };
        let pushed = match side {
            Side::Left => join.left.schema(),
            Side::Right => join.right.schema(),
        };
        let mut aggregates = Vec::with_capacity(agg.aggr_expr.len());
        for e in &agg.aggr_expr {
            let e = unaliased(e);
            let Expr::AggregateFunction(AggregateFunction {
                func,
                params:
                    AggregateFunctionParams {
                        distinct: false,
                        args,
                        filter: None,
                        order_by,
                        null_treatment: None,
                    },
            }) = e
            else {
                return None;
            };
            if !order_by.is_empty() || !reads_only(args, pushed) {
                return None;
            }
            let again = Again::of(func.name())?;
            // Sums of floats would be added in another order; decimals could take
            // another precision.
            let integer = |arg: &Expr| arg.get_type(pushed).is_ok_and(|t| t.is_integer());
            if func.name().eq_ignore_ascii_case("sum")
                && !matches!(args.as_slice(), [arg] if integer(arg))
            {
                return None;
            }
            aggregates.push((e.clone(), again));
        }
        Some(Shape { side, aggregates })
    }
}

/// The join `plan` is, or projects columns of (a projection that only drops columns
/// is left out of the rewritten plan: the aggregate reads the join's columns by the
/// same names).
fn join_under(plan: &LogicalPlan) -> Option<&Join> {
    match plan {
        LogicalPlan::Join(join) => Some(join),
        LogicalPlan::Projection(p) if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) => {
            match p.input.as_ref() {
                LogicalPlan::Join(join) => Some(join),
                _ => None,
            }
        }
        _ => None,
    }
}

fn unaliased(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => unaliased(&a.expr),
        e => e,
    }
}

/// Whether every column `args` read is one of `schema`'s (constants, as in
/// `count(*)`, read none).
fn reads_only(args: &[Expr], schema: &DFSchema) -> bool {
    args.iter()
        .all(|a| a.column_refs().into_iter().all(|c| schema.has_column(c)))
}

/// Whether `plan` produces groups: an aggregate or a `DISTINCT`, seen through
/// aliases, projections and filters.
fn is_grouped(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Aggregate(_) | LogicalPlan::Distinct(_) => true,
        LogicalPlan::SubqueryAlias(a) => is_grouped(&a.input),
        LogicalPlan::Projection(p) => is_grouped(&p.input),
        LogicalPlan::Filter(f) => is_grouped(&f.input),
        _ => false,
    }
}

fn rewrite(agg: Aggregate, shape: Shape) -> Result<LogicalPlan> {
    let Some(join) = join_under(&agg.input) else {
        unreachable!("Shape::of found a join");
    };
    let pushed = match shape.side {
        Side::Left => &join.left,
        Side::Right => &join.right,
    };
    // The pushed side's group keys: its columns the query groups by, then the
    // columns its join keys read (a key may be a cast of one), each once.
    let mut seen = HashSet::new();
    let join_columns = join.on.iter().flat_map(|(l, r)| {
        let key = match shape.side {
            Side::Left => l,
            Side::Right => r,
        };
        let mut columns: Vec<&Column> = key.column_refs().into_iter().collect();
        columns.sort_by_key(|c| c.flat_name());
        columns
    });
    let schema = pushed.schema();
    let keys: Vec<Expr> = agg
        .group_expr
        .iter()
        .filter_map(|e| match e {
            Expr::Column(c) => Some(c),
            _ => None,
        })
        .chain(join_columns)
        .filter_map(|c| schema.maybe_index_of_column(c))
        .filter(|i| seen.insert(*i))
        .map(|i| column_of(schema, i))
        .collect();
    let inner_names: Vec<String> = (0..shape.aggregates.len())
        .map(|i| format!("__lanner_below_join_{i}"))
        .collect();
    let inner_aggs = shape
        .aggregates
        .iter()
        .zip(&inner_names)
        .map(|((e, _), name)| e.clone().alias(name))
        .collect();
    let below = Arc::new(LogicalPlan::Aggregate(Aggregate::try_new(
        Arc::clone(pushed),
        keys,
        inner_aggs,
    )?));
    let (left, right) = match shape.side {
        Side::Left => (below, Arc::clone(&join.right)),
        Side::Right => (Arc::clone(&join.left), below),
    };
    let joined = LogicalPlan::Join(Join::try_new(
        left,
        right,
        join.on.clone(),
        None,
        JoinType::Inner,
        join.join_constraint,
        join.null_equality,
        false,
    )?);
    let outer_aggs = shape
        .aggregates
        .iter()
        .zip(&inner_names)
        .enumerate()
        .map(|(i, ((_, again), name))| {
            again
                .over(Expr::Column(Column::new_unqualified(name)))
                .alias(format!("__lanner_above_join_{i}"))
        })
        .collect();
    let outer = LogicalPlan::Aggregate(Aggregate::try_new(
        Arc::new(joined),
        agg.group_expr.clone(),
        outer_aggs,
    )?);
    restore_names(&agg.schema, outer)
}

#[cfg(test)]
mod tests {
    use super::*;

    use datafusion::arrow::array::{
        Array, DictionaryArray, Float64Array, Int64Array, RecordBatch, StringArray, UInt16Array,
    };
    use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    fn dictionary(values: &[Option<&str>]) -> DictionaryArray<Int32Type> {
        values.iter().copied().collect()
    }

    /// `c`: connections (container, name, address, port, a number, a float);
    /// `d`: lookups (container, name, answer), with repeats, nulls and addresses
    /// answered under two names.
    fn context(rule: bool) -> SessionContext {
        let config = SessionConfig::new()
            .with_target_partitions(2)
            .with_option_extension(LannerOptions::default());
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if rule {
            state = state.with_optimizer_rule(Arc::new(AggregateBelowJoin));
        }
        let ctx = SessionContext::new_with_state(state.build());
        let container = dictionary(&[
            Some("c1"),
            Some("c1"),
            Some("c1"),
            Some("c2"),
            Some("c2"),
            None,
            Some("c1"),
            Some("c3"),
            Some("c2"),
            Some("c1"),
        ]);
        let name = dictionary(&[
            Some("api"),
            Some("api"),
            Some("api"),
            Some("db"),
            Some("db"),
            Some("x"),
            Some("api"),
            Some("web"),
            Some("db"),
            Some("api"),
        ]);
        let sip = dictionary(&[
            Some("10.0.0.1"),
            Some("10.0.0.1"),
            Some("10.0.0.2"),
            Some("10.0.0.1"),
            None,
            Some("10.0.0.1"),
            Some("10.0.0.3"),
            Some("10.0.0.1"),
            Some("10.0.0.1"),
            Some("10.0.0.1"),
        ]);
        let sport = UInt16Array::from(vec![443, 443, 80, 443, 443, 53, 443, 443, 80, 80]);
        let n = Int64Array::from(vec![
            Some(1),
            None,
            Some(3),
            Some(4),
            Some(5),
            Some(6),
            None,
            Some(8),
            Some(9),
            Some(-10),
        ]);
        let f = Float64Array::from(vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]);
        let schema = Schema::new(vec![
            Field::new("container_id", container.data_type().clone(), true),
            Field::new("container_name", name.data_type().clone(), true),
            Field::new("fd_sip", sip.data_type().clone(), true),
            Field::new("fd_sport", sport.data_type().clone(), false),
            Field::new("n", n.data_type().clone(), true),
            Field::new("f", f.data_type().clone(), false),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(container),
                Arc::new(name),
                Arc::new(sip),
                Arc::new(sport),
                Arc::new(n),
                Arc::new(f),
            ],
        )
        .unwrap();
        ctx.register_batch("c", batch).unwrap();
        let lookups: [(Option<&str>, &str, Option<&str>); 8] = [
            (Some("c1"), "a.example", Some("10.0.0.1")),
            (Some("c1"), "a.example", Some("10.0.0.1")),
            (Some("c1"), "b.example", Some("10.0.0.1")),
            (Some("c1"), "c.example", Some("10.0.0.2")),
            (Some("c2"), "a.example", Some("10.0.0.1")),
            (Some("c2"), "n.example", None),
            (None, "z.example", Some("10.0.0.1")),
            (Some("c3"), "w.example", Some("10.0.0.9")),
        ];
        let schema = Schema::new(vec![
            Field::new("container_id", DataType::Utf8, true),
            Field::new("dns_name", DataType::Utf8, false),
            Field::new("ip", DataType::Utf8, true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(lookups.iter().map(|l| l.0).collect::<StringArray>()),
                Arc::new(lookups.iter().map(|l| Some(l.1)).collect::<StringArray>()),
                Arc::new(lookups.iter().map(|l| l.2).collect::<StringArray>()),
            ],
        )
        .unwrap();
        ctx.register_batch("d", batch).unwrap();
        ctx
    }

    async fn rows(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        pretty_format_batches(&batches).unwrap().to_string()
    }

    const DNS: &str = "(SELECT DISTINCT container_id, dns_name, ip FROM d)";

    /// The queries, each with whether the rule applies to it.
    fn queries() -> Vec<(String, bool)> {
        vec![
            // The hunting query's shape, and all the aggregates that move.
            (
                format!(
                    "SELECT c.container_name, l.dns_name, c.fd_sip, c.fd_sport, count(*) AS n \
                     FROM c JOIN {DNS} l ON c.container_id = l.container_id AND c.fd_sip = l.ip \
                     GROUP BY c.container_name, l.dns_name, c.fd_sip, c.fd_sport \
                     ORDER BY n DESC, c.container_name, l.dns_name, c.fd_sip, c.fd_sport"
                ),
                true,
            ),
            (
                format!(
                    "SELECT l.dns_name, count(*), count(c.n), sum(c.n), min(c.n), max(c.n), \
                     min(c.fd_sport), max(c.container_name), sum(c.fd_sport) \
                     FROM c JOIN {DNS} l ON c.container_id = l.container_id AND c.fd_sip = l.ip \
                     GROUP BY l.dns_name ORDER BY l.dns_name"
                ),
                true,
            ),
            // The grouped side on the left; a HAVING; one join key.
            (
                format!(
                    "SELECT l.container_id, count(*) AS n, sum(c.n) AS s FROM {DNS} l \
                     JOIN c ON l.ip = c.fd_sip GROUP BY l.container_id HAVING count(*) > 2 \
                     ORDER BY l.container_id"
                ),
                true,
            ),
            // A filter on each side, and no group keys of the pushed side's.
            (
                format!(
                    "SELECT l.dns_name, count(*) FROM c JOIN {DNS} l \
                     ON c.container_id = l.container_id AND c.fd_sip = l.ip \
                     WHERE c.fd_sport = 443 AND l.dns_name <> 'b.example' \
                     GROUP BY l.dns_name ORDER BY l.dns_name"
                ),
                true,
            ),
            // Left alone: a sum of floats, an average, a distinct count, an outer join,
            // two sides not grouped, an aggregate reading the grouped side.
            (
                format!(
                    "SELECT l.dns_name, sum(c.f) FROM c JOIN {DNS} l ON c.fd_sip = l.ip \
                     GROUP BY l.dns_name ORDER BY l.dns_name"
                ),
                false,
            ),
            (
                format!(
                    "SELECT l.dns_name, avg(c.n) FROM c JOIN {DNS} l ON c.fd_sip = l.ip \
                     GROUP BY l.dns_name ORDER BY l.dns_name"
                ),
                false,
            ),
            (
                format!(
                    "SELECT l.dns_name, count(DISTINCT c.fd_sport) FROM c JOIN {DNS} l \
                     ON c.fd_sip = l.ip GROUP BY l.dns_name ORDER BY l.dns_name"
                ),
                false,
            ),
            (
                format!(
                    "SELECT l.dns_name, count(*) FROM c LEFT JOIN {DNS} l ON c.fd_sip = l.ip \
                     GROUP BY l.dns_name ORDER BY l.dns_name"
                ),
                false,
            ),
            (
                "SELECT d.dns_name, count(*) FROM c JOIN d ON c.fd_sip = d.ip \
                 GROUP BY d.dns_name ORDER BY d.dns_name"
                    .to_owned(),
                false,
            ),
            (
                format!(
                    "SELECT c.fd_sport, max(l.dns_name) FROM c JOIN {DNS} l ON c.fd_sip = l.ip \
                     GROUP BY c.fd_sport ORDER BY c.fd_sport"
                ),
                false,
            ),
            // No groups: one row even when nothing joins, where a count is 0 and a
            // sum of counts would be null.
            (
                format!(
                    "SELECT count(*), count(c.n), max(c.n) FROM c JOIN {DNS} l \
                     ON c.fd_sip = l.ip WHERE l.dns_name = 'none.example'"
                ),
                false,
            ),
            (
                format!("SELECT count(*) FROM c JOIN {DNS} l ON c.fd_sip = l.ip"),
                false,
            ),
        ]
    }

    #[tokio::test]
    async fn same_answers_as_datafusion() {
        let (with, without) = (context(true), context(false));
        for (sql, _) in queries() {
            let expected = rows(&without, &sql).await;
            assert_eq!(rows(&with, &sql).await, expected, "{sql}");
        }
    }

    #[tokio::test]
    async fn groups_below_the_join_where_it_applies() {
        let ctx = context(true);
        for (sql, applies) in queries() {
            let plan = rows(&ctx, &format!("EXPLAIN {sql}")).await;
            assert_eq!(
                plan.contains("__lanner_below_join_0"),
                applies,
                "{sql}\n{plan}"
            );
        }
        ctx.sql("SET lanner.aggregates_below_joins = false")
            .await
            .unwrap();
        let plan = rows(&ctx, &format!("EXPLAIN {}", queries()[0].0)).await;
        assert!(!plan.contains("__lanner_below_join_0"), "{plan}");
    }
}
