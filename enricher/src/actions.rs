//! Response actions: requests from `lanner.actions.<node>` (JSON,
//! [`lanner_contract::action::ActionRequest`], as lanner-detector's policies publish them)
//! are carried out through the Docker Engine API, or containerd's Tasks API for containers
//! Docker does not know (Kubernetes nodes on containerd), and each one
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

use std::time::Duration;

use crate::containerd::ContainerdRuntime;
use crate::containerd::grpc::NOT_FOUND;
use crate::containerd::tasks::{self, TaskStatus};
use crate::docker::DockerRuntime;
use crate::k8s;
use crate::metrics::EnrichStats;
use crate::runtime::{RuntimeError, Runtimes};

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
    runtimes: Runtimes,
    policy: ActionPolicy,
    stats: Arc<EnrichStats>,
}

impl ActionStage {
    /// A handler for `node`'s requests.
    pub fn new(
        node: &str,
        runtimes: Runtimes,
        policy: ActionPolicy,
        stats: Arc<EnrichStats>,
    ) -> Self {
        ActionStage {
            node: subjects::token(node),
            audit_subject: subjects::audit(node),
            runtimes,
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

    /// Acts through the first runtime that knows the container: Docker, then containerd.
    async fn act(&self, req: &ActionRequest) -> Acted {
        let mut failure: Option<String> = None;
        let mut gone = None;
        if let Some(docker) = self.runtimes.docker() {
            match self.act_docker(docker, req).await {
                Ok(Some(acted)) => return acted,
                Ok(None) => gone = Some("no such container".to_owned()),
                Err(e) => failure = Some(e),
            }
        }
        if let Some(containerd) = self.runtimes.containerd() {
            match self.act_containerd(containerd, req).await {
                Ok(Some(acted)) => return acted,
                Ok(None) => gone = Some("no such container".to_owned()),
                Err(e) => {
                    failure = Some(match failure {
                        Some(first) => format!("{first}; {e}"),
                        None => e,
                    })
                }
            }
        }
        match (gone, failure) {
            // One runtime answered that it does not know the container: it is gone (a
            // node need not run both runtimes).
            (Some(why), _) => (None, Outcome::Gone, why),
            (None, Some(e)) => (None, Outcome::Failed, e),
            (None, None) => (None, Outcome::Failed, "no container runtime".to_owned()),
        }
    }

    /// Why a container may not be acted on, if it may not.
    fn refusal(
        &self,
        full_id: Option<&str>,
        label: impl Fn(&str) -> Option<String>,
    ) -> Option<String> {
        if full_id.is_some() && full_id.map(str::to_owned) == own_container_id() {
            return Some("the enricher's own container".to_owned());
        }
        if label(&self.policy.own_label).is_some() {
            return Some(format!(
                "lanner's own container (label {})",
                self.policy.own_label
            ));
        }
        if label(&self.policy.exempt_label).is_some_and(|v| v != "false") {
            return Some(format!("exempt (label {})", self.policy.exempt_label));
        }
        None
    }

    /// Refusal, no-op or dry run, before acting on a container in this state.
    fn before_acting(
        &self,
        action: Action,
        running: bool,
        paused: bool,
    ) -> Option<(Outcome, String)> {
        let already = match action {
            Action::Pause => paused.then_some("already paused"),
            Action::Unpause => (!paused).then_some("not paused"),
            Action::Stop | Action::Kill => (!running).then_some("not running"),
        };
        if let Some(why) = already {
            return Some((Outcome::AlreadyDone, why.to_owned()));
        }
        self.policy.dry_run.then(|| {
            (
                Outcome::DryRun,
                format!("would {action:?} the container").to_lowercase(),
            )
        })
    }

    /// Through the Docker engine; `Ok(None)` when it does not know the container.
    async fn act_docker(
        &self,
        runtime: &DockerRuntime,
        req: &ActionRequest,
    ) -> Result<Option<Acted>, String> {
        let docker = runtime.docker().await.map_err(|e| e.to_string())?;
        let c = match docker.inspect_container(&req.container_id, None).await {
            Ok(c) => c,
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let name = c
            .name
            .as_deref()
            .map(|n| n.trim_start_matches('/').to_owned());
        let labels = c
            .config
            .as_ref()
            .and_then(|cfg| cfg.labels.clone())
            .unwrap_or_default();
        if let Some(why) = self.refusal(c.id.as_deref(), |k| labels.get(k).cloned()) {
            return Ok(Some((name, Outcome::Refused, why)));
        }
        let state = c.state.as_ref();
        let running = state.and_then(|s| s.running).unwrap_or(false);
        let paused = state.and_then(|s| s.paused).unwrap_or(false);
        if let Some((outcome, why)) = self.before_acting(req.action, running, paused) {
            return Ok(Some((name, outcome, why)));
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
        Ok(Some(match r {
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
        }))
    }

    /// Through containerd's Tasks API (Kubernetes nodes without Docker); `Ok(None)` when
    /// containerd does not know the container.
    async fn act_containerd(
        &self,
        runtime: &ContainerdRuntime,
        req: &ActionRequest,
    ) -> Result<Option<Acted>, String> {
        let Some(c) = runtime
            .container(&req.container_id)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let name = c.labels.get(k8s::CONTAINER_NAME).map(|n| n.to_string());
        if let Some(why) = self.refusal(Some(&c.id), |k| c.labels.get(k).map(|v| v.to_string())) {
            return Ok(Some((name, Outcome::Refused, why)));
        }
        let status = runtime
            .task_status(&c.id)
            .await
            .map_err(|e| e.to_string())?;
        let running = status.is_some_and(TaskStatus::is_alive);
        let paused = status.is_some_and(TaskStatus::is_paused);
        if let Some((outcome, why)) = self.before_acting(req.action, running, paused) {
            return Ok(Some((name, outcome, why)));
        }
        let grace = Duration::from_secs(u64::try_from(self.policy.stop_grace_secs).unwrap_or(0));
        let r = match req.action {
            Action::Pause => runtime.pause(&c.id).await,
            Action::Unpause => runtime.resume(&c.id).await,
            Action::Stop => runtime.stop(&c.id, grace).await,
            Action::Kill => runtime.kill_and_wait(&c.id, tasks::KILL_WAIT).await,
        };
        Ok(Some(match r {
            Ok(()) => (name, Outcome::Done, String::new()),
            Err(RuntimeError::Containerd { source, .. }) if source.code() == Some(NOT_FOUND) => {
                (name, Outcome::Gone, source.to_string())
            }
            Err(e) => (name, Outcome::Failed, e.to_string()),
        }))
    }
}

/// What acting ended in: the container's name, the outcome, and a detail.
type Acted = (Option<String>, Outcome, String);

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
