//! Response policy end to end: an alert the policy matches publishes an action request
//! to `lanner.actions.<node>`; one outside the policy's scope does not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;
use lanner_contract::{codec, subjects};
use serde_json::json;

const POLICY: &str = r#"
- policy: kill shells in web containers
  action: kill
  rules: [Terminal shell in container]
  scope:
    container_labels: {app: web}
"#;

async fn read_all(
    js: &jetstream::Context,
    stream: &str,
    subject: String,
    want: usize,
) -> Vec<serde_json::Value> {
    let s = js.get_stream(stream).await.expect("stream");
    let c = s
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: subject,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut msgs = c.messages().await.expect("messages");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut quiet_until: Option<Instant> = None;
    while Instant::now() < deadline {
        if out.len() >= want && quiet_until.is_none() {
            quiet_until = Some(Instant::now() + Duration::from_secs(1));
        }
        if quiet_until.is_some_and(|q| Instant::now() > q) {
            break;
        }
        if let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(200), msgs.next()).await
        {
            out.push(serde_json::from_slice(&m.payload).expect("json"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_matches_publish_action_requests() {
    let nats = common::Nats::start();
    let node = common::unique("act");
    let dir = tempfile::tempdir().expect("tmp");
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).expect("write");
    let js = common::streams(&nats.url).await;
    let _child = common::Guard(
        Command::new(env!("CARGO_BIN_EXE_lanner-detector"))
            .args(["run", "--rules"])
            .arg(common::rules_dir().join("falco_rules.yaml"))
            .arg("--policy")
            .arg(&policy)
            .args([
                "--nats-url",
                &nats.url,
                "--durable",
                &common::unique("actd"),
                "--filter",
                &subjects::events(&node),
            ])
            .env("LANNER_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn"),
    );
    let shell = |id: &str, app: &str| {
        common::event(
            &json!({}),
            &json!({"evt.id": id, "evt.type": "execve", "evt.hostname": node, "proc.name": "bash", "proc.tty": 34816, "proc.aname": ["runc"],
                    "container.id": "0123456789ab", "container.name": app, "container.labels": {"app": app}}),
        )
    };
    let batch = vec![shell("e-web", "web"), shell("e-db", "db")];
    js.publish(subjects::events(&node), codec::encode_batch(&batch).into())
        .await
        .expect("publish")
        .await
        .expect("ack");

    let alerts = read_all(&js, subjects::ALERTS.name, subjects::alerts(&node), 2).await;
    assert_eq!(alerts.len(), 2, "both shells alert: {alerts:?}");
    let actions = read_all(&js, subjects::ACTIONS.name, subjects::actions(&node), 1).await;
    assert_eq!(
        actions.len(),
        1,
        "only the web container is in scope: {actions:?}"
    );
    let a = &actions[0];
    assert_eq!(a["action"], "kill");
    assert_eq!(a["container_id"], "0123456789ab");
    assert_eq!(a["container_name"], "web");
    assert_eq!(a["rule"], "Terminal shell in container");
    assert_eq!(a["node"], node);
    let web_alert = alerts
        .iter()
        .find(|x| x["output_fields"]["container.name"] == "web")
        .expect("web alert");
    assert_eq!(a["alert_id"], web_alert["uuid"]);
}
