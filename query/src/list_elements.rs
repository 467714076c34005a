//! A physical optimizer rule: `list[i]` with a constant `i` (`dns_answers[1]`, an
//! ancestor in `proc_aexepath[2]`) is taken from the list's values by position, and,
//! when the plan computes it right above a filter, before that filter.
//!
//! DataFusion's `array_element` copies each row's element through arrow's generic
//! `MutableArrayData`, and a filter under it copies every kept row's whole list the
//! same way: in `outbound_resolved_2h` filtering the `dns_answers` lists took ~14 % of
//! the query's instructions (callgrind), to keep one answer of each. [`ListElement`]
//! finds each row's position in the values (a null when the list is null or too short,
//! counting from the end for a negative `i`, as `array_element` does) and takes them in
//! one `take`; a `ProjectionExec` of columns and such elements over a `FilterExec` whose
//! predicate does not read those lists is turned around, so the filter copies one
//! element per row instead of a list. On unless the session's `lanner.list_elements` is
//! off.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, OffsetSizeTrait, RecordBatch, UInt64Array,
};
use datafusion::arrow::buffer::{NullBuffer, ScalarBuffer};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, FieldRef, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};

use crate::dictionary_filter::pack;
use crate::prune::LannerOptions;

/// The rule (see the module docs).
#[derive(Debug, Default)]
pub struct ListElements;

impl PhysicalOptimizerRule for ListElements {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !LannerOptions::on(config, |o| o.list_elements) {
            return Ok(plan);
        }
        plan.transform_up(|p| {
            let Some(projection) = p.downcast_ref::<ProjectionExec>() else {
                return Ok(Transformed::no(p));
            };
            let schema = projection.input().schema();
            let exprs: Vec<ProjectionExpr> = projection
                .expr()
                .iter()
                .map(|e| {
                    let expr = Arc::clone(&e.expr)
                        .transform_up(|x| Ok(element(x, &schema)))?
                        .data;
                    Ok(ProjectionExpr::new(expr, e.alias.clone()))
                })
                .collect::<Result<_>>()?;
            let changed = exprs
                .iter()
                .zip(projection.expr())
                .any(|(new, old)| !Arc::ptr_eq(&new.expr, &old.expr));
            if let Some(swapped) = below_filter(&exprs, projection.input())? {
                return Ok(Transformed::yes(swapped));
            }
            if !changed {
                return Ok(Transformed::no(p));
            }
            let exec = ProjectionExec::try_new(exprs, Arc::clone(projection.input()))?;
            Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "lanner_list_elements"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `e` as a [`ListElement`] when it is `array_element(column, constant)`.
fn element(e: Arc<dyn PhysicalExpr>, schema: &Schema) -> Transformed<Arc<dyn PhysicalExpr>> {
    let Some(f) = e.downcast_ref::<ScalarFunctionExpr>() else {
        return Transformed::no(e);
    };
    let [list, index] = f.args() else {
        return Transformed::no(e);
    };
    let index = match index.downcast_ref::<Literal>().map(Literal::value) {
        Some(ScalarValue::Int64(Some(i))) => *i,
        _ => return Transformed::no(e),
    };
    if f.fun().name() != "array_element" || list.downcast_ref::<Column>().is_none() {
        return Transformed::no(e);
    }
    let Ok(field) = f.return_field(schema) else {
        return Transformed::no(e);
    };
    Transformed::yes(Arc::new(ListElement {
        list: Arc::clone(list),
        index,
        field,
        original: e,
    }))
}

/// With `exprs` (columns and [`ListElement`]s, at least one) over a `FilterExec` whose
/// predicate reads none of their lists: the same rows and columns, the elements
/// computed below the filter.
fn below_filter(
    exprs: &[ProjectionExpr],
    input: &Arc<dyn ExecutionPlan>,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(filter) = input.downcast_ref::<FilterExec>() else {
        return Ok(None);
    };
    if filter.fetch().is_some() {
        return Ok(None);
    }
    let mut lists = vec![];
    for e in exprs {
        if let Some(el) = e.expr.downcast_ref::<ListElement>() {
            lists.extend(el.list.downcast_ref::<Column>().map(Column::index));
        } else if e.expr.downcast_ref::<Column>().is_none() {
            return Ok(None);
        }
    }
    if lists.is_empty() {
        return Ok(None);
    }
    // Filter output column `i` is input column `source[i]`.
    let below = filter.input();
    let source: Vec<usize> = match filter.projection() {
        Some(p) => p.to_vec(),
        None => (0..below.schema().fields().len()).collect(),
    };
    let to_input =
        |c: &Column| -> Option<Column> { source.get(c.index()).map(|i| Column::new(c.name(), *i)) };
    let read_by_predicate = columns_of(filter.predicate());
    if lists
        .iter()
        .any(|l| source.get(*l).is_none_or(|i| read_by_predicate.contains(i)))
    {
        return Ok(None);
    }
    // The projection over the filter's input: `exprs`, then the columns the predicate
    // reads that they do not output.
    let mut below_exprs: Vec<ProjectionExpr> = vec![];
    for e in exprs {
        let expr = Arc::clone(&e.expr)
            .transform_up(|x| match x.downcast_ref::<Column>() {
                Some(c) => match to_input(c) {
                    Some(c) => Ok(Transformed::yes(Arc::new(c) as Arc<dyn PhysicalExpr>)),
                    None => Ok(Transformed::no(x)),
                },
                None => Ok(Transformed::no(x)),
            })?
            .data;
        below_exprs.push(ProjectionExpr::new(expr, e.alias.clone()));
    }
    let outputs = below_exprs.len();
    let schema = below.schema();
    let position = |input: usize, below_exprs: &mut Vec<ProjectionExpr>| -> usize {
        let found = below_exprs.iter().position(|e| {
            e.expr
                .downcast_ref::<Column>()
                .is_some_and(|c| c.index() == input)
        });
        found.unwrap_or_else(|| {
            let name = schema.field(input).name().clone();
            below_exprs.push(ProjectionExpr::new(
                Arc::new(Column::new(&name, input)),
                format!("__lanner_filtered_{input}"),
            ));
            below_exprs.len() - 1
        })
    };
    let mut remap = vec![];
    for input in &read_by_predicate {
        remap.push((*input, position(*input, &mut below_exprs)));
    }
    let aliases: Vec<String> = below_exprs.iter().map(|e| e.alias.clone()).collect();
    let predicate = Arc::clone(filter.predicate())
        .transform_up(|x| match x.downcast_ref::<Column>() {
            Some(c) => {
                let Some((_, at)) = remap.iter().find(|(i, _)| *i == c.index()) else {
                    return Ok(Transformed::no(x));
                };
                let column = Column::new(&aliases[*at], *at);
                Ok(Transformed::yes(Arc::new(column) as Arc<dyn PhysicalExpr>))
            }
            None => Ok(Transformed::no(x)),
        })?
        .data;
    let projected = ProjectionExec::try_new(below_exprs, Arc::clone(below))?;
    let exec = FilterExecBuilder::new(predicate, Arc::new(projected))
        .apply_projection(Some((0..outputs).collect()))?
        .with_default_selectivity(filter.default_selectivity())
        .with_batch_size(filter.batch_size())
        .build()?;
    Ok(Some(Arc::new(exec)))
}

/// The input columns an expression reads.
fn columns_of(e: &Arc<dyn PhysicalExpr>) -> Vec<usize> {
    let mut out = vec![];
    // The closure never fails.
    let _ = e.apply(|x| {
        if let Some(c) = x.downcast_ref::<Column>()
            && !out.contains(&c.index())
        {
            out.push(c.index());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out
}

/// `list[index]` of a list column, taken by position (module docs); `original` (the
/// `array_element` call it replaces) answers what it does not know.
#[derive(Debug)]
pub struct ListElement {
    list: Arc<dyn PhysicalExpr>,
    index: i64,
    field: FieldRef,
    original: Arc<dyn PhysicalExpr>,
}

impl PartialEq for ListElement {
    fn eq(&self, other: &Self) -> bool {
        self.original.as_ref() == other.original.as_ref()
    }
}

impl Eq for ListElement {}

impl Hash for ListElement {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.original.hash(state);
    }
}

impl fmt::Display for ListElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.list, self.index)
    }
}

impl PhysicalExpr for ListElement {
    fn data_type(&self, _input_schema: &Schema) -> Result<DataType> {
        Ok(self.field.data_type().clone())
    }

    fn nullable(&self, _input_schema: &Schema) -> Result<bool> {
        Ok(true)
    }

    fn return_field(&self, _input_schema: &Schema) -> Result<FieldRef> {
        Ok(Arc::clone(&self.field))
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        if let ColumnarValue::Array(list) = self.list.evaluate(batch)? {
            let taken = match list.data_type() {
                DataType::List(_) => Some(self.take_from(list.as_list::<i32>())?),
                DataType::LargeList(_) => Some(self.take_from(list.as_list::<i64>())?),
                _ => None,
            };
            if let Some(t) = taken.filter(|t| t.data_type() == self.field.data_type()) {
                return Ok(ColumnarValue::Array(t));
            }
        }
        self.original.evaluate(batch)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.list]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let Some(list) = children.into_iter().next() else {
            return Ok(self);
        };
        // The original call reads the same list: give it the new one too.
        let mut args: Vec<Arc<dyn PhysicalExpr>> =
            self.original.children().into_iter().cloned().collect();
        if let Some(first) = args.first_mut() {
            *first = Arc::clone(&list);
        }
        let original = Arc::clone(&self.original).with_new_children(args)?;
        Ok(Arc::new(ListElement {
            list,
            index: self.index,
            field: Arc::clone(&self.field),
            original,
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.original.fmt_sql(f)
    }
}

impl ListElement {
    /// Each row's element: its position in the values, then one `take`.
    fn take_from<O: OffsetSizeTrait>(
        &self,
        list: &datafusion::arrow::array::GenericListArray<O>,
    ) -> Result<ArrayRef> {
        let offsets: &[O] = list.offsets();
        let n = list.len();
        let (starts, ends) = (&offsets[..n], &offsets[1..=n]);
        let index = self.index;
        // The element's position in the values, if the row's list holds it.
        let position = |start: O, end: O| -> Option<u64> {
            let (start, end) = (start.as_usize() as i64, end.as_usize() as i64);
            let at = if index > 0 {
                start + index - 1
            } else {
                end + index
            };
            (index != 0 && at >= start && at < end).then_some(at as u64)
        };
        let found: Vec<Option<u64>> = starts
            .iter()
            .zip(ends)
            .map(|(s, e)| position(*s, *e))
            .collect();
        let positions: Vec<u64> = found.iter().map(|p| p.unwrap_or(0)).collect();
        let inside = pack(&found, |p| p.is_some());
        let valid = match list.nulls() {
            Some(nulls) => &inside & nulls.inner(),
            None => inside,
        };
        let indices = UInt64Array::new(
            ScalarBuffer::from(positions),
            Some(NullBuffer::new(valid)).filter(|n| n.null_count() > 0),
        );
        Ok(take(list.values().as_ref(), &indices, None)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ListBuilder, StringViewBuilder};
    use datafusion::arrow::datatypes::Field;
    use datafusion::functions_nested::extract::array_element_udf;
    use datafusion::physical_expr::expressions::{col, lit};

    #[test]
    fn takes_what_array_element_gives_for_any_index_and_nulls() {
        // [a, b, c], null, [], [null, d], [e]
        let mut lists = ListBuilder::new(StringViewBuilder::new());
        lists.values().append_value("a");
        lists.values().append_value("b");
        lists
            .values()
            .append_value("c a longer text than twelve bytes");
        lists.append(true);
        lists.append(false);
        lists.append(true);
        lists.values().append_null();
        lists.values().append_value("d");
        lists.append(true);
        lists.values().append_value("e");
        lists.append(true);
        let column: ArrayRef = Arc::new(lists.finish());
        let schema = Arc::new(Schema::new(vec![Field::new(
            "l",
            column.data_type().clone(),
            true,
        )]));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![column]).expect("batch");
        for index in -4i64..=4 {
            let call: Arc<dyn PhysicalExpr> = Arc::new(
                ScalarFunctionExpr::try_new(
                    array_element_udf(),
                    vec![col("l", &schema).expect("column"), lit(index)],
                    &schema,
                    Arc::new(ConfigOptions::default()),
                )
                .expect("array_element"),
            );
            let rewritten = element(Arc::clone(&call), &schema);
            assert!(rewritten.transformed, "{call}");
            let n = batch.num_rows();
            let ours = rewritten.data.evaluate(&batch).expect("ours");
            let theirs = call.evaluate(&batch).expect("theirs");
            assert_eq!(
                ours.into_array(n).expect("array").as_ref(),
                theirs.into_array(n).expect("array").as_ref(),
                "index {index}"
            );
        }
    }
}
