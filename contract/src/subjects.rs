//! Subject and stream names of the bus, and the message headers every stage uses.
//!
//! | stream           | subjects               | written by        | read by            |
//! |------------------|------------------------|-------------------|--------------------|
//! | `LANNER_RAW`     | `lanner.raw.<node>`    | capture           | enricher           |
//! | `LANNER_EVENTS`  | `lanner.events.<node>` | enricher          | detector, archiver |
//! | `LANNER_ALERTS`  | `lanner.alerts.<node>` | detector          | archiver, people   |
//! | `LANNER_ACTIONS` | `lanner.actions.<node>`| detector (policy) | enricher           |
//! | `LANNER_AUDIT`   | `lanner.audit.<node>`  | enricher          | archiver, people   |
//! | `LANNER_DLQ`     | `lanner.dlq.<stage>`   | any stage         | people             |

/// A stream lanner manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamDef {
    /// JetStream stream name.
    pub name: &'static str,
    /// The subject filter it captures.
    pub subjects: &'static str,
    /// What it holds.
    pub description: &'static str,
}

/// Raw events from the sensors.
pub const RAW: StreamDef = StreamDef {
    name: "LANNER_RAW",
    subjects: "lanner.raw.>",
    description: "raw event batches from lanner-capture",
};
/// Enriched events.
pub const EVENTS: StreamDef = StreamDef {
    name: "LANNER_EVENTS",
    subjects: "lanner.events.>",
    description: "enriched event batches from lanner-enricher",
};
/// Alerts (Falco JSON).
pub const ALERTS: StreamDef = StreamDef {
    name: "LANNER_ALERTS",
    subjects: "lanner.alerts.>",
    description: "alerts in Falco's JSON output shape from lanner-detector",
};
/// Response action requests.
pub const ACTIONS: StreamDef = StreamDef {
    name: "LANNER_ACTIONS",
    subjects: "lanner.actions.>",
    description: "response action requests for lanner-enricher",
};
/// Audit records of response actions.
pub const AUDIT: StreamDef = StreamDef {
    name: "LANNER_AUDIT",
    subjects: "lanner.audit.>",
    description: "audit records of response actions",
};
/// Dead letters.
pub const DLQ: StreamDef = StreamDef {
    name: "LANNER_DLQ",
    subjects: "lanner.dlq.>",
    description: "messages a stage could not decode, with the reason in a header",
};

/// Every stream, in pipeline order.
pub const ALL_STREAMS: &[StreamDef] = &[RAW, EVENTS, ALERTS, ACTIONS, AUDIT, DLQ];

/// Header: JetStream de-duplication id.
pub const HDR_MSG_ID: &str = "Nats-Msg-Id";
/// Header: schema version of the payload (`1`).
pub const HDR_SCHEMA: &str = "Lanner-Schema";
/// Header: payload content (`event-batch`, `alert`, `action`, `audit`).
pub const HDR_CONTENT: &str = "Lanner-Content";
/// Header on dead letters: why the message was rejected.
pub const HDR_DLQ_REASON: &str = "Lanner-Dlq-Reason";
/// Header on dead letters: the stage that rejected it.
pub const HDR_DLQ_STAGE: &str = "Lanner-Dlq-Stage";
/// Header on dead letters: the subject it was published on.
pub const HDR_DLQ_SUBJECT: &str = "Lanner-Dlq-Subject";
/// Header on dead letters: its sequence in its stream.
pub const HDR_DLQ_SEQ: &str = "Lanner-Dlq-Stream-Seq";

/// Content type of event batches.
pub const CONTENT_EVENT_BATCH: &str = "event-batch";
/// Content type of response action requests ([`crate::action::ActionRequest`]).
pub const CONTENT_ACTION: &str = "action";
/// Content type of audit records ([`crate::action::AuditRecord`]).
pub const CONTENT_AUDIT: &str = "audit";

/// A node name made safe as one subject token (`.`, `*`, `>` and spaces become `_`).
pub fn token(name: &str) -> String {
    let t: String = name
        .chars()
        .map(|c| {
            if c == '.' || c == '*' || c == '>' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if t.is_empty() { "_".to_owned() } else { t }
}

/// `lanner.raw.<node>`
pub fn raw(node: &str) -> String {
    format!("lanner.raw.{}", token(node))
}
/// `lanner.events.<node>`
pub fn events(node: &str) -> String {
    format!("lanner.events.{}", token(node))
}
/// `lanner.alerts.<node>`
pub fn alerts(node: &str) -> String {
    format!("lanner.alerts.{}", token(node))
}
/// `lanner.actions.<node>`
pub fn actions(node: &str) -> String {
    format!("lanner.actions.{}", token(node))
}
/// `lanner.audit.<node>`
pub fn audit(node: &str) -> String {
    format!("lanner.audit.{}", token(node))
}
/// `lanner.dlq.<stage>`
pub fn dlq(stage: &str) -> String {
    format!("lanner.dlq.{}", token(stage))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_become_one_token() {
        assert_eq!(raw("node-1.example.com"), "lanner.raw.node-1_example_com");
        assert_eq!(dlq("enricher"), "lanner.dlq.enricher");
        assert_eq!(token(""), "_");
    }
}
