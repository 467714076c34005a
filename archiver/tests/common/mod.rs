//! Shared pieces of the archiver's integration tests: a real nats-server (from
//! `lanner-tests`), the archiver binary as a child process, publishing synthetic events,
//! waiting until a consumer has acked everything, a real S3 server (s3s-fs), and the
//! independent reader (`read_archive.py`: pyarrow, DuckDB).
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use lanner_contract::bus::{StreamSettings, ensure_streams};
use lanner_contract::synth::Synth;
use lanner_contract::{Event, codec};

#[allow(unused_imports)]
pub use lanner_tests::{Nats, S3, free_port, unique, wait_drained, wait_for_port};

/// Connects to the test server and makes sure lanner's streams exist.
pub async fn jetstream(nats: &Nats) -> jetstream::Context {
    let client = async_nats::connect(&nats.url)
        .await
        .expect("connect to nats-server");
    let js = jetstream::new(client);
    ensure_streams(&js, &StreamSettings::default())
        .await
        .expect("streams");
    js
}

/// `n` synthetic events of `node` with seed `seed`, starting at `start_ns`.
pub fn events(seed: u64, node: &str, start_ns: i64, n: usize) -> Vec<Event> {
    Synth::new(seed, node)
        .starting_at(start_ns)
        .take(n)
        .collect()
}

/// Publishes `events` in batches of `batch` to `lanner.events.<node>` and waits for acks.
pub async fn publish_events(
    js: &jetstream::Context,
    node: &str,
    events: &[Event],
    batch: usize,
    id_prefix: &str,
) {
    let subject = lanner_contract::subjects::events(node);
    let mut acks = Vec::new();
    for (i, chunk) in events.chunks(batch).enumerate() {
        let msg = jetstream::message::PublishMessage::build()
            .payload(codec::encode_batch(chunk).into())
            .message_id(format!("{node}-{id_prefix}-{i}"));
        acks.push(
            js.send_publish(subject.clone(), msg)
                .await
                .expect("publish"),
        );
        if acks.len() >= 256 {
            for a in acks.drain(..) {
                a.await.expect("publish ack");
            }
        }
    }
    for a in acks {
        a.await.expect("publish ack");
    }
}

/// Publishes raw bytes to a subject and waits for the ack.
pub async fn publish_raw(js: &jetstream::Context, subject: &str, payload: &[u8]) {
    js.publish(subject.to_owned(), payload.to_vec().into())
        .await
        .expect("publish")
        .await
        .expect("publish ack");
}

/// The archiver binary running as a child process.
pub struct Archiver {
    child: Option<Child>,
}

impl Archiver {
    /// Starts `lanner-archiver` with `args`.
    pub fn start(args: &[String], env: &[(&str, &str)]) -> Archiver {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lanner-archiver"));
        cmd.args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .env(
                "RUST_LOG",
                std::env::var("LANNER_TEST_ARCHIVER_LOG").unwrap_or_else(|_| "warn".into()),
            );
        for (k, v) in env {
            cmd.env(k, v);
        }
        Archiver {
            child: Some(cmd.spawn().expect("start lanner-archiver")),
        }
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(&mut self) {
        let mut c = self.child.take().expect("archiver running");
        let status = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let status = c.wait().expect("archiver exits");
        assert!(
            status.success(),
            "archiver exited with {status} after SIGTERM"
        );
    }

    /// Waits for the process to end by itself (e.g. an abort hook) and returns whether it
    /// exited successfully.
    pub async fn wait_exit(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        loop {
            let c = self.child.as_mut().expect("archiver running");
            if let Some(status) = c.try_wait().expect("try_wait") {
                self.child = None;
                return status.success();
            }
            assert!(
                start.elapsed() < timeout,
                "archiver still running after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Archiver {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Common archiver flags for a test: its own subjects, durable prefix and archive.
pub fn archiver_args(node: &str, durable: &str, archive: &str, nats: &Nats) -> Vec<String> {
    [
        "--nats-url",
        &nats.url,
        "--archive",
        archive,
        "--events-subject",
        &lanner_contract::subjects::events(node),
        "--alerts-subject",
        &lanner_contract::subjects::alerts(node),
        "--durable",
        durable,
        "--metrics-addr",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Reads a table with the independent reader. `location` is `["--dir", DIR]` or
/// `["--s3", ENDPOINT, BUCKET/PREFIX, KEY, SECRET]`.
pub fn read_archive(table: &str, id: &str, time: &str, location: &[&str]) -> serde_json::Value {
    let mut args = vec![table, id, time];
    args.extend_from_slice(location);
    run_reader("read_archive.py", &args)
}

/// Runs one of the independent readers in `tests/` (pyarrow, DuckDB) with `args` and
/// returns the JSON it prints; fails the test when it fails.
pub fn run_reader<S: AsRef<std::ffi::OsStr>>(script: &str, args: &[S]) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    let out = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
        .arg(path)
        .args(args)
        .output()
        .expect("run python3 (install pyarrow and duckdb: scripts/install-s3s-fs)");
    assert!(
        out.status.success(),
        "{script} failed (pyarrow/duckdb installed? scripts/install-s3s-fs does it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("reader prints JSON")
}

/// Reads a JSON number.
pub fn num(v: &serde_json::Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}
