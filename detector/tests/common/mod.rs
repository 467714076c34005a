//! Helpers shared by the detector's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::BufRead;
use std::path::PathBuf;
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;

use lanner_contract::Event;

/// The upstream Falco rules directory: `../shared/falco-rules` beside the repository.
pub fn rules_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/falco-rules");
    assert!(
        dir.join("falco_rules.yaml").is_file(),
        "the upstream Falco rules are missing: expected {}/falco_rules.yaml (the shared/ directory must sit beside the repository clone)",
        dir.display()
    );
    dir
}

/// Builds an event from a JSON object keyed by Falco field names, patched with
/// `patch` (a `null` in the patch removes the key).
pub fn event(base: &serde_json::Value, patch: &serde_json::Value) -> Event {
    let mut obj = base.as_object().expect("base is an object").clone();
    for (k, v) in patch.as_object().expect("patch is an object") {
        if v.is_null() {
            obj.remove(k);
        } else {
            obj.insert(k.clone(), v.clone());
        }
    }
    let line = serde_json::Value::Object(obj).to_string();
    lanner_contract::jsonl::parse_line(&line)
        .unwrap_or_else(|e| panic!("bad test event {line}: {e}"))
}

/// A NATS server for a test: `LANNER_TEST_NATS_URL` when set, else our own
/// `nats-server -js` on a free port, killed on drop.
pub struct Nats {
    /// Client URL.
    pub url: String,
    child: Option<std::process::Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Nats {
    /// Uses the shared server or starts one.
    pub fn start() -> Nats {
        if let Ok(url) = std::env::var("LANNER_TEST_NATS_URL")
            && !url.is_empty()
        {
            return Nats {
                url,
                child: None,
                _dir: None,
            };
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let dir = tempfile::tempdir().expect("tmp");
        let child = std::process::Command::new("nats-server")
            .args(["-js", "-sd"])
            .arg(dir.path())
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server must be installed (Debian package nats-server) or LANNER_TEST_NATS_URL set");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Nats {
            url: format!("nats://127.0.0.1:{port}"),
            child: Some(child),
            _dir: Some(dir),
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A name unique to this test run.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{}x{nanos}", std::process::id())
}

/// A child process (a replica) killed and reaped on drop.
pub struct Guard(pub Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines of `r` (a child's stdout or stderr), as they come, from a thread.
pub fn lines(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(r).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next line containing `what`, within 30 s of each line before it.
pub fn wait_for(rx: &mpsc::Receiver<String>, what: &str) -> String {
    loop {
        let l = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("timed out waiting for {what:?}"));
        if l.contains(what) {
            return l;
        }
    }
}

/// `lanner-detector run --output stdout` with `rules`, consuming the events of `node`
/// on `nats_url` through a durable of its own, with `extra` arguments: spawn it.
pub fn stdout_replica(
    rules: &std::path::Path,
    nats_url: &str,
    node: &str,
    extra: &[&str],
) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_lanner-detector"));
    c.args(["run", "--output", "stdout", "--rules"])
        .arg(rules)
        .args([
            "--nats-url",
            nats_url,
            "--durable",
            &unique("replica"),
            "--filter",
            &lanner_contract::subjects::events(node),
        ])
        .args(extra);
    c
}

/// A spawned replica with its output lines, once it is consuming.
pub struct Running {
    /// The process, killed on drop.
    pub child: Guard,
    /// Its stdout lines (alerts with `--output stdout`).
    pub out: mpsc::Receiver<String>,
    /// Its stderr lines (logs at `info`).
    pub err: mpsc::Receiver<String>,
}

/// Spawns `cmd` (a replica) logging at `info` without colours, and waits until it
/// logs that it is consuming.
pub fn start_logged(mut cmd: std::process::Command) -> Running {
    use std::process::Stdio;
    let mut child = cmd
        .env("LANNER_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = lines(child.stdout.take().expect("stdout"));
    let err = lines(child.stderr.take().expect("stderr"));
    let running = Running {
        child: Guard(child),
        out,
        err,
    };
    wait_for(&running.err, "consuming");
    running
}

/// A JetStream context on `url` with lanner's streams created (default settings).
pub async fn streams(url: &str) -> async_nats::jetstream::Context {
    let js = async_nats::jetstream::new(async_nats::connect(url).await.expect("connect"));
    lanner_contract::bus::ensure_streams(&js, &lanner_contract::bus::StreamSettings::default())
        .await
        .expect("streams");
    js
}
