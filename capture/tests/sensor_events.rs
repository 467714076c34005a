//! Live sensor tests (root only): one `lanner-capture --stdout` runs for the whole test
//! binary; each test performs real actions (exec, opens, file operations, sockets, a DNS
//! lookup against a responder on loopback, privileged calls, a tty, a docker-style
//! cgroup) and asserts the exact fields of the events they produce, found by the pid of
//! the process that acted. Without root every test prints why it skips.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};

use common::*;
use serde_json::Value;

struct Sensor {
    events: Arc<Events>,
    node: String,
}

fn sensor() -> &'static Sensor {
    static S: OnceLock<Sensor> = OnceLock::new();
    S.get_or_init(|| {
        let node = unique("sensor-test");
        // In-kernel filtering keeps the volume (and the tests) independent of whatever
        // else runs on the machine: read-only opens are kept only below these prefixes.
        let (events, _child) = start_sensor(
            &node,
            &[
                "--drop-read-only-opens",
                "--keep-prefix",
                "/etc/,/nonexistent-",
            ],
        );
        Sensor { events, node }
    })
}

#[test]
fn exec_carries_argv_ancestry_cwd_user_and_host() {
    need_root!();
    let sensor = sensor();
    let path = format!("/nonexistent-{}", unique("exec"));
    let sh = Command::new("/bin/sh")
        .args(["-c", &format!("cat {path}; exit 0")])
        .current_dir("/tmp")
        .spawn()
        .expect("sh");
    let sh_pid = sh.id();
    sh.wait_with_output().expect("sh ran");
    let ev = sensor.events.find("execve of cat", |v| {
        ty(v, "execve") && v.get("proc.args").and_then(Value::as_str) == Some(path.as_str())
    });
    assert_eq!(n(&ev, "evt.rawres"), 0);
    assert_eq!(s(&ev, "proc.name"), "cat");
    assert_eq!(s(&ev, "proc.exe"), "cat");
    assert!(s(&ev, "proc.exepath").ends_with("/cat"), "{ev}");
    assert!(s(&ev, "evt.arg.filename").ends_with("/cat"), "{ev}");
    assert_eq!(n(&ev, "proc.ppid"), i64::from(sh_pid));
    let apid = list(&ev, "proc.apid");
    assert_eq!(apid[0], Value::from(sh_pid));
    assert_eq!(apid[1], Value::from(std::process::id()));
    assert_eq!(list(&ev, "proc.aname")[0], Value::from("sh"));
    assert_eq!(
        list(&ev, "proc.acmdline")[0],
        Value::from(format!("sh -c cat {path}; exit 0"))
    );
    assert_eq!(s(&ev, "proc.cwd"), "/tmp/");
    assert_eq!(n(&ev, "user.uid"), 0);
    assert_eq!(s(&ev, "user.name"), "root");
    assert_eq!(s(&ev, "container.id"), "host");
    assert_eq!(s(&ev, "evt.hostname"), sensor.node);
    let id = s(&ev, "evt.id");
    let (session, num) = id.split_once('-').expect("evt.id is <session>-<num>");
    assert_eq!(session.len(), 16);
    assert!(session.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(num.parse::<i64>().expect("number"), n(&ev, "evt.num"));

    // cat's failed open of the missing file: path resolved, flags rendered, -ENOENT.
    let cat_pid = n(&ev, "proc.pid") as u32;
    let open = sensor.events.find("cat's openat", |v| {
        pid_is(v, cat_pid)
            && ty(v, "openat")
            && v.get("fd.name").and_then(Value::as_str) == Some(path.as_str())
    });
    assert_eq!(n(&open, "evt.rawres"), -2);
    assert!(s(&open, "evt.arg.flags").starts_with("O_RDONLY"), "{open}");
    assert_eq!(list(&open, "proc.apid")[0], Value::from(sh_pid));
    // And its exit.
    let exit = sensor.events.find("cat's procexit", |v| {
        pid_is(v, cat_pid) && ty(v, "procexit")
    });
    assert_eq!(s(&exit, "proc.name"), "cat");
    // The kernel filter dropped cat's read-only library opens (outside the kept
    // prefixes) but kept /etc/ld.so.cache; the ring is ordered, so they would precede
    // the exit.
    let all = sensor.events.all();
    let opens: Vec<&str> = all
        .iter()
        .filter(|v| pid_is(v, cat_pid) && ty(v, "openat"))
        .filter_map(|v| v.get("fd.name").and_then(Value::as_str))
        .collect();
    assert!(opens.contains(&"/etc/ld.so.cache"), "{opens:?}");
    assert!(!opens.iter().any(|p| p.contains("libc.so")), "{opens:?}");
}

#[test]
fn fork_child_event_names_parent() {
    need_root!();
    let sensor = sensor();
    let (pid, out) = python(
        "import os\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nos.waitpid(pid, 0)\nprint(pid)",
    );
    let child: u32 = out.trim().parse().expect("child pid");
    let ev = sensor.events.find("the child's clone", |v| {
        pid_is(v, child) && (ty(v, "clone") || ty(v, "clone3") || ty(v, "fork"))
    });
    assert_eq!(n(&ev, "evt.rawres"), 0);
    assert_eq!(n(&ev, "proc.ppid"), i64::from(pid));
    assert_eq!(list(&ev, "proc.apid")[0], Value::from(pid));
    let parent = sensor.events.find("the parent's clone", |v| {
        pid_is(v, pid)
            && (ty(v, "clone") || ty(v, "clone3"))
            && n(v, "evt.rawres") == i64::from(child)
    });
    assert_eq!(s(&parent, "proc.name"), "python3");
}

#[test]
fn shadow_read_and_write_below_etc() {
    need_root!();
    let sensor = sensor();
    let target = format!("/etc/{}", unique("lanner-test"));
    let (pid, _) = python(&format!(
        "import os\nopen('/etc/shadow').read()\nwith open('{target}', 'w') as f: f.write('x')\nos.unlink('{target}')"
    ));
    let read = sensor.events.find("open of /etc/shadow", |v| {
        pid_is(v, pid)
            && ty(v, "openat")
            && v.get("fd.name").and_then(Value::as_str) == Some("/etc/shadow")
    });
    assert_eq!(s(&read, "evt.arg.flags"), "O_RDONLY|O_CLOEXEC");
    assert!(n(&read, "evt.rawres") >= 0);
    assert_eq!(n(&read, "fd.num"), n(&read, "evt.rawres"));
    assert_eq!(s(&read, "fd.type"), "file");
    let write = sensor.events.find("write-open below /etc", |v| {
        pid_is(v, pid)
            && ty(v, "openat")
            && v.get("fd.name").and_then(Value::as_str) == Some(target.as_str())
    });
    assert_eq!(
        s(&write, "evt.arg.flags"),
        "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC"
    );
    assert_eq!(
        s(&write, "evt.arg.mode"),
        "0666(S_IWOTH|S_IROTH|S_IWGRP|S_IRGRP|S_IWUSR|S_IRUSR)"
    );
    let unlink = sensor.events.find("unlink", |v| {
        pid_is(v, pid) && (ty(v, "unlink") || ty(v, "unlinkat"))
    });
    let path = unlink
        .get("evt.arg.path")
        .or_else(|| unlink.get("evt.arg.name"))
        .and_then(Value::as_str);
    assert_eq!(path, Some(target.as_str()));
    assert_eq!(n(&unlink, "evt.rawres"), 0);
}

#[test]
fn file_operations_carry_their_paths() {
    need_root!();
    let sensor = sensor();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display().to_string();
    let (pid, _) = python(&format!(
        "import os\nos.chdir('{d}')\nos.mkdir('sub', 0o750)\nos.rename('sub', 'sub2')\nopen('f', 'w').close()\nos.symlink('/etc/passwd', 'ln')\nos.link('f', 'hard')\nos.chmod('f', 0o600)\nos.chown('f', 1, 2)"
    ));
    let find = |what: &str, types: &[&str]| {
        sensor
            .events
            .find(what, |v| pid_is(v, pid) && types.iter().any(|t| ty(v, t)))
    };
    let mkdir = find("mkdir", &["mkdir", "mkdirat"]);
    assert_eq!(s(&mkdir, "evt.arg.path"), format!("{d}/sub"));
    assert_eq!(
        s(&mkdir, "evt.arg.mode"),
        "0750(S_IXGRP|S_IRGRP|S_IXUSR|S_IWUSR|S_IRUSR)"
    );
    let rename = find("rename", &["rename", "renameat", "renameat2"]);
    assert_eq!(s(&rename, "evt.arg.oldpath"), format!("{d}/sub"));
    assert_eq!(s(&rename, "evt.arg.newpath"), format!("{d}/sub2"));
    let symlink = find("symlink", &["symlink", "symlinkat"]);
    assert_eq!(s(&symlink, "evt.arg.target"), "/etc/passwd");
    assert_eq!(s(&symlink, "evt.arg.linkpath"), format!("{d}/ln"));
    let link = find("link", &["link", "linkat"]);
    assert_eq!(s(&link, "evt.arg.oldpath"), format!("{d}/f"));
    assert_eq!(s(&link, "evt.arg.newpath"), format!("{d}/hard"));
    let chmod = find("chmod", &["chmod", "fchmodat", "fchmodat2"]);
    assert_eq!(s(&chmod, "evt.arg.filename"), format!("{d}/f"));
    assert_eq!(s(&chmod, "evt.arg.mode"), "0600(S_IWUSR|S_IRUSR)");
    let chown = find("chown", &["chown", "fchownat", "lchown"]);
    assert_eq!(s(&chown, "evt.arg.path"), format!("{d}/f"));
    assert_eq!(
        (s(&chown, "evt.arg.uid"), s(&chown, "evt.arg.gid")),
        ("1", "2")
    );
    // The chdir moved the process's cwd.
    assert_eq!(s(&chown, "proc.cwd"), format!("{d}/"));
}

#[test]
fn tcp_connect_bind_listen_accept_v4_and_v6() {
    need_root!();
    let sensor = sensor();
    for (family, host) in [("AF_INET", "127.0.0.1"), ("AF_INET6", "::1")] {
        let (pid, out) = python(&format!(
            "import socket\nsrv = socket.socket(socket.{family})\nsrv.bind(('{host}', 0))\nsrv.listen(4)\nport = srv.getsockname()[1]\ncli = socket.socket(socket.{family})\ncli.connect(('{host}', port))\nconn, peer = srv.accept()\nprint(port, cli.getsockname()[1])"
        ));
        let mut it = out
            .split_whitespace()
            .map(|p| p.parse::<i64>().expect("port"));
        let (port, cport) = (it.next().expect("port"), it.next().expect("cport"));
        let fd_type = if family == "AF_INET" { "ipv4" } else { "ipv6" };
        // Found by the port: the C library may connect elsewhere first (e.g. to nscd).
        let connect = sensor.events.find("connect", |v| {
            pid_is(v, pid)
                && ty(v, "connect")
                && v.get("fd.sport").and_then(Value::as_i64) == Some(port)
        });
        assert_eq!(n(&connect, "evt.rawres"), 0);
        assert_eq!(s(&connect, "fd.sip"), host);
        assert_eq!(n(&connect, "fd.sport"), port);
        assert_eq!(s(&connect, "fd.cip"), host);
        assert_eq!(n(&connect, "fd.cport"), cport);
        assert_eq!(s(&connect, "fd.l4proto"), "tcp");
        assert_eq!(s(&connect, "fd.type"), fd_type);
        assert_eq!(
            s(&connect, "fd.name"),
            format!("{host}:{cport}->{host}:{port}")
        );
        assert_eq!(connect.get("fd.is_server"), Some(&Value::Bool(false)));
        let accept = sensor.events.find("accept", |v| {
            pid_is(v, pid) && (ty(v, "accept") || ty(v, "accept4"))
        });
        assert_eq!(n(&accept, "fd.cport"), cport);
        assert_eq!(n(&accept, "fd.sport"), port);
        assert_eq!(
            s(&accept, "fd.name"),
            format!("{host}:{cport}->{host}:{port}")
        );
        assert_eq!(accept.get("fd.is_server"), Some(&Value::Bool(true)));
        let bind = sensor
            .events
            .find("bind", |v| pid_is(v, pid) && ty(v, "bind"));
        assert_eq!(n(&bind, "fd.sport"), port);
        assert_eq!(s(&bind, "fd.sip"), host);
        let listen = sensor
            .events
            .find("listen", |v| pid_is(v, pid) && ty(v, "listen"));
        assert_eq!(n(&listen, "fd.sport"), port);
        assert_eq!(n(&listen, "fd.num"), n(&bind, "fd.num"));
    }
}

#[test]
fn unix_socket_connect_names_the_path() {
    need_root!();
    let sensor = sensor();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.sock").display().to_string();
    let (pid, _) = python(&format!(
        "import socket\nsrv = socket.socket(socket.AF_UNIX)\nsrv.bind('{path}')\nsrv.listen(1)\ncli = socket.socket(socket.AF_UNIX)\ncli.connect('{path}')"
    ));
    // Found by the path: the C library may connect to nscd's socket first.
    let connect = sensor.events.find("unix connect", |v| {
        pid_is(v, pid)
            && ty(v, "connect")
            && v.get("fd.name").and_then(Value::as_str) == Some(path.as_str())
    });
    assert_eq!(s(&connect, "fd.type"), "unix");
    assert_eq!(n(&connect, "evt.rawres"), 0);
}

#[test]
fn dns_query_answer_and_the_connect_that_follows() {
    need_root!();
    let sensor = sensor();
    let name = format!("{}.lanner.test", unique("dns"));
    // A responder on 127.0.0.1:53 answering A 10.11.12.13; then a connect to that address.
    let code = format!(
        r#"import socket, struct, threading
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
srv.bind(('127.0.0.1', 53))
def answer():
    q, peer = srv.recvfrom(512)
    qd_end = 12
    while q[qd_end] != 0:
        qd_end += q[qd_end] + 1
    question = q[12:qd_end + 5]
    resp = q[:2] + b'\x81\x80' + b'\x00\x01\x00\x01\x00\x00\x00\x00' + question
    resp += b'\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04' + bytes([10, 11, 12, 13])
    srv.sendto(resp, peer)
t = threading.Thread(target=answer)
t.start()
cli = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
cli.connect(('127.0.0.1', 53))
q = b'\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00'
for label in '{name}'.split('.'):
    q += bytes([len(label)]) + label.encode()
q += b'\x00\x00\x01\x00\x01'
cli.send(q)
cli.recv(512)
t.join()
c = socket.socket()
c.setblocking(False)
try:
    c.connect(('10.11.12.13', 80))
except BlockingIOError:
    pass
"#
    );
    let (pid, _) = python(&code);
    let query = sensor.events.find("DNS query", |v| {
        pid_is(v, pid)
            && v.get("dns.name").and_then(Value::as_str) == Some(name.as_str())
            && v.get("dns.answers").is_none()
    });
    assert_eq!(s(&query, "dns.type"), "A");
    assert_eq!(s(&query, "fd.sip"), "127.0.0.1");
    assert_eq!(n(&query, "fd.sport"), 53);
    assert_eq!(s(&query, "fd.l4proto"), "udp");
    let answer = sensor.events.find("DNS answer", |v| {
        pid_is(v, pid)
            && v.get("dns.name").and_then(Value::as_str) == Some(name.as_str())
            && v.get("dns.answers").is_some()
    });
    assert_eq!(
        list(&answer, "dns.answers"),
        vec![Value::from("10.11.12.13")]
    );
    assert_eq!(s(&answer, "dns.rcode"), "NOERROR");
    assert_eq!(s(&answer, "dns.type"), "A");
    let connect = sensor.events.find("connect to the answer", |v| {
        pid_is(v, pid)
            && ty(v, "connect")
            && v.get("fd.sip").and_then(Value::as_str) == Some("10.11.12.13")
    });
    assert_eq!(n(&connect, "fd.sport"), 80);
    assert_eq!(n(&connect, "evt.rawres"), -115);
    assert_eq!(s(&connect, "fd.sip.name"), name);
}

#[test]
fn privileged_operations() {
    need_root!();
    let sensor = sensor();
    let memfd = unique("memfd");
    let code = format!(
        r#"import ctypes, os, socket, subprocess
libc = ctypes.CDLL(None, use_errno=True)
os.memfd_create('{memfd}', os.MFD_CLOEXEC)
socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
libc.syscall(321, 0, None, 0)
libc.syscall(313, -1, b'', 0)
child = subprocess.Popen(['sleep', '30'])
libc.ptrace(16, child.pid, None, None)
child.kill()
fd = os.open('/proc/self/ns/uts', os.O_RDONLY)
pid = os.fork()
if pid == 0:
    libc.unshare(0x04000000)
    libc.setns(fd, 0x04000000)
    os.setgid(65534)
    os.setuid(65534)
    os._exit(0)
os.waitpid(pid, 0)
print(pid, child.pid)
"#
    );
    let (pid, out) = python(&code);
    let mut it = out
        .split_whitespace()
        .map(|p| p.parse::<u32>().expect("pid"));
    let (forked, sleeper) = (it.next().expect("pid"), it.next().expect("pid"));
    let m = sensor
        .events
        .find("memfd_create", |v| pid_is(v, pid) && ty(v, "memfd_create"));
    assert_eq!(s(&m, "evt.arg.name"), memfd);
    assert_eq!(s(&m, "evt.arg.flags"), "MFD_CLOEXEC");
    assert_eq!(s(&m, "fd.type"), "memfd");
    let p = sensor.events.find("AF_PACKET socket", |v| {
        pid_is(v, pid)
            && ty(v, "socket")
            && v.get("evt.arg.domain").and_then(Value::as_str) == Some("AF_PACKET")
    });
    assert_eq!(s(&p, "evt.arg.domain"), "AF_PACKET");
    assert_eq!(s(&p, "evt.arg.type"), "SOCK_RAW");
    let b = sensor
        .events
        .find("bpf", |v| pid_is(v, pid) && ty(v, "bpf"));
    assert_eq!(s(&b, "evt.arg.cmd"), "BPF_MAP_CREATE");
    assert!(n(&b, "evt.rawres") < 0);
    let f = sensor
        .events
        .find("finit_module", |v| pid_is(v, pid) && ty(v, "finit_module"));
    // EBADF, or ENOSYS on kernels built without module support.
    assert!([-9, -38].contains(&n(&f, "evt.rawres")), "{f}");
    let t = sensor
        .events
        .find("ptrace", |v| pid_is(v, pid) && ty(v, "ptrace"));
    assert_eq!(s(&t, "evt.arg.request"), "PTRACE_ATTACH");
    assert_eq!(s(&t, "evt.arg.pid"), sleeper.to_string());
    assert_eq!(n(&t, "evt.rawres"), 0);
    let u = sensor
        .events
        .find("unshare", |v| pid_is(v, forked) && ty(v, "unshare"));
    assert_eq!(s(&u, "evt.arg.flags"), "CLONE_NEWUTS");
    let ns = sensor
        .events
        .find("setns", |v| pid_is(v, forked) && ty(v, "setns"));
    assert_eq!(s(&ns, "evt.arg.nstype"), "CLONE_NEWUTS");
    assert_eq!(n(&ns, "evt.rawres"), 0);
    let g = sensor
        .events
        .find("setgid", |v| pid_is(v, forked) && ty(v, "setgid"));
    assert_eq!(s(&g, "evt.arg.gid"), "65534");
    let su = sensor
        .events
        .find("setuid", |v| pid_is(v, forked) && ty(v, "setuid"));
    assert_eq!(s(&su, "evt.arg.uid"), "65534");
    // The event is taken at exit: the thread already runs as the new user.
    assert_eq!(n(&su, "user.uid"), 65534);
}

#[test]
fn mount_in_a_new_mount_namespace() {
    need_root!();
    let sensor = sensor();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display().to_string();
    let dev = unique("lanner");
    let child = Command::new("unshare")
        .args([
            "-m",
            "--propagation",
            "private",
            "mount",
            "-t",
            "tmpfs",
            &dev,
            &d,
        ])
        .spawn()
        .expect("unshare");
    let pid = child.id();
    let out = child.wait_with_output().expect("unshare ran");
    assert!(out.status.success());
    let u = sensor
        .events
        .find("unshare", |v| pid_is(v, pid) && ty(v, "unshare"));
    assert_eq!(s(&u, "evt.arg.flags"), "CLONE_NEWNS");
    let m = sensor.events.find("mount", |v| {
        ty(v, "mount") && v.get("evt.arg.dev").and_then(Value::as_str) == Some(dev.as_str())
    });
    assert_eq!(s(&m, "evt.arg.dir"), d);
    assert_eq!(s(&m, "evt.arg.type"), "tmpfs");
    assert_eq!(n(&m, "evt.rawres"), 0);
    assert_eq!(
        n(&m, "proc.pid"),
        i64::from(pid),
        "unshare execs mount in the same process"
    );
}

#[test]
fn stdio_redirected_to_a_socket() {
    need_root!();
    let sensor = sensor();
    let (pid, _) = python(
        "import os, socket\nsrv = socket.socket()\nsrv.bind(('127.0.0.1', 0))\nsrv.listen(1)\nc = socket.create_connection(srv.getsockname())\nos.dup2(c.fileno(), 0)",
    );
    let d = sensor.events.find("dup2 onto stdin", |v| {
        pid_is(v, pid) && (ty(v, "dup2") || ty(v, "dup3")) && n(v, "evt.rawres") == 0
    });
    assert_eq!(s(&d, "fd.type"), "ipv4");
    assert_eq!(s(&d, "fd.l4proto"), "tcp");
    assert_eq!(s(&d, "fd.sip"), "127.0.0.1");
}

#[test]
fn tty_of_an_interactive_shell() {
    need_root!();
    let sensor = sensor();
    let path = format!("/nonexistent-{}", unique("tty"));
    let out = Command::new("script")
        .args(["-qec", &format!("sh -c 'tty; cat {path}'"), "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script");
    let text = String::from_utf8_lossy(&out.stdout);
    let pts: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("/dev/pts/"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("script printed no tty: {text:?}"));
    let ev = sensor.events.find("exec under a tty", |v| {
        ty(v, "execve") && v.get("proc.args").and_then(Value::as_str) == Some(path.as_str())
    });
    // tty_nr of /dev/pts/N: major 136, minor N.
    assert_eq!(
        n(&ev, "proc.tty") as u64,
        (136 << 8) | (pts & 0xff) | ((pts & !0xff) << 12)
    );
}

#[test]
fn container_id_from_a_docker_style_cgroup() {
    need_root!();
    let unified = std::path::Path::new("/sys/fs/cgroup/unified");
    let root = if unified.join("cgroup.procs").exists() {
        unified.to_path_buf()
    } else {
        std::path::PathBuf::from("/sys/fs/cgroup")
    };
    if !root.join("cgroup.procs").exists() {
        eprintln!("skipped: no cgroup v2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified");
        return;
    }
    let sensor = sensor();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let id = format!("{:016x}{:048x}", nanos as u64, std::process::id());
    let cg = root
        .join(unique("lanner-test"))
        .join(format!("docker-{id}.scope"));
    std::fs::create_dir_all(&cg).expect("create cgroup");
    let mut child = Command::new("/bin/sh")
        .args([
            "-c",
            &format!("echo $$ > {}/cgroup.procs && exec cat", cg.display()),
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("sh");
    let pid = child.id();
    // The first execve of this pid is the shell's own (still outside); cat runs inside.
    let ev = sensor.events.find("exec inside the cgroup", |v| {
        pid_is(v, pid) && ty(v, "execve") && s(v, "proc.name") == "cat"
    });
    let _ = child.stdin.take().map(|mut s| s.write_all(b""));
    let _ = child.wait();
    let _ = std::fs::remove_dir(&cg);
    let _ = std::fs::remove_dir(cg.parent().expect("parent"));
    assert_eq!(s(&ev, "container.id"), &id[..12]);
}

#[test]
fn signals_prctl_rmdir_module_removal_and_userfaultfd() {
    need_root!();
    let sensor = sensor();
    let dir = tempfile::tempdir().expect("tempdir");
    let gone = dir.path().join("gone").display().to_string();
    let module = unique("lanner_nomod").replace('-', "_");
    let code = format!(
        r#"import ctypes, os, subprocess, threading
libc = ctypes.CDLL(None, use_errno=True)
child = subprocess.Popen(['sleep', '30'])
os.kill(child.pid, 0)
libc.syscall(200, child.pid, 0)
libc.syscall(234, child.pid, child.pid, 0)
child.kill()
child.wait()
libc.prctl(15, b'lanner-renamed', 0, 0, 0)
libc.prctl(38, 1, 0, 0, 0)
os.kill(os.getpid(), 0)
libc.prctl(16, ctypes.create_string_buffer(16), 0, 0, 0)
os.mkdir('{gone}')
os.rmdir('{gone}')
libc.syscall(176, b'{module}', 0o4000)
libc.syscall(323, 0o2004000)
print(child.pid)
"#
    );
    let (pid, out) = python(&code);
    let sleeper: i64 = out.trim().parse().expect("pid");
    let of = |t: &str| {
        let t = t.to_owned();
        move |v: &Value| pid_is(v, pid) && ty(v, &t)
    };
    let kill = sensor.events.find("kill", of("kill"));
    assert_eq!(s(&kill, "evt.arg.pid"), sleeper.to_string());
    assert_eq!(s(&kill, "evt.arg.sig"), "0");
    assert_eq!(n(&kill, "evt.rawres"), 0);
    let tkill = sensor.events.find("tkill", of("tkill"));
    assert_eq!(s(&tkill, "evt.arg.tid"), sleeper.to_string());
    let tgkill = sensor.events.find("tgkill", of("tgkill"));
    assert_eq!(s(&tgkill, "evt.arg.pid"), sleeper.to_string());
    assert_eq!(s(&tgkill, "evt.arg.tid"), sleeper.to_string());
    assert_eq!(s(&tgkill, "evt.arg.sig"), "0");
    // The SIGKILL Popen.kill() sends.
    let sigkill = sensor.events.find("kill with SIGKILL", |v| {
        pid_is(v, pid)
            && ty(v, "kill")
            && v.get("evt.arg.sig").and_then(Value::as_str) == Some("9(SIGKILL)")
    });
    assert_eq!(s(&sigkill, "evt.arg.pid"), sleeper.to_string());
    let rename = sensor.events.find("prctl PR_SET_NAME", |v| {
        pid_is(v, pid)
            && ty(v, "prctl")
            && v.get("evt.arg.option").and_then(Value::as_str) == Some("PR_SET_NAME")
    });
    assert_eq!(s(&rename, "evt.arg.arg2_str"), "lanner-renamed");
    assert_eq!(n(&rename, "evt.rawres"), 0);
    // Taken at exit: the thread already carries its new name.
    assert_eq!(s(&rename, "proc.name"), "lanner-renamed");
    let nnp = sensor.events.find("prctl PR_SET_NO_NEW_PRIVS", |v| {
        pid_is(v, pid)
            && ty(v, "prctl")
            && v.get("evt.arg.option").and_then(Value::as_str) == Some("PR_SET_NO_NEW_PRIVS")
    });
    assert_eq!(s(&nnp, "evt.arg.arg2_int"), "1");
    let rmdir = sensor.events.find("rmdir", of("rmdir"));
    assert_eq!(s(&rmdir, "evt.arg.path"), gone);
    assert_eq!(n(&rmdir, "evt.rawres"), 0);
    // Filtered in the kernel (volume control): the signal the process sent itself and
    // the read-only PR_GET_NAME, both made before the rmdir, whose event is in.
    let all = sensor.events.all();
    assert!(
        !all.iter().any(|v| pid_is(v, pid)
            && ty(v, "kill")
            && v.get("evt.arg.pid").and_then(Value::as_str) == Some(&pid.to_string())),
        "a self-directed kill was recorded"
    );
    assert!(
        !all.iter().any(|v| pid_is(v, pid)
            && ty(v, "prctl")
            && v.get("evt.arg.option").and_then(Value::as_str) == Some("PR_GET_NAME")),
        "PR_GET_NAME was recorded"
    );
    drop(all);
    let del = sensor.events.find("delete_module", of("delete_module"));
    assert_eq!(s(&del, "evt.arg.name"), module);
    assert_eq!(s(&del, "evt.arg.flags"), "O_NONBLOCK");
    // ENOENT, or ENOSYS on kernels built without module support.
    assert!([-2, -38].contains(&n(&del, "evt.rawres")), "{del}");
    let uffd = sensor.events.find("userfaultfd", of("userfaultfd"));
    assert_eq!(s(&uffd, "evt.arg.flags"), "O_CLOEXEC|O_NONBLOCK");
    if n(&uffd, "evt.rawres") >= 0 {
        assert_eq!(s(&uffd, "fd.type"), "userfaultfd");
    }
}

#[test]
fn umount_in_a_new_mount_namespace() {
    need_root!();
    let sensor = sensor();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display().to_string();
    let code = format!(
        r#"import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
assert libc.unshare(0x00020000) == 0
assert libc.mount(b'none', b'/', None, (1 << 14) | (1 << 18), None) == 0
assert libc.mount(b'lanner-umount', b'{d}', b'tmpfs', 0, None) == 0
assert libc.umount2(b'{d}', 2) == 0
"#
    );
    let (pid, _) = python(&code);
    let u = sensor
        .events
        .find("umount2", |v| pid_is(v, pid) && ty(v, "umount2"));
    assert_eq!(s(&u, "evt.arg.dir"), d);
    assert_eq!(s(&u, "evt.arg.flags"), "MNT_DETACH");
    assert_eq!(n(&u, "evt.rawres"), 0);
}

#[test]
fn dns_over_tcp_with_writev_write_and_read() {
    need_root!();
    let sensor = sensor();
    let (a, b) = (
        format!("{}.lanner.test", unique("tcp-a")),
        format!("{}.lanner.test", unique("tcp-b")),
    );
    // A TCP responder on 127.0.0.1:53. The client writes the first query as glibc does
    // (writev of length and message), the second as Go does (one write of both), and
    // reads each answer as glibc does (the length, then the message).
    let code = format!(
        r#"import os, socket, struct, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', 53))
srv.listen(1)
def serve():
    c, _ = srv.accept()
    for _ in range(2):
        n = struct.unpack('!H', c.recv(2, socket.MSG_WAITALL))[0]
        q = c.recv(n, socket.MSG_WAITALL)
        end = 12
        while q[end] != 0:
            end += q[end] + 1
        r = q[:2] + b'\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00' + q[12:end + 5]
        r += b'\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04' + bytes([10, 53, 53, 53])
        c.sendall(struct.pack('!H', len(r)) + r)
t = threading.Thread(target=serve)
t.start()
def query(name):
    q = b'\x43\x21\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00'
    for label in name.split('.'):
        q += bytes([len(label)]) + label.encode()
    return q + b'\x00\x00\x01\x00\x01'
cli = socket.create_connection(('127.0.0.1', 53))
fd = cli.fileno()
def answer():
    n = struct.unpack('!H', os.read(fd, 2))[0]
    got = b''
    while len(got) < n:
        got += os.read(fd, n - len(got))
q = query('{a}')
os.writev(fd, [struct.pack('!H', len(q)), q])
answer()
q = query('{b}')
os.write(fd, struct.pack('!H', len(q)) + q)
answer()
t.join()
"#
    );
    let (pid, _) = python(&code);
    let q1 = sensor.events.find("the writev query", |v| {
        pid_is(v, pid)
            && ty(v, "writev")
            && v.get("dns.name").and_then(Value::as_str) == Some(a.as_str())
    });
    assert_eq!(s(&q1, "dns.type"), "A");
    assert_eq!(s(&q1, "fd.l4proto"), "tcp");
    assert_eq!(n(&q1, "fd.sport"), 53);
    let q2 = sensor.events.find("the write query", |v| {
        pid_is(v, pid)
            && ty(v, "write")
            && v.get("dns.name").and_then(Value::as_str) == Some(b.as_str())
    });
    assert_eq!(s(&q2, "fd.l4proto"), "tcp");
    assert!(q2.get("dns.answers").is_none(), "{q2}");
    for name in [&a, &b] {
        let ans = sensor.events.find("an answer read", |v| {
            pid_is(v, pid)
                && ty(v, "read")
                && v.get("dns.name").and_then(Value::as_str) == Some(name.as_str())
        });
        assert_eq!(list(&ans, "dns.answers"), vec![Value::from("10.53.53.53")]);
        assert_eq!(s(&ans, "dns.rcode"), "NOERROR");
        assert_eq!(s(&ans, "fd.l4proto"), "tcp");
    }
}
