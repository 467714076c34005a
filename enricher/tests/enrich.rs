//! End-to-end tests of the enricher: raw batches on a real nats-server, container
//! metadata from a real Docker engine (image built locally), DNS correlation, and pass-
//! through when the engine is absent.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::{IMAGE_REPO, IMAGE_TAG, docker, docker_engine, event, start};
use lanner_enricher::metrics::EnrichStats;

fn label<'a>(ev: &'a lanner_contract::Event, key: &str) -> Option<&'a str> {
    ev.container_labels.as_ref()?.get(key).map(|v| &**v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_in_a_labelled_container_carries_its_name_image_and_labels() {
    let Some(socket) = docker_engine() else {
        return;
    };
    let name = lanner_tests::unique("lanner-enr-web");
    let id = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        "app=web",
        "--label",
        "com.docker.compose.project=demo",
        "--label",
        "io.kubernetes.pod.name=web-0",
        "--label",
        "io.kubernetes.pod.namespace=shop",
        "--label",
        "io.kubernetes.pod.uid=1111-2222",
        &format!("{IMAGE_REPO}:{IMAGE_TAG}"),
        "/bin/sleep",
        "60",
    ]);
    docker(&["exec", &name, "/bin/true"]);
    let short = &id[..12];

    let enr = start(&socket).await;
    enr.publish(&[event(short, "execve"), event("host", "execve")])
        .await;
    let out = enr.enriched(1).await;
    docker(&["rm", "-f", &name]);

    assert_eq!(out.len(), 2);
    let ev = &out[0];
    assert_eq!(ev.container_id.as_deref(), Some(short));
    assert_eq!(ev.container_name.as_deref(), Some(name.as_str()));
    let image = format!("{IMAGE_REPO}:{IMAGE_TAG}");
    assert_eq!(ev.container_image.as_deref(), Some(image.as_str()));
    assert_eq!(ev.container_image_repository.as_deref(), Some(IMAGE_REPO));
    assert_eq!(ev.container_image_tag.as_deref(), Some(IMAGE_TAG));
    let image_id = docker(&["image", "inspect", "--format", "{{.Id}}", &image]);
    assert_eq!(
        ev.container_image_digest.as_deref(),
        Some(image_id.as_str())
    );
    assert_eq!(ev.container_type.as_deref(), Some("docker"));
    assert_eq!(ev.container_privileged, Some(false));
    assert!(
        ev.container_start_ts.is_some_and(|t| t.0 > 0),
        "start time: {:?}",
        ev.container_start_ts
    );
    assert_eq!(label(ev, "app"), Some("web"));
    assert_eq!(label(ev, "com.docker.compose.project"), Some("demo"));
    assert_eq!(ev.k8s_pod_name.as_deref(), Some("web-0"));
    assert_eq!(ev.k8s_ns_name.as_deref(), Some("shop"));
    assert_eq!(ev.k8s_pod_uid.as_deref(), Some("1111-2222"));
    // The host event is left alone.
    assert_eq!(out[1].container_id.as_deref(), Some("host"));
    assert_eq!(out[1].container_name, None);
    assert_eq!(EnrichStats::get(&enr.stats.enriched), 1);
    assert_eq!(EnrichStats::get(&enr.stats.unenriched), 0);
    enr.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_that_lives_under_a_second_is_attributed() {
    let Some(socket) = docker_engine() else {
        return;
    };
    let enr = start(&socket).await;
    // Wait until the enricher follows the engine's events: a created (never started)
    // probe container must reach its cache.
    let probe = lanner_tests::unique("lanner-enr-probe");
    docker(&[
        "create",
        "--name",
        &probe,
        &format!("{IMAGE_REPO}:{IMAGE_TAG}"),
        "/bin/true",
    ]);
    let since = Instant::now();
    while EnrichStats::get(&enr.stats.docker_events) == 0 {
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "the enricher never saw a Docker event"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    docker(&["rm", "-f", &probe]);

    let dir = tempfile::tempdir().expect("temporary directory");
    let cidfile = dir.path().join("cid");
    let name = lanner_tests::unique("lanner-enr-brief");
    docker(&[
        "run",
        "--rm",
        "--name",
        &name,
        "--cidfile",
        cidfile.to_str().expect("utf-8 path"),
        "--label",
        "app=brief",
        &format!("{IMAGE_REPO}:{IMAGE_TAG}"),
        "/bin/true",
    ]);
    let id = std::fs::read_to_string(&cidfile).expect("container id file");
    let short = &id.trim()[..12];
    // It is gone: the engine no longer knows it.
    let gone = std::process::Command::new("docker")
        .args(["inspect", short])
        .output()
        .expect("docker inspect");
    assert!(
        !gone.status.success(),
        "the --rm container should be removed by now"
    );

    enr.publish(&[event(short, "execve")]).await;
    let out = enr.enriched(1).await;
    assert_eq!(out[0].container_name.as_deref(), Some(name.as_str()));
    assert_eq!(label(&out[0], "app"), Some("brief"));
    assert_eq!(EnrichStats::get(&enr.stats.unenriched), 0);
    enr.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_docker_socket_events_flow_counted_as_unenriched_and_dns_names_connects() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let socket = dir.path().join("absent.sock");
    let absent = socket.to_str().expect("utf-8 path").to_owned();
    // Neither Docker nor containerd answers.
    let enr = common::start_with(&absent, |a| a.containerd_socket = absent.clone()).await;

    let cid = "0123456789ab";
    let ip: IpAddr = "192.0.2.7".parse().expect("ip");
    let mut dns = event(cid, "recvfrom");
    dns.dns_name = Some("api.example.org".into());
    dns.dns_answers = Some(vec!["api.example.org.cdn.".into(), ip.to_string().into()].into());
    let mut conn = event(cid, "connect");
    conn.fd_sip = Some(ip);
    let mut other = event("ba9876543210", "connect");
    other.fd_sip = Some(ip);
    enr.publish(&[dns, conn]).await;
    enr.publish(&[other]).await;

    let out = enr.enriched(2).await;
    assert_eq!(out.len(), 3);
    for ev in &out {
        assert!(ev.container_id.is_some());
        assert_eq!(ev.container_name, None);
        assert_eq!(ev.container_type, None);
    }
    assert_eq!(out[1].fd_sip_name.as_deref(), Some("api.example.org"));
    assert_eq!(
        out[2].fd_sip_name, None,
        "another container's DNS answers do not name it"
    );
    assert_eq!(EnrichStats::get(&enr.stats.unenriched), 3);
    assert_eq!(EnrichStats::get(&enr.stats.enriched), 0);
    assert_eq!(EnrichStats::get(&enr.stats.dns_named), 1);
    assert!(EnrichStats::get(&enr.stats.lookup_errors) >= 1);
    enr.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_never_answers_costs_a_bounded_wait_not_a_stall() {
    // A unix socket that accepts connections and never answers: a hung engine.
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("hung.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind unix socket");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            match conn {
                Ok(c) => held.push(c),
                Err(_) => break,
            }
        }
    });
    let enr = start(path.to_str().expect("utf-8 path")).await;
    enr.publish(&[event("0123456789ab", "execve")]).await;
    let out = enr.enriched(1).await;
    assert_eq!(out[0].container_id.as_deref(), Some("0123456789ab"));
    assert_eq!(out[0].container_name, None);
    assert_eq!(EnrichStats::get(&enr.stats.unenriched), 1);
    assert_eq!(EnrichStats::get(&enr.stats.lookup_timeouts), 1);
    enr.stop().await;
}
