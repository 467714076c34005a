//! A physical optimizer rule: a filter comparing a dictionary column with text
//! constants (`evt_type = 'connect'`, `container_id <> '...'`, `evt_type IN ('execve',
//! 'connect')`) compares the rows' dictionary keys, not their values.
//!
//! arrow compares a dictionary array with a constant on its values (a few hundred per
//! batch) and then maps the answers through the keys one bit at a time (`take_bits`,
//! ~17 instructions per row under callgrind): the hunting queries' `evt_type = ...`
//! runs over every row of the archive. [`DictionaryCompare`] compares the values the
//! same way, then, when one value matches (or all but one), compares each row's key
//! with that value's key, 64 rows to a word; otherwise it looks each key up in the
//! values' answers. The answers are arrow's: a null key gives a null, and a dictionary
//! with null values, a constant of another type or a column that is not a dictionary
//! is left to the expression it replaces.
//!
//! Plans show it as the comparison it replaces, marked `(by dictionary keys)`.
//! Only the predicates of `FilterExec`s are rewritten: the scans keep the original
//! expressions, from which they prune row groups and pages by statistics and bloom
//! filters. On unless the session's `lanner.dictionary_filters` is off.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, DictionaryArray, RecordBatch,
};
use datafusion::arrow::buffer::{BooleanBuffer, MutableBuffer};
use datafusion::arrow::datatypes::{
    ArrowDictionaryKeyType, ArrowNativeType, DataType, Int8Type, Int16Type, Int32Type, Int64Type,
    Schema, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::expressions::{BinaryExpr, Column, InListExpr, Literal};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};

use crate::prune::LannerOptions;

/// The rule (see the module docs).
#[derive(Debug, Default)]
pub struct DictionaryFilters;

impl PhysicalOptimizerRule for DictionaryFilters {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !LannerOptions::on(config, |o| o.dictionary_filters) {
            return Ok(plan);
        }
        plan.transform_up(|p| {
            let Some(filter) = p.downcast_ref::<FilterExec>() else {
                return Ok(Transformed::no(p));
            };
            let schema = filter.input().schema();
            let predicate =
                Arc::clone(filter.predicate()).transform_up(|e| Ok(rewrite(e, &schema)))?;
            if !predicate.transformed {
                return Ok(Transformed::no(p));
            }
            let exec = FilterExecBuilder::new(predicate.data, Arc::clone(filter.input()))
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
        "lanner_dictionary_filters"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `e` as a [`DictionaryCompare`] when it compares a dictionary column of text with
/// text constants.
fn rewrite(e: Arc<dyn PhysicalExpr>, schema: &Schema) -> Transformed<Arc<dyn PhysicalExpr>> {
    let Some((column, values, negated)) = comparison(&e) else {
        return Transformed::no(e);
    };
    let is_text_dictionary = column.downcast_ref::<Column>().is_some()
        && column
            .data_type(schema)
            .is_ok_and(|t| matches!(t, DataType::Dictionary(_, v) if is_text(&v)));
    if !is_text_dictionary {
        return Transformed::no(e);
    }
    let compare = DictionaryCompare {
        column: Arc::clone(column),
        values,
        negated,
        original: Arc::clone(&e),
    };
    Transformed::yes(Arc::new(compare))
}

/// The compared expression, the text constants and whether it is negated, when `e`
/// compares an expression with text constants (`=`, `<>`, `[NOT] IN`).
fn comparison(e: &Arc<dyn PhysicalExpr>) -> Option<(&Arc<dyn PhysicalExpr>, Vec<String>, bool)> {
    if let Some(b) = e.downcast_ref::<BinaryExpr>() {
        let negated = match b.op() {
            Operator::Eq => false,
            Operator::NotEq => true,
            _ => return None,
        };
        match (text_constant(b.right()), text_constant(b.left())) {
            (Some(v), _) => Some((b.left(), vec![v], negated)),
            (None, Some(v)) => Some((b.right(), vec![v], negated)),
            (None, None) => None,
        }
    } else if let Some(l) = e.downcast_ref::<InListExpr>() {
        let values: Option<Vec<String>> = l.list().iter().map(text_constant).collect();
        values
            .filter(|v| !v.is_empty())
            .map(|v| (l.expr(), v, l.negated()))
    } else {
        None
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The text of a non-null text literal (plain or dictionary-typed).
fn text_constant(e: &Arc<dyn PhysicalExpr>) -> Option<String> {
    fn text(v: &ScalarValue) -> Option<String> {
        match v {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)) => Some(s.clone()),
            ScalarValue::Dictionary(_, inner) => text(inner),
            _ => None,
        }
    }
    text(e.downcast_ref::<Literal>()?.value())
}

/// `column = value`, `column <> value`, `column [NOT] IN (values)` over a dictionary
/// column, answered from its keys (module docs). `original` is the expression it
/// replaces, which answers anything else.
#[derive(Debug)]
pub struct DictionaryCompare {
    column: Arc<dyn PhysicalExpr>,
    values: Vec<String>,
    negated: bool,
    original: Arc<dyn PhysicalExpr>,
}

impl PartialEq for DictionaryCompare {
    fn eq(&self, other: &Self) -> bool {
        self.original.as_ref() == other.original.as_ref()
    }
}

impl Eq for DictionaryCompare {}

impl Hash for DictionaryCompare {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.original.hash(state);
    }
}

impl fmt::Display for DictionaryCompare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (by dictionary keys)", self.original)
    }
}

impl PhysicalExpr for DictionaryCompare {
    fn data_type(&self, input_schema: &Schema) -> Result<DataType> {
        self.original.data_type(input_schema)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.original.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        if let ColumnarValue::Array(column) = self.column.evaluate(batch)?
            && let Some(answer) = self.compare(&column)
        {
            return Ok(ColumnarValue::Array(Arc::new(answer)));
        }
        self.original.evaluate(batch)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.original]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        // The child is the original expression. The same comparison of another column
        // (its index changed by a projection) is still answered from the keys; any
        // other expression stands alone.
        let Some(c) = children.into_iter().next() else {
            return Ok(self);
        };
        if c.as_ref() == self.original.as_ref() {
            return Ok(self);
        }
        let same = comparison(&c).and_then(|(column, values, negated)| {
            (column.downcast_ref::<Column>().is_some()
                && values == self.values
                && negated == self.negated)
                .then(|| Arc::clone(column))
        });
        match same {
            Some(column) => Ok(Arc::new(DictionaryCompare {
                column,
                values: self.values.clone(),
                negated: self.negated,
                original: c,
            })),
            None => Ok(c),
        }
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.original.fmt_sql(f)
    }
}

impl DictionaryCompare {
    /// The answer for a dictionary array of text without null values, else `None`.
    fn compare(&self, column: &ArrayRef) -> Option<BooleanArray> {
        let DataType::Dictionary(key, _) = column.data_type() else {
            return None;
        };
        match key.as_ref() {
            DataType::Int8 => self.compare_keys(column.as_dictionary::<Int8Type>()),
            DataType::Int16 => self.compare_keys(column.as_dictionary::<Int16Type>()),
            DataType::Int32 => self.compare_keys(column.as_dictionary::<Int32Type>()),
            DataType::Int64 => self.compare_keys(column.as_dictionary::<Int64Type>()),
            DataType::UInt8 => self.compare_keys(column.as_dictionary::<UInt8Type>()),
            DataType::UInt16 => self.compare_keys(column.as_dictionary::<UInt16Type>()),
            DataType::UInt32 => self.compare_keys(column.as_dictionary::<UInt32Type>()),
            DataType::UInt64 => self.compare_keys(column.as_dictionary::<UInt64Type>()),
            _ => None,
        }
    }

    fn compare_keys<K: ArrowDictionaryKeyType>(
        &self,
        dict: &DictionaryArray<K>,
    ) -> Option<BooleanArray> {
        let hits = self.value_answers(dict.values())?;
        let keys = dict.keys();
        let raw: &[K::Native] = keys.values();
        let trues = hits.iter().filter(|h| **h).count();
        let bits = if trues == 0 {
            BooleanBuffer::new_unset(raw.len())
        } else if trues == hits.len() {
            BooleanBuffer::new_set(raw.len())
        } else if trues == 1 {
            let k = K::Native::from_usize(hits.iter().position(|h| *h)?)?;
            pack(raw, |key| key == k)
        } else if trues + 1 == hits.len() {
            let k = K::Native::from_usize(hits.iter().position(|h| !*h)?)?;
            pack(raw, |key| key != k)
        } else {
            pack(raw, |key| {
                hits.get(key.as_usize()).copied().unwrap_or(false)
            })
        };
        Some(BooleanArray::new(bits, keys.nulls().cloned()))
    }

    /// Whether each value of a dictionary satisfies the comparison; `None` for values
    /// that are not text or hold nulls.
    fn value_answers(&self, values: &ArrayRef) -> Option<Vec<bool>> {
        if values.null_count() > 0 {
            return None;
        }
        let answer =
            |v: Option<&str>| self.values.iter().any(|c| Some(c.as_str()) == v) != self.negated;
        match values.data_type() {
            DataType::Utf8 => Some(values.as_string::<i32>().iter().map(answer).collect()),
            DataType::LargeUtf8 => Some(values.as_string::<i64>().iter().map(answer).collect()),
            DataType::Utf8View => Some(values.as_string_view().iter().map(answer).collect()),
            _ => None,
        }
    }
}

/// `test` of each key, packed 64 to a word: the answers go to bytes first, which the
/// compiler vectorizes, and eight bytes become eight bits with one multiplication.
pub(crate) fn pack<T: Copy>(keys: &[T], test: impl Fn(T) -> bool) -> BooleanBuffer {
    let mut words = MutableBuffer::new(keys.len().div_ceil(64) * 8);
    let mut bytes = [0u8; 64];
    for chunk in keys.chunks(64) {
        for (b, key) in bytes.iter_mut().zip(chunk) {
            *b = u8::from(test(*key));
        }
        bytes[chunk.len()..].fill(0);
        let mut word = 0u64;
        for (i, eight) in bytes.chunks_exact(8).enumerate() {
            let mut le = [0u8; 8];
            le.copy_from_slice(eight);
            word |= bits_of_bytes(u64::from_le_bytes(le)) << (8 * i);
        }
        words.push(word);
    }
    BooleanBuffer::new(words.into(), 0, keys.len())
}

/// Eight bytes of 0 or 1 (little-endian in `v`) as eight bits, the first byte lowest:
/// the multiplication moves byte `j` to bit `56 + j`, with no carries between them.
fn bits_of_bytes(v: u64) -> u64 {
    v.wrapping_mul(0x0102_0408_1020_4080) >> 56
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, StringArray};
    use datafusion::arrow::datatypes::Field;
    use datafusion::physical_expr::expressions::{binary, col, in_list, lit};

    fn dictionary(keys: Vec<Option<i32>>, values: &[&str]) -> ArrayRef {
        let keys = Int32Array::from(keys);
        let values = Arc::new(StringArray::from(values.to_vec()));
        Arc::new(DictionaryArray::<Int32Type>::try_new(keys, values).expect("dictionary"))
    }

    fn batch(column: ArrayRef) -> RecordBatch {
        let schema = Schema::new(vec![Field::new("t", column.data_type().clone(), true)]);
        RecordBatch::try_new(Arc::new(schema), vec![column]).expect("batch")
    }

    /// The rewritten expression's answer and the original's, on `column`.
    fn both(column: ArrayRef, expr: Arc<dyn PhysicalExpr>) -> (BooleanArray, BooleanArray) {
        let batch = batch(column);
        let rewritten = rewrite(Arc::clone(&expr), &batch.schema());
        assert!(rewritten.transformed, "{expr} was not rewritten");
        let ours = rewritten.data.evaluate(&batch).expect("evaluate");
        let theirs = expr.evaluate(&batch).expect("evaluate");
        let n = batch.num_rows();
        (
            ours.into_array(n).expect("array").as_boolean().clone(),
            theirs.into_array(n).expect("array").as_boolean().clone(),
        )
    }

    #[test]
    fn answers_as_arrow_does_for_every_shape_of_match() {
        // 130 rows: two full words and a remainder, nulls among them.
        let keys: Vec<Option<i32>> = (0..130).map(|i| (i % 7 != 3).then_some(i % 4)).collect();
        let column = dictionary(keys, &["connect", "execve", "openat", "sendto"]);
        let schema = batch(Arc::clone(&column)).schema();
        let t = col("t", &schema).expect("column");
        let dict_lit = |s: &str| {
            lit(ScalarValue::Dictionary(
                Box::new(DataType::Int32),
                Box::new(ScalarValue::Utf8(Some(s.into()))),
            ))
        };
        let cases: Vec<Arc<dyn PhysicalExpr>> = vec![
            binary(Arc::clone(&t), Operator::Eq, dict_lit("execve"), &schema).expect("eq"),
            binary(Arc::clone(&t), Operator::NotEq, dict_lit("execve"), &schema).expect("ne"),
            binary(dict_lit("openat"), Operator::Eq, Arc::clone(&t), &schema).expect("eq"),
            binary(Arc::clone(&t), Operator::Eq, dict_lit("absent"), &schema).expect("eq"),
            binary(Arc::clone(&t), Operator::NotEq, dict_lit("absent"), &schema).expect("ne"),
            in_list(
                Arc::clone(&t),
                vec![dict_lit("execve"), dict_lit("sendto")],
                &false,
                &schema,
            )
            .expect("in"),
            in_list(
                Arc::clone(&t),
                vec![dict_lit("execve"), dict_lit("sendto")],
                &true,
                &schema,
            )
            .expect("not in"),
        ];
        for expr in cases {
            let (ours, theirs) = both(Arc::clone(&column), Arc::clone(&expr));
            assert_eq!(ours, theirs, "{expr}");
        }
    }

    #[test]
    fn bytes_become_bits_in_order() {
        for pattern in 0u32..256 {
            let bytes: Vec<u8> = (0..8).map(|j| u8::from(pattern >> j & 1 == 1)).collect();
            let mut le = [0u8; 8];
            le.copy_from_slice(&bytes);
            assert_eq!(bits_of_bytes(u64::from_le_bytes(le)), u64::from(pattern));
        }
        let keys: Vec<i32> = (0..1000).map(|i| (i * 7919) % 13).collect();
        let packed = pack(&keys, |k| k == 5);
        let expected: Vec<bool> = keys.iter().map(|k| *k == 5).collect();
        assert_eq!(packed.iter().collect::<Vec<bool>>(), expected);
    }

    #[test]
    fn a_dictionary_holding_a_value_twice_is_looked_up_key_by_key() {
        let column = dictionary((0..100).map(|i| Some(i % 3)).collect(), &["a", "b", "a"]);
        let schema = batch(Arc::clone(&column)).schema();
        let expr = binary(
            col("t", &schema).expect("column"),
            Operator::Eq,
            lit(ScalarValue::Dictionary(
                Box::new(DataType::Int32),
                Box::new(ScalarValue::Utf8(Some("a".into()))),
            )),
            &schema,
        )
        .expect("eq");
        let (ours, theirs) = both(column, expr);
        assert_eq!(ours, theirs);
        assert_eq!(ours.true_count(), 67);
    }

    #[test]
    fn values_with_nulls_are_left_to_the_original_expression() {
        let keys = Int32Array::from(vec![0, 1, 1, 0]);
        let values: ArrayRef = Arc::new(StringArray::from(vec![Some("x"), None]));
        let column: ArrayRef =
            Arc::new(DictionaryArray::<Int32Type>::try_new(keys, values).expect("dictionary"));
        let compare = DictionaryCompare {
            column: Arc::new(Column::new("t", 0)),
            values: vec!["x".into()],
            negated: false,
            original: lit(true),
        };
        assert!(compare.compare(&column).is_none());
        let plain: ArrayRef = Arc::new(StringArray::from(vec!["x"]));
        assert!(compare.compare(&plain).is_none());
    }

    #[test]
    fn a_renumbered_column_is_still_compared_by_its_keys() {
        // `t` is column 1 of a batch (`n`, `t`), then alone as column 0, as a predicate
        // evaluated on the columns it reads sees it.
        let column = dictionary(vec![Some(0), Some(1), None, Some(1)], &["a", "b"]);
        let wide = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("n", DataType::Int32, true),
                Field::new("t", column.data_type().clone(), true),
            ])),
            vec![
                Arc::new(Int32Array::from(vec![1, 2, 3, 4])),
                Arc::clone(&column),
            ],
        )
        .expect("batch");
        let expr = binary(
            col("t", &wide.schema()).expect("t"),
            Operator::Eq,
            lit("b"),
            &wide.schema(),
        )
        .expect("t = 'b'");
        let compare = rewrite(Arc::clone(&expr), &wide.schema());
        assert!(compare.transformed);
        let renumbered = Arc::clone(&compare.data)
            .transform_up(|x| match x.downcast_ref::<Column>() {
                Some(c) => Ok(Transformed::yes(
                    Arc::new(Column::new(c.name(), 0)) as Arc<dyn PhysicalExpr>
                )),
                None => Ok(Transformed::no(x)),
            })
            .expect("renumbered")
            .data;
        let kept = renumbered
            .downcast_ref::<DictionaryCompare>()
            .expect("still by dictionary keys");
        assert_eq!(kept.column.to_string(), "t@0");
        let narrow = batch(column);
        let ours = renumbered
            .evaluate(&narrow)
            .expect("evaluate")
            .into_array(4);
        let theirs = expr.evaluate(&wide).expect("evaluate").into_array(4);
        assert_eq!(
            ours.expect("array").as_boolean(),
            theirs.expect("array").as_boolean()
        );
        // Another comparison in its place stands alone.
        let other = Arc::clone(&compare.data)
            .with_new_children(vec![lit(true)])
            .expect("replaced");
        assert!(other.downcast_ref::<DictionaryCompare>().is_none());
    }
}
