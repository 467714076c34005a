//! SIGHUP reloads the rules; a bad new file leaves the old rules running.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use async_nats::jetstream;
use lanner_contract::{codec, subjects};
use serde_json::json;

const RULE_A: &str = "- rule: Rule A\n  desc: d\n  condition: evt.type = execve and proc.name = bash\n  output: A %proc.name\n  priority: warning\n";
const RULE_B: &str = "- rule: Rule B\n  desc: d\n  condition: evt.type = execve and proc.name = bash\n  output: B %proc.name\n  priority: critical\n";

async fn publish(js: &jetstream::Context, node: &str, k: usize) {
    let ev = common::event(
        &json!({}),
        &json!({"evt.id": format!("{node}-{k}"), "evt.type": "execve", "proc.name": "bash", "evt.hostname": node}),
    );
    js.publish(subjects::events(node), codec::encode_batch(&[ev]).into())
        .await
        .expect("publish")
        .await
        .expect("ack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_keeps_old_rules_on_a_bad_file() {
    let nats = common::Nats::start();
    let node = common::unique("hup");
    let dir = tempfile::tempdir().expect("tmp");
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, RULE_A).expect("write");
    let js = common::streams(&nats.url).await;

    let common::Running { child, out, err } =
        common::start_logged(common::stdout_replica(&rules, &nats.url, &node, &[]));
    let hup = || {
        Command::new("kill")
            .arg("-HUP")
            .arg(child.0.id().to_string())
            .status()
            .expect("kill -HUP");
    };

    publish(&js, &node, 1).await;
    let a: serde_json::Value =
        serde_json::from_str(&common::wait_for(&out, "\"rule\"")).expect("json");
    assert_eq!(a["rule"], "Rule A");

    std::fs::write(&rules, "- rule: Broken\n  desc: d\n  condition: evt.type = execve and (\n  output: o\n  priority: info\n").expect("write");
    hup();
    let why = common::wait_for(&err, "rule reload failed");
    assert!(why.contains("rules.yaml:3:14"), "the log says where: {why}");
    publish(&js, &node, 2).await;
    let a: serde_json::Value =
        serde_json::from_str(&common::wait_for(&out, "\"rule\"")).expect("json");
    assert_eq!(a["rule"], "Rule A", "old rules keep running");

    std::fs::write(&rules, RULE_B).expect("write");
    hup();
    common::wait_for(&err, "rules reloaded");
    publish(&js, &node, 3).await;
    let b: serde_json::Value =
        serde_json::from_str(&common::wait_for(&out, "\"rule\"")).expect("json");
    assert_eq!(b["rule"], "Rule B");
    assert_eq!(b["priority"], "Critical");
    assert!(b["output"].as_str().expect("output").ends_with("Critical B bash container_id=<NA> container_name=<NA> container_image=<NA> k8s_ns=<NA> k8s_pod_name=<NA>"), "{b}");
}
