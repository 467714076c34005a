//! A query result in canonical text form, comparable across engines: one string per
//! row (values joined by U+001F), rows sorted; timestamps as integer microseconds since
//! the epoch (DuckDB keeps microseconds), NULL as `NULL`.

use datafusion::arrow::array::{Array, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::Result;

/// The canonical rows of `batches`.
pub fn rows(batches: &[RecordBatch]) -> Result<Vec<String>> {
    let opts = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let mut cols: Vec<Vec<String>> = Vec::with_capacity(b.num_columns());
        for c in b.columns() {
            let texts = match c.data_type() {
                DataType::Timestamp(unit, _) => {
                    let div = match unit {
                        datafusion::arrow::datatypes::TimeUnit::Second => -1_000_000,
                        datafusion::arrow::datatypes::TimeUnit::Millisecond => -1000,
                        datafusion::arrow::datatypes::TimeUnit::Microsecond => 1,
                        datafusion::arrow::datatypes::TimeUnit::Nanosecond => 1000,
                    };
                    let ints = cast(c, &DataType::Int64)?;
                    ints.as_any()
                        .downcast_ref::<Int64Array>()
                        .map(|a| {
                            a.iter()
                                .map(|v| match v {
                                    None => "NULL".to_owned(),
                                    Some(v) if div < 0 => (v * -div).to_string(),
                                    Some(v) => v.div_euclid(div).to_string(),
                                })
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default()
                }
                _ => {
                    let f = ArrayFormatter::try_new(c.as_ref(), &opts)?;
                    (0..c.len()).map(|i| f.value(i).to_string()).collect()
                }
            };
            cols.push(texts);
        }
        for r in 0..b.num_rows() {
            let row: Vec<&str> = cols.iter().map(|c| c[r].as_str()).collect();
            out.push(row.join("\u{1f}"));
        }
    }
    out.sort();
    Ok(out)
}
