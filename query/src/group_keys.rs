//! An optimizer rule: grouping keys of a dictionary type (the archive's repeating text,
//! `lanner_contract::arrow::DICTIONARY_COLUMNS`) are grouped by their values, as
//! string views.
//!
//! DataFusion groups dictionary-typed keys through its generic row format, encoding one
//! row per input row; string views take its column-wise path. The cast is cheap (one
//! view per row, pointing into the dictionary's values) and the groups are the same.
//! The keys are cast back to their dictionary type after grouping (one value per
//! group), so nothing above the aggregate changes. `GROUP BY evt_type`,
//! `SELECT DISTINCT proc_exepath` and `count(DISTINCT container_id)` are all
//! rewritten. On unless the session's `lanner.text_group_keys` is off.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, Result};
use datafusion::logical_expr::{Aggregate, Expr, ExprSchemable, LogicalPlan, Projection, cast};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use crate::prune::LannerOptions;

/// The rule (see the module docs).
#[derive(Debug, Default)]
pub struct DictionaryGroupKeys;

impl OptimizerRule for DictionaryGroupKeys {
    fn name(&self) -> &str {
        "lanner_dictionary_group_keys"
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let on = LannerOptions::on(&config.options(), |o| o.text_group_keys);
        if !on || !plan.exists(|p| Ok(has_dictionary_key(p)))? {
            return Ok(Transformed::no(plan));
        }
        plan.transform_up(|p| match p {
            LogicalPlan::Aggregate(agg) if aggregate_has_dictionary_key(&agg) => {
                rewrite_aggregate(agg).map(Transformed::yes)
            }
            other => Ok(Transformed::no(other)),
        })
    }
}

fn is_dictionary(t: &DataType) -> bool {
    matches!(t, DataType::Dictionary(_, v) if matches!(v.as_ref(), DataType::Utf8 | DataType::LargeUtf8))
}

fn has_dictionary_key(plan: &LogicalPlan) -> bool {
    matches!(plan, LogicalPlan::Aggregate(agg) if aggregate_has_dictionary_key(agg))
}

fn key_type(e: &Expr, schema: &DFSchema) -> Option<DataType> {
    match e {
        Expr::GroupingSet(_) => None,
        e => e.get_type(schema).ok(),
    }
}

fn aggregate_has_dictionary_key(agg: &Aggregate) -> bool {
    let schema = agg.input.schema();
    agg.group_expr
        .iter()
        .any(|e| key_type(e, schema).is_some_and(|t| is_dictionary(&t)))
}

/// The aggregate with each dictionary key cast to `Utf8View`, under its former name,
/// and a projection over it that casts the keys back: the groups' keys come out as the
/// dictionaries they were, so the plan above (a join on the key, a union) sees the
/// same schema.
fn rewrite_aggregate(agg: Aggregate) -> Result<LogicalPlan> {
    let input_schema = agg.input.schema().clone();
    let before = agg.schema.clone();
    let group_expr = agg
        .group_expr
        .into_iter()
        .map(|e| {
            if !key_type(&e, &input_schema).is_some_and(|t| is_dictionary(&t)) {
                return e;
            }
            let (relation, name) = e.qualified_name();
            cast(e, DataType::Utf8View).alias_qualified(relation, name)
        })
        .collect();
    let grouped = Aggregate::try_new(agg.input, group_expr, agg.aggr_expr)?;
    let restore = grouped
        .schema
        .iter()
        .zip(before.fields())
        .map(|((qualifier, field), was)| {
            let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
            if field.data_type() == was.data_type() {
                column
            } else {
                cast(column, was.data_type().clone())
                    .alias_qualified(qualifier.cloned(), field.name())
            }
        })
        .collect::<Vec<_>>();
    let projection = Projection::try_new(restore, Arc::new(LogicalPlan::Aggregate(grouped)))?;
    Ok(LogicalPlan::Projection(projection))
}

#[cfg(test)]
mod tests {
    use super::*;

    use datafusion::arrow::array::{Array, DictionaryArray, Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{Field, Int32Type, Schema};
    use datafusion::prelude::SessionContext;

    async fn context(rule: bool) -> SessionContext {
        let ctx = SessionContext::new();
        if rule {
            ctx.add_optimizer_rule(Arc::new(DictionaryGroupKeys));
        }
        let names: DictionaryArray<Int32Type> = vec![
            Some("sh"),
            Some("cat"),
            None,
            Some("sh"),
            Some("cat"),
            Some("sh"),
        ]
        .into_iter()
        .collect();
        let n = Int64Array::from(vec![1, 2, 3, 4, 5, 6]);
        let schema = Schema::new(vec![
            Field::new("name", names.data_type().clone(), true),
            Field::new("n", DataType::Int64, false),
        ]);
        let batch =
            RecordBatch::try_new(Arc::new(schema), vec![Arc::new(names), Arc::new(n)]).unwrap();
        ctx.register_batch("t", batch).unwrap();
        ctx
    }

    async fn rows(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn same_answers_with_text_keys() {
        let (with, without) = (context(true).await, context(false).await);
        for sql in [
            "SELECT name, count(*) AS c, sum(n) AS s FROM t GROUP BY name ORDER BY name",
            "SELECT DISTINCT name FROM t ORDER BY name",
            "SELECT count(DISTINCT name) AS d FROM t",
            "SELECT t.name, c FROM (SELECT name, count(*) AS c FROM t GROUP BY name) AS t \
             WHERE t.name LIKE 's%'",
            "SELECT name FROM t GROUP BY name UNION ALL SELECT name FROM t ORDER BY name",
            // The key joined to the dictionary column it came from.
            "SELECT t.name, d.c FROM t JOIN (SELECT name, count(*) AS c FROM t GROUP BY name) d \
             ON t.name = d.name ORDER BY t.n",
        ] {
            assert_eq!(rows(&with, sql).await, rows(&without, sql).await, "{sql}");
        }
        // The key is grouped as text.
        let plan = with
            .sql("EXPLAIN SELECT name, count(*) FROM t GROUP BY name")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&plan)
            .unwrap()
            .to_string();
        assert!(text.contains("Utf8View"), "{text}");
    }
}
