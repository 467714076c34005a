//! `lanner-capture --replay` against a real nats-server: the stream holds every event,
//! they decode equal to the input, a second replay is de-duplicated by message id, and a
//! malformed line is reported with its line number and skipped.

use std::io::Write;
use std::process::{Command, Output};
use std::time::Duration;

use async_nats::jetstream;
use lanner_contract::synth::Synth;
use lanner_contract::{Event, codec, jsonl, subjects};
use lanner_tests::{Nats, collect, unique};

fn replay(nats: &Nats, node: &str, file: &std::path::Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lanner-capture"))
        .arg("--replay")
        .arg(file)
        .args([
            "--node",
            node,
            "--nats-url",
            &nats.url,
            "--batch-events",
            "100",
        ])
        .args(extra)
        .output()
        .expect("run lanner-capture")
}

async fn stored_events(nats: &Nats, node: &str, want_batches: usize) -> (usize, Vec<Event>) {
    let js = jetstream::new(async_nats::connect(&nats.url).await.expect("connect"));
    let msgs = collect(
        &js,
        subjects::RAW.name,
        &subjects::raw(node),
        want_batches,
        Duration::from_secs(20),
    )
    .await;
    let events = msgs
        .iter()
        .flat_map(|m| codec::decode_batch(&m.payload).expect("valid batch"))
        .collect();
    (msgs.len(), events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_fills_the_stream_once_even_when_run_twice() {
    let nats = Nats::start();
    let node = unique("replay");
    let input: Vec<Event> = Synth::new(42, &node).take(1050).collect();
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    for ev in &input {
        jsonl::write_event(&mut file, ev).expect("write");
    }
    file.flush().expect("flush");

    let out = replay(&nats, &node, file.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "replay failed: {stderr}");
    assert!(
        stderr.contains("replayed 1050 events in 11 batches (0 already stored)"),
        "{stderr}"
    );

    let (batches, stored) = stored_events(&nats, &node, 11).await;
    assert_eq!(batches, 11);
    assert_eq!(stored, input);

    let again = replay(&nats, &node, file.path(), &[]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "second replay failed: {stderr}");
    assert!(stderr.contains("(11 already stored)"), "{stderr}");
    let (batches, _) = stored_events(&nats, &node, 11).await;
    assert_eq!(batches, 11, "the second replay was de-duplicated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_lines_are_reported_and_skipped() {
    let nats = Nats::start();
    let node = unique("malformed");
    let text = concat!(
        r#"{"evt.type":"openat","fd.name":"/etc/shadow"}"#,
        "\n",
        "\n",
        r#"{"evt.type":"execve","proc.nmae":"typo"}"#,
        "\n",
        "not json at all\n",
        r#"{"evt.type":"connect","fd.sport":443}"#,
        "\n",
    );
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(text.as_bytes()).expect("write");

    let out = replay(&nats, &node, file.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("line 3: skipped: unknown field \"proc.nmae\""),
        "{stderr}"
    );
    assert!(stderr.contains("line 4: skipped:"), "{stderr}");
    assert!(stderr.contains("replayed 2 events"), "{stderr}");
    assert!(stderr.contains("2 malformed lines skipped"), "{stderr}");

    let (_, stored) = stored_events(&nats, &node, 1).await;
    let types: Vec<_> = stored
        .iter()
        .filter_map(|e| e.evt_type.as_deref())
        .collect();
    assert_eq!(types, ["openat", "connect"]);
    assert!(
        stored
            .iter()
            .all(|e| e.evt_hostname.as_deref() == Some(node.as_str()) && e.evt_id.is_some())
    );

    let strict = replay(&nats, &node, file.path(), &["--strict"]);
    assert_eq!(strict.status.code(), Some(3));
}

#[test]
fn replay_reads_stdin_and_fails_clearly_without_nats() {
    let port = lanner_tests::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lanner-capture"))
        .args([
            "--replay",
            "-",
            "--node",
            "n",
            "--nats-url",
            &format!("nats://127.0.0.1:{port}"),
        ])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("connecting to NATS"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_file_replayed_to_another_node_is_stored_there_too() {
    let nats = Nats::start();
    let (a, b) = (unique("node-a"), unique("node-b"));
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    for ev in Synth::new(5, "n").take(300) {
        jsonl::write_event(&mut file, &ev).expect("write");
    }
    file.flush().expect("flush");
    for node in [&a, &b] {
        let out = replay(&nats, node, file.path(), &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("(0 already stored)"), "{node}: {stderr}");
    }
    let (batches, events) = stored_events(&nats, &b, 3).await;
    assert_eq!((batches, events.len()), (3, 300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_recording_replays_its_batches_unchanged_and_once() {
    let nats = Nats::start();
    let node = unique("replay-rec");
    let input: Vec<Event> = Synth::new(43, &node).take(1050).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("capture.lnrec");
    {
        let mut w = lanner_contract::recording::Writer::new(std::io::BufWriter::new(
            std::fs::File::create(&path).expect("create"),
        ))
        .expect("magic");
        for chunk in input.chunks(300) {
            w.write_events(chunk).expect("write");
        }
        w.flush().expect("flush");
    }
    let out = replay(&nats, &node, &path, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("replayed 1050 events in 4 batches"),
        "{stderr}"
    );
    let (batches, events) = stored_events(&nats, &node, 4).await;
    assert_eq!(batches, 4, "one message per recorded batch");
    assert_eq!(events, input);

    // Again: every batch is a duplicate.
    let out = replay(&nats, &node, &path, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("(4 already stored)"), "{stderr}");

    // A corrupted frame is reported by number and skipped; a cut file is an error
    // after the frames before the cut were published.
    let mut bytes = std::fs::read(&path).expect("read");
    let second = 8 + 4 + 16 + u32::from_le_bytes(bytes[8..12].try_into().expect("len")) as usize;
    bytes[second + 4 + 16] ^= 0xff; // the second frame's batch magic
    let bad = dir.path().join("bad.lnrec");
    std::fs::write(&bad, &bytes[..bytes.len() - 5]).expect("write");
    let other = unique("replay-rec-bad");
    let out = replay(&nats, &other, &bad, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("frame 2: skipped: the batch does not match its checksum"),
        "{stderr}"
    );
    assert!(
        stderr.contains("frame 4: the file ends inside it"),
        "{stderr}"
    );
}
