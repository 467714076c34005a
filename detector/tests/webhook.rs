//! The webhook output end to end: a replica posts each alert's JSON to an HTTP
//! receiver, retrying when it answers 503.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use lanner_contract::{codec, subjects};
use serde_json::json;

/// Accepts requests; answers 503 to the first, 200 after; sends (status, body) of each.
fn receiver() -> (String, mpsc::Receiver<(u16, String)>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", l.local_addr().expect("addr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (n, conn) in l.incoming().enumerate() {
            let Ok(mut s) = conn else { break };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let body = loop {
                let k = s.read(&mut chunk).unwrap_or(0);
                buf.extend_from_slice(&chunk[..k]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() >= i + 4 + len {
                        break text[i + 4..i + 4 + len].to_owned();
                    }
                }
                if k == 0 {
                    break String::new();
                }
            };
            let code = if n == 0 { 503 } else { 200 };
            let _ = s.write_all(
                format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            if tx.send((code, body)).is_err() {
                break;
            }
        }
    });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_posted_with_retries() {
    let nats = common::Nats::start();
    let node = common::unique("hook");
    let (url, rx) = receiver();
    let js = common::streams(&nats.url).await;
    let _child = common::Guard(
        common::stdout_replica(
            &common::rules_dir().join("falco_rules.yaml"),
            &nats.url,
            &node,
            &["--webhook", &url],
        )
        .env("LANNER_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn"),
    );
    let ev = common::event(
        &json!({}),
        &json!({"evt.id": "w-1", "evt.type": "openat", "evt.arg.flags": "O_RDONLY", "fd.type": "file", "fd.num": 3, "fd.name": "/etc/shadow", "proc.name": "cat", "evt.hostname": node}),
    );
    js.publish(subjects::events(&node), codec::encode_batch(&[ev]).into())
        .await
        .expect("publish")
        .await
        .expect("ack");
    let (code, first) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("first attempt");
    assert_eq!(code, 503);
    let (code, second) = rx.recv_timeout(Duration::from_secs(30)).expect("retry");
    assert_eq!(code, 200);
    assert_eq!(first, second, "the retry posts the same alert");
    let alert: serde_json::Value = serde_json::from_str(&second).expect("alert JSON");
    assert_eq!(alert["rule"], "Read sensitive file untrusted");
    assert_eq!(alert["priority"], "Warning");
    assert_eq!(alert["source"], "syscall");
    assert_eq!(alert["output_fields"]["fd.name"], "/etc/shadow");
}
