//! What the enricher knows about one container, built from a runtime's answers (Docker's
//! inspect, containerd's container record), and how it is written onto an event.

use std::collections::BTreeMap;
use std::sync::Arc;

use bollard::models::{ContainerInspectResponse, ImageInspect};
use lanner_contract::Event;
use lanner_contract::model::{Labels, Text};
use lanner_contract::value::Timestamp;

use crate::k8s;

/// Container metadata, shared (`Arc`) by every event of the container.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerMeta {
    /// Container name without Docker's leading `/`.
    pub name: Option<Text>,
    /// `repository:tag`.
    pub image: Option<Text>,
    /// Image repository.
    pub image_repository: Option<Text>,
    /// Image tag (`latest` when the reference names none).
    pub image_tag: Option<Text>,
    /// Repository digest when the image came from a registry, else the image id (both `sha256:...`).
    pub image_digest: Option<Text>,
    /// Container labels.
    pub labels: Option<Labels>,
    /// Runs privileged.
    pub privileged: Option<bool>,
    /// When it started (absent while only created).
    pub start_ts: Option<Timestamp>,
    /// Kubernetes pod name (`io.kubernetes.pod.name`).
    pub k8s_pod_name: Option<Text>,
    /// Kubernetes namespace (`io.kubernetes.pod.namespace`).
    pub k8s_ns_name: Option<Text>,
    /// Kubernetes pod uid (`io.kubernetes.pod.uid`).
    pub k8s_pod_uid: Option<Text>,
    /// Kubernetes pod labels (the labels of the pod's sandbox container).
    pub k8s_pod_labels: Option<Labels>,
    /// The runtime that answered, written to `container.type`.
    pub runtime: Text,
}

/// `container.type` of containers Docker knows.
pub const RUNTIME_DOCKER: &str = "docker";
/// `container.type` of containers containerd knows (and Docker does not).
pub const RUNTIME_CONTAINERD: &str = "containerd";

/// Splits an image reference into (repository, tag, digest): `reg:5000/a/b:1.2@sha256:..`.
pub fn split_image_ref(reference: &str) -> (String, Option<String>, Option<String>) {
    let (name, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d.to_owned())),
        None => (reference, None),
    };
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => (
            name[..slash + i].to_owned(),
            Some(name[slash + i + 1..].to_owned()),
            digest,
        ),
        None => (name.to_owned(), None, digest),
    }
}

/// Parses Docker's RFC 3339 times; the zero time (`0001-01-01...`) means "never".
pub fn parse_docker_time(s: &str) -> Option<Timestamp> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    if t.timestamp() <= 0 {
        return None;
    }
    t.timestamp_nanos_opt().map(Timestamp)
}

impl ContainerMeta {
    /// Builds the metadata from `docker inspect` of the container and, when available, of its image.
    pub fn from_inspect(c: &ContainerInspectResponse, image: Option<&ImageInspect>) -> Self {
        let config = c.config.as_ref();
        let labels: BTreeMap<Text, Text> = config
            .and_then(|cfg| cfg.labels.as_ref())
            .map(|l| {
                l.iter()
                    .map(|(k, v)| (Text::from(k.as_str()), Text::from(v.as_str())))
                    .collect()
            })
            .unwrap_or_default();
        let reference = config.and_then(|cfg| cfg.image.clone());
        let (repo, tag, ref_digest) = match reference.as_deref() {
            // A container started from a bare image id has no repository.
            Some(r) if !r.starts_with("sha256:") => {
                let (repo, tag, d) = split_image_ref(r);
                (
                    Some(repo),
                    Some(tag.unwrap_or_else(|| "latest".to_owned())),
                    d,
                )
            }
            _ => (None, None, None),
        };
        let repo_digest = image
            .and_then(|i| i.repo_digests.as_ref())
            .and_then(|ds| {
                ds.iter()
                    .find(|d| {
                        repo.as_deref()
                            .is_some_and(|r| d.starts_with(&format!("{r}@")))
                    })
                    .or_else(|| ds.first())
            })
            .and_then(|d| d.split_once('@').map(|(_, d)| d.to_owned()));
        let digest = ref_digest.or(repo_digest).or_else(|| c.image.clone());
        let mut meta = ContainerMeta {
            name: c
                .name
                .as_deref()
                .map(|n| Text::from(n.trim_start_matches('/'))),
            image: match (&repo, &tag) {
                (Some(r), Some(t)) => Some(format!("{r}:{t}").into()),
                _ => reference.map(Into::into),
            },
            image_repository: repo.map(Into::into),
            image_tag: tag.map(Into::into),
            image_digest: digest.map(Into::into),
            privileged: c.host_config.as_ref().and_then(|h| h.privileged),
            start_ts: c
                .state
                .as_ref()
                .and_then(|s| s.started_at.as_deref())
                .and_then(parse_docker_time),
            runtime: RUNTIME_DOCKER.into(),
            ..ContainerMeta::default()
        };
        meta.set_labels(labels);
        meta
    }

    /// Sets the container's labels and what they say about its pod (the CRI labels; the
    /// pod's labels too when this is the pod's sandbox).
    pub fn set_labels(&mut self, labels: BTreeMap<Text, Text>) {
        let label = |k: &str| labels.get(k).filter(|v| !v.is_empty()).cloned();
        self.k8s_pod_name = label(k8s::POD_NAME);
        self.k8s_ns_name = label(k8s::POD_NAMESPACE);
        self.k8s_pod_uid = label(k8s::POD_UID);
        if k8s::is_sandbox(&labels) {
            self.k8s_pod_labels = Some(k8s::pod_labels(&labels));
        }
        self.labels = Some(Arc::new(labels));
    }

    /// A label of the container.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.as_ref()?.get(key).map(|v| &**v)
    }

    /// Writes the metadata onto an event, leaving fields the event already carries.
    pub fn apply(&self, ev: &mut Event) {
        fn fill<T: Clone>(slot: &mut Option<T>, v: &Option<T>) {
            if slot.is_none() {
                slot.clone_from(v);
            }
        }
        fill(&mut ev.container_name, &self.name);
        fill(&mut ev.container_image, &self.image);
        fill(&mut ev.container_image_repository, &self.image_repository);
        fill(&mut ev.container_image_tag, &self.image_tag);
        fill(&mut ev.container_image_digest, &self.image_digest);
        fill(&mut ev.container_labels, &self.labels);
        fill(&mut ev.container_privileged, &self.privileged);
        fill(&mut ev.container_start_ts, &self.start_ts);
        fill(&mut ev.k8s_pod_name, &self.k8s_pod_name);
        fill(&mut ev.k8s_ns_name, &self.k8s_ns_name);
        fill(&mut ev.k8s_pod_uid, &self.k8s_pod_uid);
        fill(&mut ev.k8s_pod_labels, &self.k8s_pod_labels);
        if ev.container_type.is_none() {
            ev.container_type = Some(self.runtime.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_image_references() {
        let s = |r: &str| split_image_ref(r);
        assert_eq!(s("busybox"), ("busybox".into(), None, None));
        assert_eq!(
            s("busybox:1.36"),
            ("busybox".into(), Some("1.36".into()), None)
        );
        assert_eq!(
            s("reg:5000/a/b:v2@sha256:ab"),
            (
                "reg:5000/a/b".into(),
                Some("v2".into()),
                Some("sha256:ab".into())
            )
        );
        assert_eq!(s("reg:5000/a/b"), ("reg:5000/a/b".into(), None, None));
    }

    #[test]
    fn parses_docker_times() {
        assert_eq!(parse_docker_time("0001-01-01T00:00:00Z"), None);
        assert_eq!(
            parse_docker_time("2024-01-02T03:04:05.5Z"),
            Some(Timestamp(1_704_164_645_500_000_000))
        );
        assert_eq!(parse_docker_time("yesterday"), None);
    }
}
