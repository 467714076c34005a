//! The archive's Arrow schema and the conversion of events into record batches, and
//! back ([`from_record_batch`]).
//!
//! Columns are the stored fields in [`STORED_FIELDS`] order, named with `_` for `.`
//! (`proc_name`, `fd_name`), followed by a few derived fields materialized for SQL
//! convenience ([`MATERIALIZED`]: `proc_cmdline`, `proc_pname`, `fd_directory`, ...).
//! The Arrow type of each column is derived from the field's Rust type, so the schema
//! cannot drift from the model. Text-typed IPs keep SQL simple (`fd_sip = '1.2.3.4'`).
//! Text whose values repeat from event to event ([`DICTIONARY_COLUMNS`]: names, images,
//! containers, peers, enumerations) is a dictionary column (`Dictionary(Int32, Utf8)`), so
//! readers get each distinct value once per row group with integer keys, and a filter
//! such as `proc_cmdline LIKE '%/etc/shadow%'` is evaluated once per distinct value.
//! The `alerts` table's schema is in [`alerts`].
//!
//! ```
//! use lanner_contract::{arrow::{schema, to_record_batch}, Event};
//! let batch = to_record_batch(&[Event { proc_name: Some("bash".into()), ..Default::default() }]).unwrap();
//! assert_eq!(batch.schema().field_with_name("proc_name").unwrap().name(), "proc_name");
//! assert_eq!(batch.num_rows(), 1);
//! assert_eq!(schema().fields().len(), batch.num_columns());
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use arrow_array::builder::{
    BooleanBuilder, Int64Builder, ListBuilder, MapBuilder, StringBuilder,
    TimestampNanosecondBuilder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};

pub mod alerts;
pub(crate) mod read;
pub use read::{from_record_batch, from_record_batch_unshared};

use crate::field::FieldRef;
use crate::model::{Event, Labels, STORED_FIELDS, StrList, Text, U64List};
use crate::value::{Timestamp, Value};

/// Version of the archive schema, recorded in the schema (and Parquet) metadata.
/// Bump it when columns are added (columns are only ever appended) or a column's
/// type changes to one that older files' type casts to. Version 2 made the
/// [`DICTIONARY_COLUMNS`] dictionaries (they were `Utf8`).
pub const SCHEMA_VERSION: &str = "2";
/// Metadata key holding [`SCHEMA_VERSION`].
pub const SCHEMA_VERSION_KEY: &str = "lanner.schema_version";

/// Derived fields stored as text columns too, for SQL convenience.
pub const MATERIALIZED: &[&str] = &[
    "proc.cmdline",
    "proc.pname",
    "proc.pexe",
    "proc.pexepath",
    "proc.pcmdline",
    "fd.directory",
    "fd.filename",
    "fd.typechar",
    "evt.res",
];

/// Text columns stored as dictionaries ([`dictionary_type`]): their values repeat
/// across the events of one process, container or node (names, images, a node's
/// peers and the names it resolves), or come from a short list (syscall names, fd
/// types, capabilities). Paths, arguments and ids stay `Utf8`: a row group holds too
/// many distinct ones for a dictionary to pay.
pub const DICTIONARY_COLUMNS: &[&str] = &[
    "evt_type",
    "evt_hostname",
    "evt_arg_flags",
    "evt_arg_mode",
    "evt_arg_domain",
    "evt_arg_type",
    "evt_arg_request",
    "evt_arg_cmd",
    "evt_arg_nstype",
    "evt_arg_sig",
    "evt_arg_option",
    "proc_sname",
    "proc_name",
    "proc_exe",
    "proc_exepath",
    "proc_args",
    "proc_cwd",
    "thread_cap_effective",
    "thread_cap_permitted",
    "user_name",
    "user_loginname",
    "group_name",
    "container_id",
    "container_name",
    "container_image",
    "container_image_repository",
    "container_image_tag",
    "container_image_digest",
    "container_type",
    "k8s_ns_name",
    "k8s_pod_name",
    "k8s_pod_uid",
    "fd_type",
    "fd_l4proto",
    "fd_cip",
    "fd_sip",
    "fd_cip_name",
    "fd_sip_name",
    "dns_name",
    "dns_type",
    "dns_rcode",
    "proc_cmdline",
    "proc_pname",
    "proc_pexe",
    "proc_pexepath",
    "proc_pcmdline",
    "fd_typechar",
    "evt_res",
];

/// The Arrow type of the [`DICTIONARY_COLUMNS`]: `Dictionary(Int32, Utf8)`.
pub fn dictionary_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The archive type of a column built as `built`: the dictionary type for the
/// [`DICTIONARY_COLUMNS`], else `built`.
fn archive_type(column: &str, built: &DataType) -> DataType {
    if DICTIONARY_COLUMNS.contains(&column) {
        dictionary_type()
    } else {
        built.clone()
    }
}

/// Column name of a Falco field name (`proc.name` → `proc_name`).
pub fn column_name(field: &str) -> String {
    field.replace('.', "_")
}

/// Builds an Arrow array from optional values of one Rust field type.
pub(crate) trait ArrowField: Sized {
    fn array<'a>(values: impl Iterator<Item = Option<&'a Self>>) -> ArrayRef
    where
        Self: 'a;
}

impl ArrowField for Text {
    fn array<'a>(values: impl Iterator<Item = Option<&'a Self>>) -> ArrayRef {
        let mut b = StringBuilder::new();
        for v in values {
            b.append_option(v.map(|t| &**t));
        }
        Arc::new(b.finish())
    }
}

impl ArrowField for u64 {
    fn array<'a>(values: impl Iterator<Item = Option<&'a Self>>) -> ArrayRef {
        let mut b = UInt64Builder::new();
        for v in values {
            b.append_option(v.copied());
        }
        Arc::new(b.finish())
    }
}

impl ArrowField for i64 {
    fn array<'a>(values: impl Iterator<Item = Option<&'a Self>>) -> ArrayRef {
        let mut b = Int64Builder::new();
        for v in values {
            b.append_option(v.copied());
        }
        Arc::new(b.finish())
    }
}

impl ArrowField for bool {
    fn array<'a>(values: impl Iterator<Item = Option<&'a Self>>) -> ArrayRef {
        let mut b = BooleanBuilder::new();
        for v in values {
            b.append_option(v.copied());
        }
        Arc::new(b.finish())
    }
}

impl ArrowField for Timestamp {
    fn array<'a>(values: impl Iterator<Item = Option<&'a Self>>) -> ArrayRef {
        let mut b = TimestampNanosecondBuilder::new().with_timezone("UTC");
        for v in values {
            b.append_option(v.map(|t| t.0));
        }
        Arc::new(b.finish())
    }
}

impl ArrowField for IpAddr {
    fn array<'a>(values: impl Iterator<Item = Option<&'a Self>>) -> ArrayRef {
        let mut b = StringBuilder::new();
        let mut text = String::new();
        for v in values {
            match v {
                Some(ip) => {
                    use std::fmt::Write;
                    text.clear();
                    let _ = write!(text, "{ip}");
                    b.append_value(&text);
                }
                None => b.append_null(),
            }
        }
        Arc::new(b.finish())
    }
}

impl ArrowField for StrList {
    fn array<'a>(values: impl Iterator<Item = Option<&'a Self>>) -> ArrayRef {
        let mut b = ListBuilder::new(StringBuilder::new());
        for v in values {
            match v {
                Some(list) => {
                    for s in list.iter() {
                        b.values().append_value(&**s);
                    }
                    b.append(true);
                }
                None => b.append(false),
            }
        }
        Arc::new(b.finish())
    }
}

impl ArrowField for U64List {
    fn array<'a>(values: impl Iterator<Item = Option<&'a Self>>) -> ArrayRef {
        let mut b = ListBuilder::new(UInt64Builder::new());
        for v in values {
            match v {
                Some(list) => {
                    b.values().append_slice(list);
                    b.append(true);
                }
                None => b.append(false),
            }
        }
        Arc::new(b.finish())
    }
}

impl ArrowField for Labels {
    fn array<'a>(values: impl Iterator<Item = Option<&'a Self>>) -> ArrayRef {
        let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for v in values {
            match v {
                Some(map) => {
                    for (k, val) in map.iter() {
                        b.keys().append_value(&**k);
                        b.values().append_value(&**val);
                    }
                    // Appending an entry cannot fail: keys and values have equal length.
                    let _ = b.append(true);
                }
                None => {
                    let _ = b.append(false);
                }
            }
        }
        Arc::new(b.finish())
    }
}

fn materialized_array(events: &[Event], field: &FieldRef) -> ArrayRef {
    let mut b = StringBuilder::new();
    for ev in events {
        match ev.get(field) {
            Some(Value::Str(s)) => b.append_value(s),
            Some(other) => b.append_value(other.to_string()),
            None => b.append_null(),
        }
    }
    Arc::new(b.finish())
}

static MATERIALIZED_REFS: LazyLock<Vec<FieldRef>> = LazyLock::new(|| {
    MATERIALIZED
        .iter()
        .filter_map(|name| FieldRef::parse(name).ok())
        .collect()
});

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    // The types come from the builders themselves: build an empty batch.
    let arrays = Event::stored_arrays(&[]);
    let mut fields: Vec<Field> = STORED_FIELDS
        .iter()
        .zip(&arrays)
        .map(|(f, a)| Field::new(f.column, archive_type(f.column, a.data_type()), true))
        .collect();
    for name in MATERIALIZED {
        let column = column_name(name);
        let data_type = archive_type(&column, &DataType::Utf8);
        fields.push(Field::new(column, data_type, true));
    }
    let metadata = HashMap::from([(SCHEMA_VERSION_KEY.to_owned(), SCHEMA_VERSION.to_owned())]);
    Arc::new(Schema::new_with_metadata(fields, metadata))
});

/// The archive schema of the `events` table.
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// Converts events into one record batch with [`schema`].
pub fn to_record_batch(events: &[Event]) -> Result<RecordBatch, ArrowError> {
    let mut columns = Event::stored_arrays(events);
    for r in MATERIALIZED_REFS.iter() {
        columns.push(materialized_array(events, r));
    }
    batch_of(columns)
}

/// A record batch of [`schema`] from columns built as text where the schema has a
/// dictionary: those are dictionary-encoded here (each distinct value kept once).
pub(crate) fn batch_of(mut columns: Vec<ArrayRef>) -> Result<RecordBatch, ArrowError> {
    let schema = schema();
    for (column, field) in columns.iter_mut().zip(schema.fields()) {
        if column.data_type() != field.data_type() {
            *column = arrow_cast::cast(column, field.data_type())?;
        }
    }
    RecordBatch::try_new(schema, columns)
}
