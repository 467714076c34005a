//! Loss is counted, not hidden (root only): a sensor with an 8 KiB ring buffer watches
//! a burst of 200 000 opens; the opens it shows plus the losses its `lanner_drop` events
//! report must cover the burst. In its own test binary so no other sensor competes.

#![allow(clippy::unwrap_used, unsafe_code)]

mod common;

use std::process::Child;

use common::*;
use serde_json::Value;

#[test]
fn a_flood_is_counted_as_lost_not_hidden() {
    need_root!();
    let node = unique("flood");
    // A 8 KiB ring holds a few dozen records: a burst of opens must overflow it.
    let (events, child) = start_sensor(&node, &["--ring-bytes", "8192", "--drop-report-secs", "1"]);
    let path = format!("/tmp/{}", unique("lanner-flood"));
    let total = 200_000u64;
    let (pid, _) = python(&format!(
        "import os\np = '{path}'\nopen(p, 'w').close()\nfor _ in range({total}):\n    os.close(os.open(p, os.O_RDONLY))\nos.unlink(p)"
    ));
    // The flooder has exited: stop the sensor so that it drains what is in the ring and
    // makes its final loss report.
    let sensor_pid = child
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(Child::id)
        .expect("sensor running");
    // SAFETY: signalling the sensor process this test started.
    unsafe { libc::kill(sensor_pid as i32, libc::SIGTERM) };
    let _ = child
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_mut()
        .map(Child::wait);
    events.wait_closed();
    let lines = events.all();
    let seen = lines
        .iter()
        .filter(|v| {
            pid_is(v, pid)
                && ty(v, "openat")
                && v.get("fd.name").and_then(Value::as_str) == Some(path.as_str())
                && v.get("evt.arg.flags")
                    .and_then(Value::as_str)
                    .is_some_and(|f| f.starts_with("O_RDONLY"))
        })
        .count() as u64;
    let reports: Vec<&Value> = lines.iter().filter(|v| ty(v, "lanner_drop")).collect();
    let dropped: u64 = reports.iter().map(|v| n(v, "lanner.drops") as u64).sum();
    eprintln!(
        "flood: {total} opens, {seen} seen, {dropped} reported lost in {} reports",
        reports.len()
    );
    assert!(
        dropped > 0,
        "a {total}-open burst into an 8 KiB ring lost nothing?"
    );
    assert!(
        seen + dropped >= total,
        "{total} opens: {seen} seen + {dropped} reported lost < {total}: loss was hidden"
    );
    assert!(seen < total);
}
