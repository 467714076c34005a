//! Schema evolution: columns are only ever appended, so a file written before a column
//! existed is read by filling that column with nulls (and casting a column whose type
//! widened). Readers such as DuckDB do the same with `union_by_name = true`.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, new_null_array};
use arrow_schema::{ArrowError, SchemaRef};

/// Returns `batch` with exactly the columns of `schema`, in its order: missing columns
/// become nulls, columns of another type are cast, unknown columns are dropped.
pub fn to_schema(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if batch.schema().fields() == schema.fields() {
        return batch.clone().with_schema(schema.clone());
    }
    let rows = batch.num_rows();
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            Some(c) => arrow_cast::cast(c, f.data_type()),
            None if f.is_nullable() => Ok(new_null_array(f.data_type(), rows)),
            None => Err(ArrowError::SchemaError(format!(
                "column {} is missing and not nullable",
                f.name()
            ))),
        })
        .collect::<Result<Vec<ArrayRef>, _>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Int64Array;
    use arrow_schema::{DataType, Field, Schema};

    #[test]
    fn missing_columns_become_null() {
        let old = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let new = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
        ]));
        let batch =
            RecordBatch::try_new(old, vec![Arc::new(Int64Array::from(vec![1, 2]))]).expect("batch");
        let out = to_schema(&batch, &new).expect("evolves");
        assert_eq!(out.schema(), new);
        assert_eq!(out.column(1).null_count(), 2);
        let strict = Arc::new(Schema::new(vec![Field::new("c", DataType::Utf8, false)]));
        assert!(to_schema(&batch, &strict).is_err());
    }
}
