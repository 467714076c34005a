//! `lanner-enricher`: adds container and Kubernetes context to raw events (Docker Engine
//! API and containerd's API over their unix sockets) and names connects after earlier DNS
//! answers.
//!
//! - [`meta`] — what is known about a container and how it is written onto an event;
//! - [`k8s`] — Kubernetes context from the CRI labels and the pod's sandbox container;
//! - [`runtime`] — the runtimes asked (Docker, containerd), each optional;
//! - [`docker`] — the Docker Engine client (inspect, event stream);
//! - [`containerd`] — the containerd client (container records, event stream);
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
pub mod containerd;
pub mod dns;
pub mod docker;
pub mod enrich;
pub mod http;
pub mod k8s;
pub mod meta;
pub mod metrics;
pub mod run;
pub mod runtime;
pub mod stage;
