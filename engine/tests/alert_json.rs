//! Alerts written straight to JSON are byte for byte the serialised alerts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use lanner_contract::Event;
use lanner_engine::alert::AlertBuilder;
use lanner_engine::cases::stable_rule_cases;
use lanner_engine::rules::{Loader, Matching, Ruleset};

fn ruleset(files: &[&str], extra: &str) -> Ruleset {
    let mut l = Loader::new();
    l.append_output(lanner_engine::DEFAULT_APPEND_OUTPUT);
    for f in files {
        l.add_file(&common::rules_dir().join(f));
    }
    if !extra.is_empty() {
        l.add_str("extra.yaml", extra);
    }
    let (rs, report) = l.finish();
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    rs.expect("ruleset")
}

/// Every alert the rules raise on `events`, both ways; returns how many.
fn compare(rs: &Ruleset, events: &[Event]) -> usize {
    let builder = AlertBuilder::new(Matching::All);
    let mut n = 0;
    let mut buf = String::new();
    for (i, ev) in events.iter().enumerate() {
        let mut built = Vec::new();
        builder.judge(
            rs,
            ev,
            "node-x",
            || format!("fallback-{i}"),
            |a| built.push(a),
        );
        let mut direct = Vec::new();
        builder.judge_json(
            rs,
            ev,
            "node-x",
            || format!("fallback-{i}"),
            &mut buf,
            |head, json| direct.push((head.uuid.to_owned(), head.rule.to_owned(), json.to_owned())),
        );
        assert_eq!(built.len(), direct.len());
        for (a, (uuid, rule, json)) in built.iter().zip(&direct) {
            assert_eq!(&a.uuid, uuid);
            assert_eq!(&a.rule, rule);
            assert_eq!(&serde_json::to_string(a).expect("json"), json);
            n += 1;
        }
    }
    n
}

#[test]
fn every_upstream_case_alert_is_the_serialised_alert() {
    let rs = ruleset(&["falco_rules.yaml"], "");
    let mut events: Vec<Event> = stable_rule_cases()
        .into_iter()
        .flat_map(|c| [c.fires, c.misses])
        .collect();
    // Without an id or a host name: the fallbacks are used.
    let mut bare = events[0].clone();
    bare.evt_id = None;
    bare.evt_hostname = None;
    events.push(bare);
    assert!(compare(&rs, &events) >= stable_rule_cases().len());
}

#[test]
fn odd_text_numbers_lists_and_unset_fields_match_too() {
    let rs = ruleset(
        &[],
        r#"
- rule: Everything
  desc: prints every kind of value
  condition: evt.type = execve
  output: "q=%proc.name \"%proc.args\" pid=%proc.pid uid=%user.loginuid t=%evt.rawtime tty=%proc.tty priv=%container.privileged anc=%proc.aname ip=%fd.sip unset=%fd.name lab=%container.labels 100%%"
  priority: CRITICAL
  tags: [a, "b\"c"]
"#,
    );
    let line = r#"{"evt.type":"execve","evt.time":"2026-01-02T03:04:05.000000001Z","proc.name":"we\"ird\\na\tme\u0001é","proc.args":"-c 'echo \"日本\"'","proc.pid":42,"user.loginuid":-1,"container.privileged":true,"proc.aname":["sh","init"],"fd.sip":"10.0.0.1","container.labels":{"app":"web","tier":"x\ny"}}"#;
    let ev = lanner_contract::jsonl::parse_line(line).expect("event");
    assert_eq!(compare(&rs, &[ev]), 1);
}
