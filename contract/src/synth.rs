//! Synthetic but realistic events for benchmarks, load tests and examples.
//!
//! A deterministic generator (seeded xorshift, no dependencies) producing the mix a busy
//! container host shows: mostly file opens, then network connects, DNS lookups, execs
//! with shell ancestry, and a few privileged calls, spread over a handful of containers.
//!
//! ```
//! use lanner_contract::synth::Synth;
//! let events: Vec<_> = Synth::new(7, "node-a").take(1000).collect();
//! assert_eq!(events.len(), 1000);
//! assert!(events.iter().all(|e| e.evt_id.is_some() && e.evt_time.is_some()));
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use std::sync::Arc;

use crate::model::{Event, Labels, StrList, Text, U64List};

/// Live processes events are drawn from.
const PROCESS_POOL: usize = 48;
use crate::value::Timestamp;

struct Container {
    id: &'static str,
    name: &'static str,
    repo: &'static str,
    tag: &'static str,
    service: &'static str,
}

const CONTAINERS: &[Container] = &[
    Container {
        id: "3f4e2a1b9c0d",
        name: "shop-web-1",
        repo: "docker.io/library/nginx",
        tag: "1.27",
        service: "web",
    },
    Container {
        id: "a81c77e0b5f2",
        name: "shop-api-1",
        repo: "ghcr.io/acme/shop-api",
        tag: "2.4.1",
        service: "api",
    },
    Container {
        id: "9d0b6c3e1a47",
        name: "shop-db-1",
        repo: "docker.io/library/postgres",
        tag: "16",
        service: "db",
    },
    Container {
        id: "c2e5f8a90d13",
        name: "shop-worker-1",
        repo: "ghcr.io/acme/shop-worker",
        tag: "2.4.1",
        service: "worker",
    },
];

const PROCS: &[(&str, &str, &str)] = &[
    ("nginx", "/usr/sbin/nginx", "-g daemon off;"),
    ("python3", "/usr/bin/python3", "/app/server.py --port 8080"),
    (
        "postgres",
        "/usr/lib/postgresql/16/bin/postgres",
        "-D /var/lib/postgresql/data",
    ),
    ("node", "/usr/local/bin/node", "/srv/worker.js"),
    ("bash", "/bin/bash", ""),
    (
        "curl",
        "/usr/bin/curl",
        "-s https://api.example.com/v1/orders",
    ),
];

const FILES: &[&str] = &[
    "/etc/ld.so.cache",
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/share/zoneinfo/UTC",
    "/app/static/index.html",
    "/var/lib/postgresql/data/base/16384/2619",
    "/etc/nsswitch.conf",
    "/tmp/upload-7731.part",
    "/etc/passwd",
    "/proc/self/status",
    "/var/log/nginx/access.log",
];

const DOMAINS: &[&str] = &[
    "api.example.com",
    "db.internal",
    "registry.npmjs.org",
    "pypi.org",
    "s3.amazonaws.com",
];

/// Shared values of one container, built once (as a sensor's caches would hold them).
struct CtrTexts {
    id: Text,
    name: Text,
    image: Text,
    repo: Text,
    tag: Text,
    labels: Labels,
    aname: StrList,
    aexe: StrList,
    aexepath: StrList,
    acmdline: StrList,
}

/// Shared values of one program.
struct ProcTexts {
    name: Text,
    exe: Text,
    args: Text,
}

/// Interned strings used by every event.
struct Common {
    apids: Vec<U64List>,
    containers: Vec<CtrTexts>,
    procs: Vec<ProcTexts>,
    files: Vec<Text>,
    domains: Vec<Text>,
    node: Text,
    docker: Text,
    cwd: Text,
    user: Text,
    empty: Text,
}

impl Common {
    fn new(node: &str) -> Self {
        let t = |s: &str| -> Text { s.into() };
        let containers = CONTAINERS
            .iter()
            .map(|c| CtrTexts {
                id: t(c.id),
                name: t(c.name),
                image: format!("{}:{}", c.repo, c.tag).into(),
                repo: t(c.repo),
                tag: t(c.tag),
                labels: Arc::new(BTreeMap::from([
                    (t("com.docker.compose.project"), t("shop")),
                    (t("com.docker.compose.service"), t(c.service)),
                ])),
                aname: vec![t("containerd-shim"), t("systemd")].into(),
                aexe: vec![t("containerd-shim"), t("/sbin/init")].into(),
                aexepath: vec![
                    t("/usr/bin/containerd-shim-runc-v2"),
                    t("/usr/lib/systemd/systemd"),
                ]
                .into(),
                acmdline: vec![
                    format!("containerd-shim -namespace moby -id {}", c.id).into(),
                    t("systemd"),
                ]
                .into(),
            })
            .collect();
        Common {
            apids: (0..PROCESS_POOL as u64)
                .map(|slot| vec![1000 + slot * 37 - 1, 1].into())
                .collect(),
            containers,
            procs: PROCS
                .iter()
                .map(|(n, e, a)| ProcTexts {
                    name: t(n),
                    exe: t(e),
                    args: t(a),
                })
                .collect(),
            files: FILES.iter().map(|f| t(f)).collect(),
            domains: DOMAINS.iter().map(|d| t(d)).collect(),
            node: t(node),
            docker: t("docker"),
            cwd: t("/app/"),
            user: t("app"),
            empty: t(""),
        }
    }
}

/// The event generator: an endless iterator of events.
pub struct Synth {
    state: u64,
    num: u64,
    time: i64,
    session: u64,
    common: Common,
}

impl Synth {
    /// A generator for `node`, deterministic for a given `seed`.
    pub fn new(seed: u64, node: &str) -> Self {
        Synth {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            num: 0,
            time: 1_767_225_600_000_000_000, // 2026-01-01T00:00:00Z
            session: seed.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ 0x5eed,
            common: Common::new(node),
        }
    }

    /// Starts the clock at `ns` (nanoseconds since the epoch).
    pub fn starting_at(mut self, ns: i64) -> Self {
        self.time = ns;
        self
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn base(&mut self) -> Event {
        self.num += 1;
        self.time += 1_000 + (self.next_u64() % 20_000) as i64;
        // A busy host: events come in bursts from a pool of live processes, which share
        // their strings and ancestry as a sensor's process table does.
        let slot = self.below(PROCESS_POOL);
        let (ci, pi) = (
            slot % self.common.containers.len(),
            slot % self.common.procs.len(),
        );
        let pid = 1000 + slot as u64 * 37;
        let apid = self.common.apids[slot].clone();
        let (c, p, k) = (
            &self.common.containers[ci],
            &self.common.procs[pi],
            &self.common,
        );
        Event {
            evt_id: Some(format!("{:016x}-{}", self.session, self.num).into()),
            evt_time: Some(Timestamp(self.time)),
            evt_num: Some(self.num),
            evt_hostname: Some(k.node.clone()),
            evt_rawres: Some(0),
            proc_pid: Some(pid),
            thread_tid: Some(pid),
            proc_ppid: Some(pid - 1),
            proc_vpid: Some(pid % 200 + 1),
            proc_name: Some(p.name.clone()),
            proc_exe: Some(p.exe.clone()),
            proc_exepath: Some(p.exe.clone()),
            proc_args: Some(p.args.clone()),
            proc_cwd: Some(k.cwd.clone()),
            proc_tty: Some(0),
            proc_pid_ts: Some(Timestamp(self.time - 3_600_000_000_000)),
            proc_aname: Some(c.aname.clone()),
            proc_apid: Some(apid),
            proc_aexepath: Some(c.aexepath.clone()),
            proc_acmdline: Some(c.acmdline.clone()),
            proc_aexe: Some(c.aexe.clone()),
            user_uid: Some(1000),
            user_name: Some(k.user.clone()),
            user_loginuid: Some(-1),
            group_gid: Some(1000),
            group_name: Some(k.user.clone()),
            thread_cap_effective: Some(k.empty.clone()),
            container_id: Some(c.id.clone()),
            container_name: Some(c.name.clone()),
            container_image: Some(c.image.clone()),
            container_image_repository: Some(c.repo.clone()),
            container_image_tag: Some(c.tag.clone()),
            container_type: Some(k.docker.clone()),
            container_privileged: Some(false),
            container_labels: Some(c.labels.clone()),
            ..Default::default()
        }
    }
}

impl Iterator for Synth {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        let mut ev = self.base();
        let roll = self.next_u64() % 100;
        match roll {
            0..=64 => {
                let i = self.below(FILES.len());
                let path = self.common.files[i].clone();
                let write = self.next_u64().is_multiple_of(5);
                ev.evt_type = Some("openat".into());
                ev.fd_num = Some(3 + (self.next_u64() % 60) as i64);
                ev.evt_rawres = ev.fd_num;
                ev.fd_type = Some("file".into());
                ev.fd_name = Some(path.clone());
                ev.fd_nameraw = Some(path);
                ev.evt_arg_flags = Some(
                    if write {
                        "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC"
                    } else {
                        "O_RDONLY|O_CLOEXEC"
                    }
                    .into(),
                );
                ev.evt_arg_mode = Some(if write { "0644" } else { "0" }.into());
            }
            65..=79 => {
                let i = self.below(DOMAINS.len());
                let domain = self.common.domains[i].clone();
                let ip = IpAddr::V4(Ipv4Addr::new(
                    10,
                    0,
                    (self.next_u64() % 4) as u8,
                    (self.next_u64() % 250) as u8 + 1,
                ));
                let sip = IpAddr::V4(Ipv4Addr::new(
                    93,
                    184,
                    (self.next_u64() % 8) as u8,
                    (self.next_u64() % 250) as u8 + 1,
                ));
                let (cport, sport) = (
                    32768 + self.next_u64() % 28000,
                    [443u64, 80, 5432, 6379][self.below(4)],
                );
                ev.evt_type = Some("connect".into());
                ev.fd_num = Some(5 + (self.next_u64() % 30) as i64);
                ev.fd_type = Some("ipv4".into());
                ev.fd_l4proto = Some("tcp".into());
                ev.fd_cip = Some(ip);
                ev.fd_cport = Some(cport);
                ev.fd_sip = Some(sip);
                ev.fd_sport = Some(sport);
                ev.fd_is_server = Some(false);
                ev.fd_connected = Some(true);
                ev.fd_sip_name = Some(domain);
                ev.fd_name = Some(format!("{ip}:{cport}->{sip}:{sport}").into());
                ev.evt_arg_domain = Some("AF_INET".into());
            }
            80..=89 => {
                let i = self.below(DOMAINS.len());
                let domain = self.common.domains[i].clone();
                ev.evt_type = Some("sendto".into());
                ev.fd_type = Some("ipv4".into());
                ev.fd_l4proto = Some("udp".into());
                ev.fd_sip = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11)));
                ev.fd_sport = Some(53);
                ev.dns_name = Some(domain);
                ev.dns_type = Some("A".into());
                ev.dns_rcode = Some("NOERROR".into());
                let answer: Text = format!(
                    "93.184.{}.{}",
                    self.next_u64() % 8,
                    self.next_u64() % 250 + 1
                )
                .into();
                ev.dns_answers = Some(vec![answer].into());
            }
            90..=97 => {
                let (name, exe, args) = [
                    ("sh", "/bin/sh", "-c /app/healthcheck.sh"),
                    ("ls", "/bin/ls", "-la /app"),
                    ("grep", "/bin/grep", "-r TODO /app"),
                    ("bash", "/bin/bash", ""),
                ][self.below(4)];
                ev.evt_type = Some("execve".into());
                ev.evt_arg_filename = Some(exe.into());
                let parent = ev
                    .proc_name
                    .clone()
                    .unwrap_or_else(|| self.common.empty.clone());
                let mut anc: Vec<Text> = vec![parent];
                anc.extend(ev.proc_aname.iter().flat_map(|a| a.iter().cloned()));
                ev.proc_aname = Some(anc.into());
                ev.proc_name = Some(name.into());
                ev.proc_exe = Some(exe.into());
                ev.proc_exepath = Some(exe.into());
                ev.proc_args = Some(args.into());
            }
            _ => {
                ev.evt_type = Some("setuid".into());
                ev.evt_arg_uid = Some("0(<root>)".into());
                ev.evt_rawres = Some(-1);
            }
        }
        Some(ev)
    }
}
