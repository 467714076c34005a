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

use crate::model::Event;
use crate::value::Timestamp;

struct Container {
    id: &'static str,
    name: &'static str,
    repo: &'static str,
    tag: &'static str,
    service: &'static str,
}

const CONTAINERS: &[Container] = &[
    Container { id: "3f4e2a1b9c0d", name: "shop-web-1", repo: "docker.io/library/nginx", tag: "1.27", service: "web" },
    Container { id: "a81c77e0b5f2", name: "shop-api-1", repo: "ghcr.io/acme/shop-api", tag: "2.4.1", service: "api" },
    Container { id: "9d0b6c3e1a47", name: "shop-db-1", repo: "docker.io/library/postgres", tag: "16", service: "db" },
    Container { id: "c2e5f8a90d13", name: "shop-worker-1", repo: "ghcr.io/acme/shop-worker", tag: "2.4.1", service: "worker" },
];

const PROCS: &[(&str, &str, &str)] = &[
    ("nginx", "/usr/sbin/nginx", "-g daemon off;"),
    ("python3", "/usr/bin/python3", "/app/server.py --port 8080"),
    ("postgres", "/usr/lib/postgresql/16/bin/postgres", "-D /var/lib/postgresql/data"),
    ("node", "/usr/local/bin/node", "/srv/worker.js"),
    ("bash", "/bin/bash", ""),
    ("curl", "/usr/bin/curl", "-s https://api.example.com/v1/orders"),
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

const DOMAINS: &[&str] = &["api.example.com", "db.internal", "registry.npmjs.org", "pypi.org", "s3.amazonaws.com"];

/// The event generator: an endless iterator of events.
pub struct Synth {
    state: u64,
    num: u64,
    time: i64,
    session: u64,
    node: String,
}

impl Synth {
    /// A generator for `node`, deterministic for a given `seed`.
    pub fn new(seed: u64, node: &str) -> Self {
        Synth {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            num: 0,
            time: 1_767_225_600_000_000_000, // 2026-01-01T00:00:00Z
            session: seed.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ 0x5eed,
            node: node.to_owned(),
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

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next_u64() % items.len() as u64) as usize]
    }

    fn base(&mut self) -> Event {
        self.num += 1;
        self.time += 1_000 + (self.next_u64() % 20_000) as i64;
        let c = self.pick(CONTAINERS);
        let (name, exe, args) = *self.pick(PROCS);
        let pid = 1000 + self.next_u64() % 3000;
        let labels = BTreeMap::from([
            ("com.docker.compose.project".to_owned(), "shop".to_owned()),
            ("com.docker.compose.service".to_owned(), c.service.to_owned()),
        ]);
        Event {
            evt_id: Some(format!("{:016x}-{}", self.session, self.num)),
            evt_time: Some(Timestamp(self.time)),
            evt_num: Some(self.num),
            evt_hostname: Some(self.node.clone()),
            evt_rawres: Some(0),
            proc_pid: Some(pid),
            thread_tid: Some(pid),
            proc_ppid: Some(pid - 1),
            proc_vpid: Some(pid % 200 + 1),
            proc_name: Some(name.to_owned()),
            proc_exe: Some(exe.to_owned()),
            proc_exepath: Some(exe.to_owned()),
            proc_args: Some(args.to_owned()),
            proc_cwd: Some("/app/".to_owned()),
            proc_tty: Some(0),
            proc_pid_ts: Some(Timestamp(self.time - 3_600_000_000_000)),
            proc_aname: Some(vec!["containerd-shim".to_owned(), "systemd".to_owned()]),
            proc_apid: Some(vec![pid - 1, 1]),
            proc_aexepath: Some(vec!["/usr/bin/containerd-shim-runc-v2".to_owned(), "/usr/lib/systemd/systemd".to_owned()]),
            proc_acmdline: Some(vec![format!("containerd-shim -namespace moby -id {}", c.id), "systemd".to_owned()]),
            proc_aexe: Some(vec!["containerd-shim".to_owned(), "/sbin/init".to_owned()]),
            user_uid: Some(1000),
            user_name: Some("app".to_owned()),
            user_loginuid: Some(-1),
            group_gid: Some(1000),
            group_name: Some("app".to_owned()),
            thread_cap_effective: Some(String::new()),
            container_id: Some(c.id.to_owned()),
            container_name: Some(c.name.to_owned()),
            container_image: Some(format!("{}:{}", c.repo, c.tag)),
            container_image_repository: Some(c.repo.to_owned()),
            container_image_tag: Some(c.tag.to_owned()),
            container_type: Some("docker".to_owned()),
            container_privileged: Some(false),
            container_labels: Some(labels),
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
                let path = *self.pick(FILES);
                let write = self.next_u64() % 5 == 0;
                ev.evt_type = Some("openat".into());
                ev.fd_num = Some(3 + (self.next_u64() % 60) as i64);
                ev.evt_rawres = ev.fd_num;
                ev.fd_type = Some("file".into());
                ev.fd_name = Some(path.into());
                ev.fd_nameraw = Some(path.into());
                ev.evt_arg_flags = Some(if write { "O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC" } else { "O_RDONLY|O_CLOEXEC" }.into());
                ev.evt_arg_mode = Some(if write { "0644" } else { "0" }.into());
            }
            65..=79 => {
                let domain = *self.pick(DOMAINS);
                let ip = IpAddr::V4(Ipv4Addr::new(10, 0, (self.next_u64() % 4) as u8, (self.next_u64() % 250) as u8 + 1));
                let sip = IpAddr::V4(Ipv4Addr::new(93, 184, (self.next_u64() % 8) as u8, (self.next_u64() % 250) as u8 + 1));
                let (cport, sport) = (32768 + self.next_u64() % 28000, *self.pick(&[443u64, 80, 5432, 6379]));
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
                ev.fd_sip_name = Some(domain.into());
                ev.fd_name = Some(format!("{ip}:{cport}->{sip}:{sport}"));
                ev.evt_arg_domain = Some("AF_INET".into());
            }
            80..=89 => {
                let domain = *self.pick(DOMAINS);
                ev.evt_type = Some("sendto".into());
                ev.fd_type = Some("ipv4".into());
                ev.fd_l4proto = Some("udp".into());
                ev.fd_sip = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11)));
                ev.fd_sport = Some(53);
                ev.dns_name = Some(domain.into());
                ev.dns_type = Some("A".into());
                ev.dns_rcode = Some("NOERROR".into());
                ev.dns_answers = Some(vec![format!("93.184.{}.{}", self.next_u64() % 8, self.next_u64() % 250 + 1)]);
            }
            90..=97 => {
                let (name, exe, args) = *self.pick(&[
                    ("sh", "/bin/sh", "-c /app/healthcheck.sh"),
                    ("ls", "/bin/ls", "-la /app"),
                    ("grep", "/bin/grep", "-r TODO /app"),
                    ("bash", "/bin/bash", ""),
                ]);
                ev.evt_type = Some("execve".into());
                ev.evt_arg_filename = Some(exe.into());
                let parent = ev.proc_name.clone().unwrap_or_default();
                if let Some(a) = ev.proc_aname.as_mut() {
                    a.insert(0, parent);
                }
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
