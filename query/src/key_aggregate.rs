//! A physical optimizer rule: the first phase of a `GROUP BY` whose keys are dictionary
//! columns (the archive's repeating text) or constant within each batch (the `dt` and
//! `hour` partitions) finds each row's group from the dictionary keys, not by hashing
//! the row's values.
//!
//! DataFusion aggregates in two phases: a partial aggregate per input partition, then a
//! final one over the partial results. The partial phase hashes every row's key values
//! (50M rows for `SELECT dt, hour, evt_type, count(*) FROM events GROUP BY 1, 2, 3`),
//! while the rows of a batch carry at most as many distinct dictionary keys as the
//! dictionary has values. [`KeyAggregateExec`] replaces that phase:
//!
//! 1. per batch, each row's group within the batch comes from its keys' codes (the
//!    dictionary key, or nothing for a column constant in the batch), combined into
//!    one integer and looked up in a table indexed by it;
//! 2. one row per group of the batch has its key values computed (the group
//!    expressions, on those rows only) and looked up among the partition's groups
//!    by value;
//! 3. the aggregates are DataFusion's own accumulators, updated with the partition's
//!    group of every row, so their states are exactly what the partial phase
//!    produces, and the final phase is unchanged.
//!
//! A batch where a key column is neither (a plain column that varies) is grouped by
//! that column's values cast to a dictionary: slower, still correct. The groups kept
//! count against the session's memory pool; past it, they are handed to the final
//! phase early and counting starts again, as a partial aggregate may do. On unless the
//! session's `lanner.dictionary_aggregates` is off.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayData, ArrayRef, AsArray, BooleanArray, Scalar, UInt32Array,
};
use datafusion::arrow::compute::kernels::cmp::eq;
use datafusion::arrow::compute::{can_cast_types, cast, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Int32Type, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::config::ConfigOptions;
use datafusion::common::hash_map::EntryRef;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{HashMap, Result, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::{CastExpr, Column};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet, RecordOutput,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, InputOrderMode,
    PlanProperties, ReplaceChildrenOptions,
};
use futures::{StreamExt, stream};

use crate::prune::LannerOptions;

/// The rule (see the module docs). `constant_columns` names the columns that are
/// constant within a batch (the archive's partition columns).
#[derive(Debug)]
pub struct DictionaryKeyAggregation {
    constant_columns: Vec<String>,
}

impl DictionaryKeyAggregation {
    /// The rule, for tables whose `constant_columns` hold one value per file.
    pub fn new(constant_columns: Vec<String>) -> Self {
        DictionaryKeyAggregation { constant_columns }
    }
}

impl PhysicalOptimizerRule for DictionaryKeyAggregation {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let on = LannerOptions::on(config, |o| o.dictionary_aggregates);
        if !on {
            return Ok(plan);
        }
        plan.transform_up(|p| {
            match p
                .downcast_ref::<AggregateExec>()
                .and_then(|agg| KeyAggregateExec::try_new(&p, agg, &self.constant_columns))
            {
                Some(exec) => Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>)),
                None => Ok(Transformed::no(p)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "lanner_dictionary_key_aggregation"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The column a group key reads: the key itself, or a cast of it (the logical rule
/// [`crate::group_keys`] casts dictionary keys to `Utf8View`).
fn key_column(expr: &Arc<dyn PhysicalExpr>) -> Option<&Column> {
    if let Some(c) = expr.downcast_ref::<Column>() {
        return Some(c);
    }
    expr.downcast_ref::<CastExpr>()
        .and_then(|c| c.expr().downcast_ref::<Column>())
}

fn is_dictionary(t: &DataType) -> bool {
    matches!(t, DataType::Dictionary(..))
}

/// A plain key column's values can be grouped through a dictionary cast.
fn codable(t: &DataType) -> bool {
    is_dictionary(t)
        || can_cast_types(
            t,
            &DataType::Dictionary(Box::new(DataType::UInt32), Box::new(t.clone())),
        )
}

/// The partial phase of an aggregate, grouping by dictionary keys (module docs).
#[derive(Debug)]
pub struct KeyAggregateExec {
    /// The `AggregateExec` replaced: its expressions, schema and properties.
    aggregate: Arc<dyn ExecutionPlan>,
    input: Arc<dyn ExecutionPlan>,
    group_exprs: Vec<Arc<dyn PhysicalExpr>>,
    /// Input column of each group key.
    key_columns: Vec<usize>,
    aggr_exprs: Vec<Arc<AggregateFunctionExpr>>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    /// Sort fields of the group keys' types, for their row format.
    key_fields: Vec<SortField>,
    constant_columns: Vec<String>,
    schema: SchemaRef,
    metrics: ExecutionPlanMetricsSet,
}

impl KeyAggregateExec {
    /// Wraps `agg` (which is `plan`) when it is a partial aggregate this exec can run:
    /// single grouping set of dictionary or constant keys, no order-sensitive, distinct
    /// or limited aggregation, unordered output.
    fn try_new(
        plan: &Arc<dyn ExecutionPlan>,
        agg: &AggregateExec,
        constant_columns: &[String],
    ) -> Option<KeyAggregateExec> {
        let eligible = *agg.mode() == AggregateMode::Partial
            && agg.group_expr().is_single()
            && !agg.group_expr().expr().is_empty()
            && agg.limit_options().is_none()
            && *agg.input_order_mode() == InputOrderMode::Linear
            && agg.dynamic_expressions_produced().is_empty()
            && agg.aggr_expr().iter().all(|a| {
                !a.is_distinct() && a.order_bys().is_empty() && a.groups_accumulator_supported()
            });
        if !eligible {
            return None;
        }
        let input_schema = agg.input().schema();
        let mut key_columns = Vec::new();
        let mut key_fields = Vec::new();
        let mut any_dictionary = false;
        for (expr, _) in agg.group_expr().expr() {
            let column = key_column(expr)?;
            let field = input_schema.fields().get(column.index())?;
            let t = field.data_type();
            let constant = constant_columns.iter().any(|c| c == column.name());
            if !(is_dictionary(t) || constant) || !codable(t) {
                return None;
            }
            any_dictionary |= is_dictionary(t);
            key_columns.push(column.index());
            key_fields.push(SortField::new(expr.data_type(&input_schema).ok()?));
        }
        if !any_dictionary {
            return None;
        }
        Some(KeyAggregateExec {
            aggregate: Arc::clone(plan),
            input: Arc::clone(agg.input()),
            group_exprs: agg
                .group_expr()
                .expr()
                .iter()
                .map(|(e, _)| Arc::clone(e))
                .collect(),
            key_columns,
            aggr_exprs: agg.aggr_expr().to_vec(),
            filters: agg.filter_expr().to_vec(),
            key_fields,
            constant_columns: constant_columns.to_vec(),
            schema: agg.schema(),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }
}

impl DisplayAs for KeyAggregateExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self.group_exprs.iter().map(|e| e.to_string()).collect();
        let aggregates: Vec<&str> = self.aggr_exprs.iter().map(|a| a.name()).collect();
        write!(
            f,
            "KeyAggregateExec: gby=[{}], aggr=[{}]",
            keys.join(", "),
            aggregates.join(", ")
        )
    }
}

impl ExecutionPlan for KeyAggregateExec {
    fn name(&self) -> &str {
        "KeyAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.aggregate.properties()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.aggregate.apply_expressions(f)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let aggregate = Arc::clone(&self.aggregate).replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )?;
        let exec = aggregate
            .downcast_ref::<AggregateExec>()
            .and_then(|agg| KeyAggregateExec::try_new(&aggregate, agg, &self.constant_columns));
        match exec {
            Some(exec) => Ok(Arc::new(exec)),
            None => Ok(aggregate),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, Arc::clone(&context))?;
        let accumulators = self
            .aggr_exprs
            .iter()
            .map(|a| a.create_groups_accumulator())
            .collect::<Result<Vec<_>>>()?;
        let groups = Groups {
            keys: Keys::default(),
            converter: RowConverter::new(self.key_fields.clone())?,
            index: HashMap::default(),
            key_bytes: 0,
            accumulators,
            reservation: MemoryConsumer::new(format!("KeyAggregateExec[{partition}]"))
                .register(context.memory_pool()),
        };
        let state = State {
            input: Some(input),
            groups,
            spec: Spec {
                group_exprs: self.group_exprs.clone(),
                key_columns: self.key_columns.clone(),
                args: self.aggr_exprs.iter().map(|a| a.expressions()).collect(),
                filters: self.filters.clone(),
                schema: Arc::clone(&self.schema),
                batch_size: context.session_config().batch_size().max(1),
            },
            pending: Vec::new(),
            metrics: BaselineMetrics::new(&self.metrics, partition),
        };
        let s = stream::unfold(state, |mut st| async move {
            loop {
                if let Some(batch) = st.pending.pop() {
                    let batch = batch.record_output(&st.metrics);
                    return Some((Ok(batch), st));
                }
                let input = st.input.as_mut()?;
                let next = input.next().await;
                let timer = st.metrics.elapsed_compute().timer();
                let step = match next {
                    Some(Ok(batch)) => st.groups.update(&st.spec, &batch).and_then(|full| {
                        if full {
                            st.groups.emit(&st.spec)
                        } else {
                            Ok(Vec::new())
                        }
                    }),
                    Some(Err(e)) => Err(e),
                    None => {
                        st.input = None;
                        st.groups.emit(&st.spec)
                    }
                };
                timer.done();
                match step {
                    Ok(mut batches) => {
                        // Popped from the end: keep their order.
                        batches.reverse();
                        st.pending = batches;
                    }
                    Err(e) => {
                        st.input = None;
                        return Some((Err(e), st));
                    }
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), s)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// What a stream of the exec evaluates.
struct Spec {
    group_exprs: Vec<Arc<dyn PhysicalExpr>>,
    key_columns: Vec<usize>,
    args: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    schema: SchemaRef,
    batch_size: usize,
}

struct State {
    input: Option<SendableRecordBatchStream>,
    groups: Groups,
    spec: Spec,
    /// Output batches not handed out yet, last first.
    pending: Vec<RecordBatch>,
    metrics: BaselineMetrics,
}

/// Where each row of a batch goes: its key code (the key columns' codes combined),
/// looked up in a memo of the partition's group for each code. The memo holds while
/// the batches share their dictionaries (the Parquet reader hands out one dictionary
/// per column chunk) and their constant values; codes not in it are new groups of the
/// batch, whose values are looked up by [`Groups`].
#[derive(Default)]
struct Keys {
    /// Each row's combined key code.
    codes: Vec<u64>,
    /// The key columns' dictionaries and constants the memo was made for; `None` when
    /// a column's codes hold for one batch only.
    identity: Option<Vec<Identity>>,
    /// Code to the partition's group + 1 (0: not known; `PENDING | i`: the `i`th new
    /// code of this batch), dense while the codes are small.
    dense: Vec<u32>,
    /// The same for large codes.
    sparse: HashMap<u64, u32>,
    /// Codes set in `dense`, to clear them.
    touched: Vec<u64>,
    /// One row of each new code of the batch, and its code.
    representatives: Vec<u32>,
    representative_codes: Vec<u64>,
    /// Each row's group: the partition's group, or `NEW | i` for the `i`th new code.
    groups: Vec<usize>,
    /// Whether codes are looked up in `dense`.
    use_dense: bool,
}

/// Marks a row whose group is the `i`th new code of the batch.
const NEW: usize = 1 << (usize::BITS - 1);

/// Marks a memo entry of a code first met in this batch.
const PENDING: u32 = 1 << 31;

/// Codes past this are looked up in a hash table rather than a dense one.
const DENSE_CODES: u64 = 1 << 20;

/// What a key column's codes stand for: a dictionary's values (the same buffers: the
/// Parquet reader builds a new array per batch over its column chunk's dictionary;
/// they are held, so their memory is not reused by another while compared), or a
/// constant.
#[derive(Clone, Debug)]
enum Identity {
    Dictionary(ArrayData),
    Constant(ScalarValue),
}

impl PartialEq for Identity {
    fn eq(&self, other: &Identity) -> bool {
        match (self, other) {
            (Identity::Dictionary(a), Identity::Dictionary(b)) => a.ptr_eq(b),
            (Identity::Constant(a), Identity::Constant(b)) => a == b,
            _ => false,
        }
    }
}

/// One key column's codes in a batch.
enum Codes {
    /// The same value in every row.
    Constant(ScalarValue),
    /// Each row's code (added into the batch's codes, see [`add_codes`]), how many
    /// codes there can be, and what they stand for (`None`: this batch only).
    Each(u64, Option<Identity>),
}

/// Adds `stride` times each row's code of `array` into `acc` (when `stride` is set):
/// a dictionary's key, its nulls as one more code; nothing for a column with one
/// value; else the keys of its values cast to a dictionary. Done in place, one pass
/// per column, without a vector of the column's codes. The sums wrap where the
/// combinations outnumber a `u64`; the caller then leaves the codes unused.
fn add_codes(array: &ArrayRef, stride: Option<u64>, acc: &mut [u64]) -> Result<Codes> {
    if let Some(dict) = array.as_any_dictionary_opt() {
        let values = dict.values();
        if values.is_empty() {
            // No values: every row is null.
            return Ok(Codes::Constant(ScalarValue::try_from(array.data_type())?));
        }
        let null = values.len() as u64;
        if let Some(s) = stride {
            if let Some(typed) = array.as_dictionary_opt::<Int32Type>() {
                // The archive's dictionaries: keys read as they are.
                let keys = typed.keys().values();
                match array.nulls() {
                    None => {
                        for (a, &k) in acc.iter_mut().zip(keys.iter()) {
                            *a = a.wrapping_add((k as u32 as u64).min(null).wrapping_mul(s));
                        }
                    }
                    Some(nulls) => {
                        for ((a, &k), valid) in acc.iter_mut().zip(keys.iter()).zip(nulls.iter()) {
                            let code = if valid {
                                (k as u32 as u64).min(null)
                            } else {
                                null
                            };
                            *a = a.wrapping_add(code.wrapping_mul(s));
                        }
                    }
                }
            } else {
                let keys = dict.normalized_keys();
                for (i, (a, &k)) in acc.iter_mut().zip(keys.iter()).enumerate() {
                    let code = if array.is_valid(i) { k as u64 } else { null };
                    *a = a.wrapping_add(code.wrapping_mul(s));
                }
            }
        }
        let identity = Identity::Dictionary(values.to_data());
        return Ok(Codes::Each(null + 1, Some(identity)));
    }
    if is_constant(array)? {
        return Ok(Codes::Constant(ScalarValue::try_from_array(array, 0)?));
    }
    let t = array.data_type().clone();
    let as_dictionary = cast(
        array,
        &DataType::Dictionary(Box::new(DataType::UInt32), Box::new(t)),
    )?;
    match add_codes(&as_dictionary, stride, acc)? {
        Codes::Each(cardinality, _) => Ok(Codes::Each(cardinality, None)),
        constant => Ok(constant),
    }
}

fn is_constant(array: &ArrayRef) -> Result<bool> {
    let n = array.len();
    if n <= 1 || array.null_count() == n {
        return Ok(true);
    }
    if array.null_count() > 0 {
        return Ok(false);
    }
    let first = Scalar::new(array.slice(0, 1));
    Ok(eq(array, &first)?.true_count() == n)
}

impl Keys {
    /// Fills `groups` for `batch`, and `representatives` with a row of each code the
    /// memo does not know.
    fn assign(&mut self, batch: &RecordBatch, key_columns: &[usize]) -> Result<()> {
        let rows = batch.num_rows();
        self.codes.clear();
        self.codes.resize(rows, 0);
        let mut stride: Option<u64> = Some(1);
        let mut identity = Some(Vec::with_capacity(key_columns.len()));
        for &c in key_columns {
            let array = batch.columns().get(c).ok_or_else(|| {
                DataFusionError::Internal(format!("KeyAggregateExec: no column {c}"))
            })?;
            let column_identity = match add_codes(array, stride, &mut self.codes)? {
                Codes::Constant(value) => Some(Identity::Constant(value)),
                Codes::Each(cardinality, id) => {
                    stride = stride.and_then(|s| s.checked_mul(cardinality));
                    id
                }
            };
            identity = identity.zip(column_identity).map(|(mut v, i)| {
                v.push(i);
                v
            });
        }
        self.representatives.clear();
        self.representative_codes.clear();
        self.groups.clear();
        let Some(total) = stride else {
            // Too many combinations to number: every row is a new group of the batch
            // (found among the partition's by its values).
            self.forget();
            self.identity = None;
            self.groups.extend((0..rows).map(|r| NEW | r));
            self.representatives.extend(0..rows as u32);
            self.representative_codes
                .extend(std::iter::repeat_n(u64::MAX, rows));
            return Ok(());
        };
        let use_dense = total <= DENSE_CODES;
        if identity.is_none() || identity != self.identity || use_dense != self.use_dense {
            self.forget();
            self.identity = identity;
            self.use_dense = use_dense;
            if use_dense && (self.dense.len() as u64) < total {
                self.dense.resize(total as usize, 0);
            }
        }
        for (row, &code) in self.codes.iter().enumerate() {
            let entry = if self.use_dense {
                match self.dense.get_mut(code as usize) {
                    Some(entry) => entry,
                    None => continue,
                }
            } else {
                self.sparse.entry(code).or_insert(0)
            };
            let group = match *entry {
                0 => {
                    let slot = self.representatives.len();
                    *entry = PENDING | slot as u32;
                    if self.use_dense {
                        self.touched.push(code);
                    }
                    self.representatives.push(row as u32);
                    self.representative_codes.push(code);
                    NEW | slot
                }
                pending if pending & PENDING != 0 => NEW | (pending & !PENDING) as usize,
                known => known as usize - 1,
            };
            self.groups.push(group);
        }
        Ok(())
    }

    /// Records the partition's group of each new code (`global`, in `representatives`
    /// order) and fills in the rows that had one.
    fn resolve(&mut self, global: &[usize]) {
        for (&code, &group) in self.representative_codes.iter().zip(global) {
            if code == u64::MAX {
                continue;
            }
            // Past 2^31 groups, the code is looked up by value each batch.
            let known = u32::try_from(group + 1).ok().filter(|k| k & PENDING == 0);
            let entry = if self.use_dense {
                self.dense.get_mut(code as usize)
            } else {
                self.sparse.get_mut(&code)
            };
            if let Some(entry) = entry {
                *entry = known.unwrap_or(0);
            }
        }
        for g in &mut self.groups {
            if *g & NEW != 0 {
                *g = global.get(*g & !NEW).copied().unwrap_or(0);
            }
        }
    }

    /// Empties the memo (the groups it points to were handed on, or the codes changed
    /// meaning).
    fn forget(&mut self) {
        for code in self.touched.drain(..) {
            if let Some(slot) = self.dense.get_mut(code as usize) {
                *slot = 0;
            }
        }
        self.sparse.clear();
    }

    fn size(&self) -> usize {
        (self.codes.capacity() + self.touched.capacity() + self.representative_codes.capacity()) * 8
            + self.groups.capacity() * 8
            + (self.dense.capacity() + self.representatives.capacity()) * 4
            + self.sparse.capacity() * 16
    }
}

/// The groups of one partition and their aggregates.
struct Groups {
    keys: Keys,
    converter: RowConverter,
    /// Each group's key values (row format) and its index.
    index: HashMap<Vec<u8>, usize>,
    /// Bytes held by `index`, roughly.
    key_bytes: usize,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    reservation: MemoryReservation,
}

impl Groups {
    /// Adds `batch`; true when the groups no longer fit the memory pool.
    fn update(&mut self, spec: &Spec, batch: &RecordBatch) -> Result<bool> {
        if batch.num_rows() == 0 {
            return Ok(false);
        }
        self.keys.assign(batch, &spec.key_columns)?;
        // The key values of one row per new code, found among the partition's groups.
        let mut global = Vec::with_capacity(self.keys.representatives.len());
        if !self.keys.representatives.is_empty() {
            let picked = if self.keys.representatives.len() == batch.num_rows() {
                batch.clone()
            } else {
                let idx = UInt32Array::from(self.keys.representatives.clone());
                take_record_batch(batch, &idx)?
            };
            let key_values = spec
                .group_exprs
                .iter()
                .map(|e| {
                    e.evaluate(&picked)
                        .and_then(|v| v.into_array(picked.num_rows()))
                })
                .collect::<Result<Vec<_>>>()?;
            let rows = self.converter.convert_columns(&key_values)?;
            for row in rows.iter() {
                let next = self.index.len();
                let id = match self.index.entry_ref(row.as_ref()) {
                    EntryRef::Occupied(e) => *e.get(),
                    EntryRef::Vacant(v) => {
                        self.key_bytes += row.as_ref().len() + 32;
                        v.insert(next);
                        next
                    }
                };
                global.push(id);
            }
        }
        self.keys.resolve(&global);
        let total = self.index.len();
        for ((acc, args), filter) in self
            .accumulators
            .iter_mut()
            .zip(&spec.args)
            .zip(&spec.filters)
        {
            let values = args
                .iter()
                .map(|e| {
                    e.evaluate(batch)
                        .and_then(|v| v.into_array(batch.num_rows()))
                })
                .collect::<Result<Vec<_>>>()?;
            let filter = match filter {
                Some(f) => Some(f.evaluate(batch)?.into_array(batch.num_rows())?),
                None => None,
            };
            let filter: Option<&BooleanArray> = filter.as_ref().and_then(|f| f.as_boolean_opt());
            acc.update_batch(&values, &self.keys.groups, filter, total)?;
        }
        Ok(self.reservation.try_resize(self.size()).is_err())
    }

    fn size(&self) -> usize {
        self.key_bytes
            + self.keys.size()
            + self.accumulators.iter().map(|a| a.size()).sum::<usize>()
    }

    /// Hands out every group's keys and aggregate states, and starts again.
    fn emit(&mut self, spec: &Spec) -> Result<Vec<RecordBatch>> {
        if self.index.is_empty() {
            return Ok(Vec::new());
        }
        let mut groups: Vec<(usize, &[u8])> = self.index.iter().map(|(k, &v)| (v, &**k)).collect();
        groups.sort_unstable_by_key(|g| g.0);
        let parser = self.converter.parser();
        let keys = self
            .converter
            .convert_rows(groups.iter().map(|g| parser.parse(g.1)))?;
        let mut columns = Vec::with_capacity(spec.schema.fields().len());
        for (array, field) in keys.into_iter().zip(spec.schema.fields()) {
            columns.push(if array.data_type() == field.data_type() {
                array
            } else {
                cast(&array, field.data_type())?
            });
        }
        for acc in &mut self.accumulators {
            columns.extend(acc.state(EmitTo::All)?);
        }
        self.index.clear();
        self.key_bytes = 0;
        self.keys.forget();
        let batch = RecordBatch::try_new(Arc::clone(&spec.schema), columns)?;
        self.reservation.try_resize(self.size()).ok();
        let n = batch.num_rows();
        Ok((0..n)
            .step_by(spec.batch_size)
            .map(|start| batch.slice(start, spec.batch_size.min(n - start)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use datafusion::arrow::array::{
        Date32Array, DictionaryArray, Int32Array, Int64Array, StringArray, TimestampNanosecondArray,
    };
    use datafusion::arrow::datatypes::{Field, Int32Type, Schema, UInt16Type};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use crate::group_keys::DictionaryGroupKeys;

    /// A session over `partitions`, with or without the rule (and the logical rule
    /// that casts dictionary keys to text, as lanner-query runs).
    fn context(
        partitions: Vec<Vec<RecordBatch>>,
        rule: bool,
        text_keys: bool,
        memory: Option<usize>,
    ) -> SessionContext {
        let config = SessionConfig::new()
            .with_target_partitions(2)
            .with_batch_size(64)
            .with_option_extension(LannerOptions::default());
        let mut runtime = RuntimeEnvBuilder::new();
        if let Some(bytes) = memory {
            runtime = runtime.with_memory_limit(bytes, 1.0);
        }
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime.build_arc().unwrap())
            .with_default_features();
        if text_keys {
            state = state.with_optimizer_rule(Arc::new(DictionaryGroupKeys));
        }
        if rule {
            state =
                state.with_physical_optimizer_rule(Arc::new(DictionaryKeyAggregation::new(vec![
                    "dt".into(),
                    "hour".into(),
                ])));
        }
        let ctx = SessionContext::new_with_state(state.build());
        let schema = partitions[0][0].schema();
        let table = MemTable::try_new(schema, partitions).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        ctx
    }

    /// A deterministic pseudo-random sequence.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    /// The values of a dictionary: `values` rotated by `shift`, with a duplicate.
    fn dictionary_values(values: &[&str], shift: usize) -> ArrayRef {
        let mut dict: Vec<&str> = values.to_vec();
        dict.rotate_left(shift % values.len());
        dict.push(dict[0]);
        Arc::new(StringArray::from(dict))
    }

    /// A dictionary column over `values` (`None` where the pick is past the end).
    fn dictionary_over(values: &ArrayRef, picks: &[u64]) -> DictionaryArray<Int32Type> {
        let keys: Int32Array = picks
            .iter()
            .map(|&p| (p < values.len() as u64).then_some(p as i32))
            .collect();
        DictionaryArray::try_new(keys, Arc::clone(values)).unwrap()
    }

    /// A dictionary column over `values` reordered by `shift`, with a duplicate value.
    fn dictionary(values: &[&str], picks: &[u64], shift: usize) -> DictionaryArray<Int32Type> {
        dictionary_over(&dictionary_values(values, shift), picks)
    }

    /// Batches of `rows` rows: `dt` and `hour` constant per batch unless `varying`,
    /// `name` and `image` dictionaries with nulls (two batches in a row share the
    /// dictionary of `name`, as batches of one Parquet column chunk do, while `hour`
    /// changes), `n` with nulls, `ts`.
    fn batches(seed: u64, count: usize, rows: usize, varying: bool) -> Vec<RecordBatch> {
        let names = ["sh", "bash", "cat", "curl", "nginx", "python3", "sleep"];
        let images = ["alpine", "nginx:1.25", "redis"];
        let mut r = Lcg(seed);
        let mut shared = dictionary_values(&names, 0);
        (0..count)
            .map(|b| {
                if b % 2 == 0 {
                    shared = dictionary_values(&names, b);
                }
                let day = 20_000 + (b as i32 % 2);
                let dt: Date32Array = (0..rows)
                    .map(|_| Some(if varying { day + r.next(2) as i32 } else { day }))
                    .collect();
                let hour = Int32Array::from(vec![(b % 3) as i32; rows]);
                let picks: Vec<u64> = (0..rows).map(|_| r.next(names.len() as u64 + 2)).collect();
                let name = dictionary_over(&shared, &picks);
                let picks: Vec<u64> = (0..rows).map(|_| r.next(images.len() as u64 + 1)).collect();
                let image = dictionary(&images, &picks, b + 1);
                let image_keys: Vec<Option<u16>> =
                    image.keys().iter().map(|k| k.map(|k| k as u16)).collect();
                let image = DictionaryArray::<UInt16Type>::try_new(
                    image_keys.into_iter().collect(),
                    Arc::clone(image.values()),
                )
                .unwrap();
                let n: Int64Array = (0..rows)
                    .map(|_| {
                        let v = r.next(40) as i64;
                        (v % 7 != 0).then_some(v - 10)
                    })
                    .collect();
                let ts: TimestampNanosecondArray =
                    (0..rows).map(|_| Some(r.next(1_000_000) as i64)).collect();
                let schema = Schema::new(vec![
                    Field::new("dt", DataType::Date32, true),
                    Field::new("hour", DataType::Int32, false),
                    Field::new("name", name.data_type().clone(), true),
                    Field::new("image", image.data_type().clone(), true),
                    Field::new("n", DataType::Int64, true),
                    Field::new("ts", ts.data_type().clone(), true),
                ]);
                RecordBatch::try_new(
                    Arc::new(schema),
                    vec![
                        Arc::new(dt),
                        Arc::new(hour),
                        Arc::new(name),
                        Arc::new(image),
                        Arc::new(n),
                        Arc::new(ts),
                    ],
                )
                .unwrap()
            })
            .collect()
    }

    async fn rows(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        pretty_format_batches(&batches).unwrap().to_string()
    }

    const QUERIES: &[&str] = &[
        "SELECT dt, hour, name, count(*) AS c FROM t GROUP BY dt, hour, name \
         ORDER BY dt, hour, name",
        "SELECT name, image, count(*) AS c, count(n) AS cn, sum(n) AS s, min(ts) AS lo, \
         max(ts) AS hi, avg(n) AS a FROM t GROUP BY name, image ORDER BY name, image",
        "SELECT name, count(*) FILTER (WHERE n > 10) AS big, min(n) AS lo FROM t \
         GROUP BY name ORDER BY name",
        "SELECT DISTINCT image, name FROM t ORDER BY image, name",
        "SELECT name, count(DISTINCT image) AS images FROM t GROUP BY name ORDER BY name",
        "SELECT hour, image, count(*) AS c FROM t WHERE name = 'sh' GROUP BY hour, image \
         HAVING count(*) > 1 ORDER BY hour, image",
    ];

    fn partitions(varying: bool) -> Vec<Vec<RecordBatch>> {
        vec![batches(1, 5, 200, varying), batches(2, 4, 150, varying)]
    }

    #[tokio::test]
    async fn same_answers_as_datafusion() {
        for text_keys in [true, false] {
            for varying in [false, true] {
                let with = context(partitions(varying), true, text_keys, None);
                let without = context(partitions(varying), false, text_keys, None);
                for sql in QUERIES {
                    assert_eq!(
                        rows(&with, sql).await,
                        rows(&without, sql).await,
                        "{sql} (text keys {text_keys}, dt varying {varying})"
                    );
                }
            }
        }
    }

    async fn plan(ctx: &SessionContext, sql: &str) -> String {
        rows(ctx, &format!("EXPLAIN ANALYZE {sql}")).await
    }

    #[tokio::test]
    async fn runs_where_the_keys_are_dictionaries_or_constant() {
        let ctx = context(partitions(false), true, true, None);
        let text = plan(&ctx, QUERIES[0]).await;
        assert!(text.contains("KeyAggregateExec: gby=[dt@"), "{text}");
        // Its metrics count what it handed on.
        let line = text
            .lines()
            .find(|l| l.contains("KeyAggregateExec"))
            .unwrap_or("");
        let batches = line
            .split("output_batches=")
            .nth(1)
            .and_then(|m| m.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<usize>().ok());
        assert!(batches.is_some_and(|n| n > 0), "{line}");
        // A plain key that is not a partition column: DataFusion's own.
        let text = plan(&ctx, "SELECT n, count(*) FROM t GROUP BY n").await;
        assert!(!text.contains("KeyAggregateExec"), "{text}");
        let text = plan(&ctx, "SELECT name, n, count(*) FROM t GROUP BY name, n").await;
        assert!(!text.contains("KeyAggregateExec"), "{text}");
        // Off by the session setting.
        ctx.sql("SET lanner.dictionary_aggregates = false")
            .await
            .unwrap();
        let text = plan(&ctx, QUERIES[0]).await;
        assert!(!text.contains("KeyAggregateExec"), "{text}");
    }

    /// Key combinations past the dense table (hash table) and past 64 bits (every
    /// row its own group of the batch).
    #[tokio::test]
    async fn many_key_combinations() {
        for (columns, values) in [(3usize, 200usize), (4, 70_000)] {
            let names: Vec<String> = (0..values).map(|i| format!("v{i}")).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let mut r = Lcg(columns as u64);
            let make = |r: &mut Lcg, shift: usize| {
                let mut fields = Vec::new();
                let mut arrays: Vec<ArrayRef> = Vec::new();
                for c in 0..columns {
                    // Few distinct picks, so groups repeat.
                    let picks: Vec<u64> = (0..300).map(|_| r.next(5) * 13 + c as u64).collect();
                    let a = dictionary(&names, &picks, shift + c);
                    fields.push(Field::new(format!("k{c}"), a.data_type().clone(), true));
                    arrays.push(Arc::new(a));
                }
                RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
            };
            let parts = vec![
                vec![make(&mut r, 0), make(&mut r, 7)],
                vec![make(&mut r, 3)],
            ];
            let keys: Vec<String> = (0..columns).map(|c| format!("k{c}")).collect();
            let keys = keys.join(", ");
            let sql =
                format!("SELECT {keys}, count(*) AS c FROM t GROUP BY {keys} ORDER BY {keys}");
            let with = context(parts.clone(), true, true, None);
            let without = context(parts, false, true, None);
            let got = rows(&with, &sql).await;
            assert_eq!(got, rows(&without, &sql).await, "{columns} columns");
            assert!(plan(&with, &sql).await.contains("KeyAggregateExec"));
        }
    }

    /// Past the memory pool, groups are handed on early (more partial rows than
    /// groups), and every row is still counted once.
    #[tokio::test]
    async fn hands_groups_on_early_past_the_memory_pool() {
        let ctx = context(partitions(false), true, true, None);
        let sql = "SELECT name, image, count(*) AS c FROM t GROUP BY name, image";
        let physical = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let mut found = None;
        physical
            .apply(|p| {
                if p.downcast_ref::<KeyAggregateExec>().is_some() {
                    found = Some(Arc::clone(p));
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .unwrap();
        let exec = found.expect("a KeyAggregateExec in the plan");
        let run = |memory: usize| {
            let exec = Arc::clone(&exec);
            let runtime = RuntimeEnvBuilder::new()
                .with_memory_limit(memory, 1.0)
                .build_arc()
                .unwrap();
            let task = Arc::new(TaskContext::from(&ctx.state()).with_runtime(runtime));
            async move {
                let batches = datafusion::physical_plan::collect(exec, task)
                    .await
                    .unwrap();
                let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
                let counted: i64 = batches
                    .iter()
                    .map(|b| {
                        let c = b
                            .column(2)
                            .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                        c.values().iter().sum::<i64>()
                    })
                    .sum();
                (rows, counted)
            }
        };
        // 9 names (7, a duplicate value, null) by 4 images (3, null): at most 36 groups
        // in each of the two partitions.
        let (rows, counted) = run(64 << 20).await;
        assert!(rows <= 72, "{rows}");
        assert_eq!(counted, 5 * 200 + 4 * 150);
        let (rows, counted) = run(2 << 10).await;
        assert!(rows > 72, "{rows} partial rows: nothing handed on early");
        assert_eq!(counted, 5 * 200 + 4 * 150);
    }
}
