//! Retro-hunt against the live detector: events go through a real nats-server to the
//! real `lanner-detector` (upstream Falco rules) and the real `lanner-archiver`; then
//! `lanner-query hunt` and `POST /v1/hunt` run the same rules over the archive and
//! must give exactly the alerts the detector gave live (same uuid, output, fields).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream;
use common::*;
use lanner_contract::bus::{StreamSettings, ensure_streams};
use lanner_contract::{Event, Timestamp, subjects};
use serde_json::{Value, json};

fn rules_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/falco_rules.yaml")
}

/// The scenario (hour 00), 3000 events of the engine's realistic mix (about 2% fire a
/// stable rule) spread over hours 01..03, and in hour 04 an event firing each upstream
/// stable rule and its near miss.
fn events() -> Vec<Event> {
    let mut all = scenario();
    for (i, mut e) in lanner_engine::mix::realistic_mix(3000)
        .into_iter()
        .enumerate()
    {
        e.evt_time = Some(Timestamp(DAY0 + HOUR_NS + i as i64 * 3_500_000_000));
        all.push(e);
    }
    let cases = lanner_engine::cases::stable_rule_cases();
    for (i, mut e) in cases
        .into_iter()
        .flat_map(|c| [c.fires, c.misses])
        .enumerate()
    {
        e.evt_time = Some(Timestamp(DAY0 + 4 * HOUR_NS + i as i64 * 1_000_000_000));
        all.push(e);
    }
    all
}

struct Running(Vec<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let _ = c.wait();
        }
    }
}

/// Alerts as JSON values, sorted by uuid.
fn sorted(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by(|a, b| a["uuid"].as_str().cmp(&b["uuid"].as_str()));
    v
}

fn parse_lines(text: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(text)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("an alert per line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hunting_the_archive_gives_the_alerts_the_detector_gave_live() {
    let nats = Nats::start();
    let js = jetstream::new(async_nats::connect(&nats.url).await.expect("connect"));
    ensure_streams(&js, &StreamSettings::default())
        .await
        .expect("streams");
    let node = unique("hunt");
    let subject = subjects::events(&node);
    let alerts_subject = subjects::alerts(&node);
    let events = events();
    publish_batches(&js, &subject, events.chunks(500)).await;

    // Live: the detector judges, the archiver archives, both from the same stream.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("hunt-archive"));
    std::fs::create_dir_all(&dir).unwrap();
    let (det, arch) = (unique("det"), unique("arch"));
    let detector = Command::new(lanner_tests::bin("lanner-detector"))
        .arg("run")
        .arg("--rules")
        .arg(rules_file())
        .args(["--nats-url", &nats.url, "--filter", &subject])
        .args(["--durable", &det, "--metrics-addr", ""])
        .args(["--rule-matching", "all"])
        .env("LANNER_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start lanner-detector");
    let archiver = Command::new(lanner_tests::bin("lanner-archiver"))
        .args(["--nats-url", &nats.url, "--archive"])
        .arg(&dir)
        .args(["--events-subject", &subject])
        .args(["--alerts-subject", &alerts_subject])
        .args(["--durable", &arch, "--metrics-addr", "", "--roll-secs", "1"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start lanner-archiver");
    let running = Running(vec![detector, archiver]);
    wait_drained(&js, "LANNER_EVENTS", &det).await;
    wait_drained(&js, "LANNER_EVENTS", &format!("{arch}-events")).await;
    let live: Vec<Value> = lanner_tests::collect(
        &js,
        "LANNER_ALERTS",
        &alerts_subject,
        1,
        Duration::from_secs(30),
    )
    .await
    .iter()
    .map(|m| serde_json::from_slice(&m.payload).expect("alert JSON"))
    .collect();
    drop(running); // SIGTERM: the archiver flushes and exits.
    let live = sorted(live);
    let rules: std::collections::BTreeSet<&str> =
        live.iter().filter_map(|a| a["rule"].as_str()).collect();
    let stable: std::collections::BTreeSet<&str> = lanner_engine::cases::stable_rule_cases()
        .iter()
        .map(|c| c.rule)
        .collect();
    assert!(
        stable.is_subset(&rules),
        "every stable rule fires live: missing {:?}",
        stable.difference(&rules).collect::<Vec<_>>()
    );

    // Retro-hunt with the CLI over the whole day.
    let out = Command::new(query_bin())
        .args(["hunt", "--rule-matching", "all", "--rules"])
        .arg(rules_file())
        .arg("--archive")
        .arg(&dir)
        .args([
            "--since",
            "2026-01-01T00:00:00Z",
            "--until",
            "2026-01-02T00:00:00Z",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run lanner-query hunt");
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{summary}");
    let hunted = sorted(parse_lines(&out.stdout));
    assert_eq!(hunted.len(), live.len(), "{summary}");
    for (h, l) in hunted.iter().zip(&live) {
        assert_eq!(h, l, "hunted alert differs from the live one");
    }
    assert!(
        summary.contains(&format!("{} alerts", live.len())),
        "{summary}"
    );

    // A window without hour 00 leaves out exactly the scenario's alerts.
    let out = Command::new(query_bin())
        .args([
            "hunt",
            "--rule-matching",
            "all",
            "--format",
            "text",
            "--rules",
        ])
        .arg(rules_file())
        .arg("--archive")
        .arg(&dir)
        .args([
            "--since",
            "2026-01-01T01:00:00Z",
            "--until",
            "2026-01-01T04:00:00Z",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run lanner-query hunt");
    assert!(out.status.success());
    let later: Vec<&Value> = live
        .iter()
        .filter(|a| ("2026-01-01T01".."2026-01-01T04").contains(&a["time"].as_str().unwrap()))
        .collect();
    assert!(
        !later.is_empty() && later.len() < live.len(),
        "hours 00 and 04 have alerts too"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let mut want: Vec<&str> = later
        .iter()
        .map(|a| a["output"].as_str().unwrap())
        .collect();
    lines.sort_unstable();
    want.sort_unstable();
    if lines != want {
        let extra: Vec<_> = lines.iter().filter(|l| !want.contains(l)).take(3).collect();
        let missing: Vec<_> = want.iter().filter(|l| !lines.contains(l)).take(3).collect();
        panic!(
            "--format text prints Falco's output lines: {} printed, {} expected; extra {extra:?}, missing {missing:?}",
            lines.len(),
            want.len()
        );
    }

    // The HTTP endpoint: rules in the body, the same alerts as NDJSON.
    let server = Server::start(&dir, &[]);
    let yaml = std::fs::read_to_string(rules_file()).unwrap();
    let (code, ctype, body) = server.post_to(
        "/v1/hunt",
        &json!({"rules": yaml, "since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z", "rule_matching": "all"}),
        &[],
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ctype, "application/x-ndjson");
    assert_eq!(sorted(parse_lines(&body)), live);

    // Bad rules and bad windows are clear 400s naming what is wrong.
    let (code, _, body) = server.post_to(
        "/v1/hunt",
        &json!({"rules": "- rule: broken\n  desc: d\n  condition: proc.name = = x\n  output: o\n  priority: WARNING\n", "since": "2h"}),
        &[],
    );
    let err: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (code, err["kind"].as_str()),
        (400, Some("bad_rules")),
        "{err}"
    );
    assert!(
        err["error"].as_str().unwrap().contains("request:3"),
        "names the line: {err}"
    );
    let (code, _, body) = server.post_to(
        "/v1/hunt",
        &json!({"rules": yaml, "since": "last tuesday"}),
        &[],
    );
    let err: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(code, 400, "{err}");
    assert!(
        err["error"].as_str().unwrap().contains("last tuesday"),
        "{err}"
    );
}

#[test]
fn cli_refuses_bad_rule_files_and_windows_clearly() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("hunt-bad"));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "- rule: r\n  desc: d\n  condition: evt.type = execve and (\n  output: o\n  priority: WARNING\n",
    )
    .unwrap();
    let run = |rules: &Path, since: &str| {
        Command::new(query_bin())
            .args(["hunt", "--rules"])
            .arg(rules)
            .arg("--archive")
            .arg(&dir)
            .args(["--since", since])
            .env("RUST_LOG", "warn")
            .output()
            .expect("run lanner-query hunt")
    };
    let out = run(&bad, "1h");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml:3"), "names file and line: {err}");
    let out = run(&rules_file(), "soon");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\"soon\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
