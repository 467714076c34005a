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
//! one `take`; a `ProjectionExec` of columns and such elements over a `FilterExec`
//! becomes one [`FilterElementsExec`]: the filter's predicate picks the rows, the
//! columns are filtered, and the elements are taken for the kept rows only, so no list
//! is copied and no element of a dropped row is computed (`outbound_resolved_2h` keeps
//! 1 row in 10 of its scan). On unless the session's `lanner.list_elements` is off.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBufferBuilder, GenericListArray, OffsetSizeTrait, RecordBatch,
    RecordBatchOptions, UInt64Array,
};
use datafusion::arrow::buffer::{NullBuffer, ScalarBuffer};
use datafusion::arrow::compute::{
    BatchCoalescer, FilterBuilder, FilterPredicate, prep_null_mask_filter, take,
};
use datafusion::arrow::datatypes::{DataType, FieldRef, Schema, SchemaRef};
use datafusion::common::cast::as_boolean_array;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::metrics::{
    BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet, RecordOutput,
};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PhysicalExpr,
    PlanProperties,
};
use futures::{StreamExt, stream};

use crate::narrow_predicate::OwnColumns;
use crate::one_input::only_input;
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

/// With `exprs` (columns and [`ListElement`]s, at least one) over a `FilterExec`: the
/// same rows and columns from one [`FilterElementsExec`].
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
    let mut elements = 0;
    for e in exprs {
        if e.expr.downcast_ref::<ListElement>().is_some() {
            elements += 1;
        } else if e.expr.downcast_ref::<Column>().is_none() {
            return Ok(None);
        }
    }
    if elements == 0 {
        return Ok(None);
    }
    // Filter output column `i` is input column `source[i]`.
    let below = filter.input();
    let source: Vec<usize> = match filter.projection() {
        Some(p) => p.to_vec(),
        None => (0..below.schema().fields().len()).collect(),
    };
    let mut over_input: Vec<ProjectionExpr> = vec![];
    for e in exprs {
        let expr = Arc::clone(&e.expr)
            .transform_up(|x| match x.downcast_ref::<Column>() {
                Some(c) => match source.get(c.index()) {
                    Some(i) => Ok(Transformed::yes(
                        Arc::new(Column::new(c.name(), *i)) as Arc<dyn PhysicalExpr>
                    )),
                    None => Err(DataFusionError::Internal(format!(
                        "{c} is not an output of the filter under it"
                    ))),
                },
                None => Ok(Transformed::no(x)),
            })?
            .data;
        over_input.push(ProjectionExpr::new(expr, e.alias.clone()));
    }
    let exec = FilterElementsExec::try_new(
        Arc::clone(below),
        Arc::clone(filter.predicate()),
        over_input,
        filter.batch_size(),
    )?;
    Ok(Some(Arc::new(exec)))
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
    fn take_from<O: OffsetSizeTrait>(&self, list: &GenericListArray<O>) -> Result<ArrayRef> {
        self.take_rows(list, 0..list.len())
    }

    /// The elements of `rows` of `list`, in their order.
    fn take_rows<O: OffsetSizeTrait>(
        &self,
        list: &GenericListArray<O>,
        rows: impl ExactSizeIterator<Item = usize>,
    ) -> Result<ArrayRef> {
        let offsets: &[O] = list.offsets();
        let nulls = list.nulls();
        let index = self.index;
        let mut positions = Vec::with_capacity(rows.len());
        let mut valid = BooleanBufferBuilder::new(rows.len());
        for row in rows {
            let (Some(start), Some(end)) = (offsets.get(row), offsets.get(row + 1)) else {
                return Err(DataFusionError::Internal(format!(
                    "{self}: row {row} of a list of {} rows",
                    list.len()
                )));
            };
            let (start, end) = (start.as_usize() as i64, end.as_usize() as i64);
            // A null when the list is null or too short; from the end when negative.
            let at = if index > 0 {
                start + index - 1
            } else {
                end + index
            };
            let found =
                index != 0 && at >= start && at < end && nulls.is_none_or(|n| n.is_valid(row));
            positions.push(if found { at as u64 } else { 0 });
            valid.append(found);
        }
        let indices = UInt64Array::new(
            ScalarBuffer::from(positions),
            Some(NullBuffer::new(valid.finish())).filter(|n| n.null_count() > 0),
        );
        Ok(take(list.values().as_ref(), &indices, None)?)
    }

    /// The elements of the rows `filter` keeps (`rows`, their positions in `batch`).
    fn evaluate_kept(
        &self,
        batch: &RecordBatch,
        filter: &FilterPredicate,
        rows: &[usize],
    ) -> Result<ArrayRef> {
        if let ColumnarValue::Array(list) = self.list.evaluate(batch)? {
            let kept = rows.iter().copied();
            let taken = match list.data_type() {
                DataType::List(_) => Some(self.take_rows(list.as_list::<i32>(), kept)?),
                DataType::LargeList(_) => Some(self.take_rows(list.as_list::<i64>(), kept)?),
                _ => None,
            };
            if let Some(t) = taken.filter(|t| t.data_type() == self.field.data_type()) {
                return Ok(t);
            }
        }
        let all = self
            .original
            .evaluate(batch)?
            .into_array(batch.num_rows())?;
        Ok(filter.filter(&all)?)
    }
}

/// A filter and the projection of columns and list elements over it, in one step
/// (module docs): the predicate picks the rows of each input batch, columns are
/// filtered, [`ListElement`]s taken for the kept rows only; output batches are
/// coalesced to the session's batch size, as `FilterExec` does.
#[derive(Debug)]
pub struct FilterElementsExec {
    input: Arc<dyn ExecutionPlan>,
    /// An [`OwnColumns`].
    predicate: Arc<dyn PhysicalExpr>,
    /// Over the input's columns: columns and list elements.
    exprs: Vec<ProjectionExpr>,
    schema: SchemaRef,
    batch_size: usize,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl FilterElementsExec {
    /// `exprs` of the rows of `input` where `predicate` holds.
    pub fn try_new(
        input: Arc<dyn ExecutionPlan>,
        predicate: Arc<dyn PhysicalExpr>,
        exprs: Vec<ProjectionExpr>,
        batch_size: usize,
    ) -> Result<Self> {
        let input_schema = input.schema();
        let fields = exprs
            .iter()
            .map(|e| {
                let field = e.expr.return_field(&input_schema)?;
                Ok(field.as_ref().clone().with_name(e.alias.clone()))
            })
            .collect::<Result<Vec<_>>>()?;
        let schema = Arc::new(Schema::new(fields));
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(input.output_partitioning().partition_count()),
            input.pipeline_behavior(),
            input.boundedness(),
        );
        // Evaluated on the columns it reads only: an `AND` copies the batch it is
        // given for its right side, and the lists must not be copied.
        let predicate = match predicate.downcast_ref::<OwnColumns>() {
            Some(_) => predicate,
            None => Arc::new(OwnColumns::new(predicate, input_schema.fields().len())?),
        };
        Ok(FilterElementsExec {
            input,
            predicate,
            exprs,
            schema,
            batch_size: batch_size.max(1),
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }
}

impl Kept {
    /// The kept rows of one batch, `None` when it keeps none.
    fn filter(&self, batch: &RecordBatch) -> Result<Option<RecordBatch>> {
        let mask = self
            .predicate
            .evaluate(batch)?
            .into_array(batch.num_rows())?;
        let mask = as_boolean_array(&mask)?;
        let mask = match mask.null_count() {
            0 => mask.clone(),
            _ => prep_null_mask_filter(mask),
        };
        let kept = mask.true_count();
        if kept == 0 {
            return Ok(None);
        }
        let filter = FilterBuilder::new(&mask).optimize().build();
        let rows: Vec<usize> = mask.values().set_indices().collect();
        let columns = self
            .exprs
            .iter()
            .map(|e| match e.expr.downcast_ref::<ListElement>() {
                Some(element) => element.evaluate_kept(batch, &filter, &rows),
                None => {
                    let column = e.expr.evaluate(batch)?.into_array(batch.num_rows())?;
                    Ok(filter.filter(&column)?)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(kept));
        Ok(Some(RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            columns,
            &options,
        )?))
    }
}

impl DisplayAs for FilterElementsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let exprs: Vec<String> = self
            .exprs
            .iter()
            .map(|e| format!("{} as {}", e.expr, e.alias))
            .collect();
        write!(
            f,
            "FilterElementsExec: predicate={}, expr=[{}]",
            self.predicate,
            exprs.join(", ")
        )
    }
}

impl ExecutionPlan for FilterElementsExec {
    fn name(&self) -> &str {
        "FilterElementsExec"
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
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        if f(&self.predicate)? == TreeNodeRecursion::Stop {
            return Ok(TreeNodeRecursion::Stop);
        }
        for e in &self.exprs {
            if f(&e.expr)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = only_input(children, "FilterElementsExec")?;
        Ok(Arc::new(FilterElementsExec::try_new(
            input,
            Arc::clone(&self.predicate),
            self.exprs.clone(),
            self.batch_size,
        )?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let state = Kept {
            input: self.input.execute(partition, context)?,
            predicate: Arc::clone(&self.predicate),
            exprs: self.exprs.clone(),
            schema: Arc::clone(&self.schema),
            coalescer: BatchCoalescer::new(Arc::clone(&self.schema), self.batch_size),
            metrics: BaselineMetrics::new(&self.metrics, partition),
            done: false,
        };
        let out = stream::try_unfold(state, |mut state| async move {
            loop {
                if let Some(batch) = state.coalescer.next_completed_batch() {
                    let batch = batch.record_output(&state.metrics);
                    return Ok(Some((batch, state)));
                }
                if state.done {
                    return Ok(None);
                }
                match state.input.next().await {
                    Some(batch) => {
                        let batch = batch?;
                        let timer = state.metrics.elapsed_compute().timer();
                        if let Some(kept) = state.filter(&batch)? {
                            state.coalescer.push_batch(kept)?;
                        }
                        timer.done();
                    }
                    None => {
                        state.coalescer.finish_buffered_batch()?;
                        state.done = true;
                    }
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            out,
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// A [`FilterElementsExec`] partition's stream state.
struct Kept {
    input: SendableRecordBatchStream,
    predicate: Arc<dyn PhysicalExpr>,
    exprs: Vec<ProjectionExpr>,
    schema: SchemaRef,
    coalescer: BatchCoalescer,
    metrics: BaselineMetrics,
    done: bool,
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

    /// `t(k, a, l)`: two partitions of batches of 50 rows; `l` a list of texts with
    /// nulls, empty lists and null elements.
    fn context(rule: bool) -> datafusion::prelude::SessionContext {
        use datafusion::datasource::MemTable;
        use datafusion::execution::session_state::SessionStateBuilder;
        use datafusion::prelude::{SessionConfig, SessionContext};

        let config = SessionConfig::new()
            .with_target_partitions(2)
            .with_batch_size(32)
            .with_option_extension(LannerOptions::default());
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if rule {
            state = state.with_physical_optimizer_rule(Arc::new(ListElements));
        }
        let ctx = SessionContext::new_with_state(state.build());
        let batch = |from: i64| {
            let keys: datafusion::arrow::array::StringArray = (from..from + 50)
                .map(|i| (i % 11 != 0).then(|| ["x", "y", "z"][(i % 3) as usize]))
                .collect();
            let numbers: datafusion::arrow::array::Int64Array = (from..from + 50)
                .map(|i| (i % 7 != 0).then_some(i))
                .collect();
            let mut lists = ListBuilder::new(StringViewBuilder::new());
            for i in from..from + 50 {
                for j in 0..i % 4 {
                    if (i + j) % 5 == 0 {
                        lists.values().append_null();
                    } else {
                        lists
                            .values()
                            .append_value(format!("answer {i}.{j} of a row"));
                    }
                }
                lists.append(i % 9 != 0);
            }
            let columns: Vec<ArrayRef> =
                vec![Arc::new(keys), Arc::new(numbers), Arc::new(lists.finish())];
            let fields: Vec<Field> = ["k", "a", "l"]
                .iter()
                .zip(&columns)
                .map(|(name, c)| Field::new(*name, c.data_type().clone(), true))
                .collect();
            RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("batch")
        };
        let parts = vec![
            vec![batch(0), batch(50), batch(100)],
            vec![batch(150), batch(200)],
        ];
        let table = MemTable::try_new(parts[0][0].schema(), parts).expect("table");
        ctx.register_table("t", Arc::new(table)).expect("t");
        ctx
    }

    #[tokio::test]
    async fn filters_with_list_elements_give_the_same_rows_in_one_step() {
        use datafusion::arrow::util::pretty::pretty_format_batches;
        use datafusion::physical_plan::{collect, displayable};

        let (with, without) = (context(true), context(false));
        // Each with the fewest rows it must keep.
        let queries = [
            // An `AND` (its right side evaluated on the rows its left side keeps).
            (
                "SELECT a, l[1] AS first, l[-1] AS last FROM t WHERE k = 'x' AND a > 20 \
                 ORDER BY a",
                50,
            ),
            (
                "SELECT k, l[2], a FROM t WHERE a IS NULL OR a % 5 = 0 ORDER BY a, k",
                60,
            ),
            // The predicate reads the list; a null predicate.
            (
                "SELECT k, l[1] FROM t WHERE array_length(l) > 1 AND k <> 'y' \
                 ORDER BY k, l[1]",
                50,
            ),
            ("SELECT a, l[3] FROM t WHERE k > 'x' ORDER BY a", 50),
            // No row kept.
            ("SELECT a, l[1] FROM t WHERE k = 'none'", 0),
        ];
        for (sql, fewest) in queries {
            let mut shown = vec![];
            for ctx in [&with, &without] {
                let plan = ctx
                    .sql(sql)
                    .await
                    .expect("plan")
                    .create_physical_plan()
                    .await
                    .expect("physical plan");
                let text = displayable(plan.as_ref()).indent(true).to_string();
                let batches = collect(plan, ctx.task_ctx()).await.expect("rows");
                let kept: usize = batches.iter().map(RecordBatch::num_rows).sum();
                assert!(kept >= fewest, "{sql}: {kept} rows");
                let rows = pretty_format_batches(&batches).expect("table").to_string();
                shown.push((rows, text));
            }
            assert_eq!(shown[0].0, shown[1].0, "{sql}\n{}", shown[0].1);
            assert!(
                shown[0].1.contains("FilterElementsExec"),
                "{sql}\n{}",
                shown[0].1
            );
            assert!(!shown[1].1.contains("FilterElementsExec"), "{}", shown[1].1);
        }
    }
}
