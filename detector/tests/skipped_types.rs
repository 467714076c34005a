//! Events of types no rule matches are stepped over, not judged, and the rest keep their
//! place in the message: an alert on an event without an id is named after the event's
//! index in its message, skipped events counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use lanner_contract::{codec, subjects};
use serde_json::json;

const RULE: &str = "- rule: Bash run\n  desc: d\n  condition: evt.type = execve and proc.name = bash\n  output: ran %proc.name\n  priority: warning\n";

/// The body of `GET /metrics` at `addr`.
fn metrics(addr: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to /metrics");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("response");
    body
}

/// A counter's value in a metrics page.
fn counter(page: &str, name: &str) -> Option<u64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_no_rule_matches_are_skipped_and_the_rest_keep_their_place() {
    let nats = common::Nats::start();
    let node = common::unique("skip");
    let dir = tempfile::tempdir().expect("tmp");
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, RULE).expect("write");
    let js = common::streams(&nats.url).await;
    let metrics_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        l.local_addr().expect("addr").to_string()
    };

    let common::Running {
        child: _child,
        out,
        err: _err,
    } = common::start_logged(common::stdout_replica(
        &rules,
        &nats.url,
        &node,
        &["--metrics-addr", &metrics_addr],
    ));

    // No ids: alerts are named after the event's place in the message. `clone` and
    // `mmap` have no rule; the `execve` by bash at places 1 and 3 raise one alert each.
    let ev = |ty: &str, name: &str| {
        common::event(
            &json!({}),
            &json!({"evt.type": ty, "proc.name": name, "evt.hostname": node}),
        )
    };
    let batch = [
        ev("clone", "bash"),
        ev("execve", "bash"),
        ev("mmap", "bash"),
        ev("execve", "bash"),
        ev("execve", "sh"),
    ];
    let subject = subjects::events(&node);
    let ack = js
        .publish(subject.clone(), codec::encode_batch(&batch).into())
        .await
        .expect("publish")
        .await
        .expect("ack");

    let mut ids = Vec::new();
    for _ in 0..2 {
        let a: serde_json::Value =
            serde_json::from_str(&common::wait_for(&out, "\"rule\"")).expect("alert JSON");
        assert_eq!(a["rule"], "Bash run");
        ids.push(a["uuid"].as_str().expect("uuid").to_owned());
    }
    let expected: Vec<String> = [1, 3]
        .iter()
        .map(|i| {
            lanner_engine::output::alert_id("Bash run", &format!("{subject}/{}/{i}", ack.sequence))
        })
        .collect();
    assert_eq!(
        ids, expected,
        "alerts named after the events' places, skipped ones counted"
    );

    // Every event counts as judged; the two of types no rule matches as skipped too.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = metrics(&metrics_addr);
        let judged = counter(&page, "lanner_detector_events_judged_total");
        let skipped = counter(&page, "lanner_detector_events_skipped_total");
        if judged == Some(5) {
            assert_eq!(skipped, Some(2), "{page}");
            break;
        }
        assert!(Instant::now() < deadline, "events never counted: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
