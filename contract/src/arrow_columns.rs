//! Appending events one by one into long-lived Arrow builders ([`EventColumns`]), so a
//! consumer turns many bus messages into one record batch per output file instead of
//! one batch per message.
//!
//! The columns and their types are those of [`crate::arrow::schema`] (the single source of
//! the archive's columns; [`EventColumns::finish`] checks its arrays against it). Text
//! columns are built as text and dictionary-encoded at [`EventColumns::finish`] where the
//! schema says so. Each
//! stored field appends through its Rust type ([`ArrowColumn`]); the materialized derived
//! fields are rendered straight into their builders: `proc.cmdline` and IP addresses
//! without a temporary `String`, the others as [`Event::get`] reads them.
//!
//! ```
//! use lanner_contract::{arrow::schema, arrow_columns::EventColumns, Event};
//! let mut cols = EventColumns::new();
//! cols.append(&Event { proc_name: Some("bash".into()), ..Default::default() });
//! cols.append(&Event::default());
//! let batch = cols.finish().unwrap();
//! assert_eq!((batch.num_rows(), batch.schema()), (2, schema()));
//! assert!(cols.is_empty());
//! ```

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Int64Builder, ListBuilder, MapBuilder, StringBuilder,
    TimestampNanosecondBuilder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::ArrowError;

use crate::arrow::MATERIALIZED;
use crate::field::{DerivedField, Field, FieldRef};
use crate::model::{Event, Labels, StoredColumns, StrList, Text, U64List};
use crate::value::{Timestamp, Value};

/// How one stored field's Rust type appends into its Arrow builder.
pub(crate) trait ArrowColumn: Sized {
    /// The builder of the column.
    type Builder: ArrayBuilder;
    /// An empty builder with room for `rows` rows.
    fn builder(rows: usize) -> Self::Builder;
    /// Appends one (possibly absent) value.
    fn append(b: &mut Self::Builder, v: Option<&Self>);
    /// Bytes buffered so far (values and offsets; validity left out).
    fn bytes(b: &mut Self::Builder) -> usize;
}

fn string_bytes(b: &StringBuilder) -> usize {
    b.values_slice().len() + b.offsets_slice().len() * 4
}

impl ArrowColumn for Text {
    type Builder = StringBuilder;
    fn builder(rows: usize) -> StringBuilder {
        StringBuilder::with_capacity(rows, rows * 8)
    }
    fn append(b: &mut StringBuilder, v: Option<&Self>) {
        match v {
            Some(t) => b.append_value(&**t),
            None => b.append_null(),
        }
    }
    fn bytes(b: &mut StringBuilder) -> usize {
        string_bytes(b)
    }
}

impl ArrowColumn for u64 {
    type Builder = UInt64Builder;
    fn builder(rows: usize) -> UInt64Builder {
        UInt64Builder::with_capacity(rows)
    }
    fn append(b: &mut UInt64Builder, v: Option<&Self>) {
        b.append_option(v.copied());
    }
    fn bytes(b: &mut UInt64Builder) -> usize {
        b.values_slice().len() * 8
    }
}

impl ArrowColumn for i64 {
    type Builder = Int64Builder;
    fn builder(rows: usize) -> Int64Builder {
        Int64Builder::with_capacity(rows)
    }
    fn append(b: &mut Int64Builder, v: Option<&Self>) {
        b.append_option(v.copied());
    }
    fn bytes(b: &mut Int64Builder) -> usize {
        b.values_slice().len() * 8
    }
}

impl ArrowColumn for bool {
    type Builder = BooleanBuilder;
    fn builder(rows: usize) -> BooleanBuilder {
        BooleanBuilder::with_capacity(rows)
    }
    fn append(b: &mut BooleanBuilder, v: Option<&Self>) {
        b.append_option(v.copied());
    }
    fn bytes(b: &mut BooleanBuilder) -> usize {
        b.len() / 8
    }
}

impl ArrowColumn for Timestamp {
    type Builder = TimestampNanosecondBuilder;
    fn builder(rows: usize) -> TimestampNanosecondBuilder {
        TimestampNanosecondBuilder::with_capacity(rows).with_timezone("UTC")
    }
    fn append(b: &mut TimestampNanosecondBuilder, v: Option<&Self>) {
        b.append_option(v.map(|t| t.0));
    }
    fn bytes(b: &mut TimestampNanosecondBuilder) -> usize {
        b.values_slice().len() * 8
    }
}

impl ArrowColumn for IpAddr {
    type Builder = StringBuilder;
    fn builder(rows: usize) -> StringBuilder {
        StringBuilder::with_capacity(rows, rows * 8)
    }
    fn append(b: &mut StringBuilder, v: Option<&Self>) {
        match v {
            Some(ip) => {
                // Rendered straight into the value buffer; writing to a builder cannot fail.
                let _ = write!(b, "{ip}");
                b.append_value("");
            }
            None => b.append_null(),
        }
    }
    fn bytes(b: &mut StringBuilder) -> usize {
        string_bytes(b)
    }
}

impl ArrowColumn for StrList {
    type Builder = ListBuilder<StringBuilder>;
    fn builder(rows: usize) -> ListBuilder<StringBuilder> {
        ListBuilder::with_capacity(StringBuilder::new(), rows)
    }
    fn append(b: &mut ListBuilder<StringBuilder>, v: Option<&Self>) {
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
    fn bytes(b: &mut ListBuilder<StringBuilder>) -> usize {
        b.offsets_slice().len() * 4 + string_bytes(b.values_ref())
    }
}

impl ArrowColumn for U64List {
    type Builder = ListBuilder<UInt64Builder>;
    fn builder(rows: usize) -> ListBuilder<UInt64Builder> {
        ListBuilder::with_capacity(UInt64Builder::new(), rows)
    }
    fn append(b: &mut ListBuilder<UInt64Builder>, v: Option<&Self>) {
        match v {
            Some(list) => {
                b.values().append_slice(list);
                b.append(true);
            }
            None => b.append(false),
        }
    }
    fn bytes(b: &mut ListBuilder<UInt64Builder>) -> usize {
        b.offsets_slice().len() * 4 + b.values_ref().values_slice().len() * 8
    }
}

impl ArrowColumn for Labels {
    type Builder = MapBuilder<StringBuilder, StringBuilder>;
    fn builder(_rows: usize) -> MapBuilder<StringBuilder, StringBuilder> {
        MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())
    }
    fn append(b: &mut MapBuilder<StringBuilder, StringBuilder>, v: Option<&Self>) {
        match v {
            Some(map) => {
                for (k, val) in map.iter() {
                    b.keys().append_value(&**k);
                    b.values().append_value(&**val);
                }
                // Cannot fail: keys and values were appended in pairs.
                let _ = b.append(true);
            }
            None => {
                let _ = b.append(false);
            }
        }
    }
    fn bytes(b: &mut MapBuilder<StringBuilder, StringBuilder>) -> usize {
        b.len() * 4 + string_bytes(b.keys()) + string_bytes(b.values())
    }
}

/// The materialized derived fields, parsed once.
static DERIVED: LazyLock<Vec<FieldRef>> = LazyLock::new(|| {
    MATERIALIZED
        .iter()
        .filter_map(|name| FieldRef::parse(name).ok())
        .collect()
});

/// Events appended so far, column by column, in the archive schema.
pub struct EventColumns {
    stored: StoredColumns,
    derived: Vec<StringBuilder>,
    rows: usize,
}

impl Default for EventColumns {
    fn default() -> Self {
        Self::new()
    }
}

impl EventColumns {
    /// Empty columns.
    pub fn new() -> Self {
        Self::with_capacity(1024)
    }

    /// Empty columns with room for `rows` rows before growing.
    pub fn with_capacity(rows: usize) -> Self {
        EventColumns {
            stored: StoredColumns::new(rows),
            derived: DERIVED
                .iter()
                .map(|_| StringBuilder::with_capacity(rows, rows * 8))
                .collect(),
            rows: 0,
        }
    }

    /// Rows appended since the last [`EventColumns::finish`].
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no rows are buffered.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Bytes the buffered rows take in the builders (an estimate for rolling files by
    /// size: values and offsets, not validity bitmaps or spare capacity).
    pub fn buffered_bytes(&mut self) -> usize {
        self.stored.bytes() + self.derived.iter().map(string_bytes).sum::<usize>()
    }

    /// Appends one event as one row.
    pub fn append(&mut self, ev: &Event) {
        self.stored.append(ev);
        for (b, r) in self.derived.iter_mut().zip(DERIVED.iter()) {
            append_derived(b, ev, r);
        }
        self.rows += 1;
    }

    /// Appends events as rows.
    pub fn extend<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) {
        for ev in events {
            self.append(ev);
        }
    }

    /// Takes the buffered rows as one record batch of [`crate::arrow::schema`] and starts
    /// over empty.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let mut columns: Vec<ArrayRef> = self.stored.finish();
        columns.extend(
            self.derived
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        self.rows = 0;
        crate::arrow::batch_of(columns)
    }
}

/// Appends one materialized derived field of `ev`.
fn append_derived(b: &mut StringBuilder, ev: &Event, r: &FieldRef) {
    if let Field::Derived(DerivedField::ProcCmdline) = r.field {
        // `name args` (or just `name`), written into the builder without a `String`.
        match (ev.proc_name.as_deref(), ev.proc_args.as_deref()) {
            (Some(name), Some(args)) if !args.is_empty() => {
                let _ = write!(b, "{name} {args}");
                b.append_value("");
            }
            (Some(name), _) => b.append_value(name),
            (None, _) => b.append_null(),
        }
        return;
    }
    match ev.get(r) {
        Some(Value::Str(s)) => b.append_value(&*s),
        Some(other) => {
            let _ = write!(b, "{other}");
            b.append_value("");
        }
        None => b.append_null(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrow::to_record_batch;
    use crate::synth::Synth;

    #[test]
    fn columns_equal_the_per_batch_conversion() {
        let mut events: Vec<Event> = Synth::new(3, "n").take(700).collect();
        events.push(Event::default());
        events.push(Event {
            proc_name: Some("sh".into()),
            proc_args: Some("".into()),
            fd_sip: Some("::1".parse().expect("ip")),
            evt_rawres: Some(-2),
            fd_type: Some("directory".into()),
            fd_name: Some("/etc".into()),
            ..Default::default()
        });
        let mut cols = EventColumns::with_capacity(16);
        // Two rounds: finish must leave the builders ready for the next file.
        for _ in 0..2 {
            cols.extend(&events[..300]);
            cols.extend(&events[300..]);
            assert_eq!(cols.len(), events.len());
            let got = cols.finish().expect("batch");
            assert_eq!(got, to_record_batch(&events).expect("reference"));
            assert!(cols.is_empty());
        }
        assert_eq!(cols.finish().expect("empty batch").num_rows(), 0);
    }
}
