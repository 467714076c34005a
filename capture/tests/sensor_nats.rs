//! Live sensor to JetStream (root only): the sensor starts while NATS is down, an exec
//! happens, then nats-server comes up on the sensor's URL; the exec must arrive on
//! `lanner.raw.<node>` in a decodable batch with the message-id scheme
//! `<session>:<first evt.num>` — it can only have been held in the sensor's buffer.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{AckPolicy, pull};
use common::is_root;
use futures::StreamExt;
use lanner_contract::{codec, subjects};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_buffered_while_nats_is_down_arrive_once_it_is_up() {
    need_root!();
    let port = lanner_tests::free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let node = lanner_tests::unique("nats-sensor");
    let (events, child) = common::start_sensor_with(&node, &["--nats-url", &url], false);
    drop(events);
    let path = format!("/nonexistent-{}", lanner_tests::unique("buffered"));
    let out = Command::new("cat")
        .arg(&path)
        .stderr(Stdio::null())
        .status()
        .expect("cat");
    assert!(!out.success());

    // Now bring NATS up where the sensor expects it.
    let store = tempfile::tempdir().expect("store");
    let mut server = Command::new("nats-server")
        .args(["-js", "-sd"])
        .arg(store.path())
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server (apt-get install nats-server)");
    lanner_tests::wait_for_port(port, Duration::from_secs(15));

    let js = async_nats::jetstream::new(async_nats::connect(&url).await.expect("connect"));
    let deadline = Instant::now() + Duration::from_secs(90);
    let stream = loop {
        match js.get_stream(subjects::RAW.name).await {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("the sensor never created {}: {e}", subjects::RAW.name),
        }
    };
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: subjects::raw(&node),
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut found = None;
    while found.is_none() && Instant::now() < deadline {
        let mut batch = consumer
            .fetch()
            .max_messages(100)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .expect("fetch");
        while let Some(m) = batch.next().await {
            let m = m.expect("message");
            let events = codec::decode_batch(&m.payload).expect("a decodable batch");
            let msg_id = m
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.to_string())
                .expect("Nats-Msg-Id");
            let first = events
                .first()
                .and_then(|e| e.evt_num)
                .expect("numbered events");
            let (session, num) = msg_id.split_once(':').expect("<session>:<num>");
            assert_eq!(num, first.to_string());
            assert_eq!(session.len(), 16);
            if let Some(ev) = events.into_iter().find(|e| {
                e.evt_type.as_deref() == Some("execve")
                    && e.proc_args.as_deref() == Some(path.as_str())
            }) {
                found = Some(ev);
            }
        }
    }
    if let Some(c) = child.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
    let _ = server.kill();
    let _ = server.wait();
    let ev = found.expect("the exec that happened while NATS was down never arrived");
    assert_eq!(ev.proc_name.as_deref(), Some("cat"));
    assert_eq!(ev.evt_hostname.as_deref(), Some(node.as_str()));
}
