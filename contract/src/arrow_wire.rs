//! Appending wire batches (the codec's bytes) straight into the archive's columns
//! ([`WireColumns`]), without building an [`Event`] or an Arrow builder per row.
//!
//! A batch's texts are indices into its table of distinct texts. Here each table entry
//! is looked up in the file's texts ([`FileTexts`], one table for every dictionary
//! column) once per batch, the first time a row uses it; a row of a dictionary column
//! then costs one array read and a push. Text lists and label maps are kept as keys of
//! the same table and become text only when the file is finished. Plain text columns
//! (paths, ids) are copied from the batch, once per row. The materialized derived
//! columns are computed from the row's keys, each distinct input once per file
//! (`proc.cmdline` from `proc.name` and `proc.args`, `evt.res` from `evt.rawres`, ...).
//!
//! The result is what [`crate::arrow_columns::EventColumns`] builds from the decoded
//! events, column for column (a test holds them equal), at a fraction of the cost: the
//! archiver's hot path. A batch whose writer had another field list is decoded and
//! encoded again with ours first; a batch that does not decode appends nothing.
//!
//! ```
//! use lanner_contract::{arrow::schema, arrow_wire::WireColumns, codec, Event};
//! let bytes = codec::encode_batch(&[Event { proc_name: Some("bash".into()), ..Default::default() }]);
//! let mut cols = WireColumns::new();
//! assert_eq!(cols.append_batch(&bytes).unwrap(), 1);
//! assert!(cols.append_batch(&bytes[..bytes.len() - 1]).is_err());
//! let batch = cols.finish().unwrap();
//! assert_eq!((batch.num_rows(), batch.schema()), (1, schema()));
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::BuildHasherDefault;
use std::net::IpAddr;
use std::sync::Arc;

use arrow_array::Array as _;
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BooleanArray, DictionaryArray, Int32Array, Int64Array, ListArray, MapArray,
    RecordBatch, StringArray, StructArray, TimestampNanosecondArray, UInt64Array,
};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer};
use arrow_schema::{ArrowError, DataType};

use crate::arrow::DICTIONARY_COLUMNS;
use crate::codec::{self, CodecError};
use crate::model::{Event, Labels, StrList, Text, U64List, WireStored};
use crate::share::PtrHasher;
use crate::value::Timestamp;
use crate::wire::{RawTables, Reader};

type KeyMap<K> = HashMap<K, u32, BuildHasherDefault<PtrHasher>>;

/// A file's distinct texts, each once, found again by its xxh3 hash (bytes compared,
/// so a collision costs a second entry, never a wrong value). Every dictionary column
/// of the file uses this one table as its dictionary; the Parquet writer keeps of it
/// what each column uses.
pub(crate) struct FileTexts {
    values: Vec<u8>,
    offsets: Vec<i32>,
    index: HashMap<u64, u32, BuildHasherDefault<PtrHasher>>,
}

impl FileTexts {
    fn new() -> Self {
        FileTexts {
            values: Vec::new(),
            offsets: vec![0],
            index: HashMap::default(),
        }
    }

    /// The text of `key` (empty for a key this table never gave).
    fn get(&self, key: u32) -> &[u8] {
        let k = key as usize;
        match (self.offsets.get(k), self.offsets.get(k + 1)) {
            (Some(&s), Some(&e)) => self.values.get(s as usize..e as usize).unwrap_or_default(),
            _ => &[],
        }
    }

    /// The key of `text`, added when new; `None` past 2 GiB of distinct text (a file
    /// rolls long before).
    fn intern(&mut self, text: &[u8]) -> Option<u32> {
        let hash = xxhash_rust::xxh3::xxh3_64(text);
        if let Some(&k) = self.index.get(&hash)
            && self.get(k) == text
        {
            return Some(k);
        }
        let key = u32::try_from(self.offsets.len() - 1).ok()?;
        let end = i32::try_from(self.values.len() + text.len()).ok()?;
        self.values.extend_from_slice(text);
        self.offsets.push(end);
        self.index.insert(hash, key);
        Some(key)
    }

    fn bytes(&self) -> usize {
        self.values.len() + self.offsets.len() * 4
    }

    /// The texts as an array (the table emptied).
    fn take_array(&mut self) -> Result<StringArray, ArrowError> {
        self.index.clear();
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        let values = std::mem::take(&mut self.values);
        StringArray::try_new(OffsetBuffer::new(offsets.into()), values.into(), None)
    }
}

/// One bit per row (validity, or a boolean column's values).
#[derive(Default)]
pub(crate) struct Bits {
    words: Vec<u64>,
    len: usize,
}

impl Bits {
    fn with_capacity(rows: usize) -> Self {
        Bits {
            words: Vec::with_capacity(rows.div_ceil(64)),
            len: 0,
        }
    }

    #[inline]
    fn push(&mut self, v: bool) {
        let bit = self.len % 64;
        if bit == 0 {
            self.words.push(0);
        }
        if let Some(w) = self.words.last_mut() {
            *w |= u64::from(v) << bit;
        }
        self.len += 1;
    }

    fn last(&self) -> bool {
        match self.len.checked_sub(1) {
            Some(i) => self
                .words
                .get(i / 64)
                .is_some_and(|w| w >> (i % 64) & 1 == 1),
            None => false,
        }
    }

    fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        self.len = len;
        self.words.truncate(len.div_ceil(64));
        if !len.is_multiple_of(64)
            && let Some(w) = self.words.last_mut()
        {
            *w &= (1u64 << (len % 64)) - 1;
        }
    }

    fn take_buffer(&mut self) -> BooleanBuffer {
        let len = std::mem::take(&mut self.len);
        BooleanBuffer::new(Buffer::from_vec(std::mem::take(&mut self.words)), 0, len)
    }

    /// As validity: `None` when every row is valid.
    fn take_nulls(&mut self) -> Option<NullBuffer> {
        let nulls = NullBuffer::new(self.take_buffer());
        (nulls.null_count() > 0).then_some(nulls)
    }
}

/// A batch being appended: its bytes and tables, which of its texts the file knows.
pub(crate) struct Cx<'a> {
    bytes: &'a [u8],
    tables: &'a RawTables,
    /// Per entry of the batch's text table, its key in `texts` (`u32::MAX`: not yet
    /// looked up).
    remap: &'a mut [u32],
    texts: &'a mut FileTexts,
    ips: &'a mut KeyMap<IpAddr>,
}

impl<'a> Cx<'a> {
    /// Text `i` of the batch's table (checked against the table when read).
    #[inline]
    fn text(&self, i: usize) -> &'a [u8] {
        let bytes = self.bytes;
        self.tables
            .strings
            .get(i)
            .and_then(|&(s, e)| bytes.get(s as usize..e as usize))
            .unwrap_or_default()
    }

    /// The file key of text `i` of the batch's table.
    #[inline]
    fn key(&mut self, i: usize) -> Option<u32> {
        match self.remap.get(i) {
            Some(&k) if k != u32::MAX => Some(k),
            _ => self.key_slow(i),
        }
    }

    #[inline(never)]
    fn key_slow(&mut self, i: usize) -> Option<u32> {
        let k = self.texts.intern(self.text(i))?;
        if let Some(slot) = self.remap.get_mut(i) {
            *slot = k;
        }
        Some(k)
    }

    /// The file key of an address's text.
    fn ip_key(&mut self, ip: IpAddr) -> Option<u32> {
        if let Some(&k) = self.ips.get(&ip) {
            return Some(k);
        }
        let mut text = String::with_capacity(40);
        let _ = write!(text, "{ip}");
        let k = self.texts.intern(text.as_bytes())?;
        self.ips.insert(ip, k);
        Some(k)
    }
}

/// A text column: keys into the file's texts (a dictionary column) or the texts
/// themselves.
pub(crate) enum TextColumn {
    /// `Dictionary(Int32, Utf8)` over [`FileTexts`].
    Dictionary {
        /// Key per row (0 for a null).
        keys: Vec<i32>,
        /// Validity.
        valid: Bits,
    },
    /// `Utf8`.
    Plain {
        /// Where each row's text ends in `values` (after a leading 0).
        offsets: Vec<i32>,
        /// The texts.
        values: Vec<u8>,
        /// Validity.
        valid: Bits,
    },
}

impl TextColumn {
    fn new(column: &str, rows: usize) -> Self {
        if DICTIONARY_COLUMNS.contains(&column) {
            TextColumn::Dictionary {
                keys: Vec::with_capacity(rows),
                valid: Bits::with_capacity(rows),
            }
        } else {
            let mut offsets = Vec::with_capacity(rows + 1);
            offsets.push(0);
            TextColumn::Plain {
                offsets,
                values: Vec::with_capacity(rows * 8),
                valid: Bits::with_capacity(rows),
            }
        }
    }

    #[inline]
    fn push_null(&mut self) {
        match self {
            TextColumn::Dictionary { keys, valid } => {
                keys.push(0);
                valid.push(false);
            }
            TextColumn::Plain { offsets, valid, .. } => {
                let end = offsets.last().copied().unwrap_or(0);
                offsets.push(end);
                valid.push(false);
            }
        }
    }

    /// Appends the text of file key `key` (`None`: a null).
    #[inline]
    fn push_key(&mut self, key: Option<u32>, texts: &FileTexts) {
        match (self, key) {
            (TextColumn::Dictionary { keys, valid }, Some(k)) => {
                keys.push(k as i32);
                valid.push(true);
            }
            (this @ TextColumn::Plain { .. }, Some(k)) => this.push_text(texts.get(k)),
            (this, None) => this.push_null(),
        }
    }

    /// Appends text of a plain column; a dictionary column looks it up in `texts`.
    #[inline]
    fn push_bytes(&mut self, text: &[u8], texts: &mut FileTexts) {
        match self {
            TextColumn::Dictionary { .. } => {
                let k = texts.intern(text);
                self.push_key(k, texts);
            }
            TextColumn::Plain { .. } => self.push_text(text),
        }
    }

    /// Appends text to a plain column (a dictionary column gets a null).
    #[inline]
    fn push_text(&mut self, text: &[u8]) {
        match self {
            TextColumn::Plain {
                offsets,
                values,
                valid,
            } => match i32::try_from(values.len() + text.len()) {
                Ok(end) => {
                    values.extend_from_slice(text);
                    offsets.push(end);
                    valid.push(true);
                }
                // Past 2 GiB in one column (a file rolls long before): a null.
                Err(_) => self.push_null(),
            },
            TextColumn::Dictionary { .. } => self.push_null(),
        }
    }

    /// The last row's file key: its key, or for a plain column its text looked up.
    fn last_key(&self, texts: &mut FileTexts) -> Option<u32> {
        match self {
            TextColumn::Dictionary { keys, valid } => {
                valid.last().then(|| keys.last().map(|&k| k as u32))?
            }
            TextColumn::Plain { .. } => {
                let text = self.last_plain()?.to_vec();
                texts.intern(&text)
            }
        }
    }

    /// The last row's text in a plain column.
    fn last_plain(&self) -> Option<&[u8]> {
        match self {
            TextColumn::Plain {
                offsets,
                values,
                valid,
            } if valid.last() => {
                let n = offsets.len();
                let (s, e) = (*offsets.get(n.checked_sub(2)?)?, *offsets.get(n - 1)?);
                values.get(s as usize..e as usize)
            }
            _ => None,
        }
    }

    /// The last row's text, either kind.
    fn last_text<'s>(&'s self, texts: &'s FileTexts) -> Option<&'s [u8]> {
        match self {
            TextColumn::Dictionary { keys, valid } if valid.last() => {
                keys.last().map(|&k| texts.get(k as u32))
            }
            TextColumn::Dictionary { .. } => None,
            TextColumn::Plain { .. } => self.last_plain(),
        }
    }

    fn truncate(&mut self, rows: usize) {
        match self {
            TextColumn::Dictionary { keys, valid } => {
                keys.truncate(rows);
                valid.truncate(rows);
            }
            TextColumn::Plain {
                offsets,
                values,
                valid,
            } => {
                offsets.truncate(rows + 1);
                values.truncate(offsets.last().copied().unwrap_or(0) as usize);
                valid.truncate(rows);
            }
        }
    }

    fn bytes(&self) -> usize {
        match self {
            TextColumn::Dictionary { keys, .. } => keys.len() * 4,
            TextColumn::Plain {
                offsets, values, ..
            } => offsets.len() * 4 + values.len(),
        }
    }

    fn finish(&mut self, dictionary: &ArrayRef) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            TextColumn::Dictionary { keys, valid } => {
                let keys = Int32Array::new(std::mem::take(keys).into(), valid.take_nulls());
                Arc::new(DictionaryArray::<Int32Type>::try_new(
                    keys,
                    dictionary.clone(),
                )?)
            }
            TextColumn::Plain {
                offsets,
                values,
                valid,
            } => {
                let offsets = std::mem::replace(offsets, vec![0]);
                Arc::new(StringArray::try_new(
                    OffsetBuffer::new(offsets.into()),
                    std::mem::take(values).into(),
                    valid.take_nulls(),
                )?)
            }
        })
    }
}

/// A column of numbers.
pub(crate) struct NumberColumn<T> {
    values: Vec<T>,
    valid: Bits,
}

impl<T: Copy + Default> NumberColumn<T> {
    fn new(rows: usize) -> Self {
        NumberColumn {
            values: Vec::with_capacity(rows),
            valid: Bits::with_capacity(rows),
        }
    }

    #[inline]
    fn push(&mut self, v: T) {
        self.values.push(v);
        self.valid.push(true);
    }

    #[inline]
    fn push_null(&mut self) {
        self.values.push(T::default());
        self.valid.push(false);
    }

    fn last(&self) -> Option<T> {
        self.valid.last().then(|| self.values.last().copied())?
    }

    fn truncate(&mut self, rows: usize) {
        self.values.truncate(rows);
        self.valid.truncate(rows);
    }

    fn bytes(&self) -> usize {
        self.values.len() * std::mem::size_of::<T>()
    }
}

/// A list column: each row's entries are a range of `items` (keys of the file's
/// texts, or numbers).
pub(crate) struct ListColumn<T> {
    offsets: Vec<i32>,
    items: Vec<T>,
    valid: Bits,
}

impl<T: Copy> ListColumn<T> {
    fn new(rows: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        ListColumn {
            offsets,
            items: Vec::with_capacity(rows),
            valid: Bits::with_capacity(rows),
        }
    }

    /// Ends a row whose entries were pushed to `items` (a null beyond 2^31 entries).
    #[inline]
    fn end_row(&mut self) {
        match i32::try_from(self.items.len()) {
            Ok(end) => {
                self.offsets.push(end);
                self.valid.push(true);
            }
            Err(_) => {
                let end = self.offsets.last().copied().unwrap_or(0);
                self.items.truncate(end as usize);
                self.push_null();
            }
        }
    }

    #[inline]
    fn push_null(&mut self) {
        let end = self.offsets.last().copied().unwrap_or(0);
        self.offsets.push(end);
        self.valid.push(false);
    }

    /// The first entry of the last row.
    fn last_first(&self) -> Option<T> {
        if !self.valid.last() {
            return None;
        }
        let n = self.offsets.len();
        let (s, e) = (
            *self.offsets.get(n.checked_sub(2)?)?,
            *self.offsets.get(n - 1)?,
        );
        (s < e).then(|| self.items.get(s as usize).copied())?
    }

    fn truncate(&mut self, rows: usize) {
        self.offsets.truncate(rows + 1);
        self.items
            .truncate(self.offsets.last().copied().unwrap_or(0) as usize);
        self.valid.truncate(rows);
    }

    fn bytes(&self) -> usize {
        self.offsets.len() * 4 + self.items.len() * std::mem::size_of::<T>()
    }

    fn take(&mut self) -> (OffsetBuffer<i32>, Vec<T>, Option<NullBuffer>) {
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        (
            OffsetBuffer::new(offsets.into()),
            std::mem::take(&mut self.items),
            self.valid.take_nulls(),
        )
    }
}

/// Texts of `keys` (keys of the file's texts, held in `dictionary`), as a `Utf8`
/// array.
fn gather_texts(dictionary: &StringArray, keys: &[u32]) -> Result<StringArray, ArrowError> {
    let mut offsets = Vec::with_capacity(keys.len() + 1);
    offsets.push(0i32);
    let mut values = Vec::new();
    for &k in keys {
        if (k as usize) < dictionary.len() {
            values.extend_from_slice(dictionary.value(k as usize).as_bytes());
        }
        let end = i32::try_from(values.len())
            .map_err(|_| ArrowError::ComputeError("list texts exceed 2 GiB".into()))?;
        offsets.push(end);
    }
    StringArray::try_new(OffsetBuffer::new(offsets.into()), values.into(), None)
}

/// The data type of `column` in the archive schema.
fn column_type(column: &str) -> Result<DataType, ArrowError> {
    Ok(crate::arrow::schema()
        .field_with_name(column)?
        .data_type()
        .clone())
}

/// What finishing a file's columns needs: the file's texts as one array.
pub(crate) struct Finish {
    texts: StringArray,
    dictionary: ArrayRef,
}

/// How one stored field's Rust type moves from a batch into its column.
pub(crate) trait WireColumn {
    /// The column.
    type Column;
    /// An empty column for `column` with room for `rows` rows.
    fn column(column: &str, rows: usize) -> Self::Column;
    /// Reads one value and appends it.
    fn append(c: &mut Self::Column, r: &mut Reader<'_>, cx: &mut Cx<'_>) -> Result<(), CodecError>;
    /// Appends a null.
    fn append_null(c: &mut Self::Column);
    /// Keeps the first `rows` rows.
    fn truncate(c: &mut Self::Column, rows: usize);
    /// Bytes buffered.
    fn bytes(c: &Self::Column) -> usize;
    /// The column as an array of `column`'s type (emptied).
    fn finish(c: &mut Self::Column, column: &str, f: &Finish) -> Result<ArrayRef, ArrowError>;
}

impl WireColumn for Text {
    type Column = TextColumn;
    fn column(column: &str, rows: usize) -> TextColumn {
        TextColumn::new(column, rows)
    }
    #[inline(always)]
    fn append(c: &mut TextColumn, r: &mut Reader<'_>, cx: &mut Cx<'_>) -> Result<(), CodecError> {
        let i = r.text_index()?;
        match c {
            TextColumn::Dictionary { keys, valid } => match cx.key(i) {
                Some(k) => {
                    keys.push(k as i32);
                    valid.push(true);
                }
                None => c.push_null(),
            },
            TextColumn::Plain { .. } => c.push_text(cx.text(i)),
        }
        Ok(())
    }
    #[inline(always)]
    fn append_null(c: &mut TextColumn) {
        c.push_null();
    }
    fn truncate(c: &mut TextColumn, rows: usize) {
        c.truncate(rows);
    }
    fn bytes(c: &TextColumn) -> usize {
        c.bytes()
    }
    fn finish(c: &mut TextColumn, _: &str, f: &Finish) -> Result<ArrayRef, ArrowError> {
        c.finish(&f.dictionary)
    }
}

impl WireColumn for IpAddr {
    type Column = TextColumn;
    fn column(column: &str, rows: usize) -> TextColumn {
        TextColumn::new(column, rows)
    }
    #[inline(always)]
    fn append(c: &mut TextColumn, r: &mut Reader<'_>, cx: &mut Cx<'_>) -> Result<(), CodecError> {
        let ip = <IpAddr as crate::wire::Wire>::decode(r)?;
        match c {
            TextColumn::Dictionary { .. } => {
                let k = cx.ip_key(ip);
                c.push_key(k, cx.texts);
            }
            TextColumn::Plain { .. } => {
                let mut text = String::with_capacity(40);
                let _ = write!(text, "{ip}");
                c.push_text(text.as_bytes());
            }
        }
        Ok(())
    }
    #[inline(always)]
    fn append_null(c: &mut TextColumn) {
        c.push_null();
    }
    fn truncate(c: &mut TextColumn, rows: usize) {
        c.truncate(rows);
    }
    fn bytes(c: &TextColumn) -> usize {
        c.bytes()
    }
    fn finish(c: &mut TextColumn, _: &str, f: &Finish) -> Result<ArrayRef, ArrowError> {
        c.finish(&f.dictionary)
    }
}

/// The number types: their wire form read by their codec, stored as `Stored`.
macro_rules! number_column {
    ($ty:ty, $stored:ty, $to:expr, $array:expr) => {
        impl WireColumn for $ty {
            type Column = NumberColumn<$stored>;
            fn column(_: &str, rows: usize) -> Self::Column {
                NumberColumn::new(rows)
            }
            #[inline(always)]
            fn append(
                c: &mut Self::Column,
                r: &mut Reader<'_>,
                _: &mut Cx<'_>,
            ) -> Result<(), CodecError> {
                let v = <$ty as crate::wire::Wire>::decode(r)?;
                c.push($to(v));
                Ok(())
            }
            #[inline(always)]
            fn append_null(c: &mut Self::Column) {
                c.push_null();
            }
            fn truncate(c: &mut Self::Column, rows: usize) {
                c.truncate(rows);
            }
            fn bytes(c: &Self::Column) -> usize {
                c.bytes()
            }
            fn finish(c: &mut Self::Column, _: &str, _: &Finish) -> Result<ArrayRef, ArrowError> {
                let values = std::mem::take(&mut c.values);
                Ok(Arc::new($array(values, c.valid.take_nulls())))
            }
        }
    };
}

number_column!(u64, u64, |v| v, |v: Vec<u64>, n| UInt64Array::new(
    v.into(),
    n
));
number_column!(i64, i64, |v| v, |v: Vec<i64>, n| Int64Array::new(
    v.into(),
    n
));
number_column!(Timestamp, i64, |v: Timestamp| v.0, |v: Vec<i64>, n| {
    TimestampNanosecondArray::new(v.into(), n).with_timezone("UTC")
});

/// A boolean column: values and validity.
pub(crate) struct BoolColumn {
    values: Bits,
    valid: Bits,
}

impl WireColumn for bool {
    type Column = BoolColumn;
    fn column(_: &str, rows: usize) -> BoolColumn {
        BoolColumn {
            values: Bits::with_capacity(rows),
            valid: Bits::with_capacity(rows),
        }
    }
    #[inline(always)]
    fn append(c: &mut BoolColumn, r: &mut Reader<'_>, _: &mut Cx<'_>) -> Result<(), CodecError> {
        let v = <bool as crate::wire::Wire>::decode(r)?;
        c.values.push(v);
        c.valid.push(true);
        Ok(())
    }
    #[inline(always)]
    fn append_null(c: &mut BoolColumn) {
        c.values.push(false);
        c.valid.push(false);
    }
    fn truncate(c: &mut BoolColumn, rows: usize) {
        c.values.truncate(rows);
        c.valid.truncate(rows);
    }
    fn bytes(c: &BoolColumn) -> usize {
        c.values.len / 8
    }
    fn finish(c: &mut BoolColumn, _: &str, _: &Finish) -> Result<ArrayRef, ArrowError> {
        Ok(Arc::new(BooleanArray::new(
            c.values.take_buffer(),
            c.valid.take_nulls(),
        )))
    }
}

/// The item field of a list column's type.
fn list_field(column: &str) -> Result<arrow_schema::FieldRef, ArrowError> {
    match column_type(column)? {
        DataType::List(f) => Ok(f),
        other => Err(ArrowError::SchemaError(format!(
            "{column} is {other}, not a list"
        ))),
    }
}

impl WireColumn for StrList {
    type Column = ListColumn<u32>;
    fn column(_: &str, rows: usize) -> Self::Column {
        ListColumn::new(rows)
    }
    #[inline(always)]
    fn append(c: &mut Self::Column, r: &mut Reader<'_>, cx: &mut Cx<'_>) -> Result<(), CodecError> {
        let i = r.list_index()?;
        let tables = cx.tables;
        let (s, e) = tables.lists.get(i).copied().unwrap_or((0, 0));
        for &t in tables
            .list_items
            .get(s as usize..e as usize)
            .unwrap_or_default()
        {
            // A text the file's table cannot take (past 2 GiB) reads as empty.
            let k = cx.key(t as usize).unwrap_or(u32::MAX);
            c.items.push(k);
        }
        c.end_row();
        Ok(())
    }
    #[inline(always)]
    fn append_null(c: &mut Self::Column) {
        c.push_null();
    }
    fn truncate(c: &mut Self::Column, rows: usize) {
        c.truncate(rows);
    }
    fn bytes(c: &Self::Column) -> usize {
        c.bytes()
    }
    fn finish(c: &mut Self::Column, column: &str, f: &Finish) -> Result<ArrayRef, ArrowError> {
        let field = list_field(column)?;
        let (offsets, items, nulls) = c.take();
        let values = gather_texts(&f.texts, &items)?;
        Ok(Arc::new(ListArray::try_new(
            field,
            offsets,
            Arc::new(values),
            nulls,
        )?))
    }
}

impl WireColumn for U64List {
    type Column = ListColumn<u64>;
    fn column(_: &str, rows: usize) -> Self::Column {
        ListColumn::new(rows)
    }
    #[inline(always)]
    fn append(c: &mut Self::Column, r: &mut Reader<'_>, cx: &mut Cx<'_>) -> Result<(), CodecError> {
        let i = r.pid_list_index()?;
        let tables = cx.tables;
        let (s, e) = tables.pids.get(i).copied().unwrap_or((0, 0));
        c.items.extend_from_slice(
            tables
                .pid_items
                .get(s as usize..e as usize)
                .unwrap_or_default(),
        );
        c.end_row();
        Ok(())
    }
    #[inline(always)]
    fn append_null(c: &mut Self::Column) {
        c.push_null();
    }
    fn truncate(c: &mut Self::Column, rows: usize) {
        c.truncate(rows);
    }
    fn bytes(c: &Self::Column) -> usize {
        c.bytes()
    }
    fn finish(c: &mut Self::Column, column: &str, _: &Finish) -> Result<ArrayRef, ArrowError> {
        let field = list_field(column)?;
        let (offsets, items, nulls) = c.take();
        Ok(Arc::new(ListArray::try_new(
            field,
            offsets,
            Arc::new(UInt64Array::new(items.into(), None)),
            nulls,
        )?))
    }
}

impl WireColumn for Labels {
    type Column = ListColumn<(u32, u32)>;
    fn column(_: &str, rows: usize) -> Self::Column {
        ListColumn::new(rows)
    }
    #[inline(always)]
    fn append(c: &mut Self::Column, r: &mut Reader<'_>, cx: &mut Cx<'_>) -> Result<(), CodecError> {
        let i = r.map_index()?;
        let tables = cx.tables;
        let (s, e) = tables.maps.get(i).copied().unwrap_or((0, 0));
        for &(k, v) in tables
            .map_items
            .get(s as usize..e as usize)
            .unwrap_or_default()
        {
            let k = cx.key(k as usize).unwrap_or(u32::MAX);
            let v = cx.key(v as usize).unwrap_or(u32::MAX);
            c.items.push((k, v));
        }
        c.end_row();
        Ok(())
    }
    #[inline(always)]
    fn append_null(c: &mut Self::Column) {
        c.push_null();
    }
    fn truncate(c: &mut Self::Column, rows: usize) {
        c.truncate(rows);
    }
    fn bytes(c: &Self::Column) -> usize {
        c.bytes()
    }
    fn finish(c: &mut Self::Column, column: &str, f: &Finish) -> Result<ArrayRef, ArrowError> {
        let (entries_field, ordered) = match column_type(column)? {
            DataType::Map(f, ordered) => (f, ordered),
            other => {
                return Err(ArrowError::SchemaError(format!(
                    "{column} is {other}, not a map"
                )));
            }
        };
        let DataType::Struct(fields) = entries_field.data_type() else {
            return Err(ArrowError::SchemaError(format!(
                "{column}'s entries are not a struct"
            )));
        };
        let (offsets, items, nulls) = c.take();
        let keys: Vec<u32> = items.iter().map(|e| e.0).collect();
        let values: Vec<u32> = items.iter().map(|e| e.1).collect();
        let entries = StructArray::try_new(
            fields.clone(),
            vec![
                Arc::new(gather_texts(&f.texts, &keys)?),
                Arc::new(gather_texts(&f.texts, &values)?),
            ],
            None,
        )?;
        Ok(Arc::new(MapArray::try_new(
            entries_field.clone(),
            offsets,
            entries,
            nulls,
            ordered,
        )?))
    }
}

/// The materialized derived columns, in [`crate::arrow::MATERIALIZED`] order, and
/// what they were computed from before, per file.
struct Derived {
    cmdline: TextColumn,
    pname: TextColumn,
    pexe: TextColumn,
    pexepath: TextColumn,
    pcmdline: TextColumn,
    directory: TextColumn,
    filename: TextColumn,
    typechar: TextColumn,
    res: TextColumn,
    /// (`proc.name`, `proc.args`) keys, as one number → `proc.cmdline` key.
    cmdlines: KeyMap<usize>,
    /// `fd.type` key → `fd.typechar` key.
    typechars: KeyMap<usize>,
    /// `evt.rawres` (its bits) → `evt.res` key.
    results: KeyMap<usize>,
    /// The key of `directory` as an `fd.type`, once met.
    directory_type: Option<u32>,
}

impl Derived {
    fn new(rows: usize) -> Self {
        let col = |name: &str| TextColumn::new(name, rows);
        Derived {
            cmdline: col("proc_cmdline"),
            pname: col("proc_pname"),
            pexe: col("proc_pexe"),
            pexepath: col("proc_pexepath"),
            pcmdline: col("proc_pcmdline"),
            directory: col("fd_directory"),
            filename: col("fd_filename"),
            typechar: col("fd_typechar"),
            res: col("evt_res"),
            cmdlines: KeyMap::default(),
            typechars: KeyMap::default(),
            results: KeyMap::default(),
            directory_type: None,
        }
    }

    fn columns(&mut self) -> [&mut TextColumn; 9] {
        [
            &mut self.cmdline,
            &mut self.pname,
            &mut self.pexe,
            &mut self.pexepath,
            &mut self.pcmdline,
            &mut self.directory,
            &mut self.filename,
            &mut self.typechar,
            &mut self.res,
        ]
    }

    /// Appends the derived values of the row just appended to `s`.
    fn append(&mut self, s: &WireStored, texts: &mut FileTexts) {
        // proc.cmdline: `name args`, or `name` without arguments.
        match s.proc_name.last_key(texts) {
            Some(name) => {
                let args = s
                    .proc_args
                    .last_key(texts)
                    .filter(|&a| !texts.get(a).is_empty());
                let k = match args {
                    None => Some(name),
                    Some(args) => match self.cmdlines.get(&pair(name, args)) {
                        Some(&k) => Some(k),
                        None => {
                            let mut line = texts.get(name).to_vec();
                            line.push(b' ');
                            line.extend_from_slice(texts.get(args));
                            let k = texts.intern(&line);
                            if let Some(k) = k {
                                self.cmdlines.insert(pair(name, args), k);
                            }
                            k
                        }
                    },
                };
                self.cmdline.push_key(k, texts);
            }
            None => self.cmdline.push_null(),
        }
        // The parent's fields: the first ancestor's.
        for (col, list) in [
            (&mut self.pname, &s.proc_aname),
            (&mut self.pexe, &s.proc_aexe),
            (&mut self.pexepath, &s.proc_aexepath),
            (&mut self.pcmdline, &s.proc_acmdline),
        ] {
            col.push_key(list.last_first().filter(|&k| k != u32::MAX), texts);
        }
        // fd.directory and fd.filename from fd.name (a directory is its own directory).
        let fd_type = s.fd_type.last_key(texts);
        if self.directory_type.is_none() && fd_type.is_some_and(|k| texts.get(k) == b"directory") {
            self.directory_type = fd_type;
        }
        let is_directory = fd_type.is_some() && fd_type == self.directory_type;
        let owned;
        let name: Option<&[u8]> = match &s.fd_name {
            TextColumn::Plain { .. } => s.fd_name.last_plain(),
            TextColumn::Dictionary { .. } => {
                owned = s.fd_name.last_text(texts).map(<[u8]>::to_vec);
                owned.as_deref()
            }
        };
        let split = name
            .and_then(|n| std::str::from_utf8(n).ok())
            .and_then(|n| {
                if is_directory {
                    None
                } else {
                    crate::render::split_path(n)
                }
            });
        match (name, split) {
            (Some(n), _) if is_directory => {
                self.directory.push_bytes(n, texts);
                self.filename.push_null();
            }
            (Some(_), Some((dir, file))) => {
                self.directory.push_bytes(dir.as_bytes(), texts);
                self.filename.push_bytes(file.as_bytes(), texts);
            }
            _ => {
                self.directory.push_null();
                self.filename.push_null();
            }
        }
        // fd.typechar.
        let k = fd_type.and_then(|t| match self.typechars.get(&(t as usize)) {
            Some(&k) => Some(k),
            None => {
                let text = std::str::from_utf8(texts.get(t)).unwrap_or_default();
                let k = texts.intern(crate::render::typechar(text).as_bytes())?;
                self.typechars.insert(t as usize, k);
                Some(k)
            }
        });
        self.typechar.push_key(k, texts);
        // evt.res.
        let k = s
            .evt_rawres
            .last()
            .and_then(|r| match self.results.get(&(r as usize)) {
                Some(&k) => Some(k),
                None => {
                    let k = texts.intern(crate::render::res_name(r).as_bytes())?;
                    self.results.insert(r as usize, k);
                    Some(k)
                }
            });
        self.res.push_key(k, texts);
    }

    /// Forgets the keys of a finished file's texts.
    fn forget(&mut self) {
        self.cmdlines.clear();
        self.typechars.clear();
        self.results.clear();
        self.directory_type = None;
    }
}

/// Two keys as one map key (hashed as one word: see [`PtrHasher`]); a 64-bit word
/// holds both, and an `evt.rawres`.
const _: () = assert!(
    usize::BITS == 64,
    "map keys pack two u32 or an i64 in a usize"
);
fn pair(a: u32, b: u32) -> usize {
    ((a as usize) << 32) | b as usize
}

/// Events appended from wire batches, column by column, in the archive schema. See
/// the module docs.
pub struct WireColumns {
    stored: Box<WireStored>,
    derived: Derived,
    texts: FileTexts,
    ips: KeyMap<IpAddr>,
    /// The current batch's tables, and its texts' file keys.
    tables: RawTables,
    remap: Vec<u32>,
    rows: usize,
}

impl Default for WireColumns {
    fn default() -> Self {
        Self::new()
    }
}

impl WireColumns {
    /// Empty columns.
    pub fn new() -> Self {
        Self::with_capacity(1024)
    }

    /// Empty columns with room for `rows` rows before growing.
    pub fn with_capacity(rows: usize) -> Self {
        WireColumns {
            stored: Box::new(WireStored::new(rows)),
            derived: Derived::new(rows),
            texts: FileTexts::new(),
            ips: KeyMap::default(),
            tables: RawTables::default(),
            remap: Vec::new(),
            rows: 0,
        }
    }

    /// Rows appended since the last [`WireColumns::finish`].
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no rows are buffered.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Bytes the buffered rows take (an estimate for rolling files by size: values,
    /// keys, offsets and the file's texts, not validity or spare capacity).
    pub fn buffered_bytes(&mut self) -> usize {
        self.stored.bytes()
            + self
                .derived
                .columns()
                .iter()
                .map(|c| c.bytes())
                .sum::<usize>()
            + self.texts.bytes()
    }

    /// Appends every event of a batch; returns how many. A batch that does not decode
    /// appends nothing (the error says why, as [`codec::decode_batch`] would).
    pub fn append_batch(&mut self, bytes: &[u8]) -> Result<usize, CodecError> {
        let rows = self.rows;
        match self.append_own(bytes) {
            Ok(Some(n)) => Ok(n),
            // Another writer's field list: through events, into ours.
            Ok(None) => {
                let events = codec::decode_batch(bytes)?;
                self.append_events(&events)
            }
            Err(e) => {
                self.truncate(rows);
                Err(e)
            }
        }
    }

    /// Appends events (encoded first: the one path into the columns).
    pub fn append_events(&mut self, events: &[Event]) -> Result<usize, CodecError> {
        let rows = self.rows;
        let bytes = codec::encode_batch(events);
        match self.append_own(&bytes) {
            Ok(Some(n)) => Ok(n),
            Ok(None) => Err(CodecError::Invalid {
                at: 0,
                what: "encoded batch lacks this crate's field list",
            }),
            Err(e) => {
                self.truncate(rows);
                Err(e)
            }
        }
    }

    /// Appends a batch written with this crate's field list; `None` (nothing appended)
    /// for another. On an error some rows may be half appended: the caller truncates.
    fn append_own(&mut self, bytes: &[u8]) -> Result<Option<usize>, CodecError> {
        let (mut r, own, count) = codec::open_raw(bytes, &mut self.tables)?;
        if !own {
            return Ok(None);
        }
        self.remap.clear();
        self.remap.resize(self.tables.strings.len(), u32::MAX);
        let mut cx = Cx {
            bytes: r.bytes(),
            tables: &self.tables,
            remap: &mut self.remap,
            texts: &mut self.texts,
            ips: &mut self.ips,
        };
        for _ in 0..count {
            let end = r.event_start()?;
            self.stored.append_event(&mut r, &mut cx)?;
            r.event_end(end)?;
            self.derived.append(&self.stored, cx.texts);
            self.rows += 1;
        }
        if r.remaining() != 0 {
            return Err(CodecError::TrailingBytes(r.remaining()));
        }
        Ok(Some(count))
    }

    /// Keeps the first `rows` rows (the file's texts stay: unused ones cost nothing in
    /// the file).
    fn truncate(&mut self, rows: usize) {
        self.stored.truncate(rows);
        for c in self.derived.columns() {
            c.truncate(rows);
        }
        self.rows = rows;
    }

    /// Takes the buffered rows as one record batch of [`crate::arrow::schema`] and starts
    /// over empty.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let texts = self.texts.take_array()?;
        self.ips.clear();
        self.derived.forget();
        let f = Finish {
            dictionary: Arc::new(texts.clone()),
            texts,
        };
        let mut columns = self.stored.finish(&f)?;
        for c in self.derived.columns() {
            columns.push(c.finish(&f.dictionary)?);
        }
        self.rows = 0;
        crate::arrow::batch_of(columns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrow_columns::EventColumns;
    use crate::synth::Synth;
    use std::collections::BTreeMap;

    fn odd_events() -> Vec<Event> {
        vec![
            Event::default(),
            Event {
                proc_name: Some("sh".into()),
                proc_args: Some("".into()),
                fd_sip: Some("::1".parse().expect("ip")),
                fd_cip: Some("10.1.2.3".parse().expect("ip")),
                evt_rawres: Some(-2),
                fd_type: Some("directory".into()),
                fd_name: Some("/etc".into()),
                proc_aname: Some(vec![].into()),
                proc_apid: Some(vec![].into()),
                container_labels: Some(Arc::new(BTreeMap::new())),
                ..Default::default()
            },
            Event {
                proc_name: Some("a-name-longer-than-twenty-three-bytes".into()),
                proc_args: Some("-c 'x y'".into()),
                fd_type: Some("file".into()),
                fd_name: Some("relative/path".into()),
                evt_rawres: Some(i64::MIN),
                fd_connected: Some(false),
                proc_apid: Some(vec![u64::MAX, 0].into()),
                ..Default::default()
            },
            Event {
                fd_type: Some("file".into()),
                fd_name: Some("/".into()),
                proc_aname: Some(vec!["".into(), "init".into()].into()),
                container_labels: Some(Arc::new(BTreeMap::from([
                    ("b".into(), "2".into()),
                    ("a".into(), "".into()),
                ]))),
                ..Default::default()
            },
        ]
    }

    #[test]
    fn columns_equal_those_built_from_decoded_events() {
        let mut events: Vec<Event> = Synth::new(5, "n").take(1500).collect();
        events.extend(odd_events());
        let mut wire = WireColumns::with_capacity(16);
        let mut reference = EventColumns::with_capacity(16);
        // Two files: finishing leaves the columns ready for the next one.
        for _ in 0..2 {
            for chunk in events.chunks(333) {
                let bytes = codec::encode_batch(chunk);
                assert_eq!(wire.append_batch(&bytes).expect("appends"), chunk.len());
                reference.extend(chunk);
            }
            assert_eq!(wire.len(), events.len());
            let got = wire.finish().expect("batch");
            let want = reference.finish().expect("reference");
            for (i, field) in want.schema().fields().iter().enumerate() {
                assert_eq!(
                    got.column(i).as_ref(),
                    want.column(i).as_ref(),
                    "column {}",
                    field.name()
                );
            }
            assert_eq!(got, want);
            assert!(wire.is_empty());
        }
    }

    #[test]
    fn a_bad_batch_appends_nothing() {
        let events: Vec<Event> = Synth::new(9, "n").take(200).collect();
        let good = codec::encode_batch(&events[..100]);
        let mut wire = WireColumns::new();
        wire.append_batch(&good).expect("appends");
        let bytes = codec::encode_batch(&events[100..]);
        // Every cut and a flipped byte in the event section: an error, nothing kept.
        let mut rejected = 0;
        for cut in (bytes.len() / 2..bytes.len()).step_by(7) {
            assert!(wire.append_batch(&bytes[..cut]).is_err());
            rejected += 1;
        }
        for at in (bytes.len() / 2..bytes.len()).step_by(13) {
            let mut bad = bytes.clone();
            bad[at] ^= 0xff;
            let decoded = codec::decode_batch(&bad);
            match wire.append_batch(&bad) {
                Ok(n) => {
                    // The flip made another valid batch: as the decoder reads it.
                    let ev = decoded.expect("the decoder agrees");
                    assert_eq!(n, ev.len());
                    wire.truncate(100);
                }
                Err(e) => {
                    assert!(decoded.is_err(), "wire rejects what decodes: {e}");
                    rejected += 1;
                }
            }
        }
        assert!(rejected > 10);
        assert_eq!(wire.len(), 100);
        let mut reference = EventColumns::new();
        reference.extend(&events[..100]);
        assert_eq!(
            wire.finish().expect("batch"),
            reference.finish().expect("ref")
        );
    }

    proptest::proptest! {
        /// Any mix of the fields the derived columns are computed from (empty and
        /// repeated texts, relative paths, directories, any result, lists and maps
        /// with empty texts), split into batches anywhere: the same columns as built
        /// from the decoded events.
        #[test]
        fn any_events_build_the_columns_decoding_builds(
            rows in proptest::collection::vec(
                (
                    proptest::option::of("[ab ]{0,3}"),
                    proptest::option::of("[ab ]{0,3}"),
                    proptest::option::of("(/?[ab]{0,2}){0,3}"),
                    proptest::option::of(proptest::sample::select(vec!["file", "directory", "ipv4", "x"])),
                    proptest::option::of(proptest::prelude::any::<i64>()),
                    proptest::option::of(proptest::collection::vec("[ab]{0,2}", 0..3)),
                    proptest::option::of(proptest::collection::btree_map("[ab]{0,2}", "[ab]{0,2}", 0..3)),
                    proptest::option::of(proptest::prelude::any::<[u8; 4]>()),
                    proptest::option::of(proptest::prelude::any::<bool>()),
                ),
                0..40,
            ),
            split in 0usize..40,
        ) {
            let events: Vec<Event> = rows
                .into_iter()
                .map(|(name, args, path, fd_type, res, aname, labels, ip, b)| Event {
                    proc_name: name.map(Into::into),
                    proc_args: args.map(Into::into),
                    fd_name: path.map(Into::into),
                    fd_type: fd_type.map(Into::into),
                    evt_rawres: res,
                    proc_aname: aname.map(|l| l.into_iter().map(Text::from).collect::<Vec<_>>().into()),
                    container_labels: labels.map(|m| {
                        Arc::new(m.into_iter().map(|(k, v)| (Text::from(k), Text::from(v))).collect())
                    }),
                    fd_sip: ip.map(IpAddr::from),
                    fd_connected: b,
                    ..Default::default()
                })
                .collect();
            let split = split.min(events.len());
            let mut wire = WireColumns::new();
            for part in [&events[..split], &events[split..]] {
                wire.append_batch(&codec::encode_batch(part)).expect("appends");
            }
            let mut reference = EventColumns::new();
            reference.extend(&events);
            proptest::prop_assert_eq!(wire.finish().expect("batch"), reference.finish().expect("ref"));
        }
    }
}
