//! Test support shared by lanner's crates: a real nats-server with JetStream, a real S3
//! server ([`S3`]), waiting for a consumer to drain ([`wait_drained`]), and the paths of
//! the workspace's binaries.
//!
//! `scripts/test` starts one nats-server for the whole run and exports
//! `LANNER_TEST_NATS_URL`; when that is unset (a plain `cargo test`), [`Nats::start`]
//! spawns a private server on a free loopback port with a temporary store, and stops it
//! when dropped. Tests isolate themselves with unique node and consumer names.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A nats-server with JetStream for one test.
pub struct Nats {
    /// `nats://127.0.0.1:PORT`
    pub url: String,
    child: Option<Child>,
    _store: Option<tempfile::TempDir>,
}

impl Nats {
    /// The shared server of `scripts/test`, or a private one.
    ///
    /// # Panics
    /// When no server is configured and `nats-server` cannot be started: the message
    /// says how to install it.
    pub fn start() -> Nats {
        if let Ok(url) = std::env::var("LANNER_TEST_NATS_URL") {
            return Nats {
                url,
                child: None,
                _store: None,
            };
        }
        Self::spawn()
    }

    /// Always a private server (for tests that stop or restart it).
    ///
    /// # Panics
    /// When `nats-server` cannot be started.
    pub fn spawn() -> Nats {
        let store = tempfile::tempdir().expect("temporary directory for the JetStream store");
        let port = free_port();
        let child = Command::new("nats-server")
            .args(["-js", "-sd"])
            .arg(store.path())
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start nats-server: install it (apt-get install nats-server) or run the tests through scripts/test");
        wait_for_port(port, Duration::from_secs(15));
        Nats {
            url: format!("nats://127.0.0.1:{port}"),
            child: Some(child),
            _store: Some(store),
        }
    }
}

impl Nats {
    /// The process id of a private server (`None` for the shared one of `scripts/test`),
    /// for benches that read its CPU time with [`cpu_secs`].
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// CPU seconds (user + system, from `/proc/<pid>/stat`, 10 ms ticks) used by process
/// `pid` (`"self"` for this one), and by its children already waited for when
/// `with_children`; 0 when it cannot be read.
pub fn cpu_secs(pid: &str, with_children: bool) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces:
    // utime, stime, cutime and cstime are the 14th to 17th of the line.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let own = ticks(11) + ticks(12);
    let children = if with_children {
        ticks(13) + ticks(14)
    } else {
        0.0
    };
    (own + children) / 100.0
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A TCP port free on loopback right now.
///
/// # Panics
/// When the OS has no free port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Waits until something listens on `port`.
///
/// # Panics
/// After `timeout`.
pub fn wait_for_port(port: u16, timeout: Duration) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < timeout,
            "nothing listens on 127.0.0.1:{port} after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A name unique within this test run (`prefix-<pid>-<n>-<nanos>`), usable as a node name.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Path of a workspace binary (`lanner-capture`), next to the test executable's
/// target directory. `scripts/test` builds all binaries before running tests.
///
/// # Panics
/// When the binary has not been built.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` first (scripts/test does)",
        path.display()
    );
    path
}

/// Reads the messages of `stream` published on `subject` (from the start), until
/// `want` have arrived or `timeout` passed, then waits briefly for any extra ones so a
/// caller can check exact counts.
///
/// # Panics
/// When the stream does not exist or the server fails.
pub async fn collect(
    js: &async_nats::jetstream::Context,
    stream: &str,
    subject: &str,
    want: usize,
    timeout: Duration,
) -> Vec<async_nats::jetstream::Message> {
    use async_nats::jetstream::consumer::{AckPolicy, pull};
    use futures::StreamExt;
    let stream = js.get_stream(stream).await.expect("stream exists");
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: subject.to_owned(),
            ack_policy: AckPolicy::None,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .expect("ephemeral consumer");
    let start = Instant::now();
    let mut got = Vec::new();
    let mut settle = false;
    loop {
        let left = if settle {
            Duration::from_millis(300)
        } else {
            timeout
                .saturating_sub(start.elapsed())
                .max(Duration::from_millis(100))
        };
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .expires(left.min(Duration::from_secs(2)))
            .messages()
            .await
            .expect("fetch");
        let before = got.len();
        while let Some(m) = batch.next().await {
            got.push(m.expect("message"));
        }
        if got.len() >= want {
            if settle && got.len() == before {
                return got;
            }
            settle = true;
        } else if start.elapsed() >= timeout {
            return got;
        }
    }
}

/// A real S3 server: `LANNER_TEST_S3_ENDPOINT` (with `LANNER_TEST_S3_ACCESS_KEY`,
/// `LANNER_TEST_S3_SECRET_KEY` and `LANNER_TEST_S3_ROOT`, the server's data directory in
/// which buckets are folders), or a private `s3s-fs` on a free port.
pub struct S3 {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// Access key.
    pub key: String,
    /// Secret key.
    pub secret: String,
    /// Data directory of the server (a bucket is a folder in it).
    pub root: std::path::PathBuf,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl S3 {
    /// Uses the configured server or starts s3s-fs.
    pub fn start() -> S3 {
        if let (Ok(endpoint), Ok(root)) = (
            std::env::var("LANNER_TEST_S3_ENDPOINT"),
            std::env::var("LANNER_TEST_S3_ROOT"),
        ) {
            return S3 {
                endpoint,
                key: std::env::var("LANNER_TEST_S3_ACCESS_KEY").unwrap_or_else(|_| "lanner".into()),
                secret: std::env::var("LANNER_TEST_S3_SECRET_KEY")
                    .unwrap_or_else(|_| "lanner-secret".into()),
                root: root.into(),
                child: None,
                _dir: None,
            };
        }
        let dir = tempfile::tempdir().expect("temporary directory for s3s-fs");
        let port = free_port();
        let child = Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", "lanner", "--secret-key", "lanner-secret"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start s3s-fs: run scripts/install-s3s-fs (cargo install s3s-fs@0.14.1 --features binary --locked)");
        wait_for_port(port, Duration::from_secs(15));
        S3 {
            endpoint: format!("http://127.0.0.1:{port}"),
            key: "lanner".into(),
            secret: "lanner-secret".into(),
            root: dir.path().to_owned(),
            child: Some(child),
            _dir: Some(dir),
        }
    }

    /// Creates a bucket (a folder of the server's data directory).
    pub fn bucket(&self, name: &str) {
        std::fs::create_dir_all(self.root.join(name)).expect("create bucket folder");
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until the durable consumer has delivered and got acks for everything.
pub async fn wait_drained(
    js: &async_nats::jetstream::Context,
    stream: &str,
    durable: &str,
    timeout: Duration,
) {
    let start = Instant::now();
    loop {
        if let Ok(s) = js.get_stream(stream).await
            && let Ok(mut c) = s
                .get_consumer::<async_nats::jetstream::consumer::pull::Config>(durable)
                .await
            && let Ok(info) = c.info().await
            && info.num_pending == 0
            && info.num_ack_pending == 0
            && info.delivered.stream_sequence > 0
        {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "consumer {durable} on {stream} did not drain within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
