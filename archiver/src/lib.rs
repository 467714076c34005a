//! # lanner-archiver
//!
//! Keeps every enriched event and every alert, exactly once, as Parquet on object storage
//! (a local directory or any S3-compatible store).
//!
//! - [`tables`]: the `events` and `alerts` tables: their schemas, how a bus message
//!   decodes into rows, and which columns get bloom filters;
//! - [`alerts`]: the alerts table, from Falco's JSON output shape;
//! - [`partition`]: hive partitions `dt=YYYY-MM-DD/hour=HH/`;
//! - [`rows`]: a message's rows per partition, and an open file's columns (appended
//!   from the wire batches' bytes);
//! - [`seqset`] and [`naming`]: the stream sequences a file holds and the object names
//!   derived from them;
//! - [`parquet_file`]: encoding a sorted, zstd-compressed Parquet file with statistics,
//!   page index, bloom filters and lanner's metadata; reading it back;
//! - [`dictionary_chunk`] and [`rle`]: dictionary text columns written straight from
//!   their Arrow dictionaries, without hashing or comparing any row's text;
//! - [`archive`]: opening `--archive URL` as an object store, create-only puts;
//! - [`index`]: which stream sequences the archive already holds (checked on redelivery);
//! - [`sink`]: the consume → buffer → write → ack loop;
//! - [`compact`] and [`retention`]: merging small files, deleting expired partitions;
//! - [`evolve`]: reading files written with an older schema;
//! - [`metrics`]: counters, `/metrics` and `/healthz`.
//!
//! ## Exactly once
//! A message's rows are written to one file per partition they fall in; a file is named
//! after the stream sequences it holds and written create-only; a message is acked only
//! after every file holding its rows is durable. A message JetStream delivers again
//! (after a crash, or an ack that was lost) is checked against the files of its
//! partitions: rows already archived are not written again.

pub mod alerts;
pub mod archive;
pub mod cli;
pub mod compact;
pub mod dictionary_chunk;
pub mod evolve;
pub mod index;
pub mod metrics;
pub mod naming;
pub mod parquet_file;
pub mod partition;
pub mod retention;
pub mod rle;
pub mod rows;
pub mod seqset;
pub mod sink;
pub mod tables;
