//! Writing a text column held as an Arrow dictionary straight into a Parquet column
//! chunk, without looking at any row's text; and a list of texts with one hash per
//! element.
//!
//! parquet's `ArrowWriter` encodes a `Dictionary(Int32, Utf8)` array row by row: it
//! looks each row's text up in a dictionary of its own (hashing it), and compares it with
//! the page's smallest and largest text for the statistics. The archive's dictionary
//! columns hold ~26 values per event, and that work came to ~9.5 k instructions per event,
//! a quarter of the archiver's whole cost. Here the array's dictionary is sorted once
//! (only the values some row uses, each distinct text once) and becomes the chunk's
//! dictionary page; each row costs a key lookup, and since a smaller key is a smaller text
//! in a sorted dictionary, a page's statistics are its smallest and largest key.
//!
//! The chunk is what parquet's writer would produce for the column with dictionary
//! encoding on: a `PLAIN` dictionary page (flagged sorted), version 1 data pages of
//! `RLE`-encoded definition levels and `RLE_DICTIONARY` keys, zstd-compressed, with
//! statistics for the chunk and every page (the column index), the offset index, and a
//! bloom filter when asked, sized by the distinct values. It is spliced into a row group
//! with `SerializedRowGroupWriter::append_column`.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, DictionaryArray, ListArray};
use bytes::Bytes;
use lanner_contract::share::PtrHasher;
use parquet::basic::{Compression, Encoding, EncodingMask, PageType, ZstdLevel};
use parquet::bloom_filter::Sbbf;
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::errors::ParquetError;
use parquet::file::metadata::{
    ColumnChunkMetaData, ColumnIndexBuilder, OffsetIndexBuilder, PageEncodingStats,
};
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

use crate::rle;

/// How chunks are written.
#[derive(Clone, Debug)]
pub struct ChunkOptions {
    /// zstd level of every page.
    pub zstd_level: i32,
    /// Rows per data page (parquet's default is 20 000).
    pub page_rows: usize,
    /// Longest statistics value; longer ones are cut (the maximum then raised so it
    /// still bounds), as parquet does with its default of 64 bytes.
    pub truncate_stats: usize,
    /// Bloom filter false-positive probability, when the column has one.
    pub bloom_fpp: Option<f64>,
}

/// One encoded column chunk, ready to be appended to a row group.
pub struct DictionaryChunk {
    /// The chunk's pages, as they go into the file.
    pub bytes: Bytes,
    /// Its metadata, indexes and bloom filter.
    pub close: ColumnCloseResult,
}

/// Writes chunks, reusing its compressor and buffers from one to the next.
pub struct ChunkWriter {
    opts: ChunkOptions,
    zstd: zstd::bulk::Compressor<'static>,
    remap: Vec<u32>,
    keys: Vec<u32>,
    levels: Vec<u32>,
    page: Vec<u8>,
    /// A list column's repetition and definition levels and keys ([`u32::MAX`] where an
    /// entry has no text), one per entry, and where each row's entries start.
    list_rep: Vec<u32>,
    list_def: Vec<u32>,
    list_keys: Vec<u32>,
    row_starts: Vec<usize>,
}

impl ChunkWriter {
    /// A writer with `opts`.
    pub fn new(opts: ChunkOptions) -> Result<Self, ParquetError> {
        let zstd = zstd::bulk::Compressor::new(opts.zstd_level)
            .map_err(|e| ParquetError::General(format!("zstd: {e}")))?;
        Ok(ChunkWriter {
            opts,
            zstd,
            remap: Vec::new(),
            keys: Vec::new(),
            levels: Vec::new(),
            page: Vec::new(),
            list_rep: Vec::new(),
            list_def: Vec::new(),
            list_keys: Vec::new(),
            row_starts: Vec::new(),
        })
    }

    /// Sets the bloom filter false-positive probability of the next chunks (`None`: no
    /// bloom filter).
    pub fn set_bloom_fpp(&mut self, fpp: Option<f64>) {
        self.opts.bloom_fpp = fpp;
    }

    /// Encodes `array` as the column chunk of `descr`: a dictionary of `Utf8` (a flat,
    /// optional or required `BYTE_ARRAY` leaf) or a list of `Utf8`. `None` for any other
    /// array, or one without a text at all: parquet's own writer then takes the column.
    pub fn write(
        &mut self,
        descr: &ColumnDescPtr,
        array: &dyn Array,
    ) -> Result<Option<DictionaryChunk>, ParquetError> {
        if let Some(list) = array.as_list_opt::<i32>() {
            return self.write_list(descr, list);
        }
        let Some(array) = array.as_dictionary_opt::<Int32Type>() else {
            return Ok(None);
        };
        if descr.max_rep_level() != 0 || descr.max_def_level() > 1 {
            return Ok(None);
        }
        let Some(dict) = self.sorted_dictionary(array) else {
            return Ok(None);
        };
        if descr.max_def_level() == 0 && self.remapped_nulls(array) > 0 {
            return Err(ParquetError::General(format!(
                "column {} is required but has nulls",
                descr.path()
            )));
        }
        self.assemble(descr, &dict, Source::Flat(array)).map(Some)
    }

    /// A list of texts (`optional group (LIST) { repeated group list { optional binary
    /// element } }`): repetition and definition levels per element, the texts hashed
    /// once each into the chunk's dictionary.
    fn write_list(
        &mut self,
        descr: &ColumnDescPtr,
        list: &ListArray,
    ) -> Result<Option<DictionaryChunk>, ParquetError> {
        if descr.max_rep_level() != 1 || descr.max_def_level() != 3 {
            return Ok(None);
        }
        let Some(values) = list.values().as_string_opt::<i32>() else {
            return Ok(None);
        };
        let mut seen: HashMap<u64, u32, BuildHasherDefault<PtrHasher>> = HashMap::default();
        let mut distinct: Vec<&str> = Vec::new();
        self.list_rep.clear();
        self.list_def.clear();
        self.list_keys.clear();
        self.row_starts.clear();
        let offsets = list.value_offsets();
        for i in 0..list.len() {
            self.row_starts.push(self.list_rep.len());
            let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
            if list.is_null(i) || start == end {
                self.list_rep.push(0);
                self.list_def.push(u32::from(!list.is_null(i)));
                self.list_keys.push(u32::MAX);
                continue;
            }
            for j in start..end {
                self.list_rep.push(u32::from(j > start));
                if values.is_null(j) {
                    self.list_def.push(2);
                    self.list_keys.push(u32::MAX);
                    continue;
                }
                let v = values.value(j);
                let hash = xxhash_rust::xxh3::xxh3_64(v.as_bytes());
                let key = match seen.get(&hash) {
                    Some(&k) if distinct.get(k as usize) == Some(&v) => k,
                    _ => {
                        distinct.push(v);
                        let k = distinct.len() as u32 - 1;
                        seen.insert(hash, k);
                        k
                    }
                };
                self.list_def.push(3);
                self.list_keys.push(key);
            }
        }
        self.row_starts.push(self.list_rep.len());
        if distinct.is_empty() {
            return Ok(None);
        }
        // Sorted and distinct (a hash collision may have added a text twice).
        let mut order: Vec<u32> = (0..distinct.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| distinct[a as usize].cmp(distinct[b as usize]));
        self.remap.clear();
        self.remap.resize(distinct.len(), u32::MAX);
        let mut sorted: Vec<&str> = Vec::with_capacity(distinct.len());
        let mut bytes = Vec::new();
        for k in order {
            let v = distinct[k as usize];
            if sorted.last() != Some(&v) {
                sorted.push(v);
                bytes.extend_from_slice(&(v.len() as u32).to_le_bytes());
                bytes.extend_from_slice(v.as_bytes());
            }
            self.remap[k as usize] = sorted.len() as u32 - 1;
        }
        for k in self.list_keys.iter_mut().filter(|k| **k != u32::MAX) {
            *k = self.remap[*k as usize];
        }
        let dict = SortedDictionary {
            values: sorted,
            bytes,
        };
        self.assemble(descr, &dict, Source::List(list.len()))
            .map(Some)
    }

    /// Writes the dictionary page and the data pages of `source`'s rows, with their
    /// statistics and indexes.
    fn assemble(
        &mut self,
        descr: &ColumnDescPtr,
        dict: &SortedDictionary<'_>,
        source: Source<'_>,
    ) -> Result<DictionaryChunk, ParquetError> {
        let rows = match source {
            Source::Flat(a) => a.len(),
            Source::List(rows) => rows,
        };
        let mut sink = TrackedWrite::new(Vec::with_capacity(rows + dict.bytes.len() / 4));
        let mut pages = SerializedPageWriter::new(&mut sink);

        // The dictionary page: each value as a 4-byte length and its bytes.
        let dict_page = compress(&mut self.zstd, &dict.bytes)?;
        let spec = pages.write_page(CompressedPage::new(
            Page::DictionaryPage {
                buf: dict_page,
                num_values: dict.values.len() as u32,
                encoding: Encoding::PLAIN,
                is_sorted: true,
            },
            dict.bytes.len(),
        ))?;
        let mut compressed = spec.compressed_size as i64;
        let mut uncompressed = spec.uncompressed_size as i64;
        let dict_offset = spec.offset as i64;

        let bit_width = rle::bit_width(dict.values.len().saturating_sub(1) as u64).max(1);
        let mut column_index = ColumnIndexBuilder::new(descr.physical_type());
        let mut offset_index = OffsetIndexBuilder::new();
        let (mut min, mut max, mut nulls) = (u32::MAX, 0u32, 0i64);
        let mut data_offset = None;
        let mut data_pages = 0;
        let mut num_values = 0i64;
        let page_rows = self.opts.page_rows.max(1);
        let mut start = 0;
        while start < rows {
            let end = (start + page_rows).min(rows);
            let (page, entries) = match source {
                Source::Flat(array) => (
                    self.data_page(array, start..end, descr.max_def_level() > 0, bit_width),
                    end - start,
                ),
                Source::List(_) => {
                    let entries = self.row_starts[start]..self.row_starts[end];
                    let n = entries.len();
                    (self.list_page(entries, bit_width), n)
                }
            };
            num_values += entries as i64;
            let page_nulls = page.nulls as i64;
            let buf = compress(&mut self.zstd, &self.page)?;
            let spec = pages.write_page(CompressedPage::new(
                Page::DataPage {
                    buf,
                    num_values: entries as u32,
                    encoding: Encoding::RLE_DICTIONARY,
                    def_level_encoding: Encoding::RLE,
                    rep_level_encoding: Encoding::RLE,
                    statistics: None,
                },
                self.page.len(),
            ))?;
            data_offset.get_or_insert(spec.offset as i64);
            data_pages += 1;
            compressed += spec.compressed_size as i64;
            uncompressed += spec.uncompressed_size as i64;
            offset_index.append_offset_and_size(spec.offset as i64, spec.compressed_size as i32);
            offset_index.append_row_count((end - start) as i64);
            match page.range {
                Some((lo, hi)) => {
                    let (lo_bytes, _) = truncate_min(dict.value(lo), self.opts.truncate_stats);
                    let (hi_bytes, _) = truncate_max(dict.value(hi), self.opts.truncate_stats);
                    column_index.append(false, lo_bytes, hi_bytes, page_nulls);
                    min = min.min(lo);
                    max = max.max(hi);
                }
                None => column_index.append(true, Vec::new(), Vec::new(), page_nulls),
            }
            nulls += page_nulls;
            start = end;
        }
        pages.close()?;
        let bytes = Bytes::from(sink.into_inner()?);

        let (lo, lo_cut) = truncate_min(dict.value(min), self.opts.truncate_stats);
        let (hi, hi_cut) = truncate_max(dict.value(max), self.opts.truncate_stats);
        let statistics = Statistics::ByteArray(
            ValueStatistics::new(
                Some(ByteArray::from(lo)),
                Some(ByteArray::from(hi)),
                None,
                Some(nulls as u64),
                false,
            )
            .with_min_is_exact(!lo_cut)
            .with_max_is_exact(!hi_cut),
        );
        let level = ZstdLevel::try_new(self.opts.zstd_level)?;
        let metadata = ColumnChunkMetaData::builder(descr.clone())
            .set_compression(Compression::ZSTD(level))
            .set_encodings_mask(EncodingMask::new_from_encodings(
                [Encoding::PLAIN, Encoding::RLE, Encoding::RLE_DICTIONARY].iter(),
            ))
            .set_page_encoding_stats(vec![
                PageEncodingStats {
                    page_type: PageType::DICTIONARY_PAGE,
                    encoding: Encoding::PLAIN,
                    count: 1,
                },
                PageEncodingStats {
                    page_type: PageType::DATA_PAGE,
                    encoding: Encoding::RLE_DICTIONARY,
                    count: data_pages,
                },
            ])
            .set_total_compressed_size(compressed)
            .set_total_uncompressed_size(uncompressed)
            .set_num_values(num_values)
            .set_data_page_offset(data_offset.unwrap_or(dict_offset))
            .set_dictionary_page_offset(Some(dict_offset))
            .set_statistics(statistics)
            .build()?;
        let bloom_filter = match self.opts.bloom_fpp {
            Some(fpp) => {
                let mut f = Sbbf::new_with_ndv_fpp(dict.values.len() as u64, fpp)?;
                for v in &dict.values {
                    f.insert(v.as_bytes());
                }
                Some(f)
            }
            None => None,
        };
        Ok(DictionaryChunk {
            close: ColumnCloseResult {
                bytes_written: bytes.len() as u64,
                rows_written: rows as u64,
                metadata,
                bloom_filter,
                column_index: Some(column_index.build()?),
                offset_index: Some(offset_index.build()),
            },
            bytes,
        })
    }

    /// Encodes list entries `range` (whole rows) as an uncompressed version 1 data page
    /// into `self.page`: repetition levels, definition levels, then the keys.
    fn list_page(&mut self, range: std::ops::Range<usize>, bit_width: u8) -> PageFacts {
        self.page.clear();
        for (levels, width) in [(&self.list_rep, 1), (&self.list_def, 2)] {
            let at = self.page.len();
            self.page.extend_from_slice(&[0; 4]);
            rle::encode(&levels[range.clone()], width, &mut self.page);
            let len = (self.page.len() - at - 4) as u32;
            self.page[at..at + 4].copy_from_slice(&len.to_le_bytes());
        }
        self.keys.clear();
        let (mut lo, mut hi) = (u32::MAX, 0u32);
        for &k in &self.list_keys[range.clone()] {
            if k != u32::MAX {
                self.keys.push(k);
                lo = lo.min(k);
                hi = hi.max(k);
            }
        }
        self.page.push(bit_width);
        rle::encode(&self.keys, bit_width, &mut self.page);
        PageFacts {
            nulls: range.len() - self.keys.len(),
            range: (!self.keys.is_empty()).then_some((lo, hi)),
        }
    }

    /// The distinct texts the rows use, sorted, as a dictionary page's bytes; fills
    /// `self.remap` (array key → position in the sorted texts, `u32::MAX` for a key no
    /// row uses). `None` when no row has a value or the values are not `Utf8`.
    fn sorted_dictionary<'a>(
        &mut self,
        array: &'a DictionaryArray<Int32Type>,
    ) -> Option<SortedDictionary<'a>> {
        let values = array.values().as_string_opt::<i32>()?;
        self.remap.clear();
        self.remap.resize(values.len(), u32::MAX);
        const USED: u32 = u32::MAX - 1;
        let keys = array.keys();
        for (i, &k) in keys.values().iter().enumerate() {
            if keys.is_valid(i)
                && let Some(slot) = self.remap.get_mut(k as usize)
                && values.is_valid(k as usize)
            {
                *slot = USED;
            }
        }
        let mut used: Vec<u32> = (0..values.len() as u32)
            .filter(|&k| self.remap[k as usize] == USED)
            .collect();
        if used.is_empty() {
            return None;
        }
        used.sort_unstable_by(|&a, &b| values.value(a as usize).cmp(values.value(b as usize)));
        let mut sorted: Vec<&'a str> = Vec::with_capacity(used.len());
        let mut bytes = Vec::new();
        for k in used {
            let v = values.value(k as usize);
            if sorted.last() != Some(&v) {
                sorted.push(v);
                bytes.extend_from_slice(&(v.len() as u32).to_le_bytes());
                bytes.extend_from_slice(v.as_bytes());
            }
            self.remap[k as usize] = sorted.len() as u32 - 1;
        }
        Some(SortedDictionary {
            values: sorted,
            bytes,
        })
    }

    /// Rows whose value is null after remapping (null key, or a key to a null value).
    fn remapped_nulls(&self, array: &DictionaryArray<Int32Type>) -> usize {
        let keys = array.keys();
        (0..keys.len())
            .filter(|&i| self.present(keys, i).is_none())
            .count()
    }

    /// The sorted-dictionary key of row `i`, if it has a value.
    #[inline]
    fn present(&self, keys: &arrow_array::Int32Array, i: usize) -> Option<u32> {
        if !keys.is_valid(i) {
            return None;
        }
        let k = *self.remap.get(*keys.values().get(i)? as usize)?;
        (k < u32::MAX - 1).then_some(k)
    }

    /// Encodes rows `range` as an uncompressed version 1 data page into `self.page`.
    fn data_page(
        &mut self,
        array: &DictionaryArray<Int32Type>,
        range: std::ops::Range<usize>,
        optional: bool,
        bit_width: u8,
    ) -> PageFacts {
        let keys = array.keys();
        self.keys.clear();
        self.levels.clear();
        let (mut lo, mut hi) = (u32::MAX, 0u32);
        let mut nulls = 0;
        if keys.null_count() == 0 && array.values().null_count() == 0 {
            // Every key is valid and maps to a used value.
            let raw = &keys.values()[range.clone()];
            self.keys.extend(raw.iter().map(|&k| {
                let k = self.remap.get(k as usize).copied().unwrap_or(0);
                lo = lo.min(k);
                hi = hi.max(k);
                k
            }));
        } else {
            for i in range.clone() {
                match self.present(keys, i) {
                    Some(k) => {
                        self.keys.push(k);
                        self.levels.push(1);
                        lo = lo.min(k);
                        hi = hi.max(k);
                    }
                    None => {
                        self.levels.push(0);
                        nulls += 1;
                    }
                }
            }
        }
        self.page.clear();
        if optional {
            let at = self.page.len();
            self.page.extend_from_slice(&[0; 4]);
            if self.levels.is_empty() {
                rle::encode_run(1, range.len(), 1, &mut self.page);
            } else {
                rle::encode(&self.levels, 1, &mut self.page);
            }
            let len = (self.page.len() - at - 4) as u32;
            self.page[at..at + 4].copy_from_slice(&len.to_le_bytes());
        }
        self.page.push(bit_width);
        rle::encode(&self.keys, bit_width, &mut self.page);
        PageFacts {
            nulls,
            range: (!self.keys.is_empty()).then_some((lo, hi)),
        }
    }
}

fn compress(
    zstd: &mut zstd::bulk::Compressor<'static>,
    data: &[u8],
) -> Result<Bytes, ParquetError> {
    zstd.compress(data)
        .map(Bytes::from)
        .map_err(|e| ParquetError::General(format!("zstd: {e}")))
}

/// Where a chunk's rows come from.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// A flat dictionary column.
    Flat(&'a DictionaryArray<Int32Type>),
    /// A list column of this many rows, its entries in the writer's list buffers.
    List(usize),
}

/// What one data page held.
struct PageFacts {
    nulls: usize,
    /// Smallest and largest sorted-dictionary key, if any row has a value.
    range: Option<(u32, u32)>,
}

/// The texts of a chunk's dictionary, sorted and distinct, and its page's bytes.
struct SortedDictionary<'a> {
    values: Vec<&'a str>,
    bytes: Vec<u8>,
}

impl SortedDictionary<'_> {
    fn value(&self, k: u32) -> &str {
        self.values.get(k as usize).copied().unwrap_or_default()
    }
}

/// `v` cut to at most `limit` bytes at a character boundary (a prefix is never larger);
/// whether it was cut.
fn truncate_min(v: &str, limit: usize) -> (Vec<u8>, bool) {
    if v.len() <= limit {
        return (v.as_bytes().to_vec(), false);
    }
    match (1..=limit).rfind(|&i| v.is_char_boundary(i)) {
        Some(cut) => (v.as_bytes()[..cut].to_vec(), true),
        None => (v.as_bytes().to_vec(), false),
    }
}

/// `v` cut to at most `limit` bytes with its last character raised, so the result is
/// still at least `v`; `v` itself when that is not possible. Whether it was cut.
fn truncate_max(v: &str, limit: usize) -> (Vec<u8>, bool) {
    if v.len() <= limit {
        return (v.as_bytes().to_vec(), false);
    }
    let lower = limit.saturating_sub(3);
    let Some(cut) = (lower..=limit)
        .rev()
        .find(|&i| i > 0 && v.is_char_boundary(i))
    else {
        return (v.as_bytes().to_vec(), false);
    };
    let prefix = &v[..cut];
    for (idx, c) in prefix.char_indices().rev() {
        if let Some(next) = char::from_u32(c as u32 + 1)
            && next.len_utf8() == c.len_utf8()
        {
            let mut out = prefix.as_bytes()[..idx + c.len_utf8()].to_vec();
            next.encode_utf8(&mut out[idx..]);
            return (out, true);
        }
    }
    (v.as_bytes().to_vec(), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{ListBuilder, StringBuilder};
    use arrow_array::{ArrayRef, Int32Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use proptest::prelude::*;
    use std::sync::Arc;

    /// A file of one column `c`, written by [`ChunkWriter`] (by parquet's writer when
    /// [`ChunkWriter`] declines it, which it does only for a column without a text).
    fn one_column_file(array: ArrayRef, page_rows: usize) -> Bytes {
        let any_text = match array.as_list_opt::<i32>() {
            Some(list) => (0..list.len())
                .any(|i| list.is_valid(i) && list.value(i).null_count() < list.value(i).len()),
            None => {
                arrow_cast::cast(&array, &DataType::Utf8)
                    .expect("cast")
                    .null_count()
                    < array.len()
            }
        };
        let schema = Arc::new(Schema::new(vec![Field::new(
            "c",
            array.data_type().clone(),
            true,
        )]));
        let mut writer = ArrowWriter::try_new(Vec::new(), schema.clone(), None).expect("writer");
        let descr = parquet::arrow::ArrowSchemaConverter::new()
            .convert(&schema)
            .expect("parquet schema")
            .column(0);
        let mut w = ChunkWriter::new(ChunkOptions {
            zstd_level: 1,
            page_rows,
            truncate_stats: 64,
            bloom_fpp: Some(0.01),
        })
        .expect("chunk writer");
        let chunk = w.write(&descr, array.as_ref()).expect("chunk");
        assert_eq!(
            chunk.is_some(),
            any_text,
            "the writer takes every column with a text"
        );
        let Some(chunk) = chunk else {
            let batch = RecordBatch::try_new(schema, vec![array]).expect("batch");
            writer.write(&batch).expect("write");
            return Bytes::from(writer.into_inner().expect("file bytes"));
        };
        let (mut file, _) = writer.into_serialized_writer().expect("file");
        let mut rg = file.next_row_group().expect("row group");
        rg.append_column(&chunk.bytes, chunk.close).expect("append");
        rg.close().expect("close row group");
        Bytes::from(file.into_inner().expect("file bytes"))
    }

    /// The record batches of a file, read with parquet's reader.
    fn read_back(file: Bytes) -> Vec<RecordBatch> {
        ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("reader")
            .build()
            .expect("reader")
            .map(|b| b.expect("batch"))
            .collect()
    }

    /// A file of one column `c`, its rows read back as text.
    fn round_trip(array: ArrayRef, page_rows: usize) -> Vec<Option<String>> {
        let mut out = Vec::new();
        for b in read_back(one_column_file(array, page_rows)) {
            let text = arrow_cast::cast(b.column(0), &DataType::Utf8).expect("cast");
            out.extend(text.as_string::<i32>().iter().map(|v| v.map(str::to_owned)));
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Any dictionary (duplicate, unused and null values included) and any keys
        /// (null ones too) read back as the texts they stand for, across page bounds.
        #[test]
        fn every_row_reads_back_as_its_text(
            values in prop::collection::vec(prop::option::weighted(0.9, "[a-cé\\u{10FFFF}]{0,6}"), 1..40),
            keys in prop::collection::vec(prop::option::weighted(0.8, any::<prop::sample::Index>()), 0..600),
            page_rows in 1usize..300,
        ) {
            let keys: Int32Array = keys
                .iter()
                .map(|k| k.map(|k| k.index(values.len()) as i32))
                .collect();
            let dict = DictionaryArray::<Int32Type>::try_new(
                keys,
                Arc::new(values.iter().map(|v| v.as_deref()).collect::<StringArray>()),
            )
            .expect("dictionary");
            let want: Vec<Option<String>> = {
                let t = arrow_cast::cast(&dict, &DataType::Utf8).expect("cast");
                t.as_string::<i32>().iter().map(|v| v.map(str::to_owned)).collect()
            };
            prop_assert_eq!(round_trip(Arc::new(dict), page_rows), want);
        }

        /// Lists of texts (null, empty, with null elements) read back as they went in.
        #[test]
        fn every_list_reads_back(
            rows in prop::collection::vec(
                prop::option::weighted(0.85, prop::collection::vec(
                    prop::option::weighted(0.9, "[ab\\u{10FFFF}]{0,4}"), 0..6)),
                0..400),
            page_rows in 1usize..100,
        ) {
            let mut b = ListBuilder::new(StringBuilder::new());
            for row in &rows {
                match row {
                    Some(items) => {
                        for item in items {
                            b.values().append_option(item.as_deref());
                        }
                        b.append(true);
                    }
                    None => b.append(false),
                }
            }
            let list: ArrayRef = Arc::new(b.finish());
            prop_assert_eq!(round_trip_lists(list, page_rows), rows);
        }
    }

    /// [`round_trip`] for a column of lists of texts.
    fn round_trip_lists(array: ArrayRef, page_rows: usize) -> Vec<Option<Vec<Option<String>>>> {
        let mut out = Vec::new();
        for b in read_back(one_column_file(array, page_rows)) {
            let list = b.column(0).as_list::<i32>();
            for i in 0..list.len() {
                out.push(list.is_valid(i).then(|| {
                    let v = list.value(i);
                    v.as_string::<i32>()
                        .iter()
                        .map(|t| t.map(str::to_owned))
                        .collect()
                }));
            }
        }
        out
    }

    #[test]
    fn statistics_bounds_survive_truncation() {
        let long = "a".repeat(70) + "é" + &"z".repeat(10);
        let (min, cut) = truncate_min(&long, 64);
        assert!(cut && min.len() <= 64 && min.as_slice() <= long.as_bytes());
        let (max, cut) = truncate_max(&long, 64);
        assert!(cut && max.len() <= 64 && max.as_slice() >= long.as_bytes());
        assert!(std::str::from_utf8(&max).is_ok());
        let at_boundary = "x".repeat(63) + "é";
        let (max, _) = truncate_max(&at_boundary, 64);
        assert!(max.as_slice() >= at_boundary.as_bytes());
        assert_eq!(truncate_min("short", 64), (b"short".to_vec(), false));
        let all_max = "\u{10FFFF}".repeat(20);
        let (max, _) = truncate_max(&all_max, 64);
        assert!(max.as_slice() >= all_max.as_bytes());
    }
}
