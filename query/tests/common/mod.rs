//! Shared pieces of the query tests: an archive written by the real `lanner-archiver`
//! from a real nats-server (the attack scenario of `examples/`, synthetic traffic in
//! three more hours, and an alert), the `lanner-query` binary as a server, and the
//! clients: the CLI, HTTP and psql.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use async_nats::jetstream;
use lanner_contract::bus::{StreamSettings, ensure_streams};
use lanner_contract::synth::Synth;
use lanner_contract::{Event, codec};

pub use lanner_tests::{Nats, free_port, unique, wait_for_port};

/// 2026-01-01T00:00:00Z.
pub const DAY0: i64 = 1_767_225_600_000_000_000;
/// One hour in nanoseconds.
pub const HOUR_NS: i64 = 3_600_000_000_000;
/// Synthetic events per hour in hours 01..=03.
pub const SYNTH_PER_HOUR: usize = 3000;
/// The scenario's container.
pub const CONTAINER: &str = "5b1e0c7d2f3a";

/// The attack scenario shipped in `examples/` (11 events in hour 00).
pub fn scenario() -> Vec<Event> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/attack-in-container.jsonl");
    let text = std::fs::read_to_string(&path).expect("examples/attack-in-container.jsonl");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| lanner_contract::jsonl::parse_line(l).expect("scenario line parses"))
        .collect()
}

/// Synthetic events of hour `h` (01..=03).
pub fn synthetic(h: i64) -> Vec<Event> {
    Synth::new(h as u64, "node-b")
        .starting_at(DAY0 + h * HOUR_NS + 60_000_000_000)
        .take(SYNTH_PER_HOUR)
        .collect()
}

/// The archive every read test shares, written once per test binary.
pub struct Fixture {
    /// Archive root directory.
    pub dir: PathBuf,
}

/// The shared archive (built on first use).
pub fn archive() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("query-archive"));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.clone();
        // Its own runtime: the caller may be inside any test's runtime.
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(build_archive(&d.display().to_string(), &[]))
        })
        .join()
        .expect("archive built");
        Fixture { dir }
    })
}

/// Publishes the scenario, three hours of synthetic events and one alert, and runs the
/// real archiver until it has archived them.
pub async fn build_archive(archive: &str, env: &[(String, String)]) {
    let nats = Nats::start();
    let client = async_nats::connect(&nats.url).await.expect("connect");
    let js = jetstream::new(client);
    ensure_streams(&js, &StreamSettings::default())
        .await
        .expect("streams");
    let node = unique("query");
    let durable = unique("query");
    let subject = lanner_contract::subjects::events(&node);
    let mut batches: Vec<Vec<Event>> = vec![scenario()];
    for h in 1..=3 {
        batches.extend(synthetic(h).chunks(500).map(<[Event]>::to_vec));
    }
    publish_batches(&js, &subject, batches.iter().map(Vec::as_slice)).await;
    let alert = serde_json::json!({
        "time": "2026-01-01T00:00:00.274Z", "rule": "Read sensitive file untrusted",
        "priority": "Warning", "source": "syscall", "tags": ["filesystem"], "hostname": "node-a",
        "output": "Sensitive file opened for reading by non-trusted program (file=/etc/shadow)",
        "id": "alert-1",
        "output_fields": {"evt.id": "6c616e6e65720001-3", "container.id": CONTAINER,
                          "container.name": "shop-api-1", "proc.name": "cat", "proc.pid": 4251,
                          "fd.name": "/etc/shadow", "user.name": "root"}
    });
    js.publish(
        lanner_contract::subjects::alerts(&node),
        alert.to_string().into(),
    )
    .await
    .expect("publish alert")
    .await
    .expect("alert ack");

    let bin = lanner_tests::bin("lanner-archiver");
    let mut child = Command::new(bin)
        .args(["--nats-url", &nats.url, "--archive", archive])
        .args(["--events-subject", &subject])
        .args([
            "--alerts-subject",
            &lanner_contract::subjects::alerts(&node),
        ])
        .args([
            "--durable",
            &durable,
            "--metrics-addr",
            "",
            "--roll-secs",
            "1",
        ])
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .spawn()
        .expect("start lanner-archiver");
    for (stream, table) in [("LANNER_EVENTS", "events"), ("LANNER_ALERTS", "alerts")] {
        wait_drained(&js, stream, &format!("{durable}-{table}")).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().expect("archiver exits");
    assert!(status.success(), "archiver exited with {status}");
}

/// Publishes event batches to `subject`, each with a message id made from the subject
/// and its index, waiting for JetStream's ack of each.
pub async fn publish_batches<'a>(
    js: &jetstream::Context,
    subject: &str,
    batches: impl IntoIterator<Item = &'a [Event]>,
) {
    for (i, b) in batches.into_iter().enumerate() {
        let msg = jetstream::message::PublishMessage::build()
            .payload(codec::encode_batch(b).into())
            .message_id(format!("{subject}-{i}"));
        js.send_publish(subject.to_owned(), msg)
            .await
            .expect("publish")
            .await
            .expect("ack");
    }
}

/// Waits until the durable consumer `durable` on `stream` has everything acked.
pub async fn wait_drained(js: &jetstream::Context, stream: &str, durable: &str) {
    lanner_tests::wait_drained(js, stream, durable, Duration::from_secs(120)).await;
}

/// The query binary.
pub fn query_bin() -> &'static str {
    env!("CARGO_BIN_EXE_lanner-query")
}

/// Runs `lanner-query sql SQL --archive DIR ARGS...`.
pub fn cli(dir: &Path, sql: &str, args: &[&str]) -> Output {
    Command::new(query_bin())
        .args(["sql", sql, "--archive"])
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run lanner-query sql")
}

/// A running `lanner-query serve`.
pub struct Server {
    /// `http://127.0.0.1:PORT`
    pub http: String,
    /// Postgres port.
    pub pg_port: u16,
    child: Child,
}

impl Server {
    /// Serves `dir` with extra flags.
    pub fn start(dir: &Path, extra: &[&str]) -> Server {
        let (hp, pp) = (free_port(), free_port());
        let child = Command::new(query_bin())
            .args(["serve", "--archive"])
            .arg(dir)
            .args(["--http", &format!("127.0.0.1:{hp}")])
            .args(["--pg", &format!("127.0.0.1:{pp}")])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start lanner-query serve");
        wait_for_port(hp, Duration::from_secs(30));
        wait_for_port(pp, Duration::from_secs(30));
        Server {
            http: format!("http://127.0.0.1:{hp}"),
            pg_port: pp,
            child,
        }
    }

    /// `POST /v1/query` with `body`, extra headers; returns status, content type, body.
    pub fn post(
        &self,
        body: &serde_json::Value,
        headers: &[(&str, &str)],
    ) -> (u16, String, Vec<u8>) {
        self.post_to("/v1/query", body, headers)
    }

    /// `POST path` with `body`, extra headers; returns status, content type, body.
    pub fn post_to(
        &self,
        path: &str,
        body: &serde_json::Value,
        headers: &[(&str, &str)],
    ) -> (u16, String, Vec<u8>) {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-s",
            "-o",
            "-",
            "-w",
            "\n%{http_code} %{content_type}",
            "-X",
            "POST",
        ])
        .args(["-H", "Content-Type: application/json"])
        .args(["--data-binary", &body.to_string()]);
        for (k, v) in headers {
            cmd.args(["-H", &format!("{k}: {v}")]);
        }
        let out = cmd
            .arg(format!("{}{path}", self.http))
            .output()
            .expect("curl");
        split_curl(out.stdout)
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> (u16, String, Vec<u8>) {
        let out = Command::new("curl")
            .args(["-s", "-o", "-", "-w", "\n%{http_code} %{content_type}"])
            .arg(format!("{}{path}", self.http))
            .output()
            .expect("curl");
        split_curl(out.stdout)
    }

    /// Runs psql with `sql`; `password` for PGPASSWORD.
    pub fn psql(&self, sql: &str, user: &str, password: Option<&str>) -> Output {
        self.psql_with(&[], sql, user, password)
    }

    /// Runs psql with extra flags (`-A`, `-t`, ...).
    pub fn psql_with(
        &self,
        flags: &[&str],
        sql: &str,
        user: &str,
        password: Option<&str>,
    ) -> Output {
        let mut cmd = Command::new("psql");
        cmd.args(flags);
        cmd.args([
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            &self.pg_port.to_string(),
            "-U",
            user,
            "-d",
            "lanner",
            "-c",
            sql,
        ])
        .env_remove("PGPASSWORD");
        match password {
            Some(p) => cmd.env("PGPASSWORD", p),
            None => cmd.arg("-w"),
        };
        cmd.output().expect("run psql")
    }
}

fn split_curl(mut out: Vec<u8>) -> (u16, String, Vec<u8>) {
    let nl = out.iter().rposition(|b| *b == b'\n').expect("curl trailer");
    let trailer = String::from_utf8_lossy(&out[nl + 1..]).to_string();
    out.truncate(nl);
    let (code, ctype) = trailer.split_once(' ').unwrap_or((&trailer, ""));
    (code.parse().unwrap_or(0), ctype.to_owned(), out)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard output as text, with stderr in the panic message when the command failed.
pub fn ok_stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
