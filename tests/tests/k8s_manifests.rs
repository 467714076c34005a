//! The Kubernetes manifests in `deploy/k8s/` are valid Kubernetes API objects (no cluster
//! runs here): every object deserializes into its `k8s-openapi` type and serializes back
//! to exactly the input, so a misspelt or misplaced field (which the types would drop)
//! fails; and the objects agree with each other (selectors, references, the HPA's
//! target, the kustomization's list, the NATS chart values' service name).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PodSpec, Secret, Service};
use serde::Deserialize as _;
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/k8s")
}

/// Every YAML document of a file, as JSON values.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| {
            Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// The first path where two JSON values differ.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(u), Some(v)) => first_difference(u, v, &format!("{path}.{k}")),
                (Some(_), None) => Some(format!("{path}.{k} is not a field of the API type")),
                (None, _) => Some(format!("{path}.{k} appeared on the way back")),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (u, v))| first_difference(u, v, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{path}: {a} became {b}")),
    }
}

/// Deserializes `doc` as `T` and checks that it serializes back to the same JSON.
fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value, what: &str) -> T {
    let t: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let back = serde_json::to_value(&t).unwrap_or_else(|e| panic!("{what}: {e}"));
    if let Some(diff) = first_difference(doc, &back, "") {
        panic!("{what}: {diff}");
    }
    t
}

/// The objects of every manifest, each checked against its type.
#[derive(Default)]
struct Objects {
    namespaces: Vec<Namespace>,
    config_maps: Vec<ConfigMap>,
    secrets: Vec<Secret>,
    daemon_sets: Vec<DaemonSet>,
    deployments: Vec<Deployment>,
    services: Vec<Service>,
    hpas: Vec<HorizontalPodAutoscaler>,
}

fn load(files: &[String]) -> Objects {
    let mut o = Objects::default();
    for file in files {
        for doc in documents(&dir().join(file)) {
            let api = doc["apiVersion"].as_str().unwrap_or_default().to_owned();
            let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
            let name = doc["metadata"]["name"].as_str().unwrap_or_default();
            let what = format!("{file}: {kind} {name}");
            match (api.as_str(), kind.as_str()) {
                ("v1", "Namespace") => o.namespaces.push(typed(&doc, &what)),
                ("v1", "ConfigMap") => o.config_maps.push(typed(&doc, &what)),
                ("v1", "Secret") => o.secrets.push(typed(&doc, &what)),
                ("v1", "Service") => o.services.push(typed(&doc, &what)),
                ("apps/v1", "DaemonSet") => o.daemon_sets.push(typed(&doc, &what)),
                ("apps/v1", "Deployment") => o.deployments.push(typed(&doc, &what)),
                ("autoscaling/v2", "HorizontalPodAutoscaler") => o.hpas.push(typed(&doc, &what)),
                _ => panic!("{what}: no check for apiVersion {api:?} kind {kind:?}"),
            }
        }
    }
    o
}

/// The files the kustomization applies.
fn kustomized() -> Vec<String> {
    let k = documents(&dir().join("kustomization.yaml"));
    k[0]["resources"]
        .as_array()
        .expect("kustomization resources")
        .iter()
        .map(|r| r.as_str().expect("a file name").to_owned())
        .collect()
}

/// Every pod spec, named.
fn pods(o: &Objects) -> Vec<(String, &PodSpec)> {
    let mut pods = Vec::new();
    for d in &o.daemon_sets {
        let spec = d.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        pods.push((
            format!("DaemonSet {:?}", d.metadata.name),
            spec.expect("pod spec"),
        ));
    }
    for d in &o.deployments {
        let spec = d.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        pods.push((
            format!("Deployment {:?}", d.metadata.name),
            spec.expect("pod spec"),
        ));
    }
    pods
}

#[test]
fn every_manifest_is_a_kubernetes_object_and_kustomized() {
    let mut on_disk: Vec<String> = std::fs::read_dir(dir())
        .expect("deploy/k8s")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml"))
        .filter(|n| n != "kustomization.yaml" && n != "nats-values.yaml")
        .collect();
    on_disk.sort();
    let mut listed = kustomized();
    listed.sort();
    assert_eq!(listed, on_disk, "kustomization.yaml lists every manifest");
    let o = load(&listed);
    assert_eq!(o.namespaces.len(), 1);
    assert_eq!(
        o.daemon_sets.len(),
        1,
        "capture and enricher: one DaemonSet"
    );
    assert_eq!(o.hpas.len(), 1);
}

#[test]
fn the_objects_agree_with_each_other() {
    let o = load(&kustomized());
    let ns = o.namespaces[0]
        .metadata
        .name
        .clone()
        .expect("namespace name");
    let config_maps: BTreeSet<String> = o
        .config_maps
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    let secrets: BTreeSet<String> = o
        .secrets
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();

    // Selectors select their own pods.
    let selects = |sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
                   labels: Option<&std::collections::BTreeMap<String, String>>,
                   what: &str| {
        let want = sel.match_labels.as_ref().expect("matchLabels");
        let labels = labels.expect("pod labels");
        for (k, v) in want {
            assert_eq!(labels.get(k), Some(v), "{what}: selector {k}={v}");
        }
    };
    for d in &o.daemon_sets {
        let s = d.spec.as_ref().expect("spec");
        selects(
            &s.selector,
            s.template.metadata.as_ref().and_then(|m| m.labels.as_ref()),
            "DaemonSet",
        );
    }
    for d in &o.deployments {
        let s = d.spec.as_ref().expect("spec");
        selects(
            &s.selector,
            s.template.metadata.as_ref().and_then(|m| m.labels.as_ref()),
            "Deployment",
        );
    }

    for (what, pod) in pods(&o) {
        for c in &pod.containers {
            let what = format!("{what} container {}", c.name);
            // Config comes from objects that exist.
            for from in c.env_from.iter().flatten() {
                if let Some(r) = &from.config_map_ref {
                    assert!(
                        config_maps.contains(&r.name),
                        "{what}: no ConfigMap {}",
                        r.name
                    );
                }
                if let Some(r) = &from.secret_ref {
                    assert!(secrets.contains(&r.name), "{what}: no Secret {}", r.name);
                }
            }
            // A health check on a port the container declares.
            let probe = c
                .liveness_probe
                .as_ref()
                .unwrap_or_else(|| panic!("{what}: no liveness probe"));
            let get = probe
                .http_get
                .as_ref()
                .unwrap_or_else(|| panic!("{what}: not an HTTP probe"));
            assert_eq!(get.path.as_deref(), Some("/healthz"), "{what}");
            let port = match &get.port {
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s.clone(),
                other => panic!("{what}: probe port {other:?} should name a port"),
            };
            assert!(
                c.ports
                    .iter()
                    .flatten()
                    .any(|p| p.name.as_deref() == Some(port.as_str())),
                "{what}: probe port {port} is not declared"
            );
            // Every capability dropped, and only the sensor adds any back.
            let caps = c
                .security_context
                .as_ref()
                .and_then(|s| s.capabilities.as_ref());
            let caps = caps.unwrap_or_else(|| panic!("{what}: capabilities not set"));
            assert_eq!(
                caps.drop.as_deref(),
                Some(&["ALL".to_owned()][..]),
                "{what}"
            );
            if c.name == "capture" {
                assert!(
                    pod.host_pid == Some(true),
                    "{what}: the sensor needs hostPID"
                );
                let add = caps.add.clone().unwrap_or_default();
                assert!(
                    add.iter().all(|a| [
                        "SYS_ADMIN",
                        "BPF",
                        "PERFMON",
                        "SYS_PTRACE",
                        "DAC_READ_SEARCH"
                    ]
                    .contains(&a.as_str())),
                    "{what}: unexpected capabilities {add:?}"
                );
            } else {
                assert!(caps.add.is_none(), "{what}: adds capabilities");
            }
            // Mounts name volumes of the pod.
            for m in c.volume_mounts.iter().flatten() {
                assert!(
                    pod.volumes.iter().flatten().any(|v| v.name == m.name),
                    "{what}: no volume {}",
                    m.name
                );
            }
        }
        for v in pod.volumes.iter().flatten() {
            if let Some(cm) = &v.config_map {
                assert!(
                    config_maps.contains(&cm.name),
                    "{what}: no ConfigMap {}",
                    cm.name
                );
            }
        }
    }

    // Everything lives in the namespace.
    let namespaced = o
        .config_maps
        .iter()
        .map(|x| &x.metadata)
        .chain(o.secrets.iter().map(|x| &x.metadata))
        .chain(o.daemon_sets.iter().map(|x| &x.metadata))
        .chain(o.deployments.iter().map(|x| &x.metadata))
        .chain(o.services.iter().map(|x| &x.metadata))
        .chain(o.hpas.iter().map(|x| &x.metadata));
    for m in namespaced {
        assert_eq!(
            m.namespace.as_ref(),
            Some(&ns),
            "{:?} outside namespace {ns}",
            m.name
        );
    }

    // The HPA scales the detector Deployment.
    let hpa = o.hpas[0].spec.as_ref().expect("HPA spec");
    assert_eq!(hpa.scale_target_ref.kind, "Deployment");
    assert_eq!(hpa.scale_target_ref.name, "lanner-detector");
    assert!(
        o.deployments
            .iter()
            .any(|d| d.metadata.name.as_deref() == Some("lanner-detector"))
    );
    assert!(hpa.min_replicas.unwrap_or(1) >= 2 && hpa.max_replicas > hpa.min_replicas.unwrap_or(1));

    // The query Service exposes Postgres and HTTP from the query pods.
    let svc = o
        .services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("lanner-query"))
        .expect("lanner-query Service");
    let spec = svc.spec.as_ref().expect("Service spec");
    let ports: BTreeSet<i32> = spec.ports.iter().flatten().map(|p| p.port).collect();
    assert_eq!(ports, BTreeSet::from([5433, 9470]));
}

#[test]
fn nats_chart_values_make_the_service_lanner_connects_to() {
    let values = &documents(&dir().join("nats-values.yaml"))[0];
    assert_eq!(values["config"]["jetstream"]["enabled"], Value::Bool(true));
    assert_eq!(
        values["config"]["jetstream"]["fileStore"]["pvc"]["enabled"],
        Value::Bool(true)
    );
    assert_eq!(values["config"]["cluster"]["enabled"], Value::Bool(true));
    let replicas = values["config"]["cluster"]["replicas"]
        .as_u64()
        .expect("replicas");
    let o = load(&kustomized());
    let config = o
        .config_maps
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some("lanner-config"))
        .and_then(|c| c.data.as_ref())
        .expect("lanner-config data");
    // The chart's client Service is named after the release ("nats" in README).
    assert_eq!(config["LANNER_NATS_URL"], "nats://nats.lanner.svc:4222");
    let stream_replicas: u64 = config["LANNER_STREAM_REPLICAS"].parse().expect("a number");
    assert!(
        stream_replicas <= replicas,
        "more stream replicas than NATS nodes"
    );
}
