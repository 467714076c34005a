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
    StringDictionaryBuilder, TimestampNanosecondBuilder, UInt64Builder,
};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::ArrowError;

use crate::arrow::{DICTIONARY_COLUMNS, MATERIALIZED, column_name};
use crate::field::{DerivedField, Field, FieldRef};
use crate::model::{Event, Labels, StoredColumns, StrList, Text, U64List};
use crate::value::{Timestamp, Value};

/// How one stored field's Rust type appends into its Arrow builder.
pub(crate) trait ArrowColumn: Sized {
    /// The builder of the column.
    type Builder: ArrayBuilder;
    /// An empty builder for `column` with room for `rows` rows.
    fn builder(column: &str, rows: usize) -> Self::Builder;
    /// Appends one (possibly absent) value.
    fn append(b: &mut Self::Builder, v: Option<&Self>);
    /// Bytes buffered so far (values and offsets; validity left out).
    fn bytes(b: &mut Self::Builder) -> usize;
}

fn string_bytes(b: &StringBuilder) -> usize {
    b.values_slice().len() + b.offsets_slice().len() * 4
}

impl ArrowColumn for Text {
    type Builder = TextBuilder;
    fn builder(column: &str, rows: usize) -> TextBuilder {
        TextBuilder::new(column, rows)
    }
    fn append(b: &mut TextBuilder, v: Option<&Self>) {
        b.append(v.map(|t| t.as_str()));
    }
    fn bytes(b: &mut TextBuilder) -> usize {
        b.bytes()
    }
}

/// A text column's builder: plain text, or a dictionary for the
/// [`crate::arrow::DICTIONARY_COLUMNS`] (each value looked up as it is appended, so
/// the column needs no second pass to become one).
pub(crate) enum TextBuilder {
    /// `Utf8`.
    Plain(StringBuilder),
    /// `Dictionary(Int32, Utf8)`.
    Dictionary(StringDictionaryBuilder<Int32Type>),
}

impl TextBuilder {
    /// The builder the archive schema wants for `column`.
    pub(crate) fn new(column: &str, rows: usize) -> Self {
        if DICTIONARY_COLUMNS.contains(&column) {
            TextBuilder::Dictionary(StringDictionaryBuilder::with_capacity(rows, 256, 256 * 16))
        } else {
            TextBuilder::Plain(StringBuilder::with_capacity(rows, rows * 8))
        }
    }

    /// Appends a value or a null.
    pub(crate) fn append(&mut self, v: Option<&str>) {
        match (self, v) {
            (TextBuilder::Plain(b), Some(v)) => b.append_value(v),
            (TextBuilder::Plain(b), None) => b.append_null(),
            (TextBuilder::Dictionary(b), Some(v)) => {
                // Keys overflow past 2^31 distinct values; a file holds far fewer rows.
                if b.append(v).is_err() {
                    b.append_null();
                }
            }
            (TextBuilder::Dictionary(b), None) => b.append_null(),
        }
    }

    /// Bytes buffered so far (values and offsets or keys; validity left out).
    fn bytes(&self) -> usize {
        match self {
            TextBuilder::Plain(b) => string_bytes(b),
            TextBuilder::Dictionary(b) => b.len() * 4,
        }
    }
}

impl ArrayBuilder for TextBuilder {
    fn len(&self) -> usize {
        match self {
            TextBuilder::Plain(b) => b.len(),
            TextBuilder::Dictionary(b) => b.len(),
        }
    }
    fn finish(&mut self) -> ArrayRef {
        match self {
            TextBuilder::Plain(b) => Arc::new(b.finish()),
            TextBuilder::Dictionary(b) => Arc::new(b.finish()),
        }
    }
    fn finish_cloned(&self) -> ArrayRef {
        match self {
            TextBuilder::Plain(b) => Arc::new(b.finish_cloned()),
            TextBuilder::Dictionary(b) => Arc::new(b.finish_cloned()),
        }
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
    fn into_box_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

impl ArrowColumn for u64 {
    type Builder = UInt64Builder;
    fn builder(_column: &str, rows: usize) -> UInt64Builder {
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
    fn builder(_column: &str, rows: usize) -> Int64Builder {
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
    fn builder(_column: &str, rows: usize) -> BooleanBuilder {
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
    fn builder(_column: &str, rows: usize) -> TimestampNanosecondBuilder {
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
    type Builder = TextBuilder;
    fn builder(column: &str, rows: usize) -> TextBuilder {
        TextBuilder::new(column, rows)
    }
    fn append(b: &mut TextBuilder, v: Option<&Self>) {
        match v {
            Some(ip) => {
                // An address renders in at most 45 bytes: no allocation.
                let mut text = InlineText::default();
                let _ = write!(text, "{ip}");
                b.append(Some(text.as_str()));
            }
            None => b.append(None),
        }
    }
    fn bytes(b: &mut TextBuilder) -> usize {
        b.bytes()
    }
}

/// Text rendered into a fixed buffer (an IP address); what does not fit is cut at a
/// character boundary, which an address never needs.
struct InlineText {
    buf: [u8; 64],
    len: usize,
}

impl Default for InlineText {
    fn default() -> Self {
        InlineText {
            buf: [0; 64],
            len: 0,
        }
    }
}

impl InlineText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(self.buf.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

impl std::fmt::Write for InlineText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl ArrowColumn for StrList {
    type Builder = ListBuilder<StringBuilder>;
    fn builder(_column: &str, rows: usize) -> ListBuilder<StringBuilder> {
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
    fn builder(_column: &str, rows: usize) -> ListBuilder<UInt64Builder> {
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
    fn builder(_column: &str, _rows: usize) -> MapBuilder<StringBuilder, StringBuilder> {
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
    derived: Vec<TextBuilder>,
    /// Where a derived value is rendered before it is looked up in a dictionary.
    scratch: String,
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
            derived: MATERIALIZED
                .iter()
                .map(|name| TextBuilder::new(&column_name(name), rows))
                .collect(),
            scratch: String::new(),
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
        self.stored.bytes() + self.derived.iter().map(TextBuilder::bytes).sum::<usize>()
    }

    /// Appends one event as one row.
    pub fn append(&mut self, ev: &Event) {
        self.stored.append(ev);
        for (b, r) in self.derived.iter_mut().zip(DERIVED.iter()) {
            append_derived(b, &mut self.scratch, ev, r);
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
        columns.extend(self.derived.iter_mut().map(ArrayBuilder::finish));
        self.rows = 0;
        crate::arrow::batch_of(columns)
    }
}

/// Appends one materialized derived field of `ev` (rendered into `scratch` first when
/// it is not stored text).
fn append_derived(b: &mut TextBuilder, scratch: &mut String, ev: &Event, r: &FieldRef) {
    scratch.clear();
    if let Field::Derived(DerivedField::ProcCmdline) = r.field {
        // `name args` (or just `name`).
        match (ev.proc_name.as_deref(), ev.proc_args.as_deref()) {
            (Some(name), Some(args)) if !args.is_empty() => {
                let _ = write!(scratch, "{name} {args}");
                b.append(Some(scratch));
            }
            (Some(name), _) => b.append(Some(name)),
            (None, _) => b.append(None),
        }
        return;
    }
    match ev.get(r) {
        Some(Value::Str(s)) => b.append(Some(&s)),
        Some(other) => {
            let _ = write!(scratch, "{other}");
            b.append(Some(scratch));
        }
        None => b.append(None),
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
