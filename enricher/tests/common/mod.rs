//! Shared test support: running the enricher in-process against a real nats-server,
//! publishing raw batches, reading enriched ones, and a real Docker engine with a local
//! `FROM scratch` busybox image.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use lanner_contract::bus::shutdown::Shutdown;
use lanner_contract::bus::{NatsArgs, StreamSettings};
use lanner_contract::{Event, codec, subjects};
use lanner_enricher::metrics::EnrichStats;
use lanner_enricher::run::{Args, run};
use lanner_tests::Nats;

/// The image the Docker tests run (built locally, no registry).
pub const IMAGE_REPO: &str = "lanner-test-busybox";
/// Its tag.
pub const IMAGE_TAG: &str = "1";

/// A running enricher for one node.
pub struct Running {
    /// The server (kept alive while the enricher runs).
    pub nats: Nats,
    /// A JetStream client of the test.
    pub js: jetstream::Context,
    /// The node name.
    pub node: String,
    /// The enricher's counters.
    pub stats: Arc<EnrichStats>,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts the enricher in-process on a fresh node, reading Docker at `socket`.
pub async fn start(socket: &str) -> Running {
    start_with(socket, |_| {}).await
}

/// Like [`start`], with flags adjusted by `adjust`.
pub async fn start_with(socket: &str, adjust: impl FnOnce(&mut Args)) -> Running {
    let nats = Nats::start();
    let node = lanner_tests::unique("enr");
    let mut args = Args {
        node: node.clone(),
        docker_socket: socket.to_owned(),
        no_runtime: false,
        containerd_socket: containerd_socket(),
        containerd_namespace: "k8s.io".to_owned(),
        no_containerd: false,
        lookup_wait_ms: 300,
        batch_max: 64,
        stats_interval: 0,
        dry_run: false,
        exempt_label: "lanner.exempt".to_owned(),
        own_label: "lanner.component".to_owned(),
        stop_grace_secs: 1,
        metrics_addr: None,
        nats: NatsArgs::with_url(nats.url.clone()),
        streams: StreamSettings::default(),
    };
    adjust(&mut args);
    let client = async_nats::connect(&nats.url)
        .await
        .expect("connect to nats");
    let js = jetstream::new(client);
    let stats = Arc::new(EnrichStats::default());
    let shutdown = Shutdown::new();
    let task = tokio::spawn(run(args, shutdown.clone(), stats.clone()));
    // The streams exist once the enricher created them (all of them: a test may publish
    // action requests first).
    for _ in 0..200 {
        let mut all = true;
        for s in subjects::ALL_STREAMS {
            all &= js.get_stream(s.name).await.is_ok();
        }
        if all {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Running {
        nats,
        js,
        node,
        stats,
        shutdown,
        task,
    }
}

impl Running {
    /// Publishes one raw batch.
    pub async fn publish(&self, events: &[Event]) {
        self.js
            .publish(
                subjects::raw(&self.node),
                codec::encode_batch(events).into(),
            )
            .await
            .expect("publish raw batch")
            .await
            .expect("raw batch stored");
    }

    /// Reads `want` enriched batches (all events, in order).
    pub async fn enriched(&self, want: usize) -> Vec<Event> {
        let msgs = lanner_tests::collect(
            &self.js,
            subjects::EVENTS.name,
            &subjects::events(&self.node),
            want,
            Duration::from_secs(20),
        )
        .await;
        assert_eq!(
            msgs.len(),
            want,
            "enriched batches on {}",
            subjects::events(&self.node)
        );
        msgs.iter()
            .flat_map(|m| codec::decode_batch(&m.payload).expect("enriched batch decodes"))
            .collect()
    }

    /// Stops the enricher (finishing its batch in flight).
    pub async fn stop(self) {
        self.shutdown.trigger();
        self.task
            .await
            .expect("enricher task")
            .expect("enricher ran without error");
    }
}

/// An event of the given container.
pub fn event(container_id: &str, evt_type: &str) -> Event {
    Event {
        evt_type: Some(evt_type.into()),
        container_id: Some(container_id.into()),
        proc_name: Some("true".into()),
        ..Default::default()
    }
}

/// Runs the docker CLI, returning stdout; panics with its stderr on failure.
pub fn docker(args: &[&str]) -> String {
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

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn engine_answers(socket: &str) -> bool {
    Command::new("curl")
        .args([
            "-sf",
            "--max-time",
            "2",
            "--unix-socket",
            socket,
            "http://localhost/_ping",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The socket of a Docker engine that answers, started through `scripts/start-dockerd`
/// when needed, with the test image built. `None` (after saying why on stderr) only when
/// the engine cannot be started because the tests do not run as root; as root a missing
/// engine is a failure.
pub fn docker_engine() -> Option<String> {
    static READY: Mutex<Option<Option<String>>> = Mutex::new(None);
    let mut ready = READY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(r) = ready.as_ref() {
        return r.clone();
    }
    let socket = std::env::var("LANNER_TEST_DOCKER_SOCKET")
        .unwrap_or_else(|_| "/var/run/docker.sock".to_owned());
    if !engine_answers(&socket) {
        if !is_root() {
            eprintln!(
                "SKIPPED: no Docker engine answers on {socket} and these tests do not run as root, so they cannot start one (run scripts/start-dockerd as root, or scripts/test)"
            );
            *ready = Some(None);
            return None;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/start-dockerd");
        let out = Command::new(&script)
            .env("LANNER_DOCKER_SOCKET", &socket)
            .output()
            .expect("run scripts/start-dockerd");
        assert!(
            out.status.success() && engine_answers(&socket),
            "running as root but no Docker engine could be started on {socket}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    build_image();
    *ready = Some(Some(socket.clone()));
    Some(socket)
}

/// `lanner-test-busybox:1`: a FROM-scratch image holding the static busybox binary.
fn build_image() {
    let image = format!("{IMAGE_REPO}:{IMAGE_TAG}");
    if Command::new("docker")
        .args(["image", "inspect", &image])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let bin = dir.path().join("rootfs/bin");
    std::fs::create_dir_all(&bin).expect("rootfs/bin");
    std::fs::copy("/bin/busybox", bin.join("busybox"))
        .expect("copy /bin/busybox (apt-get install busybox-static)");
    for tool in ["sh", "sleep", "true"] {
        std::os::unix::fs::symlink("busybox", bin.join(tool)).expect("busybox symlink");
    }
    let tar = dir.path().join("rootfs.tar");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(dir.path().join("rootfs"))
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(ok.success(), "tar of the busybox rootfs");
    docker(&["import", tar.to_str().expect("utf-8 path"), &image]);
}

/// The containerd socket the tests use: `LANNER_TEST_CONTAINERD_SOCKET`, else the system
/// containerd's, else the one dockerd runs for itself (a Docker host's containerd serves
/// any namespace, `k8s.io` included).
pub fn containerd_socket() -> String {
    if let Ok(s) = std::env::var("LANNER_TEST_CONTAINERD_SOCKET") {
        return s;
    }
    [
        "/run/containerd/containerd.sock",
        "/var/run/docker/containerd/containerd.sock",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .unwrap_or("/run/containerd/containerd.sock")
    .to_owned()
}

/// The namespace the CRI plugin keeps Kubernetes containers in.
pub const K8S_NAMESPACE: &str = "k8s.io";

/// Runs `ctr` against the test containerd in namespace `k8s.io`, returning stdout; panics
/// with its stderr on failure.
pub fn ctr(args: &[&str]) -> String {
    let socket = containerd_socket();
    let out = Command::new("ctr")
        .args(["-a", &socket, "-n", K8S_NAMESPACE])
        .args(args)
        .output()
        .expect("run ctr (containerd's CLI, from Debian's containerd package)");
    assert!(
        out.status.success(),
        "ctr {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The test image as containerd names it once imported into `k8s.io`.
pub const CONTAINERD_IMAGE: &str = "docker.io/library/lanner-test-busybox:1";

/// Makes sure the test image is in containerd's `k8s.io` namespace (a `docker save` of
/// the locally built image, imported with `ctr`). Needs [`docker_engine`] first.
pub fn containerd_image() {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if *done {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let tar = dir.path().join("image.tar");
    let tar = tar.to_str().expect("utf-8 path");
    docker(&["save", "-o", tar, &format!("{IMAGE_REPO}:{IMAGE_TAG}")]);
    ctr(&["images", "import", tar]);
    *done = true;
}

/// A random 64-hex container id, as the CRI plugin makes them.
pub fn random_container_id() -> String {
    use std::io::Read as _;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A container created (and started, `sleep`ing) through containerd; removed on drop.
pub struct CtrContainer {
    /// Full id.
    pub id: String,
}

impl CtrContainer {
    /// Runs `sleep 120` in a new container with these labels.
    pub fn run(labels: &[(&str, &str)]) -> CtrContainer {
        containerd_image();
        let id = random_container_id();
        let mut args = vec!["run".to_owned(), "-d".to_owned()];
        for (k, v) in labels {
            args.push("--label".to_owned());
            args.push(format!("{k}={v}"));
        }
        args.extend([
            CONTAINERD_IMAGE.to_owned(),
            id.clone(),
            "/bin/sleep".to_owned(),
            "120".to_owned(),
        ]);
        ctr(&args.iter().map(String::as_str).collect::<Vec<_>>());
        CtrContainer { id }
    }
}

impl Drop for CtrContainer {
    fn drop(&mut self) {
        let socket = containerd_socket();
        let run = |args: &[&str]| {
            let _ = Command::new("ctr")
                .args(["-a", &socket, "-n", K8S_NAMESPACE])
                .args(args)
                .output();
        };
        run(&["tasks", "kill", "-s", "KILL", &self.id]);
        run(&["tasks", "delete", "--force", &self.id]);
        run(&["containers", "delete", &self.id]);
    }
}

/// Publishes `(request id, action, container)` requests on the node's actions subject
/// and reads back one audit record per request.
pub async fn request_actions(
    enr: &Running,
    requests: &[(&str, &str, &str)],
) -> Vec<lanner_enricher::actions::AuditRecord> {
    for (id, action, container) in requests {
        let body = format!(
            r#"{{"id":"{id}","action":"{action}","container_id":"{container}","policy":"test","rule":"Terminal shell in container","reason":"test","alert_id":"a-{id}"}}"#
        );
        enr.js
            .publish(subjects::actions(&enr.node), body.into())
            .await
            .expect("publish action")
            .await
            .expect("action stored");
    }
    let msgs = lanner_tests::collect(
        &enr.js,
        subjects::AUDIT.name,
        &subjects::audit(&enr.node),
        requests.len(),
        Duration::from_secs(30),
    )
    .await;
    msgs.iter()
        .map(|m| serde_json::from_slice(&m.payload).expect("audit record is JSON"))
        .collect()
}
