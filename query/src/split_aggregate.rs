//! What the rules that split an aggregate in two share: an inner aggregate over the
//! input computes partial values per finer group, an outer one combines them per the
//! query's groups, and a projection gives the result the query's names back.
//!
//! Used by [`crate::distinct_count`] and [`crate::aggregate_below_join`].

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, Result};
use datafusion::functions_aggregate::expr_fn::{max, min, sum};
use datafusion::logical_expr::{Aggregate, Expr, ExprSchemable, LogicalPlan, Projection};
use std::sync::Arc;

/// Rewrites, bottom up, each aggregate of `plan` that `shape` accepts with `rewrite`.
pub(crate) fn rewrite_aggregates<S>(
    plan: LogicalPlan,
    shape: impl Fn(&Aggregate) -> Option<S>,
    rewrite: impl Fn(Aggregate, S) -> Result<LogicalPlan>,
) -> Result<Transformed<LogicalPlan>> {
    plan.transform_up(|p| match p {
        LogicalPlan::Aggregate(agg) => match shape(&agg) {
            Some(s) => rewrite(agg, s).map(Transformed::yes),
            None => Ok(Transformed::no(LogicalPlan::Aggregate(agg))),
        },
        other => Ok(Transformed::no(other)),
    })
}

/// How an aggregate is computed again over the partial values of finer groups.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Again {
    /// `count`, `sum`: the sum of the partial values.
    Sum,
    Min,
    Max,
}

impl Again {
    /// For the aggregate function named `name` (any case); `None` for the others.
    pub(crate) fn of(name: &str) -> Option<Again> {
        match name.to_ascii_lowercase().as_str() {
            "count" | "sum" => Some(Again::Sum),
            "min" => Some(Again::Min),
            "max" => Some(Again::Max),
            _ => None,
        }
    }

    /// The aggregate over `partial`, a column of partial values.
    pub(crate) fn over(self, partial: Expr) -> Expr {
        match self {
            Again::Sum => sum(partial),
            Again::Min => min(partial),
            Again::Max => max(partial),
        }
    }
}

/// The column of `schema`'s field `i`.
pub(crate) fn column_of(schema: &DFSchema, i: usize) -> Expr {
    let (qualifier, field) = schema.qualified_field(i);
    Expr::Column(Column::new(qualifier.cloned(), field.name()))
}

/// `outer` under a projection giving its fields, in order, the names and types of
/// `original`'s (a sum of counts is an Int64 like the count; a type that differs is
/// cast back).
pub(crate) fn restore_names(original: &DFSchema, outer: LogicalPlan) -> Result<LogicalPlan> {
    let restore = original
        .iter()
        .enumerate()
        .map(|(i, (qualifier, field))| {
            let c = column_of(outer.schema(), i);
            let c = if outer.schema().field(i).data_type() == field.data_type() {
                c
            } else {
                c.cast_to(field.data_type(), outer.schema())?
            };
            Ok(c.alias_qualified(qualifier.cloned(), field.name()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(LogicalPlan::Projection(Projection::try_new(
        restore,
        Arc::new(outer),
    )?))
}
