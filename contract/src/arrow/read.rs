//! Record batches back into events: the inverse of [`super::to_record_batch`], for
//! reading the archive (the query's retro-hunt runs the rule engine on these).
//!
//! Columns are found by name and cast to the archive schema's type first, so batches
//! as a Parquet reader or a query engine hands them out (string views, dictionaries,
//! large strings) read the same. A dictionary column's values are read once each, and
//! such a column written as `Utf8` (by schema version 1) is read without a cast. A missing column leaves its field unset, a column of
//! a type that cannot be cast is an error naming the column, and so is a malformed IP
//! address. Equal strings come back sharing one allocation.
//!
//! ```
//! use lanner_contract::arrow::{from_record_batch, to_record_batch};
//! use lanner_contract::Event;
//! let ev = Event { proc_name: Some("bash".into()), proc_apid: Some(vec![1u64, 2].into()), ..Default::default() };
//! let batch = to_record_batch(std::slice::from_ref(&ev)).unwrap();
//! assert_eq!(from_record_batch(&batch).unwrap(), vec![ev]);
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampNanosecondType, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType};

use crate::model::{Event, Labels, StrList, Text, U64List};
use crate::share::Pool;
use crate::value::Timestamp;

/// Reads one Rust field type out of an Arrow array of the archive schema's type.
pub(crate) trait ReadArrow: Sized {
    fn read(array: &dyn Array, column: &str) -> Result<Vec<Option<Self>>, ArrowError>;
}

fn wrong_type(column: &str, found: &DataType) -> ArrowError {
    ArrowError::SchemaError(format!(
        "column {column}: unexpected type {found} after casting"
    ))
}

impl ReadArrow for Text {
    fn read(array: &dyn Array, column: &str) -> Result<Vec<Option<Self>>, ArrowError> {
        if let Some(d) = array.as_dictionary_opt::<Int32Type>() {
            let values = d
                .values()
                .as_string_opt::<i32>()
                .ok_or_else(|| wrong_type(column, array.data_type()))?;
            // Each distinct value made text once, then cloned per row (inline text is
            // copied, longer text shares one allocation).
            let texts: Vec<Option<Text>> = values.iter().map(|v| v.map(Text::from)).collect();
            return Ok(d
                .keys()
                .iter()
                .map(|k| {
                    k.and_then(|k| usize::try_from(k).ok())
                        .and_then(|k| texts.get(k).cloned().flatten())
                })
                .collect());
        }
        let a = array
            .as_string_opt::<i32>()
            .ok_or_else(|| wrong_type(column, array.data_type()))?;
        Ok(a.iter().map(|v| v.map(Text::from)).collect())
    }
}

impl ReadArrow for u64 {
    fn read(array: &dyn Array, column: &str) -> Result<Vec<Option<Self>>, ArrowError> {
        let a = array
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(|| wrong_type(column, array.data_type()))?;
        Ok(a.iter().collect())
    }
}

impl ReadArrow for i64 {
    fn read(array: &dyn Array, column: &str) -> Result<Vec<Option<Self>>, ArrowError> {
        let a = array
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| wrong_type(column, array.data_type()))?;
        Ok(a.iter().collect())
    }
}

impl ReadArrow for bool {
    fn read(array: &dyn Array, column: &str) -> Result<Vec<Option<Self>>, ArrowError> {
        let a = array
            .as_boolean_opt()
            .ok_or_else(|| wrong_type(column, array.data_type()))?;
        Ok(a.iter().collect())
    }
}

impl ReadArrow for Timestamp {
    fn read(array: &dyn Array, column: &str) -> Result<Vec<Option<Self>>, ArrowError> {
        let a = array
            .as_primitive_opt::<TimestampNanosecondType>()
            .ok_or_else(|| wrong_type(column, array.data_type()))?;
        Ok(a.iter().map(|v| v.map(Timestamp)).collect())
    }
}

impl ReadArrow for IpAddr {
    fn read(array: &dyn Array, column: &str) -> Result<Vec<Option<Self>>, ArrowError> {
        let parse = |row: usize, s: &str| {
            s.parse().map_err(|_| {
                ArrowError::ParseError(format!(
                    "column {column}, row {row}: {s:?} is not an IP address"
                ))
            })
        };
        if let Some(d) = array.as_dictionary_opt::<Int32Type>() {
            // Each distinct value parsed once; an error names the first row using it.
            let values = d
                .values()
                .as_string_opt::<i32>()
                .ok_or_else(|| wrong_type(column, array.data_type()))?;
            let parsed: Vec<Option<Result<IpAddr, String>>> = values
                .iter()
                .map(|v| v.map(|s| s.parse::<IpAddr>().map_err(|_| s.to_owned())))
                .collect();
            return d
                .keys()
                .iter()
                .enumerate()
                .map(|(row, k)| {
                    match k
                        .and_then(|k| usize::try_from(k).ok())
                        .and_then(|k| parsed.get(k))
                    {
                        Some(Some(Ok(ip))) => Ok(Some(*ip)),
                        Some(Some(Err(s))) => parse(row, s).map(Some),
                        _ => Ok(None),
                    }
                })
                .collect();
        }
        let a = array
            .as_string_opt::<i32>()
            .ok_or_else(|| wrong_type(column, array.data_type()))?;
        a.iter()
            .enumerate()
            .map(|(row, v)| v.map(|s| parse(row, s)).transpose())
            .collect()
    }
}

impl ReadArrow for StrList {
    fn read(array: &dyn Array, column: &str) -> Result<Vec<Option<Self>>, ArrowError> {
        let a = array
            .as_list_opt::<i32>()
            .ok_or_else(|| wrong_type(column, array.data_type()))?;
        a.iter()
            .map(|item| {
                item.map(|values| {
                    let s = values
                        .as_string_opt::<i32>()
                        .ok_or_else(|| wrong_type(column, values.data_type()))?;
                    Ok(s.iter()
                        .map(|v| Text::from(v.unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .into())
                })
                .transpose()
            })
            .collect()
    }
}

impl ReadArrow for U64List {
    fn read(array: &dyn Array, column: &str) -> Result<Vec<Option<Self>>, ArrowError> {
        let a = array
            .as_list_opt::<i32>()
            .ok_or_else(|| wrong_type(column, array.data_type()))?;
        a.iter()
            .map(|item| {
                item.map(|values| {
                    let n = values
                        .as_primitive_opt::<UInt64Type>()
                        .ok_or_else(|| wrong_type(column, values.data_type()))?;
                    Ok(n.iter()
                        .map(Option::unwrap_or_default)
                        .collect::<Vec<_>>()
                        .into())
                })
                .transpose()
            })
            .collect()
    }
}

impl ReadArrow for Labels {
    fn read(array: &dyn Array, column: &str) -> Result<Vec<Option<Self>>, ArrowError> {
        let a = array
            .as_map_opt()
            .ok_or_else(|| wrong_type(column, array.data_type()))?;
        let (keys, values) = (
            a.keys()
                .as_string_opt::<i32>()
                .ok_or_else(|| wrong_type(column, a.keys().data_type()))?,
            a.values()
                .as_string_opt::<i32>()
                .ok_or_else(|| wrong_type(column, a.values().data_type()))?,
        );
        let offsets = a.value_offsets();
        Ok((0..a.len())
            .map(|row| {
                if a.is_null(row) {
                    return None;
                }
                let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
                let text = |a: &arrow_array::StringArray, i: usize| {
                    Text::from(if a.is_valid(i) { a.value(i) } else { "" })
                };
                let map: BTreeMap<Text, Text> = (start..end)
                    .map(|i| (text(keys, i), text(values, i)))
                    .collect();
                Some(Arc::new(map))
            })
            .collect())
    }
}

/// The column of `batch` named `name`, cast to `to`; `None` when absent.
pub(crate) fn column(
    batch: &RecordBatch,
    name: &str,
    to: &DataType,
) -> Result<Option<ArrayRef>, ArrowError> {
    let Some(col) = batch.column_by_name(name) else {
        return Ok(None);
    };
    if col.data_type() == to {
        return Ok(Some(col.clone()));
    }
    // A dictionary column written as text before it became one reads as it is.
    if *to == crate::arrow::dictionary_type() && *col.data_type() == DataType::Utf8 {
        return Ok(Some(col.clone()));
    }
    // Not `safe`: a value that does not convert is an error, not a silent null.
    let options = arrow_cast::CastOptions {
        safe: false,
        ..Default::default()
    };
    arrow_cast::cast_with_options(col, to, &options)
        .map(Some)
        .map_err(|e| ArrowError::CastError(format!("column {name}: {e}")))
}

/// Events from a record batch of the `events` table (any subset of its columns, in any
/// order; derived columns are ignored, as events derive them).
pub fn from_record_batch(batch: &RecordBatch) -> Result<Vec<Event>, ArrowError> {
    let mut events = Event::from_arrays(batch)?;
    let mut pool = Pool::default();
    for ev in &mut events {
        ev.share(&mut pool);
    }
    Ok(events)
}

/// [`from_record_batch`] without sharing equal strings: each value keeps its own
/// allocation. Cheaper for events that are judged and dropped (the retro-hunt), where
/// finding equal strings would cost more than it saves.
pub fn from_record_batch_unshared(batch: &RecordBatch) -> Result<Vec<Event>, ArrowError> {
    Event::from_arrays(batch)
}
