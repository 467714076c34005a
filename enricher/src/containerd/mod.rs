//! containerd's API on its unix socket, for nodes that run Kubernetes on containerd without
//! Docker: container records of one namespace (`k8s.io`, where the CRI plugin keeps pods'
//! containers), the image's digest, the pod's labels from its sandbox container, and the
//! event stream that announces new containers.
//!
//! The client is hand-written ([`grpc`] over h2, [`proto`] for the few messages) rather
//! than the `containerd-client` crate: that crate generates its bindings at build time with
//! `protoc`, which neither this machine nor a plain Rust toolchain has, and brings tonic and
//! prost for four calls.

pub mod grpc;
pub mod proto;
pub mod tasks;

use std::collections::BTreeMap;
use std::time::Duration;

use lanner_contract::model::{Labels, Text};

use crate::k8s::{self, PodLabelMemo};
use crate::meta::{ContainerMeta, RUNTIME_CONTAINERD, split_image_ref};
use crate::runtime::RuntimeError;
use grpc::{GrpcError, GrpcUnix, NOT_FOUND};
use proto::{Container, Envelope};

/// The CRI plugin's metadata extension on a container record (JSON).
const CRI_METADATA: &str = "io.cri-containerd.container.metadata";

const CONTAINERS: &str = "/containerd.services.containers.v1.Containers";
const IMAGES: &str = "/containerd.services.images.v1.Images";
const EVENTS_SUBSCRIBE: &str = "/containerd.services.events.v1.Events/Subscribe";

/// A client of one containerd, in one namespace.
#[derive(Clone, Debug)]
pub struct ContainerdRuntime {
    grpc: GrpcUnix,
    socket: String,
    namespace: String,
    pods: PodLabelMemo,
}

/// Quotes a value for a containerd filter (`labels."k"=="v"`).
fn quote(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

fn request(filters_or_id: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in filters_or_id {
        proto::put_bytes(&mut out, 1, s.as_bytes());
    }
    out
}

/// What the CRI plugin's JSON metadata extension says: (sandbox id, privileged).
fn cri_metadata(json: &[u8]) -> (Option<String>, Option<bool>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(json) else {
        return (None, None);
    };
    let m = &v["Metadata"];
    let sandbox = m["SandboxID"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let sc = &m["Config"]["linux"]["security_context"];
    let privileged = if sc.is_object() {
        Some(sc["privileged"].as_bool().unwrap_or(false))
    } else {
        None
    };
    (sandbox, privileged)
}

impl ContainerdRuntime {
    /// A client of the containerd at `socket`, looking at `namespace`. Nothing is
    /// connected until the first request.
    pub fn new(socket: &str, namespace: &str) -> Self {
        let metadata = match http::HeaderValue::from_str(namespace) {
            Ok(v) => vec![(http::HeaderName::from_static("containerd-namespace"), v)],
            Err(_) => Vec::new(),
        };
        ContainerdRuntime {
            grpc: GrpcUnix::new(socket, metadata),
            socket: socket.to_owned(),
            namespace: namespace.to_owned(),
            pods: PodLabelMemo::default(),
        }
    }

    fn err(&self, source: GrpcError) -> RuntimeError {
        RuntimeError::Containerd {
            socket: self.socket.clone(),
            source,
        }
    }

    /// The container record with this id, or the one whose id starts with it (events
    /// carry the 12-hex short form); `Ok(None)` when there is none.
    pub async fn container(&self, id: &str) -> Result<Option<Container>, RuntimeError> {
        let is_prefix =
            id.len() < 64 && !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_prefix {
            return match self
                .grpc
                .unary(&format!("{CONTAINERS}/Get"), &request(&[id]))
                .await
            {
                Ok(resp) => {
                    let Some(c) = proto::messages(&resp, 1)
                        .map_err(|e| self.err(GrpcError::Protocol(e.to_string())))?
                        .first()
                        .copied()
                    else {
                        return Ok(None);
                    };
                    Container::decode(c)
                        .map(Some)
                        .map_err(|e| self.err(GrpcError::Protocol(e.to_string())))
                }
                Err(e) if e.code() == Some(NOT_FOUND) => Ok(None),
                Err(e) => Err(self.err(e)),
            };
        }
        let filter = format!("id~={}", quote(&format!("^{}", id.to_ascii_lowercase())));
        Ok(self.list(&[&filter]).await?.into_iter().next())
    }

    /// Container records matching any of `filters`.
    async fn list(&self, filters: &[&str]) -> Result<Vec<Container>, RuntimeError> {
        let resp = self
            .grpc
            .unary(&format!("{CONTAINERS}/List"), &request(filters))
            .await
            .map_err(|e| self.err(e))?;
        let bad = |e: proto::DecodeError| self.err(GrpcError::Protocol(e.to_string()));
        proto::messages(&resp, 1)
            .map_err(bad)?
            .into_iter()
            .map(|c| Container::decode(c).map_err(bad))
            .collect()
    }

    /// Inspects a container (full or short id); `Ok(None)` when containerd does not know it.
    pub async fn inspect(&self, id: &str) -> Result<Option<ContainerMeta>, RuntimeError> {
        let Some(c) = self.container(id).await? else {
            return Ok(None);
        };
        let (mut sandbox, privileged) = c
            .extensions
            .get(CRI_METADATA)
            .map(|(_, json)| cri_metadata(json))
            .unwrap_or_default();
        if sandbox.is_none() && !c.sandbox.is_empty() {
            sandbox = Some(c.sandbox.clone());
        }
        let mut meta = ContainerMeta {
            runtime: RUNTIME_CONTAINERD.into(),
            start_ts: c.created_at,
            privileged,
            ..ContainerMeta::default()
        };
        if !c.image.is_empty() {
            let (repo, tag, digest) = split_image_ref(&c.image);
            let tag = tag.unwrap_or_else(|| "latest".to_owned());
            meta.image = Some(format!("{repo}:{tag}").into());
            meta.image_repository = Some(repo.into());
            meta.image_tag = Some(tag.into());
            meta.image_digest = match digest {
                Some(d) => Some(d.into()),
                None => self.image_digest(&c.image).await.map(Into::into),
            };
        }
        // kubelet's container name, else the record's id (what `ctr` and `nerdctl ps` show).
        meta.name = Some(
            c.labels
                .get(k8s::CONTAINER_NAME)
                .cloned()
                .unwrap_or_else(|| Text::from(c.id.as_str())),
        );
        meta.set_labels(c.labels);
        if meta.k8s_pod_labels.is_none()
            && let Some(uid) = meta.k8s_pod_uid.clone()
        {
            meta.k8s_pod_labels = self.pod_labels(&uid, sandbox.as_deref()).await;
        }
        Ok(Some(meta))
    }

    /// The digest the image reference points at (`Images.Get`), if containerd has it.
    async fn image_digest(&self, name: &str) -> Option<String> {
        let resp = self
            .grpc
            .unary(&format!("{IMAGES}/Get"), &request(&[name]))
            .await
            .map_err(|e| tracing::debug!(image = name, error = %e, "image lookup failed"))
            .ok()?;
        let image = proto::messages(&resp, 1).ok()?.first().copied()?;
        proto::image_target_digest(image).ok().flatten()
    }

    /// The labels of pod `uid`, from its sandbox container: the one the CRI metadata
    /// names, else the pod's container labelled `io.cri-containerd.kind=sandbox`.
    async fn pod_labels(&self, uid: &Text, sandbox: Option<&str>) -> Option<Labels> {
        if let Some(l) = self.pods.get(uid) {
            return Some(l);
        }
        let mut found: Option<BTreeMap<Text, Text>> = None;
        if let Some(id) = sandbox {
            match self.container(id).await {
                Ok(c) => found = c.map(|c| c.labels),
                Err(e) => tracing::debug!(sandbox = id, error = %e, "sandbox lookup failed"),
            }
        }
        if found.is_none() {
            let filter = format!(
                "labels.{}=={},labels.{}=={}",
                quote(k8s::POD_UID),
                quote(uid),
                quote(k8s::CONTAINERD_KIND),
                quote("sandbox")
            );
            match self.list(&[&filter]).await {
                Ok(list) => found = list.into_iter().next().map(|c| c.labels),
                Err(e) => tracing::debug!(pod = %uid, error = %e, "sandbox list failed"),
            }
        }
        let pod = k8s::pod_labels(&found?);
        self.pods.insert(uid.clone(), pod.clone());
        Some(pod)
    }

    /// Follows container create/update events of the namespace, calling
    /// `on_event(id, topic)`; reconnects (after `retry`) when the stream breaks or
    /// containerd is absent. Never returns.
    pub async fn follow_events<F, Fut>(&self, retry: Duration, mut on_event: F)
    where
        F: FnMut(String, String) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let ns = quote(&self.namespace);
        let filters = [
            format!("namespace=={ns},topic==\"/containers/create\""),
            format!("namespace=={ns},topic==\"/containers/update\""),
        ];
        let req = request(&filters.iter().map(String::as_str).collect::<Vec<_>>());
        loop {
            match self.grpc.stream(EVENTS_SUBSCRIBE, &req).await {
                Ok(mut stream) => loop {
                    match stream.next().await {
                        Ok(Some(msg)) => match Envelope::decode(&msg) {
                            Ok(env) => {
                                if let Ok(Some(id)) = env.container_id() {
                                    on_event(id, env.topic).await;
                                }
                            }
                            Err(e) => tracing::debug!(error = %e, "undecodable containerd event"),
                        },
                        Ok(None) => break,
                        Err(e) => {
                            tracing::debug!(socket = %self.socket, error = %e, "containerd event stream failed");
                            break;
                        }
                    }
                },
                Err(e) => {
                    tracing::debug!(socket = %self.socket, error = %e, "containerd not reachable; retrying")
                }
            }
            tokio::time::sleep(retry).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sandbox_and_privileged_from_the_cri_metadata() {
        let json = br#"{"Version":"v1","Metadata":{"ID":"c1","Name":"web","SandboxID":"s1","Config":{"metadata":{"name":"web"},"linux":{"security_context":{"privileged":true}}}}}"#;
        assert_eq!(cri_metadata(json), (Some("s1".into()), Some(true)));
        let unprivileged =
            br#"{"Metadata":{"SandboxID":"s1","Config":{"linux":{"security_context":{}}}}}"#;
        assert_eq!(cri_metadata(unprivileged), (Some("s1".into()), Some(false)));
        assert_eq!(cri_metadata(b"not json"), (None, None));
        assert_eq!(cri_metadata(br#"{"Metadata":{}}"#), (None, None));
    }

    #[test]
    fn filter_values_are_quoted() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
