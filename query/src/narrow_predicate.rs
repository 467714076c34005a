//! A physical optimizer rule: a filter's predicate with an `AND` or `OR` sees only the
//! columns it reads.
//!
//! DataFusion's `AND` evaluates its right side on the rows its left side keeps when
//! those are few (`OR` on the rows it drops): it filters the whole batch it was given
//! for that, every column, and a `FilterExec` gives its predicate its whole input. In
//! `etc_writes_4h` (`evt_type = 'openat' AND fd_name LIKE '/etc/%' AND evt_arg_flags
//! LIKE '%O_WRONLY%'` over a scan that also reads the process and container names)
//! every `AND` copied all seven columns of the rows it kept. [`OwnColumns`] evaluates
//! the predicate, its columns renumbered, on the batch's columns it reads only. (The
//! other columns replaced by `NullArray`s, positions unchanged, cost as much: arrow
//! filters a `NullArray` through its generic path, one step per kept run of rows.) On
//! unless the session's `lanner.narrow_predicates` is off.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::expressions::{BinaryExpr, Column};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};

use crate::prune::LannerOptions;

/// The rule (see the module docs).
#[derive(Debug, Default)]
pub struct NarrowPredicates;

impl PhysicalOptimizerRule for NarrowPredicates {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !LannerOptions::on(config, |o| o.narrow_predicates) {
            return Ok(plan);
        }
        plan.transform_up(|p| {
            let Some(filter) = p.downcast_ref::<FilterExec>() else {
                return Ok(Transformed::no(p));
            };
            let Some(predicate) = OwnColumns::wrap(filter.predicate(), &filter.input().schema())?
            else {
                return Ok(Transformed::no(p));
            };
            let exec = FilterExecBuilder::new(predicate, Arc::clone(filter.input()))
                .apply_projection(filter.projection().as_ref().map(|p| p.to_vec()))?
                .with_default_selectivity(filter.default_selectivity())
                .with_batch_size(filter.batch_size())
                .with_fetch(filter.fetch())
                .build()?;
            Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "lanner_narrow_predicates"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A predicate evaluated on its input with only the columns it reads (module docs).
/// Shown as the predicate it wraps, which is its child.
#[derive(Debug)]
pub struct OwnColumns {
    predicate: Arc<dyn PhysicalExpr>,
    /// The input columns `predicate` reads, in order, and `predicate` over those.
    columns: Vec<usize>,
    narrowed: Arc<dyn PhysicalExpr>,
    /// How many columns the input has.
    width: usize,
}

impl OwnColumns {
    /// `predicate` over `input` wrapped, when it has an `AND` or `OR` (whose right side
    /// may be evaluated on a filtered batch) and `input` has columns it does not read.
    pub fn wrap(
        predicate: &Arc<dyn PhysicalExpr>,
        input: &SchemaRef,
    ) -> Result<Option<Arc<dyn PhysicalExpr>>> {
        if predicate.downcast_ref::<OwnColumns>().is_some() || !has_and_or(predicate) {
            return Ok(None);
        }
        let wrapped = OwnColumns::new(Arc::clone(predicate), input.fields().len())?;
        Ok((wrapped.columns.len() < wrapped.width).then(|| Arc::new(wrapped) as _))
    }

    /// `predicate` over an input of `width` columns, however it is made.
    pub fn new(predicate: Arc<dyn PhysicalExpr>, width: usize) -> Result<Self> {
        let mut columns = vec![];
        // The closure never fails.
        let _ = predicate.apply(|x| {
            if let Some(c) = x.downcast_ref::<Column>()
                && !columns.contains(&c.index())
            {
                columns.push(c.index());
            }
            Ok(TreeNodeRecursion::Continue)
        });
        columns.sort_unstable();
        let narrowed = Arc::clone(&predicate)
            .transform_up(|x| match x.downcast_ref::<Column>() {
                Some(c) => {
                    let at = columns.partition_point(|i| *i < c.index());
                    let column = Column::new(c.name(), at);
                    Ok(Transformed::yes(Arc::new(column) as Arc<dyn PhysicalExpr>))
                }
                None => Ok(Transformed::no(x)),
            })?
            .data;
        Ok(OwnColumns {
            predicate,
            columns,
            narrowed,
            width,
        })
    }
}

/// Whether `e` has an `AND` or an `OR`.
fn has_and_or(e: &Arc<dyn PhysicalExpr>) -> bool {
    let mut found = false;
    // The closure never fails.
    let _ = e.apply(|x| {
        found = x
            .downcast_ref::<BinaryExpr>()
            .is_some_and(|b| matches!(b.op(), Operator::And | Operator::Or));
        Ok(match found {
            true => TreeNodeRecursion::Stop,
            false => TreeNodeRecursion::Continue,
        })
    });
    found
}

impl PartialEq for OwnColumns {
    fn eq(&self, other: &Self) -> bool {
        self.predicate.as_ref() == other.predicate.as_ref() && self.width == other.width
    }
}

impl Eq for OwnColumns {}

impl Hash for OwnColumns {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.predicate.hash(state);
    }
}

impl fmt::Display for OwnColumns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.predicate)
    }
}

impl PhysicalExpr for OwnColumns {
    fn data_type(&self, input_schema: &Schema) -> Result<DataType> {
        self.predicate.data_type(input_schema)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.predicate.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        // A batch of another width is not the input this was made for: given whole.
        match batch.num_columns() == self.width {
            true => self.narrowed.evaluate(&batch.project(&self.columns)?),
            false => self.predicate.evaluate(batch),
        }
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.predicate]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        match children.into_iter().next() {
            Some(c) => Ok(Arc::new(OwnColumns::new(c, self.width)?)),
            None => Ok(self),
        }
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.predicate.fmt_sql(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use datafusion::arrow::array::{
        ArrayRef, Int64Array, ListBuilder, StringArray, StringViewBuilder,
    };
    use datafusion::arrow::datatypes::Field;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::physical_plan::collect;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// `t(k, a, l, s)`: batches of 40 rows in two partitions, with nulls.
    fn context(rule: bool) -> SessionContext {
        let config = SessionConfig::new()
            .with_target_partitions(2)
            .with_option_extension(LannerOptions::default());
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if rule {
            state = state.with_physical_optimizer_rule(Arc::new(NarrowPredicates));
        }
        let ctx = SessionContext::new_with_state(state.build());
        let batch = |from: i64| {
            let rows = from..from + 40;
            let k: StringArray = rows
                .clone()
                .map(|i| (i % 13 != 0).then(|| ["x", "y", "z", "w"][(i % 4) as usize]))
                .collect();
            let a: Int64Array = rows.clone().map(|i| (i % 7 != 0).then_some(i)).collect();
            let mut l = ListBuilder::new(StringViewBuilder::new());
            for i in rows.clone() {
                for j in 0..i % 3 {
                    l.values().append_value(format!("{i}.{j}"));
                }
                l.append(i % 5 != 0);
            }
            let s: StringArray = rows.map(|i| Some(format!("/etc/file{}", i % 9))).collect();
            let columns: Vec<ArrayRef> =
                vec![Arc::new(k), Arc::new(a), Arc::new(l.finish()), Arc::new(s)];
            let fields: Vec<Field> = ["k", "a", "l", "s"]
                .iter()
                .zip(&columns)
                .map(|(name, c)| Field::new(*name, c.data_type().clone(), true))
                .collect();
            RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch")
        };
        let parts = vec![vec![batch(0), batch(40)], vec![batch(80), batch(120)]];
        let table = MemTable::try_new(parts[0][0].schema(), parts).expect("table");
        ctx.register_table("t", Arc::new(table)).expect("t");
        ctx
    }

    /// The query's rows, and whether a filter of its plan has a narrowed predicate.
    async fn run(ctx: &SessionContext, sql: &str) -> (String, bool) {
        let plan = ctx
            .sql(sql)
            .await
            .expect("plan")
            .create_physical_plan()
            .await
            .expect("physical plan");
        let mut narrowed = false;
        let _ = plan.apply(|p| {
            if let Some(f) = p.downcast_ref::<FilterExec>() {
                narrowed |= f.predicate().downcast_ref::<OwnColumns>().is_some();
            }
            Ok(TreeNodeRecursion::Continue)
        });
        let batches = collect(plan, ctx.task_ctx()).await.expect("rows");
        let rows = pretty_format_batches(&batches).expect("table").to_string();
        (rows, narrowed)
    }

    #[tokio::test]
    async fn and_and_or_see_their_columns_only_and_keep_the_same_rows() {
        let (with, without) = (context(true), context(false));
        let queries = [
            // Selective left sides: their right sides run on the rows they keep.
            (
                "SELECT k, a, l, s FROM t WHERE k = 'x' AND s LIKE '/etc/file1%' ORDER BY a",
                true,
            ),
            (
                "SELECT a, s, l FROM t WHERE a > 150 OR (k = 'y' AND a % 2 = 0) ORDER BY a",
                true,
            ),
            (
                "SELECT k, count(*), max(s) FROM t WHERE a IS NULL OR k IS NULL GROUP BY k ORDER BY k",
                true,
            ),
            // One comparison: nothing to narrow.
            ("SELECT a, l FROM t WHERE a < 10 ORDER BY a", false),
        ];
        for (sql, narrows) in queries {
            let (rows, narrowed) = run(&with, sql).await;
            let (expected, _) = run(&without, sql).await;
            assert_eq!(rows, expected, "{sql}");
            assert_eq!(narrowed, narrows, "{sql}");
            assert!(rows.lines().count() > 6, "{sql}: {rows}");
        }
    }

    #[test]
    fn a_batch_of_another_width_is_given_whole() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, true),
        ]));
        let a = Arc::new(Column::new("a", 0)) as Arc<dyn PhysicalExpr>;
        let predicate = Arc::new(BinaryExpr::new(
            Arc::clone(&a),
            Operator::And,
            Arc::clone(&a),
        )) as Arc<dyn PhysicalExpr>;
        let wrapped = OwnColumns::new(predicate, schema.fields().len()).expect("wrapped");
        let one = Arc::new(Schema::new(vec![Field::new("a", DataType::Boolean, true)]));
        let batch = RecordBatch::try_new(
            one,
            vec![Arc::new(datafusion::arrow::array::BooleanArray::from(
                vec![true, false],
            ))],
        )
        .expect("batch");
        let out = wrapped.evaluate(&batch).expect("evaluated");
        let out = out.into_array(2).expect("array");
        assert_eq!(out.len(), 2);
    }
}
