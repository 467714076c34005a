//! A realistic event mix for benchmarks: what the sensor reports on a busy container
//! host. Mostly file opens (libraries, /proc, config, logs), then process lifecycle
//! (clone, exit), network (connect, accept, socket, sendto), a few execs (shells,
//! tools) and rare sensitive operations; about 2% of events fire a stable rule.

use lanner_contract::Event;
use serde_json::json;

fn ev(v: serde_json::Value) -> Event {
    let mut base = json!({
        "evt.hostname": "node1", "evt.time": "2026-01-01T00:00:10Z", "evt.rawres": 0,
        "proc.pid": 4242, "proc.pid.ts": "2026-01-01T00:00:00Z",
        "proc.name": "java", "proc.exe": "/usr/bin/java", "proc.exepath": "/usr/bin/java", "proc.args": "-jar app.jar",
        "proc.cwd": "/app/", "proc.tty": 0, "proc.aname": ["containerd-shim", "systemd"],
        "proc.aexe": ["/usr/bin/containerd-shim", "/sbin/init"], "proc.aexepath": ["/usr/bin/containerd-shim", "/sbin/init"],
        "user.uid": 1000, "user.name": "app", "user.loginuid": -1, "group.gid": 1000, "group.name": "app",
        "container.id": "0123456789ab", "container.name": "web", "container.image.repository": "docker.io/library/app",
        "container.privileged": false, "k8s.ns.name": "prod", "k8s.pod.name": "web-1",
        "thread.cap_effective": "CAP_CHOWN CAP_NET_BIND_SERVICE"
    });
    for (k, val) in v.as_object().into_iter().flatten() {
        base[k] = val.clone();
    }
    lanner_contract::jsonl::parse_line(&base.to_string()).unwrap_or_default()
}

/// `n` events of the mix (the pattern repeats every 100 events); each has its own
/// `evt.id` and `evt.num`.
pub fn realistic_mix(n: usize) -> Vec<Event> {
    mix_with_fewer_alerts(n, 1)
}

/// The mix with its two firing events kept in one block of 100 events out of
/// `one_in`, and near misses (`cat` reading `/etc/hosts`, `bash` without a tty) in
/// the others: 2 % of events fire with `one_in = 1` (the mix), 0.1 % with 20.
pub fn mix_with_fewer_alerts(n: usize, one_in: usize) -> Vec<Event> {
    let templates = templates();
    let quiet = quiet_templates();
    let one_in = one_in.max(1);
    (0..n)
        .map(|i| {
            let block = i / templates.len();
            let set = if block.is_multiple_of(one_in) {
                &templates
            } else {
                &quiet
            };
            let mut e = set[i % set.len()].clone();
            e.evt_id = Some(format!("00000000000000aa-{i}").into());
            e.evt_num = Some(i as u64);
            e
        })
        .collect()
}

/// The templates with the firing events replaced by near misses.
fn quiet_templates() -> Vec<Event> {
    let mut t = templates();
    t[52].fd_name = Some("/etc/hosts".into());
    t[52].fd_nameraw = Some("/etc/hosts".into());
    t[92].proc_tty = Some(0);
    t
}

fn templates() -> Vec<Event> {
    let n = 100;
    let mut out = Vec::new();
    let open = |flags: &str, name: &str, proc: &str| {
        ev(
            json!({"evt.type": "openat", "evt.arg.flags": flags, "fd.type": "file", "fd.num": 7, "fd.name": name, "fd.nameraw": name, "proc.name": proc}),
        )
    };
    for i in 0..n {
        let e = match i % 100 {
            0..=19 => open(
                "O_RDONLY|O_CLOEXEC",
                "/usr/lib/x86_64-linux-gnu/libc.so.6",
                "java",
            ),
            20..=29 => open("O_RDONLY", &format!("/proc/{}/stat", i), "top"),
            30..=37 => open("O_RDONLY", "/etc/hosts", "java"),
            38..=41 => open("O_RDONLY", "/app/config/app.yaml", "java"),
            42..=47 => open("O_WRONLY|O_APPEND|O_CREAT", "/var/log/app/app.log", "java"),
            48..=51 => open("O_RDWR|O_CREAT", "/tmp/cache.db", "java"),
            52 => open("O_RDONLY", "/etc/shadow", "cat"), // fires Read sensitive file untrusted
            53..=62 => ev(json!({"evt.type": "clone", "evt.rawres": 4243})),
            63..=69 => ev(json!({"evt.type": "procexit"})),
            70..=76 => ev(
                json!({"evt.type": "connect", "fd.type": "ipv4", "fd.num": 9, "fd.l4proto": "tcp", "fd.cip": "10.1.0.5", "fd.cport": 40000 + i, "fd.sip": "10.1.0.9", "fd.sport": 5432, "fd.name": "10.1.0.5:40000->10.1.0.9:5432"}),
            ),
            77..=81 => ev(
                json!({"evt.type": "accept4", "fd.type": "ipv4", "fd.num": 10, "fd.l4proto": "tcp", "fd.cip": "10.1.0.7", "fd.cport": 51000, "fd.sip": "10.1.0.5", "fd.sport": 8080, "fd.is_server": true}),
            ),
            82..=84 => ev(json!({"evt.type": "socket", "evt.arg.domain": "AF_INET"})),
            85..=86 => ev(
                json!({"evt.type": "sendto", "fd.type": "ipv4", "fd.num": 11, "fd.l4proto": "udp", "fd.cip": "10.1.0.5", "fd.cport": 53000, "fd.sip": "10.96.0.10", "fd.sport": 53, "fd.connected": false, "fd.name_changed": true}),
            ),
            87..=89 => ev(
                json!({"evt.type": "execve", "proc.name": "sh", "proc.exe": "/bin/sh", "proc.exepath": "/bin/sh", "proc.args": "-c ls", "proc.aname": ["java", "containerd-shim"]}),
            ),
            90..=91 => ev(
                json!({"evt.type": "execve", "proc.name": "curl", "proc.exe": "curl", "proc.exepath": "/usr/bin/curl", "proc.args": "-s http://svc", "proc.aname": ["sh", "java"]}),
            ),
            92 => ev(
                json!({"evt.type": "execve", "proc.name": "bash", "proc.exe": "bash", "proc.tty": 34816, "proc.aname": ["runc"]}),
            ), // fires Terminal shell in container
            93..=94 => {
                ev(json!({"evt.type": "dup2", "evt.rawres": 1, "fd.num": 1, "fd.type": "pipe"}))
            }
            95..=96 => ev(json!({"evt.type": "unlinkat", "evt.arg.name": "/tmp/x"})),
            97 => ev(
                json!({"evt.type": "renameat2", "evt.arg.oldpath": "/tmp/a", "evt.arg.newpath": "/tmp/b"}),
            ),
            98 => ev(json!({"evt.type": "mmap"})),
            _ => ev(json!({"evt.type": "setuid", "evt.arg.uid": "0"})),
        };
        out.push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Loader, Matching};

    #[test]
    fn fewer_alerts_keeps_the_firing_events_in_one_block_in_n() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/falco-rules/falco_rules.yaml");
        let mut l = Loader::new();
        l.add_file(&path);
        let (rs, report) = l.finish();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let rs = rs.expect("stable rules");
        let fired = |events: Vec<Event>| -> usize {
            events
                .iter()
                .map(|e| rs.judge(e, Matching::First, |_| {}))
                .sum()
        };
        assert_eq!(fired(realistic_mix(2000)), 40);
        assert_eq!(fired(mix_with_fewer_alerts(2000, 20)), 2);
        assert_eq!(mix_with_fewer_alerts(2000, 20).len(), 2000);
    }
}
