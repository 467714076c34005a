//! Response actions: requests from `lanner.actions.<node>` (JSON,
//! [`lanner_contract::action::ActionRequest`], as lanner-detector's policies publish them)
//! are carried out through the Docker Engine API, and each one
//! leaves an audit record on `lanner.audit.<node>` (what, on which container, why, when,
//! result). Idempotent (the audit's `Nats-Msg-Id` is the request id, and acting on a
//! container already in the wanted state reports so); a dry-run mode; lanner's own
//! containers and containers with the exemption label are refused.

use std::sync::Arc;

use async_nats::HeaderMap;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{KillContainerOptionsBuilder, StopContainerOptionsBuilder};
use bytes::Bytes;
pub use lanner_contract::action::{Action, ActionRequest, AuditRecord, Outcome};
use lanner_contract::bus::{Delivery, Outgoing, Stage};
use lanner_contract::subjects;

use crate::docker::DockerRuntime;
use crate::metrics::EnrichStats;

/// `Lanner-Content` of audit records.
pub use lanner_contract::subjects::CONTENT_AUDIT;

/// Policy of the action handler.
#[derive(Clone, Debug)]
pub struct ActionPolicy {
    /// Log and audit, but do not act.
    pub dry_run: bool,
    /// A container with this label (any value but `false`) is never acted on.
    pub exempt_label: String,
    /// A container with this label is part of lanner and never acted on.
    pub own_label: String,
    /// Seconds a stop waits before killing.
    pub stop_grace_secs: i32,
}

/// The actions stage: requests in, audit records out.
#[derive(Debug)]
pub struct ActionStage {
    node: String,
    audit_subject: String,
    runtime: DockerRuntime,
    policy: ActionPolicy,
    stats: Arc<EnrichStats>,
}

impl ActionStage {
    /// A handler for `node`'s requests.
    pub fn new(
        node: &str,
        runtime: DockerRuntime,
        policy: ActionPolicy,
        stats: Arc<EnrichStats>,
    ) -> Self {
        ActionStage {
            node: subjects::token(node),
            audit_subject: subjects::audit(node),
            runtime,
            policy,
            stats,
        }
    }

    /// Carries out one request and says how it ended.
    pub async fn handle(&self, req: &ActionRequest) -> AuditRecord {
        let (name, outcome, detail) = self.act(req).await;
        let counter = match outcome {
            Outcome::Done | Outcome::AlreadyDone => &self.stats.actions_done,
            Outcome::DryRun => &self.stats.actions_dry_run,
            Outcome::Refused => &self.stats.actions_refused,
            Outcome::Gone | Outcome::Failed => &self.stats.actions_failed,
        };
        EnrichStats::add(counter, 1);
        AuditRecord {
            request: req.clone(),
            node: self.node.clone(),
            container_name: name,
            outcome,
            detail,
            time: chrono::Utc::now().to_rfc3339(),
        }
    }

    async fn act(&self, req: &ActionRequest) -> (Option<String>, Outcome, String) {
        let docker = match self.runtime.docker().await {
            Ok(d) => d,
            Err(e) => return (None, Outcome::Failed, e.to_string()),
        };
        let c = match docker.inspect_container(&req.container_id, None).await {
            Ok(c) => c,
            Err(DockerError::DockerResponseServerError {
                status_code: 404,
                message,
            }) => return (None, Outcome::Gone, message),
            Err(e) => return (None, Outcome::Failed, e.to_string()),
        };
        let name = c
            .name
            .as_deref()
            .map(|n| n.trim_start_matches('/').to_owned());
        if c.id.is_some() && c.id == own_container_id() {
            return (
                name,
                Outcome::Refused,
                "the enricher's own container".to_owned(),
            );
        }
        let labels = c
            .config
            .as_ref()
            .and_then(|cfg| cfg.labels.clone())
            .unwrap_or_default();
        if labels.contains_key(&self.policy.own_label) {
            return (
                name,
                Outcome::Refused,
                format!("lanner's own container (label {})", self.policy.own_label),
            );
        }
        if labels
            .get(&self.policy.exempt_label)
            .is_some_and(|v| v != "false")
        {
            return (
                name,
                Outcome::Refused,
                format!("exempt (label {})", self.policy.exempt_label),
            );
        }
        let state = c.state.as_ref();
        let running = state.and_then(|s| s.running).unwrap_or(false);
        let paused = state.and_then(|s| s.paused).unwrap_or(false);
        let already = match req.action {
            Action::Pause => paused.then_some("already paused"),
            Action::Unpause => (!paused).then_some("not paused"),
            Action::Stop | Action::Kill => (!running).then_some("not running"),
        };
        if let Some(why) = already {
            return (name, Outcome::AlreadyDone, why.to_owned());
        }
        if self.policy.dry_run {
            return (
                name,
                Outcome::DryRun,
                format!("would {:?} the container", req.action).to_lowercase(),
            );
        }
        let id = c.id.as_deref().unwrap_or(&req.container_id);
        let r = match req.action {
            Action::Pause => docker.pause_container(id).await,
            Action::Unpause => docker.unpause_container(id).await,
            Action::Stop => {
                let opts = StopContainerOptionsBuilder::new()
                    .t(self.policy.stop_grace_secs)
                    .build();
                docker.stop_container(id, Some(opts)).await
            }
            Action::Kill => {
                let opts = KillContainerOptionsBuilder::new().signal("KILL").build();
                docker.kill_container(id, Some(opts)).await
            }
        };
        match r {
            Ok(()) => (name, Outcome::Done, String::new()),
            Err(DockerError::DockerResponseServerError {
                status_code: 404,
                message,
            }) => (name, Outcome::Gone, message),
            Err(DockerError::DockerResponseServerError {
                status_code: 304 | 409,
                message,
            }) => (name, Outcome::AlreadyDone, message),
            Err(e) => (name, Outcome::Failed, e.to_string()),
        }
    }
}

/// The id of the container this process runs in, if any.
fn own_container_id() -> Option<String> {
    static ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ID.get_or_init(|| container_id_in_cgroup(&std::fs::read_to_string("/proc/self/cgroup").ok()?))
        .clone()
}

/// The container id in a `/proc/<pid>/cgroup` text: cgroup v1 `.../docker/<id>` or v2
/// `.../docker-<id>.scope`.
pub fn container_id_in_cgroup(cgroup: &str) -> Option<String> {
    cgroup
        .split(['/', '\n', '-', '.', ':'])
        .find(|part| part.len() == 64 && part.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
}

impl Stage for ActionStage {
    type Input = ActionRequest;

    fn decode(
        &mut self,
        _subject: &str,
        _headers: Option<&HeaderMap>,
        payload: &[u8],
    ) -> Result<ActionRequest, String> {
        serde_json::from_slice(payload).map_err(|e| format!("undecodable action request: {e}"))
    }

    async fn process(
        &mut self,
        batch: Vec<Delivery<ActionRequest>>,
    ) -> anyhow::Result<Vec<Outgoing>> {
        let mut outs = Vec::with_capacity(batch.len());
        for d in batch {
            let rec = self.handle(&d.value).await;
            tracing::info!(request = %rec.request.id, action = ?rec.request.action, container = %rec.request.container_id, outcome = ?rec.outcome, detail = %rec.detail, "response action");
            outs.push(Outgoing {
                subject: self.audit_subject.clone(),
                payload: Bytes::from(serde_json::to_vec(&rec)?),
                msg_id: format!("enricher-audit:{}:{}", self.node, rec.request.id),
                content: CONTENT_AUDIT,
            });
        }
        Ok(outs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_container_id_in_cgroup_v1_and_v2() {
        let id = "67d633b6547efe33cf395ddbd11cee4c82c351776919636c5f1d02ba482dbb9c";
        let v1 = format!("9:name=systemd:/docker/{id}\n8:pids:/docker/{id}\n");
        assert_eq!(container_id_in_cgroup(&v1).as_deref(), Some(id));
        let v2 = format!("0::/system.slice/docker-{id}.scope\n");
        assert_eq!(container_id_in_cgroup(&v2).as_deref(), Some(id));
        assert_eq!(
            container_id_in_cgroup("9:name=systemd:/\n0::/init.scope\n"),
            None
        );
    }
}
