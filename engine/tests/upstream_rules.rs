//! The upstream Falco rule files load unchanged, and every stable rule fires on a
//! crafted event and stays quiet on a near miss.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use lanner_engine::cases::{base, open, stable_rule_cases};
use lanner_engine::rules::{DisabledReason, Loader, Ruleset};
use serde_json::json;

fn load(file: &str) -> (Option<Ruleset>, lanner_engine::rules::Report) {
    let mut l = Loader::new();
    l.add_file(&common::rules_dir().join(file));
    l.finish()
}

#[test]
fn stable_file_loads_with_every_rule_enabled() {
    let (rs, report) = load("falco_rules.yaml");
    assert!(report.errors.is_empty(), "errors: {:#?}", report.errors);
    let rs = rs.expect("ruleset");
    assert_eq!(report.files[0].rules, 25);
    assert_eq!(report.files[0].macros, 87);
    assert_eq!(report.files[0].lists, 49);
    assert!(
        report.disabled.is_empty(),
        "disabled: {:#?}",
        report.disabled
    );
    assert_eq!(rs.rules().len(), 25);
    // Every stable rule names the event types it needs: none is judged on every event.
    for r in rs.rules() {
        assert!(
            !r.evttypes.is_all(),
            "rule {} is not restricted by evt.type",
            r.name
        );
    }
    // So a reader of stored events needs only these types (retro-hunt).
    let types = rs.event_types().expect("every rule names its types");
    for t in ["execve", "openat", "connect"] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
    assert!(!types.contains(&"read"), "{types:?}");
}

#[test]
fn a_rule_on_every_type_means_no_type_filter() {
    let mut l = Loader::new();
    l.add_str(
        "any.yaml",
        "- rule: Any root action\n  desc: x\n  condition: user.uid = 0\n  output: x\n  priority: INFO\n",
    );
    let rs = l.finish().0.expect("compiles");
    assert_eq!(rs.event_types(), None);
}

#[test]
fn incubating_and_sandbox_files_load() {
    for file in ["falco-incubating_rules.yaml", "falco-sandbox_rules.yaml"] {
        let (rs, report) = load(file);
        assert!(
            report.errors.is_empty(),
            "{file}: errors: {:#?}",
            report.errors
        );
        assert!(rs.is_some());
        for d in &report.disabled {
            // Only fields the sensor cannot provide (environment, buffers, ...) or
            // `enabled: false` may disable a rule.
            assert!(
                matches!(
                    d.reason,
                    DisabledReason::MissingFields(_)
                        | DisabledReason::NotEnabled
                        | DisabledReason::SkippedUnknownFilter(_)
                ),
                "{file}: {d:?}"
            );
        }
    }
}

#[test]
fn all_three_files_load_together() {
    let mut l = Loader::new();
    for f in [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
    ] {
        l.add_file(&common::rules_dir().join(f));
    }
    let (rs, report) = l.finish();
    assert!(report.errors.is_empty(), "errors: {:#?}", report.errors);
    assert!(rs.expect("ruleset").rules().len() > 25);
}

#[test]
fn every_stable_rule_fires_on_its_event_and_not_on_a_near_miss() {
    let (rs, report) = load("falco_rules.yaml");
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    let rs = rs.expect("ruleset");
    let cases = stable_rule_cases();
    let mut covered: Vec<&str> = cases.iter().map(|c| c.rule).collect();
    covered.sort();
    let mut all: Vec<&str> = rs.rules().iter().map(|r| r.name.as_str()).collect();
    all.sort();
    assert_eq!(covered, all, "every stable rule has a case");
    for c in &cases {
        let rule = c.rule;
        let hits = rs.matching_rules(&c.fires);
        assert!(
            hits.contains(&rule),
            "{rule}: did not fire on {:?}; matched {hits:?}",
            c.fires
        );
        let hits = rs.matching_rules(&c.misses);
        assert!(
            !hits.contains(&rule),
            "{rule}: fired on the near miss {:?}",
            c.misses
        );
    }
}

#[test]
fn shadow_read_by_untrusted_vs_trusted_program() {
    let (rs, _) = load("falco_rules.yaml");
    let rs = rs.expect("ruleset");
    let cat = common::event(
        &base(),
        &open(
            "O_RDONLY",
            "/etc/shadow",
            json!({"proc.name": "cat", "proc.args": "/etc/shadow"}),
        ),
    );
    assert!(
        rs.matching_rules(&cat)
            .contains(&"Read sensitive file untrusted")
    );
    for trusted in ["sshd", "sudo", "passwd", "dpkg", "bash"] {
        let ev = common::event(
            &base(),
            &open("O_RDONLY", "/etc/shadow", json!({"proc.name": trusted})),
        );
        assert!(
            !rs.matching_rules(&ev)
                .contains(&"Read sensitive file untrusted"),
            "{trusted}"
        );
    }
    // A write-only open is not a read.
    let w = common::event(
        &base(),
        &open("O_WRONLY", "/etc/shadow", json!({"proc.name": "cat"})),
    );
    assert!(
        !rs.matching_rules(&w)
            .contains(&"Read sensitive file untrusted")
    );
}
