//! The `lanner-enricher` binary: flags from `LANNER_*` environment variables, raw batches
//! in and enriched batches out on a real nats-server, and a clean exit on SIGTERM.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use lanner_contract::{Event, codec, subjects};
use lanner_tests::Nats;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_enriches_then_exits_cleanly_on_sigterm() {
    let nats = Nats::start();
    let node = lanner_tests::unique("enr-bin");
    let dir = tempfile::tempdir().expect("temporary directory");
    let metrics_port = lanner_tests::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lanner-enricher"))
        .env(
            "LANNER_ENRICHER_METRICS_ADDR",
            format!("127.0.0.1:{metrics_port}"),
        )
        .env("LANNER_NATS_URL", &nats.url)
        .env("LANNER_NODE", &node)
        .env("LANNER_DOCKER_SOCKET", dir.path().join("absent.sock"))
        .stdout(Stdio::null())
        .spawn()
        .expect("start lanner-enricher");
    let js = jetstream::new(async_nats::connect(&nats.url).await.expect("connect"));
    let since = Instant::now();
    while js.get_stream(subjects::RAW.name).await.is_err() {
        assert!(
            since.elapsed() < Duration::from_secs(20),
            "the enricher did not create the streams"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ev = Event {
        evt_type: Some("execve".into()),
        container_id: Some("0123456789ab".into()),
        ..Default::default()
    };
    js.publish(subjects::raw(&node), codec::encode_batch(&[ev]).into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    let msgs = lanner_tests::collect(
        &js,
        subjects::EVENTS.name,
        &subjects::events(&node),
        1,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(msgs.len(), 1);
    let out = codec::decode_batch(&msgs[0].payload).expect("decodes");
    assert_eq!(out[0].container_id.as_deref(), Some("0123456789ab"));
    let id = msgs[0]
        .headers
        .as_ref()
        .and_then(|h| h.get(subjects::HDR_MSG_ID))
        .map(|v| v.to_string());
    assert!(
        id.as_deref()
            .is_some_and(|i| i.starts_with(&format!("enricher:{node}:"))),
        "msg id {id:?}"
    );

    // The counters move just after JetStream acked the publish: poll briefly.
    let want = [
        "lanner_enricher_events_unenriched_total 1",
        "lanner_enricher_events_published_total 1",
    ];
    let since = Instant::now();
    loop {
        let out = Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{metrics_port}/metrics")])
            .output()
            .expect("curl /metrics");
        let metrics = String::from_utf8_lossy(&out.stdout);
        if want.iter().all(|w| metrics.lines().any(|l| l == *w)) {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "/metrics lacks {want:?}: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(term.success());
    let since = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            since.elapsed() < Duration::from_secs(20),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
}
