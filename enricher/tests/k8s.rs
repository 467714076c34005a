//! Kubernetes context from the container runtime, against real engines: containers
//! carrying the CRI labels kubelet sets (run through Docker, as cri-dockerd does, and
//! through containerd in namespace `k8s.io`, as the CRI plugin does) get their pod's name,
//! namespace, uid and labels, the labels read from the pod's sandbox container.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{
    CONTAINERD_IMAGE, CtrContainer, IMAGE_REPO, IMAGE_TAG, ctr, docker, docker_engine, event, start,
};
use lanner_contract::Event;
use lanner_enricher::metrics::EnrichStats;

fn pod_labels(ev: &Event) -> BTreeMap<String, String> {
    ev.k8s_pod_labels
        .as_ref()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn field(ev: &Event, name: &str) -> Option<String> {
    ev.get_by_name(name).map(|v| v.to_string())
}

/// Runs a container through Docker the way cri-dockerd does: `k8s_<container>_<pod>_...`
/// name, CRI labels, plus `extra` labels.
fn docker_cri(container: &str, pod: &str, ns: &str, uid: &str, extra: &[(&str, &str)]) -> String {
    let name = lanner_tests::unique(&format!("k8s_{container}_{pod}_{ns}"));
    let labels = [
        ("io.kubernetes.pod.name", pod),
        ("io.kubernetes.pod.namespace", ns),
        ("io.kubernetes.pod.uid", uid),
        ("io.kubernetes.container.name", container),
    ];
    let mut args: Vec<String> = vec!["run".into(), "-d".into(), "--name".into(), name];
    for (k, v) in labels.iter().chain(extra) {
        args.push("--label".into());
        args.push(format!("{k}={v}"));
    }
    args.extend([
        format!("{IMAGE_REPO}:{IMAGE_TAG}"),
        "/bin/sleep".into(),
        "120".into(),
    ]);
    docker(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cri_labelled_docker_containers_carry_their_pod_and_the_sandboxes_pod_labels() {
    let Some(socket) = docker_engine() else {
        return;
    };
    let uid_a = lanner_tests::unique("uid-a");
    let uid_b = lanner_tests::unique("uid-b");
    // Pod A: the app container names its sandbox (io.kubernetes.sandbox.id).
    let sandbox_a = docker_cri(
        "POD",
        "web-0",
        "shop",
        &uid_a,
        &[
            ("io.kubernetes.docker.type", "podsandbox"),
            ("app", "web"),
            ("tier", "front"),
            ("annotation.kubernetes.io/config.source", "api"),
        ],
    );
    let app_a = docker_cri(
        "nginx",
        "web-0",
        "shop",
        &uid_a,
        &[
            ("io.kubernetes.docker.type", "container"),
            ("io.kubernetes.sandbox.id", &sandbox_a),
        ],
    );
    // Pod B: no sandbox id label; the sandbox is found by pod uid.
    let _sandbox_b = docker_cri(
        "POD",
        "db-0",
        "data",
        &uid_b,
        &[("io.kubernetes.docker.type", "podsandbox"), ("app", "db")],
    );
    let app_b = docker_cri(
        "postgres",
        "db-0",
        "data",
        &uid_b,
        &[("io.kubernetes.docker.type", "container")],
    );

    let enr = start(&socket).await;
    enr.publish(&[
        event(&app_a[..12], "execve"),
        event(&app_b[..12], "execve"),
        event(&sandbox_a[..12], "execve"),
    ])
    .await;
    let out = enr.enriched(1).await;
    let cleanup: Vec<String> = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=io.kubernetes.pod.uid={uid_a}"),
    ])
    .lines()
    .chain(
        docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=io.kubernetes.pod.uid={uid_b}"),
        ])
        .lines(),
    )
    .map(str::to_owned)
    .collect();
    for c in &cleanup {
        docker(&["rm", "-f", c]);
    }
    enr.stop().await;

    assert_eq!(out.len(), 3);
    let (a, b, sandbox) = (&out[0], &out[1], &out[2]);
    assert_eq!(a.k8s_pod_name.as_deref(), Some("web-0"));
    assert_eq!(a.k8s_ns_name.as_deref(), Some("shop"));
    assert_eq!(a.k8s_pod_uid.as_deref(), Some(uid_a.as_str()));
    assert_eq!(a.container_type.as_deref(), Some("docker"));
    assert_eq!(pod_labels(a), map(&[("app", "web"), ("tier", "front")]));
    assert_eq!(field(a, "k8s.pod.label[tier]").as_deref(), Some("front"));
    assert_eq!(
        field(a, "container.label[io.kubernetes.container.name]").as_deref(),
        Some("nginx")
    );
    assert_eq!(b.k8s_pod_name.as_deref(), Some("db-0"));
    assert_eq!(b.k8s_ns_name.as_deref(), Some("data"));
    assert_eq!(b.k8s_pod_uid.as_deref(), Some(uid_b.as_str()));
    assert_eq!(pod_labels(b), map(&[("app", "db")]));
    // The sandbox's own events carry the pod too.
    assert_eq!(sandbox.k8s_pod_name.as_deref(), Some("web-0"));
    assert_eq!(
        pod_labels(sandbox),
        map(&[("app", "web"), ("tier", "front")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_created_through_containerd_in_k8s_io_is_attributed_with_its_pod() {
    let Some(socket) = docker_engine() else {
        return;
    };
    let uid = lanner_tests::unique("uid-c");
    let sandbox = CtrContainer::run(&[
        ("io.cri-containerd.kind", "sandbox"),
        ("io.kubernetes.pod.name", "api-7f9c-x2"),
        ("io.kubernetes.pod.namespace", "prod"),
        ("io.kubernetes.pod.uid", &uid),
        ("app", "api"),
        ("pod-template-hash", "7f9c"),
    ]);
    let app = CtrContainer::run(&[
        ("io.cri-containerd.kind", "container"),
        ("io.kubernetes.container.name", "server"),
        ("io.kubernetes.pod.name", "api-7f9c-x2"),
        ("io.kubernetes.pod.namespace", "prod"),
        ("io.kubernetes.pod.uid", &uid),
    ]);
    let image_digest = ctr(&["images", "ls"])
        .lines()
        .find(|l| l.starts_with(&format!("{CONTAINERD_IMAGE} ")))
        .and_then(|l| l.split_whitespace().find(|w| w.starts_with("sha256:")))
        .map(str::to_owned)
        .expect("the imported image in `ctr images ls`");

    // Docker does not know these containers: the answer must come from containerd.
    let enr = start(&socket).await;
    enr.publish(&[
        event(&app.id[..12], "execve"),
        event(&sandbox.id[..12], "openat"),
    ])
    .await;
    let out = enr.enriched(1).await;
    enr.stop().await;

    let ev = &out[0];
    assert_eq!(ev.container_type.as_deref(), Some("containerd"));
    assert_eq!(ev.container_name.as_deref(), Some("server"));
    assert_eq!(
        ev.container_image_repository.as_deref(),
        Some("docker.io/library/lanner-test-busybox")
    );
    assert_eq!(ev.container_image_tag.as_deref(), Some("1"));
    assert_eq!(
        ev.container_image_digest.as_deref(),
        Some(image_digest.as_str())
    );
    assert!(
        ev.container_start_ts.is_some_and(|t| t.0 > 0),
        "start time: {:?}",
        ev.container_start_ts
    );
    assert_eq!(ev.k8s_pod_name.as_deref(), Some("api-7f9c-x2"));
    assert_eq!(ev.k8s_ns_name.as_deref(), Some("prod"));
    assert_eq!(ev.k8s_pod_uid.as_deref(), Some(uid.as_str()));
    assert_eq!(
        pod_labels(ev),
        map(&[("app", "api"), ("pod-template-hash", "7f9c")])
    );
    assert_eq!(field(ev, "k8s.pod.label[app]").as_deref(), Some("api"));
    let sb = &out[1];
    assert_eq!(sb.container_type.as_deref(), Some("containerd"));
    assert_eq!(sb.k8s_pod_name.as_deref(), Some("api-7f9c-x2"));
    assert_eq!(
        pod_labels(sb),
        map(&[("app", "api"), ("pod-template-hash", "7f9c")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_containerd_container_gone_before_its_events_arrive_is_attributed_from_the_event_stream()
{
    let Some(socket) = docker_engine() else {
        return;
    };
    common::containerd_image();
    let enr = start(&socket).await;
    // Wait until the enricher follows containerd's events: a probe container must reach
    // its cache.
    let probe = common::random_container_id();
    ctr(&[
        "containers",
        "create",
        CONTAINERD_IMAGE,
        &probe,
        "/bin/true",
    ]);
    let since = Instant::now();
    while EnrichStats::get(&enr.stats.containerd_events) == 0 {
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "the enricher never saw a containerd event"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ctr(&["containers", "delete", &probe]);

    // A container that runs one command and is removed at once.
    let id = common::random_container_id();
    ctr(&[
        "run",
        "--rm",
        "--label",
        "io.kubernetes.container.name=job",
        "--label",
        "io.kubernetes.pod.namespace=batch",
        CONTAINERD_IMAGE,
        &id,
        "/bin/true",
    ]);
    let listed = ctr(&["containers", "ls", "-q"]);
    assert!(
        !listed.lines().any(|l| l == id),
        "the --rm container should be gone by now"
    );

    enr.publish(&[event(&id[..12], "execve")]).await;
    let out = enr.enriched(1).await;
    let unenriched = EnrichStats::get(&enr.stats.unenriched);
    enr.stop().await;
    assert_eq!(out[0].container_type.as_deref(), Some("containerd"));
    assert_eq!(out[0].container_name.as_deref(), Some("job"));
    assert_eq!(out[0].k8s_ns_name.as_deref(), Some("batch"));
    assert_eq!(unenriched, 0);
}
