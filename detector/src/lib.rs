//! # lanner-detector
//!
//! Falco's rule language, judged at scale on the bus. The rule engine itself is the
//! shared crate `lanner-engine` (the retro-hunt over the archive uses the same one);
//! this crate is the stage around it:
//!
//! - [`service`]: the `run` command: a durable pull consumer on `LANNER_EVENTS` shared by
//!   N replicas, judging each batch and publishing alerts to `lanner.alerts.<node>`;
//! - [`calibrate`]: reordering the rules' conditions by what live traffic shows;
//! - [`policy`]: the response policy that turns alerts into action requests on
//!   `lanner.actions.<node>`;
//! - [`webhook`]: alerts POSTed to an HTTP endpoint (falcosidekick and friends);
//! - [`metrics`]: Prometheus metrics and `/healthz`;
//! - [`busbench`]: the `bench-bus` command measuring the stage on a real nats-server.
//!
//! The binary (`lanner-detector`) adds the `validate`, `lint-condition` and `run`
//! commands.

pub mod busbench;
pub mod calibrate;
pub mod metrics;
pub mod policy;
pub mod service;
pub mod webhook;
