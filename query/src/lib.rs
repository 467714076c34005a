//! # lanner-query
//!
//! SQL over lanner's Parquet archive with DataFusion, through the clients security teams
//! already use: psql and BI tools (Postgres wire), curl (HTTP), and a one-shot CLI.
//!
//! - [`archive`]: `--archive URL` (a directory or `s3://bucket/prefix`), the same flags
//!   as the archiver's;
//! - [`tables`]: the `events` and `alerts` tables: hive partitions `dt`/`hour`, the
//!   files' sort order, pruning, no listing cache (new files are seen at once);
//! - [`local_files`]: a local archive's reads done on the query's own threads;
//! - [`scan_sample`]: the share of rows a scan's filters keep, from a sample, which
//!   decides whether they run inside the scan;
//! - [`prune`]: time windows (`evt_time` bounds) turned into `dt`/`hour` predicates, so
//!   the listing skips the other hours' files;
//! - [`views`]: hunting views and table functions (process tree, DNS history, file
//!   access, outbound connections, exec sessions, forensic timeline);
//! - [`dictionary_filter`]: filters comparing dictionary columns with text constants
//!   answered from the rows' keys;
//! - [`narrow_predicate`]: a filter's `AND`s and `OR`s given only the columns they
//!   read;
//! - [`list_elements`]: `list[i]` taken by position, with the filter under it, for the
//!   kept rows only;
//! - [`like_patterns`]: `LIKE` patterns that need a regular expression compiled once
//!   per query;
//! - [`aggregate_below_join`]: an aggregate over a join with a grouped side computed in
//!   part below the join, on the other side;
//! - [`eager_probe`]: a hash join's grouped probe side started beside its build side;
//! - [`guard`]: read-only rules, and the timeout and row limit every plan runs under;
//! - [`engine`]: the session every client shares ([`engine::Engine`]), built by
//!   [`engine::build_context`] so benchmarks and tests get the same tables;
//! - [`hunt`]: retro-hunt: Falco rules over the archive with the detector's engine,
//!   giving the alerts they would have raised live;
//! - [`format`]: result formats (aligned table, CSV, JSON, NDJSON, Arrow IPC, Parquet);
//! - [`http`], [`pg`]: the HTTP API and the Postgres wire server;
//! - [`metrics`]: counters for `/metrics`;
//! - [`cli`]: flags and commands;

pub mod aggregate_below_join;
pub mod archive;
pub mod cli;
pub mod dictionary_filter;
pub mod distinct_count;
pub mod eager_probe;
pub mod engine;
pub mod format;
pub mod group_keys;
pub mod guard;
pub mod http;
pub mod hunt;
pub mod key_aggregate;
pub mod like_patterns;
pub mod list_elements;
pub mod local_files;
pub mod loop_cache;
pub mod metrics;
pub mod narrow_predicate;
mod one_input;
pub mod pg;
pub mod prune;
pub mod scan_sample;
pub(crate) mod split_aggregate;
pub mod tables;
pub mod views;
