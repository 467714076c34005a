//! Live sensor to a binary recording and back (root only): `lanner-capture --stdout
//! --record FILE.lnrec` sees a process read a file; once the sensor is stopped, the
//! recording holds every event it printed, each frame passes its checksum, and
//! `lanner-capture --replay` of the recording stores the same events on
//! `lanner.raw.<node>`.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::is_root;
use lanner_contract::{codec, recording, subjects};
use lanner_tests::{Nats, collect, unique};

/// `evt.num` of every event, in a set: what both sides are compared by.
fn numbers<'a>(events: impl Iterator<Item = &'a lanner_contract::Event>) -> BTreeSet<u64> {
    events.filter_map(|e| e.evt_num).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_recording_holds_what_the_sensor_saw_and_replays() {
    need_root!();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("live.lnrec");
    let node = unique("record-sensor");
    let (events, child) = common::start_sensor(&node, &["--record", path.to_str().unwrap()]);

    let target = format!("/nonexistent-{}", unique("recorded"));
    let status = Command::new("cat")
        .arg(&target)
        .stderr(Stdio::null())
        .status()
        .expect("cat");
    assert!(!status.success());
    events.find("the open of the missing file", |v| {
        v.get("fd.name").and_then(|n| n.as_str()) == Some(target.as_str())
    });

    // SIGINT: the sensor drains its ring buffer, flushes the recording and exits.
    let pid = child.lock().unwrap().as_ref().expect("sensor").id();
    let killed = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    events.wait_closed();
    let printed: BTreeSet<u64> = events
        .all()
        .iter()
        .filter_map(|v| v.get("evt.num").and_then(|n| n.as_u64()))
        .collect();

    let file = std::fs::File::open(&path).expect("the recording exists");
    let mut recorded = Vec::new();
    let mut frames = 0;
    for frame in recording::Reader::new(std::io::BufReader::new(file)).expect("a recording") {
        let frame = frame.expect("every frame is whole");
        let checked = frame.check().expect("every frame passes its check");
        let batch = codec::decode_batch(&frame.batch).expect("every batch decodes");
        assert_eq!(checked.events, batch.len());
        recorded.extend(batch);
        frames += 1;
    }
    assert!(
        recorded
            .iter()
            .any(|e| e.fd_name.as_deref() == Some(target.as_str())),
        "the open of {target} is in the recording"
    );
    assert_eq!(
        numbers(recorded.iter()),
        printed,
        "the recording holds exactly the events the sensor printed"
    );

    let nats = Nats::start();
    let replay_node = unique("record-replay");
    let out = Command::new(env!("CARGO_BIN_EXE_lanner-capture"))
        .arg("--replay")
        .arg(&path)
        .args(["--node", &replay_node, "--nats-url", &nats.url])
        .output()
        .expect("run the replay");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "replayed {} events in {frames} batches",
            recorded.len()
        )),
        "{stderr}"
    );
    let js = async_nats::jetstream::new(async_nats::connect(&nats.url).await.expect("connect"));
    let stored = collect(
        &js,
        subjects::RAW.name,
        &subjects::raw(&replay_node),
        frames,
        Duration::from_secs(30),
    )
    .await;
    let replayed: Vec<_> = stored
        .iter()
        .flat_map(|m| codec::decode_batch(&m.payload).expect("stored batches decode"))
        .collect();
    assert_eq!(replayed, recorded, "the stream holds the recorded events");
}
