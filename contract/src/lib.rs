//! # lanner-contract
//!
//! The contract between lanner's stages: the [`Event`] model in Falco's vocabulary, the
//! field accessor ([`FieldRef`], [`Event::get`]), the binary wire [`codec`] for event
//! batches, the [`jsonl`] form for people and replays, the archive's Arrow schema
//! (feature `arrow`), the bus [`subjects`], the response [`action`] requests and audit
//! records, and the JetStream helpers in [`bus`] that every stage uses to consume,
//! publish, ack and dead-letter.
//!
//! Stages never import each other; they meet here and on the bus.

pub mod action;
pub mod allocator;
pub mod archive_args;
pub mod batch_pool;
pub mod bus;
pub mod codec;
pub mod config;
pub mod field;
pub mod field_set;
mod json;
mod json_fast;
pub mod jsonl;
pub mod logging;
pub mod model;
pub mod recording;
pub mod render;
pub mod share;
mod short_key;
pub mod subjects;
pub mod synth;
pub mod value;
mod wire;

#[cfg(feature = "arrow")]
pub mod arrow;
#[cfg(feature = "arrow")]
pub mod arrow_columns;
#[cfg(feature = "arrow")]
pub mod arrow_wire;

pub use field::{Field, FieldArg, FieldError, FieldRef, TextField};
pub use model::{Event, STORED_FIELDS, StoredField};
pub use value::{Kind, NA, Timestamp, Value};
