//! Scale-out against a real nats-server: three `lanner-detector run` replicas share one
//! durable consumer; every event is judged once overall and every alert is published
//! once; killing a replica mid-stream loses no alert.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;
use lanner_contract::{Event, codec, subjects};
use lanner_engine::DEFAULT_APPEND_OUTPUT;
use lanner_engine::alert::AlertBuilder;
use lanner_engine::rules::{Matching, load_files};
use serde_json::json;

const BATCHES: usize = 120;
const PER_BATCH: usize = 25;

fn events(node: &str) -> Vec<Vec<Event>> {
    let base = json!({"evt.hostname": node, "evt.time": "2026-01-01T00:00:10Z", "proc.pid.ts": "2026-01-01T00:00:00Z",
        "user.name": "root", "user.uid": 0, "container.id": "0123456789ab", "container.image.repository": "docker.io/library/nginx"});
    (0..BATCHES)
        .map(|b| {
            (0..PER_BATCH)
                .map(|i| {
                    let k = b * PER_BATCH + i;
                    let p = if k.is_multiple_of(7) {
                        json!({"evt.id": format!("{node}-{k}"), "evt.num": k, "evt.type": "execve", "proc.name": "bash", "proc.tty": 34816, "proc.aname": ["runc"]})
                    } else if k.is_multiple_of(11) {
                        json!({"evt.id": format!("{node}-{k}"), "evt.num": k, "evt.type": "openat", "evt.arg.flags": "O_RDONLY", "fd.type": "file", "fd.num": 3, "fd.name": "/etc/shadow", "proc.name": "cat"})
                    } else {
                        json!({"evt.id": format!("{node}-{k}"), "evt.num": k, "evt.type": "openat", "evt.arg.flags": "O_RDONLY", "fd.type": "file", "fd.num": 3, "fd.name": "/usr/lib/libc.so.6", "proc.name": "nginx"})
                    };
                    common::event(&base, &p)
                })
                .collect()
        })
        .collect()
}

fn expected_alerts(batches: &[Vec<Event>], rules: &std::path::Path) -> BTreeSet<String> {
    let (rs, _) = load_files(&[rules.to_path_buf()], DEFAULT_APPEND_OUTPUT).expect("rules load");
    let b = AlertBuilder::new(Matching::First);
    let mut out = BTreeSet::new();
    for ev in batches.iter().flatten() {
        b.judge(
            &rs,
            ev,
            "n",
            || unreachable!("events have ids"),
            |a| {
                out.insert(a.uuid);
            },
        );
    }
    out
}

/// A replica process, killed if the test fails before stopping it.
struct Replica(Option<Child>);

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn replica(
    url: &str,
    rules: &std::path::Path,
    durable: &str,
    node: &str,
    ack_wait: u64,
    decode_ahead: bool,
) -> Replica {
    Replica(Some(
        Command::new(env!("CARGO_BIN_EXE_lanner-detector"))
            .args(["run", "--rules"])
            .arg(rules)
            .args([
                "--nats-url",
                url,
                "--durable",
                durable,
                "--filter",
                &subjects::events(node),
            ])
            .args(["--ack-wait", &ack_wait.to_string(), "--batch-max", "8"])
            .args([
                "--decode-ahead",
                if decode_ahead { "true" } else { "false" },
            ])
            .env("LANNER_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lanner-detector"),
    ))
}

async fn wait_for_pullers(js: &jetstream::Context, durable: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let last;
        match js.get_stream(subjects::EVENTS.name).await {
            Ok(stream) => match stream
                .get_consumer::<jetstream::consumer::pull::Config>(durable)
                .await
            {
                Ok(mut c) => match c.info().await {
                    Ok(info) if info.num_waiting >= n => return,
                    Ok(info) => last = format!("num_waiting={}", info.num_waiting),
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        assert!(
            Instant::now() < deadline,
            "replicas did not start pulling: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn publish(js: &jetstream::Context, node: &str, batches: &[Vec<Event>], from: usize) {
    for (i, b) in batches.iter().enumerate() {
        let mut h = async_nats::HeaderMap::new();
        h.insert("Nats-Msg-Id", format!("{node}-batch-{}", from + i).as_str());
        js.publish_with_headers(subjects::events(node), h, codec::encode_batch(b).into())
            .await
            .expect("publish")
            .await
            .expect("ack");
    }
}

/// Reads alerts on `lanner.alerts.<node>` until `want` distinct ids arrived (or a timeout),
/// then a little longer to catch duplicates. Returns id → count.
async fn collect_alerts(
    js: &jetstream::Context,
    node: &str,
    want: usize,
) -> BTreeMap<String, usize> {
    let stream = js
        .get_stream(subjects::ALERTS.name)
        .await
        .expect("alerts stream");
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: subjects::alerts(node),
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut msgs = consumer.messages().await.expect("messages");
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut grace: Option<Instant> = None;
    loop {
        if seen.len() >= want && grace.is_none() {
            grace = Some(Instant::now() + Duration::from_secs(2));
        }
        if grace.is_some_and(|g| Instant::now() > g) || Instant::now() > deadline {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(250), msgs.next()).await {
            Ok(Some(Ok(m))) => {
                let alert: serde_json::Value =
                    serde_json::from_slice(&m.payload).expect("alert JSON");
                let id = alert["uuid"].as_str().expect("uuid").to_owned();
                assert_eq!(
                    m.headers
                        .as_ref()
                        .and_then(|h| h.get("Nats-Msg-Id"))
                        .map(|v| v.as_str().to_owned()),
                    Some(id.clone())
                );
                for k in [
                    "time",
                    "rule",
                    "priority",
                    "source",
                    "tags",
                    "hostname",
                    "output",
                    "output_fields",
                ] {
                    assert!(alert.get(k).is_some(), "alert lacks {k}: {alert}");
                }
                assert_eq!(alert["hostname"], node);
                *seen.entry(id).or_default() += 1;
            }
            Ok(Some(Err(e))) => panic!("reading alerts: {e}"),
            Ok(None) => break,
            Err(_) => {}
        }
    }
    seen
}

fn stop(mut r: Replica) -> u64 {
    let mut c = r.0.take().expect("running");
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(c.id().to_string())
        .status();
    let out = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if c.try_wait().expect("wait").is_some() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        c.wait_with_output().expect("output")
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("judged_events="))
        .unwrap_or_else(|| panic!("no summary in stderr: {stderr}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("judged_events="))
        .and_then(|n| n.parse().ok())
        .expect("judged_events count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_judge_every_event_exactly_once() {
    let nats = common::Nats::start();
    let node = common::unique("rep");
    let durable = common::unique("det");
    let rules = common::rules_dir().join("falco_rules.yaml");
    let js = common::streams(&nats.url).await;
    let batches = events(&node);
    let expected = expected_alerts(&batches, &rules);
    assert!(
        expected.len() > 400,
        "the mix fires rules: {}",
        expected.len()
    );

    // One of them decodes in its judging task (`--decode-ahead false`).
    let replicas: Vec<Replica> = (0..3)
        .map(|i| replica(&nats.url, &rules, &durable, &node, 30, i != 0))
        .collect();
    wait_for_pullers(&js, &durable, 3).await;
    publish(&js, &node, &batches, 0).await;
    let seen = collect_alerts(&js, &node, expected.len()).await;

    let judged: Vec<u64> = replicas.into_iter().map(stop).collect();
    let got: BTreeSet<String> = seen.keys().cloned().collect();
    assert_eq!(got, expected, "every expected alert, nothing else");
    assert!(seen.values().all(|&n| n == 1), "no alert twice");
    assert_eq!(
        judged.iter().sum::<u64>(),
        (BATCHES * PER_BATCH) as u64,
        "each event judged once overall: {judged:?}"
    );
    assert!(
        judged.iter().filter(|&&n| n > 0).count() >= 2,
        "replicas split the load: {judged:?}"
    );
}

async fn ack_pending(js: &jetstream::Context, durable: &str) -> usize {
    let stream = js.get_stream(subjects::EVENTS.name).await.expect("stream");
    let mut c = stream
        .get_consumer::<jetstream::consumer::pull::Config>(durable)
        .await
        .expect("consumer");
    c.info().await.expect("info").num_ack_pending
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_replica_mid_stream_loses_no_alert() {
    let nats = common::Nats::start();
    let node = common::unique("kill");
    let durable = common::unique("detk");
    let rules = common::rules_dir().join("falco_rules.yaml");
    let js = common::streams(&nats.url).await;
    let batches = events(&node);
    let expected = expected_alerts(&batches, &rules);

    // The victim starts alone and is frozen (SIGSTOP) with a pull request outstanding,
    // so the first half is delivered to it and stays unacked.
    let mut victim = replica(&nats.url, &rules, &durable, &node, 3, true);
    wait_for_pullers(&js, &durable, 1).await;
    let pid = victim.0.as_ref().expect("running").id().to_string();
    Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .expect("kill -STOP");
    let half = BATCHES / 2;
    publish(&js, &node, &batches[..half], 0).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while ack_pending(&js, &durable).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the frozen replica never received a batch"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Two more replicas join; the rest is published; the victim dies with its batches.
    let survivors: Vec<Replica> = (0..2)
        .map(|i| replica(&nats.url, &rules, &durable, &node, 3, i == 0))
        .collect();
    publish(&js, &node, &batches[half..], half).await;
    let mut v = victim.0.take().expect("running");
    v.kill().expect("kill -9");
    let _ = v.wait();

    let seen = collect_alerts(&js, &node, expected.len()).await;
    let judged: Vec<u64> = survivors.into_iter().map(stop).collect();
    let got: BTreeSet<String> = seen.keys().cloned().collect();
    let missing: Vec<_> = expected.difference(&got).collect();
    assert!(missing.is_empty(), "{} alerts lost", missing.len());
    assert_eq!(got, expected);
    assert!(
        seen.values().all(|&n| n == 1),
        "redelivered batches must not double alerts"
    );
    // The victim judged nothing (it was frozen before any event arrived), so the
    // survivors judged every event, the victim's batches included. At least once: a
    // slow survivor's batch may be redelivered too; alerts stay exactly once.
    assert!(
        judged.iter().sum::<u64>() >= (BATCHES * PER_BATCH) as u64,
        "the survivors judged every event, including the batches the victim held: {judged:?}"
    );
}
