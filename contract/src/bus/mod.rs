//! JetStream plumbing shared by every stage.
//!
//! - [`connect`]: NATS connection options (URL, user/password, token, nkey, creds, TLS)
//!   as flags with `LANNER_NATS_*` environment overrides;
//! - [`streams`]: the stream definitions, created or updated idempotently;
//! - [`publish`]: publishing with `Nats-Msg-Id` and waiting for JetStream's acks;
//! - [`dlq`]: dead-lettering undecodable messages with the reason in a header;
//! - [`stage`]: the consume → process → publish → ack loop every transforming stage runs;
//! - [`shutdown`]: SIGTERM/SIGINT handling;
//! - [`http`]: the `/metrics` and `/healthz` endpoints.

pub mod connect;
pub mod dlq;
pub mod http;
pub mod publish;
pub mod shutdown;
pub mod stage;
pub mod streams;

pub use connect::NatsArgs;
pub use publish::Outgoing;
pub use stage::{Decoder, Delivery, Stage, StageConfig, StageStats, run_stage};
pub use streams::{StreamSettings, ensure_streams};
