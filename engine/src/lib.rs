//! # lanner-engine
//!
//! Falco's rule language over lanner [`Event`](lanner_contract::Event)s, shared by the
//! live detector (`lanner-detector`) and the retro-hunt over the archive
//! (`lanner-query hunt`), so both raise the same alerts for the same events.
//!
//! - [`yaml`]: a position-keeping YAML tree for rule files;
//! - [`condition`]: the condition grammar (lexer and parser);
//! - [`compile`]: macro and list expansion, field resolution, constant parsing;
//! - [`predicate`]: compiled conditions and their evaluation on events;
//! - [`rules`]: rule files (lists, macros, rules, `append`/`override`, exceptions) and
//!   the compiled [`rules::Ruleset`] indexed by `evt.type`;
//! - [`output`]: Falco output formats and the alert JSON;
//! - [`alert`]: turning matches into alerts ([`alert::AlertBuilder`]);
//! - [`alert_json`]: alerts written straight to their JSON form (the detector's path);
//! - [`mix`]: a realistic event mix for benchmarks;
//! - [`cases`]: an event firing each upstream stable rule, and a near miss.
//!
//! ```
//! use lanner_engine::alert::AlertBuilder;
//! use lanner_engine::rules::{Loader, Matching};
//!
//! let yaml = r#"
//! - rule: Shadow read
//!   desc: someone read /etc/shadow
//!   condition: evt.type = openat and fd.name = /etc/shadow
//!   output: "%proc.name read %fd.name"
//!   priority: WARNING
//! "#;
//! let mut loader = Loader::new();
//! loader.add_str("inline.yaml", yaml);
//! let (rules, report) = loader.finish();
//! let rules = rules.ok_or(report).expect("the rule compiles");
//! let event = lanner_contract::jsonl::parse_line(
//!     r#"{"evt.type":"openat","fd.name":"/etc/shadow","proc.name":"cat"}"#,
//! ).expect("a valid event");
//! let mut alerts = Vec::new();
//! AlertBuilder::new(Matching::All).judge(&rules, &event, "node-1", || "id-1".into(), |a| alerts.push(a));
//! assert_eq!(alerts[0].rule, "Shadow read");
//! assert!(alerts[0].output.ends_with("Warning cat read /etc/shadow"));
//! //! ```

pub mod alert;
pub mod alert_json;
pub mod cases;
pub mod compile;
pub mod condition;
pub mod evttype;
pub mod matchers;
pub mod mix;
pub mod output;
pub mod predicate;
pub mod program;
pub mod rules;
pub mod yaml;

/// Fields appended to every rule's output (as Falco's `-pk`/`append_output` does), so
/// alerts carry the container and pod they come from.
pub const DEFAULT_APPEND_OUTPUT: &str = "container_id=%container.id container_name=%container.name container_image=%container.image.repository k8s_ns=%k8s.ns.name k8s_pod_name=%k8s.pod.name";
