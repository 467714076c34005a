//! Result formats: an aligned table for people, CSV, JSON (an array of objects), NDJSON
//! (one object per line), Arrow IPC (stream format) and Parquet (zstd) for tools and
//! exports.

use std::io::Write;
use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned text table (the CLI's default).
    Table,
    /// CSV with a header line.
    Csv,
    /// A JSON array of row objects (the HTTP API's default).
    Json,
    /// One JSON object per line.
    Ndjson,
    /// Arrow IPC stream.
    Arrow,
    /// Parquet file (zstd).
    Parquet,
}

impl Format {
    /// The HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Table => "text/plain; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::Arrow => "application/vnd.apache.arrow.stream",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }

    /// The format an HTTP `Accept` header asks for, if any we serve.
    pub fn from_accept(accept: &str) -> Option<Format> {
        accept.split(',').find_map(|part| {
            let mime = part.split(';').next().unwrap_or("").trim();
            match mime.to_ascii_lowercase().as_str() {
                "application/json" => Some(Format::Json),
                "application/x-ndjson" | "application/ndjson" | "application/jsonl" => {
                    Some(Format::Ndjson)
                }
                "text/csv" => Some(Format::Csv),
                "application/vnd.apache.arrow.stream" | "application/vnd.apache.arrow" => {
                    Some(Format::Arrow)
                }
                "application/vnd.apache.parquet" | "application/parquet" => Some(Format::Parquet),
                "text/plain" => Some(Format::Table),
                _ => None,
            }
        })
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "table" | "text" => Ok(Format::Table),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "ndjson" | "jsonl" => Ok(Format::Ndjson),
            "arrow" | "ipc" => Ok(Format::Arrow),
            "parquet" => Ok(Format::Parquet),
            other => Err(format!(
                "unknown format {other:?} (table, csv, json, ndjson, arrow, parquet)"
            )),
        }
    }
}

/// Errors writing results.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Arrow failed to encode.
    #[error("encoding results: {0}")]
    Arrow(#[from] ArrowError),
    /// Parquet failed to encode.
    #[error("encoding Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Writing failed.
    #[error("writing results: {0}")]
    Io(#[from] std::io::Error),
}

/// Writes `batches` (with `schema`, for empty results) in `format` to `out`.
pub fn write(
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    mut out: impl Write + Send,
) -> Result<(), FormatError> {
    match format {
        Format::Table => {
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            let table = if batches.is_empty() {
                pretty_format_batches(&[RecordBatch::new_empty(Arc::clone(schema))])?
            } else {
                pretty_format_batches(batches)?
            };
            writeln!(out, "{table}")?;
            writeln!(out, "({rows} row{})", if rows == 1 { "" } else { "s" })?;
        }
        Format::Csv => {
            let mut w = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            if batches.is_empty() {
                w.write(&flat(&RecordBatch::new_empty(Arc::clone(schema)))?)?;
            }
            for b in batches {
                w.write(&flat(b)?)?;
            }
        }
        Format::Json => {
            let mut w = datafusion::arrow::json::ArrayWriter::new(&mut out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
            drop(w);
            if batches.iter().all(|b| b.num_rows() == 0) {
                // The writer prints nothing at all for no rows: still an array.
                out.write_all(b"[]")?;
            }
            out.write_all(b"\n")?;
        }
        Format::Ndjson => {
            let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        Format::Arrow => {
            let mut w = datafusion::arrow::ipc::writer::StreamWriter::try_new(&mut out, schema)?;
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        Format::Parquet => {
            let props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
                .build();
            let mut w = ArrowWriter::try_new(&mut out, Arc::clone(schema), Some(props))?;
            for b in batches {
                w.write(b)?;
            }
            w.close()?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `batch` with list, map and struct columns rendered as text (`[a, b]`, `{k: v}`), for
/// CSV, which has no nested values.
fn flat(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    use datafusion::arrow::array::{ArrayRef, StringBuilder};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let nested = |t: &DataType| t.is_nested();
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| nested(f.data_type()))
    {
        return Ok(batch.clone());
    }
    let opts = FormatOptions::default();
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        if !nested(f.data_type()) {
            fields.push(f.as_ref().clone());
            columns.push(Arc::clone(c));
            continue;
        }
        let fmt = ArrayFormatter::try_new(c.as_ref(), &opts)?;
        let mut b = StringBuilder::new();
        for i in 0..c.len() {
            if c.is_null(i) {
                b.append_null();
            } else {
                b.append_value(fmt.value(i).to_string());
            }
        }
        fields.push(Field::new(f.name(), DataType::Utf8, true));
        columns.push(Arc::new(b.finish()));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// [`write`] into a byte vector.
pub fn to_bytes(
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<Vec<u8>, FormatError> {
    let mut buf = Vec::new();
    write(format, schema, batches, &mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_pick_formats() {
        assert_eq!(Format::from_accept("text/csv"), Some(Format::Csv));
        assert_eq!(
            Format::from_accept("application/x-ndjson; q=1"),
            Some(Format::Ndjson)
        );
        assert_eq!(
            Format::from_accept("text/html, application/vnd.apache.arrow.stream"),
            Some(Format::Arrow)
        );
        assert_eq!(Format::from_accept("*/*"), None);
        assert_eq!("NDJSON".parse::<Format>(), Ok(Format::Ndjson));
        assert!("xml".parse::<Format>().is_err());
    }
}
