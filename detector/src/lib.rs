//! # lanner-detector
//!
//! Falco's rule language, judged at scale. The library holds the rule engine:
//!
//! - [`yaml`]: a position-keeping YAML tree for rule files;
//! - [`condition`]: the condition grammar (lexer and parser);
//! - [`compile`]: macro and list expansion, field resolution, constant parsing;
//! - [`predicate`]: compiled conditions and their evaluation on [`lanner_contract::Event`]s;
//! - [`rules`]: rule files (lists, macros, rules, `append`/`override`, exceptions) and
//!   the compiled [`rules::Ruleset`] indexed by `evt.type`;
//! - [`output`]: Falco output formats and the alert JSON.
//!
//! The binary (`lanner-detector`) adds the `validate`, `lint-condition` and `run`
//! commands; the service lives in [`service`].

pub mod alert;
pub mod busbench;
pub mod compile;
pub mod condition;
pub mod evttype;
pub mod matchers;
pub mod metrics;
pub mod mix;
pub mod output;
pub mod policy;
pub mod predicate;
pub mod rules;
pub mod service;
pub mod webhook;
pub mod yaml;
