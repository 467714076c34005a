//! Rule-file semantics as Falco documents them: visibility, append, override,
//! exceptions, enabled, priorities, engine versions, unknown keys, and errors that
//! name file, line and column.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use lanner_engine::rules::{DisabledReason, Loader, Priority, Report, Ruleset};
use serde_json::json;

fn load(files: &[&str]) -> (Option<Ruleset>, Report) {
    let mut l = Loader::new();
    for (i, text) in files.iter().enumerate() {
        l.add_str(&format!("f{i}.yaml"), text);
    }
    l.finish()
}

fn ok(files: &[&str]) -> Ruleset {
    let (rs, report) = load(files);
    assert!(
        report.errors.is_empty(),
        "unexpected errors: {:#?}",
        report.errors
    );
    rs.expect("ruleset")
}

fn err(files: &[&str]) -> String {
    let (rs, report) = load(files);
    assert!(rs.is_none(), "expected an error");
    report
        .errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn fires(rs: &Ruleset, rule: &str, ev: serde_json::Value) -> bool {
    let ev = common::event(&json!({}), &ev);
    rs.matching_rules(&ev).contains(&rule)
}

const BASE: &str = r#"
- list: shells
  items: [bash, sh]
- macro: spawned
  condition: evt.type = execve
- macro: shell
  condition: proc.name in (shells)
- rule: Shell
  desc: a shell
  condition: spawned and shell
  output: "shell %proc.name"
  priority: warning
  tags: [a]
"#;

#[test]
fn lists_macros_rules_and_priorities() {
    let rs = ok(&[BASE]);
    assert_eq!(rs.rules()[0].priority, Priority::Warning);
    assert!(fires(
        &rs,
        "Shell",
        json!({"evt.type": "execve", "proc.name": "bash"})
    ));
    assert!(!fires(
        &rs,
        "Shell",
        json!({"evt.type": "execve", "proc.name": "zsh"})
    ));
    assert!(!fires(
        &rs,
        "Shell",
        json!({"evt.type": "openat", "proc.name": "bash"})
    ));
    for (p, want) in [
        ("CRITICAL", Priority::Critical),
        ("Info", Priority::Informational),
        ("informational", Priority::Informational),
        ("eMeRgEnCy", Priority::Emergency),
        ("debug", Priority::Debug),
        ("NOTICE", Priority::Notice),
        ("error", Priority::Error),
        ("alert", Priority::Alert),
    ] {
        let rs = ok(&[&BASE.replace("priority: warning", &format!("priority: {p}"))]);
        assert_eq!(rs.rules()[0].priority, want, "{p}");
    }
    assert!(
        err(&[&BASE.replace("priority: warning", "priority: loud")])
            .contains("invalid priority 'loud'")
    );
}

#[test]
fn list_append_and_override() {
    let more = "- list: shells\n  items: [zsh]\n  append: true\n";
    let rs = ok(&[BASE, more]);
    assert!(fires(
        &rs,
        "Shell",
        json!({"evt.type": "execve", "proc.name": "zsh"})
    ));
    assert!(fires(
        &rs,
        "Shell",
        json!({"evt.type": "execve", "proc.name": "bash"})
    ));
    let replace = "- list: shells\n  items: [zsh]\n  override:\n    items: replace\n";
    let rs = ok(&[BASE, replace]);
    assert!(fires(
        &rs,
        "Shell",
        json!({"evt.type": "execve", "proc.name": "zsh"})
    ));
    assert!(!fires(
        &rs,
        "Shell",
        json!({"evt.type": "execve", "proc.name": "bash"})
    ));
    let append = "- list: shells\n  items: [zsh]\n  override:\n    items: append\n";
    let rs = ok(&[BASE, append]);
    assert!(fires(
        &rs,
        "Shell",
        json!({"evt.type": "execve", "proc.name": "bash"})
    ));
    assert!(fires(
        &rs,
        "Shell",
        json!({"evt.type": "execve", "proc.name": "zsh"})
    ));
    assert!(
        err(&["- list: nope\n  items: [a]\n  append: true\n"]).contains("no list by that name")
    );
}

#[test]
fn macro_append_and_override() {
    let app = "- macro: shell\n  condition: or proc.name = zsh\n  append: true\n";
    let rs = ok(&[BASE, app]);
    assert!(fires(
        &rs,
        "Shell",
        json!({"evt.type": "execve", "proc.name": "zsh"})
    ));
    let rep =
        "- macro: shell\n  condition: proc.name = fish\n  override:\n    condition: replace\n";
    let rs = ok(&[BASE, rep]);
    assert!(fires(
        &rs,
        "Shell",
        json!({"evt.type": "execve", "proc.name": "fish"})
    ));
    assert!(!fires(
        &rs,
        "Shell",
        json!({"evt.type": "execve", "proc.name": "bash"})
    ));
}

#[test]
fn rule_append_override_and_enable() {
    let app =
        "- rule: Shell\n  condition: and user.name = root\n  output: (appended)\n  append: true\n";
    let rs = ok(&[BASE, app]);
    assert!(fires(
        &rs,
        "Shell",
        json!({"evt.type": "execve", "proc.name": "bash", "user.name": "root"})
    ));
    assert!(!fires(
        &rs,
        "Shell",
        json!({"evt.type": "execve", "proc.name": "bash", "user.name": "bob"})
    ));
    let ev = common::event(
        &json!({}),
        &json!({"evt.type": "execve", "proc.name": "bash", "user.name": "root"}),
    );
    assert_eq!(rs.rules()[0].output.render(&ev), "shell bash (appended)");

    let ov = r#"
- rule: Shell
  condition: and user.name = root
  priority: critical
  tags: [b]
  override:
    condition: append
    priority: replace
    tags: append
"#;
    let rs = ok(&[BASE, ov]);
    assert_eq!(rs.rules()[0].priority, Priority::Critical);
    assert_eq!(rs.rules()[0].tags, vec!["a".to_string(), "b".to_string()]);
    assert!(!fires(
        &rs,
        "Shell",
        json!({"evt.type": "execve", "proc.name": "bash", "user.name": "bob"})
    ));

    let off = "- rule: Shell\n  enabled: false\n";
    let (rs, report) = load(&[BASE, off]);
    assert!(rs.expect("ruleset").rules().is_empty());
    assert_eq!(report.disabled[0].reason, DisabledReason::NotEnabled);
    let on_again = "- rule: Shell\n  enabled: true\n";
    assert_eq!(ok(&[BASE, off, on_again]).rules().len(), 1);
    let ov_enabled = "- rule: Shell\n  enabled: false\n  override:\n    enabled: replace\n";
    assert!(ok(&[BASE, ov_enabled]).rules().is_empty());

    assert!(
        err(&["- rule: Nope\n  condition: a\n  append: true\n"]).contains("no rule by that name")
    );
    assert!(
        err(&[
            BASE,
            "- rule: Shell\n  priority: debug\n  override:\n    priority: append\n"
        ])
        .contains("cannot be overridden")
    );
    assert!(
        err(&[
            BASE,
            "- rule: Shell\n  priority: debug\n  output: x\n  override:\n    priority: replace\n"
        ])
        .contains("must be listed in 'override'")
    );
    assert!(
        err(&[
            BASE,
            "- rule: Shell\n  condition: x\n  append: true\n  override:\n    condition: append\n"
        ])
        .contains("cannot be used together")
    );
}

#[test]
fn redefinition_replaces() {
    let redef = "- rule: Shell\n  desc: d\n  condition: evt.type = openat\n  output: o\n  priority: debug\n";
    let rs = ok(&[BASE, redef]);
    assert_eq!(rs.rules().len(), 1);
    assert!(fires(&rs, "Shell", json!({"evt.type": "openat"})));
}

#[test]
fn exceptions_single_and_multi_field() {
    let rule = r#"
- list: trusted
  items: [sudo, su]
- rule: Shadow
  desc: d
  condition: evt.type = openat and fd.name = /etc/shadow
  output: o
  priority: warning
  exceptions:
    - name: by_proc
      fields: proc.name
      values: [trusted, "my app"]
    - name: by_proc_and_file
      fields: [proc.name, fd.name]
      comps: [=, startswith]
      values:
        - [cat, /etc/sha]
    - name: by_parent_list
      fields: [proc.pname, proc.name]
      comps: [in, =]
      values:
        - [[cron, anacron], vi]
        - [trusted, less]
    - name: empty
      fields: [proc.name]
"#;
    let rs = ok(&[rule]);
    let ev = |name: &str, parent: &str| json!({"evt.type": "openat", "fd.name": "/etc/shadow", "proc.name": name, "proc.aname": [parent]});
    assert!(fires(&rs, "Shadow", ev("head", "bash")));
    assert!(
        !fires(&rs, "Shadow", ev("sudo", "bash")),
        "list name in values expands"
    );
    assert!(
        !fires(&rs, "Shadow", ev("my app", "bash")),
        "values with spaces are quoted"
    );
    assert!(
        !fires(&rs, "Shadow", ev("cat", "bash")),
        "multi-field with comps"
    );
    assert!(
        !fires(&rs, "Shadow", ev("vi", "cron")),
        "list value for an 'in' comp"
    );
    assert!(fires(&rs, "Shadow", ev("vi", "bash")));
    assert!(
        !fires(&rs, "Shadow", ev("less", "su")),
        "list name as the value of an 'in' comp"
    );

    // Appending values to an existing exception, and a new exception.
    let app = r#"
- rule: Shadow
  exceptions:
    - name: by_proc
      values: [head]
    - name: by_user
      fields: user.name
      values: [root]
  append: true
"#;
    let rs = ok(&[rule, app]);
    assert!(!fires(&rs, "Shadow", ev("head", "bash")));
    assert!(!fires(
        &rs,
        "Shadow",
        json!({"evt.type": "openat", "fd.name": "/etc/shadow", "proc.name": "tail", "user.name": "root"})
    ));
    assert!(fires(
        &rs,
        "Shadow",
        json!({"evt.type": "openat", "fd.name": "/etc/shadow", "proc.name": "tail", "user.name": "bob"})
    ));

    // Errors Falco reports.
    let bad_comp = rule.replace("comps: [=, startswith]", "comps: [=, like]");
    assert!(err(&[&bad_comp]).contains("'like' is not a supported comparison operator"));
    let bad_len = rule.replace("comps: [=, startswith]", "comps: [=]");
    assert!(err(&[&bad_len]).contains("equal length"));
    let bad_single = rule.replace(
        "      fields: proc.name\n",
        "      fields: proc.name\n      comps: \"=\"\n",
    );
    assert!(err(&[&bad_single]).contains("comps must be one of (in, pmatch, intersects)"));
    let no_fields_append = "- rule: Shadow\n  exceptions:\n    - name: by_proc\n      fields: [proc.name]\n      values: [[x]]\n  append: true\n";
    assert!(err(&[rule, no_fields_append]).contains("can not append exception fields"));
}

#[test]
fn visibility() {
    // A macro sees only earlier macros; a rule sees every macro; lists see earlier lists.
    let later = r#"
- macro: a
  condition: b
- macro: b
  condition: proc.name = x
"#;
    assert!(err(&[later]).contains("undefined macro 'b'"));
    let rule_first = r#"
- rule: R
  desc: d
  condition: evt.type = execve and m
  output: o
  priority: info
- macro: m
  condition: proc.name in (l2)
- list: l2
  items: [l1, y]
- list: l1
  items: [x]
"#;
    let rs = ok(&[rule_first]);
    assert!(fires(
        &rs,
        "R",
        json!({"evt.type": "execve", "proc.name": "y"})
    ));
    assert!(
        fires(&rs, "R", json!({"evt.type": "execve", "proc.name": "x"})),
        "list names in a condition expand whenever defined"
    );
    assert!(err(&["- rule: R\n  desc: d\n  condition: evt.type = execve and nope\n  output: o\n  priority: info\n"]).contains("undefined macro 'nope'"));
}

#[test]
fn unknown_fields_disable_only_their_rule() {
    let text = r#"
- rule: Uses env
  desc: d
  condition: evt.type = execve and proc.env contains X
  output: o %proc.name
  priority: info
- rule: Skipped
  desc: d
  condition: evt.type = execve and proc.env contains X
  output: o
  priority: info
  skip-if-unknown-filter: true
- rule: Bad output field
  desc: d
  condition: evt.type = execve
  output: o %proc.nothing
  priority: info
- rule: Fine
  desc: d
  condition: evt.type = execve
  output: o
  priority: info
"#;
    let (rs, report) = load(&[text]);
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    assert_eq!(rs.expect("ruleset").rules().len(), 1);
    assert_eq!(report.disabled.len(), 3);
    assert_eq!(
        report.disabled[0].reason,
        DisabledReason::MissingFields(vec!["proc.env".into()])
    );
    assert_eq!(
        report.disabled[1].reason,
        DisabledReason::SkippedUnknownFilter(vec!["proc.env".into()])
    );
    assert_eq!(
        report.disabled[2].reason,
        DisabledReason::MissingFields(vec!["proc.nothing".into()])
    );
}

#[test]
fn sources_engine_versions_and_unknown_keys() {
    let text = r#"
- required_engine_version: 0.26.0
- required_plugin_versions:
    - name: container
      version: 0.4.0
- something_new: true
- rule: Audit
  desc: d
  condition: ka.verb = create
  output: o
  priority: info
  source: k8s_audit
- rule: R
  desc: d
  condition: evt.type = execve
  output: o
  priority: info
  future_key: 1
"#;
    let (rs, report) = load(&[text]);
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    assert_eq!(rs.expect("ruleset").rules().len(), 1);
    assert!(matches!(
        report.disabled[0].reason,
        DisabledReason::UnknownSource(_)
    ));
    let warnings: Vec<String> = report.warnings.iter().map(ToString::to_string).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("unknown top level item 'something_new'")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("unknown key 'future_key'")),
        "{warnings:?}"
    );
    assert!(
        err(&["- required_engine_version: 99.0.0\n"]).contains("require engine version 99.0.0")
    );
}

#[test]
fn errors_name_file_line_and_column() {
    let text = "- list: a\n  items: [x]\n- rule: R\n  desc: d\n  condition: evt.type = execve and (proc.name = x\n  output: o\n  priority: info\n";
    let e = err(&[text]);
    assert!(
        e.starts_with("f0.yaml:5:14: rule 'R': condition at 1:"),
        "{e}"
    );
    assert!(e.contains("')'"), "{e}");
    let e = err(&["- rule: R\n  desc: d\n  output: o\n  priority: info\n"]);
    assert!(
        e.starts_with("f0.yaml:1:3: rule 'R': item has no mapping for key 'condition'"),
        "{e}"
    );
    let e = err(&["- rule: R\n  desc: [unclosed\n"]);
    assert!(e.starts_with("f0.yaml:"), "{e}");
    assert!(e.contains("invalid YAML"), "{e}");
    let e = err(&["rule: not a sequence\n"]);
    assert!(e.contains("must be a sequence"), "{e}");
    let e = err(&[
        "- rule: R\n  desc: d\n  condition: evt.type = execve and user.uid = root\n  output: o\n  priority: info\n",
    ]);
    assert!(e.contains("f0.yaml:3:14") && e.contains("numbers"), "{e}");
}

#[test]
fn events_meet_only_their_candidate_rules() {
    let text = r#"
- rule: Exec
  desc: d
  condition: evt.type in (execve, execveat) and proc.name = x
  output: o
  priority: info
- rule: Open
  desc: d
  condition: (evt.type = openat or evt.type = open) and fd.name = /x
  output: o
  priority: info
- rule: NotConnect
  desc: d
  condition: evt.type != connect and proc.name = y
  output: o
  priority: info
"#;
    let rs = ok(&[text]);
    let names = |t: Option<&str>| {
        rs.candidates(t)
            .iter()
            .map(|&i| rs.rules()[i as usize].name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(Some("execve")), vec!["Exec", "NotConnect"]);
    assert_eq!(names(Some("openat")), vec!["Open", "NotConnect"]);
    assert_eq!(names(Some("connect")), Vec::<String>::new());
    assert_eq!(names(Some("ptrace")), vec!["NotConnect"]);
    assert_eq!(names(None), vec!["NotConnect"]);
}

#[test]
fn first_match_or_all() {
    let text = r#"
- rule: A
  desc: d
  condition: evt.type = execve
  output: o
  priority: info
- rule: B
  desc: d
  condition: evt.type = execve and proc.name = bash
  output: o
  priority: info
"#;
    let rs = ok(&[text]);
    let ev = common::event(
        &json!({}),
        &json!({"evt.type": "execve", "proc.name": "bash"}),
    );
    let mut first = Vec::new();
    rs.judge(&ev, lanner_engine::rules::Matching::First, |r| {
        first.push(r.name.clone())
    });
    assert_eq!(first, vec!["A"]);
    assert_eq!(rs.matching_rules(&ev), vec!["A", "B"]);
}

#[test]
fn min_priority_disables_less_severe_rules() {
    let mut l = Loader::new();
    l.min_priority(Priority::Warning);
    l.add_str("f.yaml", &format!("{BASE}- rule: Quiet\n  desc: d\n  condition: evt.type = execve\n  output: o\n  priority: info\n"));
    let (rs, report) = l.finish();
    let rs = rs.expect("ruleset");
    assert_eq!(
        rs.rules()
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        vec!["Shell"]
    );
    assert_eq!(
        report.disabled[0].reason,
        DisabledReason::BelowMinPriority(Priority::Warning)
    );
}

#[test]
fn a_directory_loads_its_yaml_files_in_name_order() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("10-base.yaml"), BASE).expect("write");
    std::fs::write(
        dir.path().join("20-local.yml"),
        "- list: shells\n  items: [zsh]\n  append: true\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("README.md"), "not rules").expect("write");
    let mut l = Loader::new();
    l.add_file(dir.path());
    let (rs, report) = l.finish();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.files.len(), 2);
    assert!(fires(
        &rs.expect("ruleset"),
        "Shell",
        json!({"evt.type": "execve", "proc.name": "zsh"})
    ));
}
