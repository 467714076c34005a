//! `lanner-enricher`: adds container and Kubernetes context to raw events (Docker Engine
//! API over its unix socket) and names connects after earlier DNS answers.
//!
//! - [`meta`] — what is known about a container and how it is written onto an event;
//! - [`runtime`] — the Docker Engine client (inspect, event stream);
//! - [`cache`] — the metadata cache, kept current from the event stream, bounded lookups on a miss;
//! - [`dns`] — DNS correlation (`fd.sip.name`);
//! - [`enrich`] — enriching one batch;
//! - [`stage`] — the bus stage (`lanner.raw.<node>` → `lanner.events.<node>`);
//! - [`run`] — command-line flags and the service loop;
//! - [`actions`] — response actions (pause, unpause, stop, kill) with audit records;
//! - [`http`] — `/metrics` and `/healthz`;
//! - [`metrics`] — counters.

pub mod actions;
pub mod cache;
pub mod dns;
pub mod enrich;
pub mod http;
pub mod meta;
pub mod metrics;
pub mod run;
pub mod runtime;
pub mod stage;
