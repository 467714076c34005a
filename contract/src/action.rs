//! Response actions on the bus: the request a detector's response policy (or a person)
//! publishes to `lanner.actions.<node>`, and the audit record the enricher publishes to
//! `lanner.audit.<node>` once it handled it. Both are one JSON document per message
//! (`Lanner-Content: action` / `audit`).
//!
//! ```json
//! {"id":"…","action":"kill","policy":"kill shells","node":"n1","container_id":"0123456789ab",
//!  "container_name":"web","image":"nginx","rule":"Terminal shell in container",
//!  "priority":"Notice","alert_id":"…","time":"2026-01-01T00:00:00Z"}
//! ```
//!
//! Only `id`, `action` and `container_id` are required, so a request can be written by hand.

use serde::{Deserialize, Serialize};

/// What to do to a container, weakest first (a policy matching several asks the strongest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Thaw a paused container's processes.
    Unpause,
    /// Freeze the container's processes.
    Pause,
    /// Stop the container (SIGTERM, then SIGKILL after the grace period).
    Stop,
    /// Kill the container (SIGKILL).
    Kill,
}

/// A request to act on a container, published to `lanner.actions.<node>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionRequest {
    /// Deterministic id (also the `Nats-Msg-Id`; the audit record's id derives from it).
    pub id: String,
    /// The action.
    pub action: Action,
    /// Policy that asked for it.
    #[serde(default)]
    pub policy: Option<String>,
    /// Node the container runs on.
    #[serde(default)]
    pub node: Option<String>,
    /// Container id (short or full) or name.
    pub container_id: String,
    /// Container name, if known.
    #[serde(default)]
    pub container_name: Option<String>,
    /// Image repository, if known.
    #[serde(default)]
    pub image: Option<String>,
    /// Rule of the triggering alert.
    #[serde(default)]
    pub rule: Option<String>,
    /// Priority of the triggering alert.
    #[serde(default)]
    pub priority: Option<String>,
    /// Id of the triggering alert (or event).
    #[serde(default)]
    pub alert_id: Option<String>,
    /// When the triggering alert happened (RFC 3339).
    #[serde(default)]
    pub time: Option<String>,
    /// Why, in words (requests written by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Carried out.
    Done,
    /// The container was already in the wanted state.
    AlreadyDone,
    /// Dry-run: what would have been done.
    DryRun,
    /// Refused (exempt or lanner's own container).
    Refused,
    /// The container does not exist (any more).
    Gone,
    /// The runtime failed.
    Failed,
}

/// The audit record of one request, published to `lanner.audit.<node>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The request.
    pub request: ActionRequest,
    /// Node that handled it.
    pub node: String,
    /// Container name, when the runtime knew it.
    pub container_name: Option<String>,
    /// Result.
    pub outcome: Outcome,
    /// Details (the runtime's message, the refusal's reason).
    pub detail: String,
    /// When it was handled (RFC 3339).
    pub time: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detector_request_round_trips_unchanged_and_a_hand_written_one_decodes() {
        let json = r#"{"id":"x1","action":"kill","policy":"p","node":"n1","container_id":"0123456789ab","container_name":null,"image":null,"rule":"r","priority":"Critical","alert_id":"a1","time":"2026-01-01T00:00:00Z"}"#;
        let req: ActionRequest = serde_json::from_str(json).expect("decodes");
        assert_eq!(req.action, Action::Kill);
        assert_eq!(req.rule.as_deref(), Some("r"));
        assert_eq!(serde_json::to_string(&req).expect("encodes"), json);

        let by_hand: ActionRequest = serde_json::from_str(
            r#"{"id":"h","action":"unpause","container_id":"web","reason":"false alarm"}"#,
        )
        .expect("decodes");
        assert_eq!(by_hand.action, Action::Unpause);
        assert_eq!(by_hand.reason.as_deref(), Some("false alarm"));
        assert_eq!(by_hand.policy, None);
        assert!(
            serde_json::from_str::<ActionRequest>(
                r#"{"id":"x","action":"explode","container_id":"c"}"#
            )
            .is_err()
        );
        assert!(serde_json::from_str::<ActionRequest>(r#"{"id":"x","action":"kill"}"#).is_err());
    }

    #[test]
    fn actions_order_weakest_first() {
        assert!(Action::Unpause < Action::Pause);
        assert!(Action::Pause < Action::Stop);
        assert!(Action::Stop < Action::Kill);
    }
}
