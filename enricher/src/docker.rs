//! The Docker Engine API over its unix socket: inspecting one container (and, for a
//! Kubernetes container run through cri-dockerd, its pod's sandbox for the pod labels), and
//! following the engine's event stream so the cache learns of containers as they are created.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{EventsOptionsBuilder, ListContainersOptionsBuilder};
use futures::StreamExt;
use lanner_contract::model::{Labels, Text};
use tokio::sync::OnceCell;

use crate::k8s::{self, PodLabelMemo};
use crate::meta::ContainerMeta;
use crate::runtime::RuntimeError;

/// A client of one Docker engine.
#[derive(Clone, Debug)]
pub struct DockerRuntime {
    /// The client at the API version the engine speaks, once it answered.
    negotiated: Arc<OnceCell<Docker>>,
    socket: String,
    pods: PodLabelMemo,
}

impl DockerRuntime {
    /// A client of the engine at `socket`. Nothing is connected until the first request,
    /// so an engine that starts later is still found.
    pub fn new(socket: &str) -> Self {
        DockerRuntime {
            negotiated: Arc::default(),
            socket: socket.to_owned(),
            pods: PodLabelMemo::default(),
        }
    }

    /// The bollard client at the API version the engine speaks (negotiated once; engines
    /// range from API 1.41 on Debian's 20.10 to newer ones that refuse old versions).
    pub async fn docker(&self) -> Result<Docker, RuntimeError> {
        self.negotiated
            .get_or_try_init(|| async {
                Docker::connect_with_unix(&self.socket, 10, bollard::API_DEFAULT_VERSION)?
                    .negotiate_version()
                    .await
            })
            .await
            .cloned()
            .map_err(|e| self.err(e))
    }

    fn err(&self, source: bollard::errors::Error) -> RuntimeError {
        RuntimeError::Docker {
            socket: self.socket.clone(),
            source,
        }
    }

    /// Inspects a container (full or short id, or name); `Ok(None)` when the engine does not know it.
    pub async fn inspect(&self, id: &str) -> Result<Option<ContainerMeta>, RuntimeError> {
        let docker = self.docker().await?;
        let c = match docker.inspect_container(id, None).await {
            Ok(c) => c,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let image = match c.image.as_deref() {
            Some(img) => docker.inspect_image(img).await.ok(),
            None => None,
        };
        let mut meta = ContainerMeta::from_inspect(&c, image.as_ref());
        if meta.k8s_pod_labels.is_none()
            && let Some(uid) = meta.k8s_pod_uid.clone()
        {
            let sandbox = meta.label(k8s::SANDBOX_ID).map(str::to_owned);
            meta.k8s_pod_labels = self.pod_labels(&docker, &uid, sandbox.as_deref()).await;
        }
        Ok(Some(meta))
    }

    /// The labels of the pod `uid`, read from its sandbox container: the one named by the
    /// container's `io.kubernetes.sandbox.id` label, else the pod's `podsandbox` container.
    async fn pod_labels(
        &self,
        docker: &Docker,
        uid: &Text,
        sandbox: Option<&str>,
    ) -> Option<Labels> {
        if let Some(l) = self.pods.get(uid) {
            return Some(l);
        }
        let mut found = None;
        if let Some(id) = sandbox {
            match docker.inspect_container(id, None).await {
                Ok(c) => found = c.config.and_then(|cfg| cfg.labels),
                Err(e) => tracing::debug!(sandbox = id, error = %e, "sandbox inspect failed"),
            }
        }
        if found.is_none() {
            let filters = HashMap::from([(
                "label".to_owned(),
                vec![
                    format!("{}={uid}", k8s::POD_UID),
                    format!("{}=podsandbox", k8s::DOCKER_TYPE),
                ],
            )]);
            let opts = ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build();
            match docker.list_containers(Some(opts)).await {
                Ok(list) => found = list.into_iter().find_map(|c| c.labels),
                Err(e) => tracing::debug!(pod = %uid, error = %e, "sandbox list failed"),
            }
        }
        let labels: std::collections::BTreeMap<Text, Text> = found?
            .iter()
            .map(|(k, v)| (Text::from(k.as_str()), Text::from(v.as_str())))
            .collect();
        let pod = k8s::pod_labels(&labels);
        self.pods.insert(uid.clone(), pod.clone());
        Some(pod)
    }

    /// Follows container lifecycle events, calling `on_event(full_id, action)` for each;
    /// reconnects (after `retry`) when the stream breaks or the engine is absent. Never returns.
    pub async fn follow_events<F, Fut>(&self, retry: Duration, mut on_event: F)
    where
        F: FnMut(String, String) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        loop {
            let filters = HashMap::from([
                ("type".to_owned(), vec!["container".to_owned()]),
                (
                    "event".to_owned(),
                    ["create", "start", "rename", "update"]
                        .map(str::to_owned)
                        .to_vec(),
                ),
            ]);
            let opts = EventsOptionsBuilder::new().filters(&filters).build();
            let docker = match self.docker().await {
                Ok(d) => d,
                Err(e) => {
                    tracing::debug!(error = %e, "docker engine not reachable; retrying");
                    tokio::time::sleep(retry).await;
                    continue;
                }
            };
            let mut stream = docker.events(Some(opts));
            while let Some(item) = stream.next().await {
                match item {
                    Ok(ev) => {
                        if let (Some(id), Some(action)) = (ev.actor.and_then(|a| a.id), ev.action) {
                            on_event(id, action).await;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(socket = %self.socket, error = %e, "docker event stream failed");
                        break;
                    }
                }
            }
            tokio::time::sleep(retry).await;
        }
    }
}
