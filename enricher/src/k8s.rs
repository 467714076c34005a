//! Kubernetes context from the container runtime alone: the CRI labels kubelet puts on
//! every container (pod name, namespace and uid, container name), and the pod's own labels,
//! which live on the pod's sandbox (pause) container — through Docker (cri-dockerd) and
//! containerd alike. No Kubernetes API is involved.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use lanner_contract::model::{Labels, Text};

/// Pod name label.
pub const POD_NAME: &str = "io.kubernetes.pod.name";
/// Pod namespace label.
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// Pod uid label.
pub const POD_UID: &str = "io.kubernetes.pod.uid";
/// Container name (in the pod spec) label; `POD` on a cri-dockerd sandbox.
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Id of the pod's sandbox container, on every cri-dockerd container.
pub const SANDBOX_ID: &str = "io.kubernetes.sandbox.id";
/// cri-dockerd's container kind label (`podsandbox` or `container`).
pub const DOCKER_TYPE: &str = "io.kubernetes.docker.type";
/// containerd CRI's container kind label (`sandbox` or `container`).
pub const CONTAINERD_KIND: &str = "io.cri-containerd.kind";

/// Label prefixes kubelet, the CRI implementations and containerd add (containerd copies
/// e.g. the image's stop signal as `io.containerd.image.config.stop-signal`); what remains
/// on a sandbox are the pod's labels.
const RUNTIME_PREFIXES: &[&str] = &[
    "io.kubernetes.",
    "io.cri-containerd.",
    "io.containerd.",
    "annotation.",
];

/// Whether a container with these labels is a pod sandbox (pause) container.
pub fn is_sandbox(labels: &BTreeMap<Text, Text>) -> bool {
    labels
        .get(DOCKER_TYPE)
        .is_some_and(|v| &**v == "podsandbox")
        || labels
            .get(CONTAINERD_KIND)
            .is_some_and(|v| &**v == "sandbox")
}

/// The pod's labels, from its sandbox container's labels: everything but the labels the
/// runtime adds (`io.kubernetes.*`, `io.cri-containerd.*`, `io.containerd.*`, cri-dockerd's
/// `annotation.*`).
pub fn pod_labels(sandbox: &BTreeMap<Text, Text>) -> Labels {
    Arc::new(
        sandbox
            .iter()
            .filter(|(k, _)| !RUNTIME_PREFIXES.iter().any(|p| k.starts_with(p)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// Most pods whose labels are remembered; beyond it the memory starts over.
const MAX_PODS: usize = 16_384;

/// Pod labels by pod uid, so the sandbox is looked up once per pod, not per container.
#[derive(Clone, Debug, Default)]
pub struct PodLabelMemo {
    map: Arc<Mutex<HashMap<Text, Labels>>>,
}

impl PodLabelMemo {
    /// What is remembered for a pod.
    pub fn get(&self, uid: &str) -> Option<Labels> {
        self.lock().get(uid).cloned()
    }

    /// Remembers a pod's labels.
    pub fn insert(&self, uid: Text, labels: Labels) {
        let mut map = self.lock();
        if map.len() >= MAX_PODS {
            map.clear();
        }
        map.insert(uid, labels);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Text, Labels>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<Text, Text> {
        kv.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    }

    #[test]
    fn pod_labels_are_the_sandbox_labels_the_runtime_did_not_add() {
        // As cri-dockerd labels a sandbox.
        let docker = labels(&[
            ("app", "web"),
            ("pod-template-hash", "5d9c"),
            ("annotation.kubernetes.io/config.seen", "2024-01-01"),
            (POD_NAME, "web-5d9c-x"),
            (POD_NAMESPACE, "shop"),
            (POD_UID, "u-1"),
            (CONTAINER_NAME, "POD"),
            (DOCKER_TYPE, "podsandbox"),
        ]);
        assert!(is_sandbox(&docker));
        let got = pod_labels(&docker);
        assert_eq!(
            *got,
            labels(&[("app", "web"), ("pod-template-hash", "5d9c")])
        );
        // As containerd's CRI plugin labels one.
        let containerd = labels(&[
            ("app.kubernetes.io/name", "db"),
            (CONTAINERD_KIND, "sandbox"),
            ("io.containerd.image.config.stop-signal", "SIGTERM"),
            (POD_UID, "u-2"),
        ]);
        assert!(is_sandbox(&containerd));
        assert_eq!(
            *pod_labels(&containerd),
            labels(&[("app.kubernetes.io/name", "db")])
        );
        assert!(!is_sandbox(&labels(&[(CONTAINERD_KIND, "container")])));
        assert!(!is_sandbox(&labels(&[(DOCKER_TYPE, "container")])));
    }
}
