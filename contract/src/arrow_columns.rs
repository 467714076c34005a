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

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Int64Builder, ListBuilder, MapBuilder, StringBuilder,
    TimestampNanosecondBuilder, UInt64Builder,
};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, Int32Array, RecordBatch, StringArray};
use arrow_buffer::{NullBufferBuilder, OffsetBuffer};
use arrow_schema::ArrowError;

use crate::arrow::{DICTIONARY_COLUMNS, MATERIALIZED, column_name};
use crate::field::{DerivedField, Field, FieldRef};
use crate::model::{Event, Labels, StoredColumns, StrList, Text, U64List};
use crate::share::PtrHasher;
use crate::short_key::ShortKey;
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
    Dictionary(DictionaryTexts),
}

impl TextBuilder {
    /// The builder the archive schema wants for `column`.
    pub(crate) fn new(column: &str, rows: usize) -> Self {
        if DICTIONARY_COLUMNS.contains(&column) {
            TextBuilder::Dictionary(DictionaryTexts::with_capacity(rows))
        } else {
            TextBuilder::Plain(StringBuilder::with_capacity(rows, rows * 8))
        }
    }

    /// Appends a value or a null.
    pub(crate) fn append(&mut self, v: Option<&str>) {
        match (self, v) {
            (TextBuilder::Plain(b), Some(v)) => b.append_value(v),
            (TextBuilder::Plain(b), None) => b.append_null(),
            (TextBuilder::Dictionary(b), v) => b.append(v),
        }
    }

    /// Bytes buffered so far (values and offsets or keys; validity left out).
    fn bytes(&self) -> usize {
        match self {
            TextBuilder::Plain(b) => string_bytes(b),
            TextBuilder::Dictionary(b) => b.bytes(),
        }
    }
}

/// A `Dictionary(Int32, Utf8)` column built row by row: each distinct text is stored
/// once and found again by its xxh3 hash (bytes compared, so a collision costs a
/// duplicate entry, never a wrong value), the previous row's text tried first.
/// Cheaper than arrow's `StringDictionaryBuilder` (a generic hasher and table per row).
pub(crate) struct DictionaryTexts {
    keys: Vec<i32>,
    nulls: NullBufferBuilder,
    /// The distinct texts, concatenated, and where each starts (plus the end).
    values: Vec<u8>,
    offsets: Vec<i32>,
    /// Content hash → key.
    index: HashMap<u64, i32, BuildHasherDefault<PtrHasher>>,
    last: Option<i32>,
    /// Short texts met recently → key, direct-mapped (see [`crate::short_key`]): most
    /// rows of a column repeat one of a few values, found here without hashing the
    /// bytes or comparing them with `memcmp`. A key of -1 marks an empty slot.
    recent: Box<[(ShortKey, i32); RECENT_SLOTS]>,
}

/// Slots of [`DictionaryTexts::recent`]: a column's common values (event types, the
/// containers, users and programs of a node) without much memory per column (48
/// dictionary columns are built at once).
const RECENT_SLOTS: usize = 32;

impl DictionaryTexts {
    fn with_capacity(rows: usize) -> Self {
        DictionaryTexts {
            keys: Vec::with_capacity(rows),
            nulls: NullBufferBuilder::new(rows),
            values: Vec::new(),
            offsets: vec![0],
            index: HashMap::default(),
            last: None,
            recent: Box::new([(ShortKey::default(), -1); RECENT_SLOTS]),
        }
    }

    fn value(&self, key: i32) -> Option<&[u8]> {
        let k = usize::try_from(key).ok()?;
        let (start, end) = (*self.offsets.get(k)?, *self.offsets.get(k + 1)?);
        self.values.get(start as usize..end as usize)
    }

    fn append(&mut self, v: Option<&str>) {
        let Some(v) = v else {
            self.keys.push(0);
            self.nulls.append_null();
            return;
        };
        let bytes = v.as_bytes();
        let short = ShortKey::of(bytes).map(|k| {
            let slot = (k.hash() >> (64 - RECENT_SLOTS.trailing_zeros())) as usize;
            (k, slot)
        });
        if let Some((k, slot)) = short
            && let Some(&(known, key)) = self.recent.get(slot)
            && key >= 0
            && known == k
        {
            self.keys.push(key);
            self.nulls.append_non_null();
            self.last = Some(key);
            return;
        }
        let key = match self.last {
            Some(k) if self.value(k) == Some(bytes) => Some(k),
            _ => {
                let hash = xxhash_rust::xxh3::xxh3_64(bytes);
                match self.index.get(&hash) {
                    Some(&k) if self.value(k) == Some(bytes) => Some(k),
                    _ => self.add(hash, bytes),
                }
            }
        };
        match key {
            Some(k) => {
                self.keys.push(k);
                self.nulls.append_non_null();
                self.last = Some(k);
                if let Some((short, slot)) = short
                    && let Some(place) = self.recent.get_mut(slot)
                {
                    *place = (short, k);
                }
            }
            // Past 2^31 bytes of distinct text (a file holds far less): a null.
            None => {
                self.keys.push(0);
                self.nulls.append_null();
            }
        }
    }

    fn add(&mut self, hash: u64, bytes: &[u8]) -> Option<i32> {
        let key = i32::try_from(self.offsets.len() - 1).ok()?;
        let end = i32::try_from(self.values.len() + bytes.len()).ok()?;
        self.values.extend_from_slice(bytes);
        self.offsets.push(end);
        self.index.insert(hash, key);
        Some(key)
    }

    fn bytes(&self) -> usize {
        self.keys.len() * 4 + self.values.len() + self.offsets.len() * 4
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    /// The column so far, as an array, and the builder emptied.
    fn finish(&mut self) -> ArrayRef {
        self.index.clear();
        self.last = None;
        self.recent.fill((ShortKey::default(), -1));
        let nulls = self.nulls.finish();
        dictionary_array(
            std::mem::take(&mut self.keys),
            nulls,
            std::mem::take(&mut self.values),
            std::mem::replace(&mut self.offsets, vec![0]),
        )
    }

    /// The column so far, as an array, the builder left as it is.
    fn finish_cloned(&self) -> ArrayRef {
        dictionary_array(
            self.keys.clone(),
            self.nulls.finish_cloned(),
            self.values.clone(),
            self.offsets.clone(),
        )
    }
}

fn dictionary_array(
    keys: Vec<i32>,
    nulls: Option<arrow_buffer::NullBuffer>,
    values: Vec<u8>,
    offsets: Vec<i32>,
) -> ArrayRef {
    let keys = Int32Array::new(keys.into(), nulls);
    // Offsets only grow and every text came from a `&str`: both checks pass.
    let built = StringArray::try_new(OffsetBuffer::new(offsets.into()), values.into(), None)
        .and_then(|values| DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values)));
    match built {
        Ok(a) => Arc::new(a),
        Err(_) => arrow_array::new_null_array(&crate::arrow::dictionary_type(), 0),
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
            TextBuilder::Dictionary(b) => b.finish(),
        }
    }
    fn finish_cloned(&self) -> ArrayRef {
        match self {
            TextBuilder::Plain(b) => Arc::new(b.finish_cloned()),
            TextBuilder::Dictionary(b) => b.finish_cloned(),
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

    proptest::proptest! {
        /// A dictionary column reads back as the texts appended, row by row, however
        /// its recent-value cache's 32 slots collide: texts from a two-letter alphabet
        /// (short, near the 24-byte key limit and past it) and nulls, over two files.
        #[test]
        fn dictionary_texts_read_back_as_appended(
            files in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::option::weighted(0.9, "[ab]{0,4}|[ab]{22,26}"),
                    0..300,
                ),
                2,
            ),
        ) {
            let mut b = DictionaryTexts::with_capacity(8);
            for rows in &files {
                for v in rows {
                    b.append(v.as_deref());
                }
                let array = b.finish();
                let dict = array
                    .as_any()
                    .downcast_ref::<DictionaryArray<Int32Type>>()
                    .expect("a dictionary");
                let values = dict
                    .values()
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .expect("text values");
                let got: Vec<Option<&str>> = dict
                    .keys()
                    .iter()
                    .map(|k| k.map(|k| values.value(k as usize)))
                    .collect();
                let want: Vec<Option<&str>> = rows.iter().map(|v| v.as_deref()).collect();
                proptest::prop_assert_eq!(got, want);
            }
        }
    }
}
