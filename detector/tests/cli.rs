//! The `validate` and `lint-condition` commands, run as the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lanner-detector"))
}

#[test]
fn validate_reports_per_file_counts_and_succeeds_on_upstream_files() {
    let dir = common::rules_dir();
    let out = bin()
        .arg("validate")
        .arg(dir.join("falco_rules.yaml"))
        .arg(dir.join("falco-incubating_rules.yaml"))
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(
            "falco_rules.yaml: 25 rules, 87 macros, 49 lists loaded; 25 rules enabled, 0 disabled"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("falco-incubating_rules.yaml: 31 rules"),
        "{stdout}"
    );
    assert!(
        stdout.contains("disabled: Program run with disallowed http proxy env"),
        "{stdout}"
    );
    assert!(stdout.contains("proc.env"), "{stdout}");
}

#[test]
fn validate_fails_with_file_line_column() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = dir.path().join("bad.yaml");
    std::fs::write(&f, "- macro: m\n  condition: proc.name in (a, b\n").expect("write");
    let out = bin().arg("validate").arg(&f).output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains(&format!(
            "error: {}:2:14: macro 'm': condition at 1:",
            f.display()
        )),
        "{stdout}"
    );
    let out = bin()
        .arg("validate")
        .arg(dir.path().join("missing.yaml"))
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("cannot read rule file"));
}

#[test]
fn lint_condition_prints_ok_or_error_per_line() {
    let mut child = bin()
        .arg("lint-condition")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"proc.name = bash and some_macro\nproc.name in (a, b\nnot (fd.name startswith /etc or evt.type in (open, openat))\nproc.name bogus x\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!(lines[0], "ok");
    assert!(lines[1].starts_with("error: at 1:"), "{stdout}");
    assert_eq!(lines[2], "ok");
    assert!(
        lines[3].starts_with("error: at 1:11: expected a valid check operator"),
        "{stdout}"
    );
    assert!(
        !out.status.success(),
        "any error makes the exit status non-zero"
    );
}

#[test]
fn judge_reads_json_lines_and_prints_alerts() {
    let mut child = bin()
        .arg("judge")
        .arg("--rules")
        .arg(common::rules_dir().join("falco_rules.yaml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(
            concat!(
                r#"{"evt.id":"a-1","evt.time":"2026-01-01T00:00:00Z","evt.type":"openat","evt.arg.flags":"O_RDONLY","fd.type":"file","fd.num":3,"fd.name":"/etc/shadow","proc.name":"cat","container.id":"0123456789ab","container.name":"web"}"#,
                "\n",
                r#"{"evt.id":"a-2","evt.type":"openat","evt.arg.flags":"O_RDONLY","fd.type":"file","fd.num":3,"fd.name":"/etc/hosts","proc.name":"cat"}"#,
                "\n",
                r#"{"evt.type":"openat","fd.nmae":"/etc/shadow"}"#,
                "\n"
            )
            .as_bytes(),
        )
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let alerts: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("alert JSON"))
        .collect();
    assert_eq!(alerts.len(), 1, "{stdout}");
    assert_eq!(alerts[0]["rule"], "Read sensitive file untrusted");
    assert_eq!(alerts[0]["time"], "2026-01-01T00:00:00.000000000Z");
    assert!(
        alerts[0]["output"]
            .as_str()
            .expect("output")
            .starts_with("00:00:00.000000000: Warning Sensitive file opened"),
        "{stdout}"
    );
    assert!(
        alerts[0]["output"]
            .as_str()
            .expect("output")
            .contains("container_id=0123456789ab container_name=web"),
        "{stdout}"
    );
    assert!(
        stderr.contains("line 3: unknown field \"fd.nmae\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("judged 2 events: 1 alerts, 1 bad lines"),
        "{stderr}"
    );
    assert!(
        !out.status.success(),
        "a bad line makes the exit status non-zero"
    );
}
