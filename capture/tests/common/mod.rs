//! Shared by the live sensor tests: root detection, starting `lanner-capture --stdout`
//! and collecting the JSON events it prints, and small field accessors.

#![allow(dead_code, clippy::unwrap_used, unsafe_code)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(30);

pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1))
        .is_some_and(|u| u == "0")
}

/// Returns early (the test passes) with the reason when not root.
#[macro_export]
macro_rules! need_root {
    () => {
        if !is_root() {
            eprintln!("skipped: loading eBPF programs needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH)");
            return;
        }
    };
}

pub fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// Events a sensor printed so far.
#[derive(Default)]
pub struct Events {
    lines: Mutex<Vec<Value>>,
    more: Condvar,
    /// The sensor's stdout reached its end: every line it printed is in `lines`.
    closed: std::sync::atomic::AtomicBool,
}

/// Starts `lanner-capture --stdout` with `extra` flags from a thread that lives as long
/// as the test binary (the sensor gets SIGTERM when it ends), and waits until attached.
pub fn start_sensor(node: &str, extra: &[&str]) -> (Arc<Events>, Arc<Mutex<Option<Child>>>) {
    start_sensor_with(node, extra, true)
}

/// Like [`start_sensor`]; `stdout` selects `--stdout` (else the sensor publishes to NATS).
pub fn start_sensor_with(
    node: &str,
    extra: &[&str],
    stdout: bool,
) -> (Arc<Events>, Arc<Mutex<Option<Child>>>) {
    let events = Arc::new(Events::default());
    let child_slot: Arc<Mutex<Option<Child>>> = Arc::new(Mutex::new(None));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let (node, extra): (String, Vec<String>) = (
        node.to_owned(),
        extra.iter().map(|s| (*s).to_owned()).collect(),
    );
    let ev = events.clone();
    let slot = child_slot.clone();
    std::thread::spawn(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lanner-capture"));
        if stdout {
            cmd.arg("--stdout");
        }
        cmd.args(["--node", &node, "--flush-ms", "20"]).args(&extra);
        cmd.env("LANNER_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: prctl in the child before exec; async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let _ = ready_tx.send(Err(format!("spawning lanner-capture: {e}")));
                return;
            }
        };
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        let ready = ready_tx.clone();
        std::thread::spawn(move || {
            let mut told = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[sensor] {line}");
                if !told && line.contains("process table seeded") {
                    let _ = ready.send(Ok(()));
                    told = true;
                }
            }
            if !told {
                let _ = ready.send(Err(
                    "the sensor exited before attaching (see [sensor] lines)".into(),
                ));
            }
        });
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("sensor printed a non-JSON line ({e}): {line}"));
            ev.lines.lock().unwrap_or_else(|e| e.into_inner()).push(v);
            ev.more.notify_all();
        }
        ev.closed.store(true, std::sync::atomic::Ordering::Release);
        // Keep this thread (the sensor's parent for PDEATHSIG) alive.
        loop {
            std::thread::park();
        }
    });
    match ready_rx.recv_timeout(Duration::from_secs(120)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e}"),
        Err(_) => panic!("the sensor did not attach within 120 s"),
    }
    (events, child_slot)
}

impl Events {
    /// Waits until the sensor's stdout has been read to its end (after the sensor
    /// exited: a child's exit does not mean its last lines have been read yet).
    pub fn wait_closed(&self) {
        let start = Instant::now();
        while !self.closed.load(std::sync::atomic::Ordering::Acquire) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the sensor's stdout did not close"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every event so far.
    pub fn all(&self) -> MutexGuard<'_, Vec<Value>> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The first event matching `pred`, waiting for it until the deadline.
    pub fn find(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = 0;
        loop {
            if let Some(v) = lines[seen..].iter().find(|v| pred(v)) {
                return v.clone();
            }
            seen = lines.len();
            let Some(left) = DEADLINE.checked_sub(start.elapsed()) else {
                // Everything seen, for the post-mortem.
                let dump = std::env::temp_dir()
                    .join(format!("lanner-sensor-events-{}.jsonl", std::process::id()));
                let text: String = lines.iter().map(|v| format!("{v}\n")).collect();
                let _ = std::fs::write(&dump, text);
                let seen = lines.len();
                drop(lines);
                panic!(
                    "no event {what} within {DEADLINE:?} ({seen} events seen, written to {})",
                    dump.display()
                );
            };
            lines = self
                .more
                .wait_timeout(lines, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

pub fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("field {k} missing or not text in {v}"))
}
pub fn n(v: &Value, k: &str) -> i64 {
    v.get(k)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("field {k} missing or not a number in {v}"))
}
pub fn list(v: &Value, k: &str) -> Vec<Value> {
    v.get(k)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_else(|| panic!("field {k} missing or not a list in {v}"))
}
pub fn pid_is(v: &Value, pid: u32) -> bool {
    v.get("proc.pid").and_then(Value::as_u64) == Some(u64::from(pid))
}
pub fn ty(v: &Value, t: &str) -> bool {
    v.get("evt.type").and_then(Value::as_str) == Some(t)
}

/// Runs a Python snippet; returns its pid and stdout.
pub fn python(code: &str) -> (u32, String) {
    let child = Command::new("python3")
        .args(["-c", code])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let pid = child.id();
    let out = child.wait_with_output().expect("python3 ran");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (pid, String::from_utf8_lossy(&out.stdout).into_owned())
}
