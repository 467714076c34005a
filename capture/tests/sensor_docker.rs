//! The sensor's "done when" demo with a real container (root and Docker only): one
//! `lanner-capture --stdout --publish` watches while a `docker exec -it` shell (with a
//! tty, from `script`) in a FROM-scratch busybox container reads /etc/shadow, writes below
//! /etc, resolves a name against a DNS responder on the Docker bridge and connects to the
//! address it got. Each of those events must show on stdout with the process, its
//! ancestry, its tty and the container id taken from the cgroup, and arrive on
//! `lanner.raw.<node>` with the same id and fields. Without root or Docker it says why
//! and passes.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{AckPolicy, pull};
use common::*;
use futures::StreamExt;
use lanner_contract::{Event, codec, subjects};
use serde_json::Value;

/// The image: static busybox with the applets the demo runs, and a shadow file.
const IMAGE: &str = "lanner-test-capture:1";

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run the docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The host's address on Docker's default bridge: the gateway its IPAM configuration
/// names or, when that is left empty (a dockerd started for the first time on a machine
/// may list only the subnet), the IPv4 address of the bridge's own interface.
fn bridge_gateway() -> Ipv4Addr {
    let named = docker(&[
        "network",
        "inspect",
        "bridge",
        "--format",
        "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
    ]);
    if let Ok(addr) = named.parse() {
        return addr;
    }
    let interface = docker(&[
        "network",
        "inspect",
        "bridge",
        "--format",
        "{{index .Options \"com.docker.network.bridge.name\"}}",
    ]);
    let interface = if interface.is_empty() {
        "docker0".to_owned()
    } else {
        interface
    };
    let out = Command::new("ip")
        .args(["-o", "-4", "addr", "show", "dev", &interface])
        .output()
        .expect("run ip");
    let listing = String::from_utf8_lossy(&out.stdout);
    listing
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|cidr| cidr.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| {
            panic!("no gateway for the bridge network: IPAM says {named:?}, `ip addr` of {interface} says {listing:?}")
        })
}

fn engine_answers() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A Docker engine that answers (started with `scripts/start-dockerd` when needed), or
/// the reason there is none.
fn docker_engine() -> Result<(), String> {
    if engine_answers() {
        return Ok(());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/start-dockerd");
    let out = Command::new(&script)
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if out.status.success() && engine_answers() {
        Ok(())
    } else {
        Err(format!(
            "no Docker engine answers and scripts/start-dockerd could not start one: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Builds [`IMAGE`] from the host's static busybox (no registry needed).
fn build_image() {
    if Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path().join("rootfs");
    for sub in ["bin", "etc", "tmp"] {
        std::fs::create_dir_all(root.join(sub)).expect("rootfs directory");
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("copy /bin/busybox (apt-get install busybox-static)");
    for tool in ["sh", "cat", "echo", "nslookup", "nc", "awk", "sleep", "tty"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(tool)).expect("symlink");
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    std::fs::write(root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    let tar = dir.path().join("rootfs.tar");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(ok.success(), "tar of the rootfs");
    docker(&["import", tar.to_str().expect("utf-8 path"), IMAGE]);
}

/// A DNS responder on `addr`:53 that answers every A question with `answer` and every
/// other question with no records, until the test process ends.
fn dns_responder(addr: Ipv4Addr, answer: Ipv4Addr) {
    let sock = UdpSocket::bind((addr, 53))
        .unwrap_or_else(|e| panic!("binding the test's DNS responder to {addr}:53: {e}"));
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            let q = &buf[..n];
            let mut end = 12;
            while end < n && q[end] != 0 {
                end += usize::from(q[end]) + 1;
            }
            if end + 5 > n {
                continue;
            }
            let is_a = q[end + 1..end + 3] == [0, 1];
            let mut r = q[..2].to_vec();
            r.extend([0x81, 0x80, 0, 1, 0, u8::from(is_a), 0, 0, 0, 0]);
            r.extend(&q[12..end + 5]);
            if is_a {
                r.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                r.extend(answer.octets());
            }
            let _ = sock.send_to(&r, peer);
        }
    });
}

/// Every event on `lanner.raw.<node>`, by `evt.id`, once `want` ids have all arrived.
async fn raw_events(url: &str, node: &str, want: &[String]) -> HashMap<String, Event> {
    let js = async_nats::jetstream::new(async_nats::connect(url).await.expect("connect"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let stream = loop {
        match js.get_stream(subjects::RAW.name).await {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("the sensor never created {}: {e}", subjects::RAW.name),
        }
    };
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: subjects::raw(node),
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut seen = HashMap::new();
    while want.iter().any(|id| !seen.contains_key(id)) && Instant::now() < deadline {
        let mut batch = consumer
            .fetch()
            .max_messages(500)
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .expect("fetch");
        while let Some(m) = batch.next().await {
            let m = m.expect("message");
            for ev in codec::decode_batch(&m.payload).expect("a decodable batch") {
                if let Some(id) = ev.evt_id.clone() {
                    seen.insert(id.to_string(), ev);
                }
            }
        }
    }
    seen
}

#[test]
fn docker_exec_shell_reads_shadow_writes_etc_resolves_and_connects() {
    need_root!();
    if let Err(why) = docker_engine() {
        eprintln!("skipped: {why}");
        return;
    }
    build_image();
    let gateway = bridge_gateway();
    // The name resolves to the bridge's host address, where a TCP server listens.
    dns_responder(gateway, gateway);
    let server = TcpListener::bind((gateway, 0)).expect("TCP server on the bridge");
    let port = server.local_addr().expect("address").port();
    std::thread::spawn(move || for _ in server.incoming() {});

    let nats = lanner_tests::Nats::start();
    let node = unique("docker-demo");
    let (events, _child) = start_sensor_with(
        &node,
        &[
            "--publish",
            "--nats-url",
            &nats.url,
            "--drop-read-only-opens",
            "--keep-prefix",
            "/etc/",
        ],
        true,
    );

    let name = unique("lanner-demo");
    let domain = format!("{name}.lanner.test");
    let written = format!("/etc/{name}");
    let id = docker(&[
        "run",
        "-d",
        "--rm",
        "--name",
        &name,
        "--label",
        "lanner.test=capture",
        IMAGE,
        "sleep",
        "300",
    ]);
    let short = &id[..12];
    let shell = format!(
        "tty; cat /etc/shadow >/dev/null; echo x > {written}; \
         addr=$(nslookup {domain} {gateway} | awk '/^Address: /{{a=$2}} END{{print a}}'); \
         nc -w 2 $addr {port} </dev/null; echo demo-done $addr"
    );
    let out = Command::new("script")
        .args([
            "-qec",
            &format!(
                "docker exec -it {name} sh -c '{}'",
                shell.replace('\'', r"'\''")
            ),
            "/dev/null",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    assert!(
        text.contains(&format!("demo-done {gateway}")),
        "the shell in the container did not finish: {text:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("/dev/pts/"),
        "docker exec -it gave no tty: {text:?}"
    );

    let in_container = |v: &Value| v.get("container.id").and_then(Value::as_str) == Some(short);
    let text_is = |v: &Value, k: &str, want: &str| v.get(k).and_then(Value::as_str) == Some(want);

    // The shell docker exec started: a tty, the container runtime as its parent.
    let sh = events.find("the exec'd shell", |v| {
        in_container(v)
            && ty(v, "execve")
            && v.get("proc.args")
                .and_then(Value::as_str)
                .is_some_and(|a| a.contains(&domain))
    });
    assert_eq!(s(&sh, "proc.name"), "sh");
    // Canonical, as Falco's: /bin/sh is a link to busybox.
    assert_eq!(s(&sh, "proc.exepath"), "/bin/busybox");
    assert_eq!(n(&sh, "evt.rawres"), 0);
    let tty = n(&sh, "proc.tty");
    assert_eq!(tty >> 8, 136, "a pseudo-terminal (major 136): {sh}");
    let sh_pid = n(&sh, "proc.pid");
    assert_ne!(
        n(&sh, "proc.vpid"),
        sh_pid,
        "pid inside the container: {sh}"
    );
    // Falco's container_entrypoint: the exec'd process's parent is the runtime.
    let parent = list(&sh, "proc.aname")[0].as_str().unwrap_or("").to_owned();
    assert!(
        ["containerd-shim", "runc", "runc:[2:INIT]", "runc:[1:CHILD]"].contains(&parent.as_str()),
        "parent of docker exec's shell: {sh}"
    );
    assert_eq!(s(&sh, "user.name"), "root");
    assert_eq!(s(&sh, "evt.hostname"), node);

    // Common to every event of the session: container, tty, ancestry through the shell.
    let of_session = |what: &str, ev: &Value| {
        assert_eq!(s(ev, "container.id"), short, "{what}: {ev}");
        assert_eq!(n(ev, "proc.tty"), tty, "{what}: {ev}");
        assert_eq!(s(ev, "user.name"), "root", "{what}: {ev}");
        // busybox applets re-execute /proc/self/exe: the same file.
        assert_eq!(s(ev, "proc.exepath"), "/bin/busybox", "{what}: {ev}");
        let apid = list(ev, "proc.apid");
        let aname = list(ev, "proc.aname");
        // The shell itself, or one of its descendants (nslookup runs in a subshell).
        let up = if n(ev, "proc.pid") == sh_pid {
            0
        } else {
            let at = apid
                .iter()
                .position(|p| p.as_i64() == Some(sh_pid))
                .unwrap_or_else(|| panic!("{what}: the shell is not an ancestor: {ev}"));
            assert_eq!(aname[at], Value::from("sh"), "{what}: {ev}");
            at + 1
        };
        assert_eq!(aname[up], Value::from(parent.as_str()), "{what}: {ev}");
    };

    let shadow = events.find("the read of /etc/shadow", |v| {
        in_container(v) && ty(v, "openat") && text_is(v, "fd.name", "/etc/shadow")
    });
    assert_eq!(s(&shadow, "proc.name"), "cat");
    assert!(s(&shadow, "evt.arg.flags").starts_with("O_RDONLY"));
    assert!(n(&shadow, "evt.rawres") >= 0);
    of_session("shadow", &shadow);

    let write = events.find("the write below /etc", |v| {
        in_container(v) && ty(v, "openat") && text_is(v, "fd.name", &written)
    });
    assert_eq!(s(&write, "proc.name"), "sh");
    assert_eq!(s(&write, "evt.arg.flags"), "O_WRONLY|O_CREAT|O_TRUNC");
    assert!(n(&write, "evt.rawres") >= 0);
    of_session("write", &write);

    let query = events.find("the DNS query", |v| {
        in_container(v)
            && text_is(v, "dns.name", &domain)
            && text_is(v, "dns.type", "A")
            && v.get("dns.answers").is_none()
    });
    assert_eq!(s(&query, "proc.name"), "nslookup");
    assert_eq!(n(&query, "fd.sport"), 53);
    assert_eq!(s(&query, "fd.sip"), gateway.to_string());
    assert_eq!(s(&query, "fd.l4proto"), "udp");
    of_session("query", &query);
    let answer = events.find("the DNS answer", |v| {
        in_container(v)
            && text_is(v, "dns.name", &domain)
            && text_is(v, "dns.type", "A")
            && v.get("dns.answers").is_some()
    });
    assert_eq!(
        list(&answer, "dns.answers"),
        vec![Value::from(gateway.to_string())]
    );
    assert_eq!(s(&answer, "dns.rcode"), "NOERROR");
    of_session("answer", &answer);

    let connect = events.find("the connect to the answer", |v| {
        in_container(v)
            && ty(v, "connect")
            && v.get("fd.sport").and_then(Value::as_i64) == Some(i64::from(port))
    });
    assert_eq!(s(&connect, "proc.name"), "nc");
    assert_eq!(s(&connect, "fd.sip"), gateway.to_string());
    assert_eq!(s(&connect, "fd.sip.name"), domain);
    assert_eq!(s(&connect, "fd.l4proto"), "tcp");
    assert_eq!(n(&connect, "evt.rawres"), 0);
    of_session("connect", &connect);

    // The same events, with the same ids and fields, on lanner.raw.<node>.
    let shown = [&sh, &shadow, &write, &query, &answer, &connect];
    let ids: Vec<String> = shown.iter().map(|v| s(v, "evt.id").to_owned()).collect();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let published = rt.block_on(raw_events(&nats.url, &node, &ids));
    for (ev, id) in shown.iter().zip(&ids) {
        let p = published.get(id).unwrap_or_else(|| {
            panic!(
                "{id} printed but never published on {}",
                subjects::raw(&node)
            )
        });
        let mut line = Vec::new();
        lanner_contract::jsonl::write_event(&mut line, p).expect("JSON");
        let p: Value = serde_json::from_slice(&line).expect("JSON line");
        assert_eq!(&p, *ev, "the published event differs from the printed one");
    }
}
