//! Crashes under load, then restart: the archive holds every published event exactly
//! once (by count and by distinct `evt_id`).
//!
//! While a publisher streams events: the first archiver is killed with SIGKILL mid-run,
//! the second aborts right after writing a file and before acking it (the worst moment,
//! through the `--abort-after-files` hook), the third drains the stream. The messages
//! whose files were written but not acked come back to the third one, which must find
//! them in the archive (its `already_archived` counter) instead of writing them again.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;

const HOUR_NS: i64 = 3_600_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_then_restart_keeps_every_event_once() {
    let nats = Nats::start();
    let js = jetstream(&nats).await;
    let node = unique("arch-crash");
    let durable = unique("arch-crash");
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().to_str().unwrap().to_owned();

    // 60 000 events straddling an hour boundary, published in 300 batches while the
    // archivers run and crash.
    let total = 60_000;
    let evs = events(
        31,
        &node,
        1_767_225_600_000_000_000 + 5 * HOUR_NS - 300_000_000,
        total,
    );
    let publisher = {
        let js = js.clone();
        let node = node.clone();
        tokio::spawn(async move {
            for (i, chunk) in evs.chunks(2000).enumerate() {
                publish_events(&js, &node, chunk, 200, &format!("p{i}")).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let mut args = archiver_args(&node, &durable, &archive, &nats);
    args.extend(
        [
            "--tables",
            "events",
            "--roll-rows",
            "3000",
            "--roll-secs",
            "1",
            "--ack-wait",
            "4",
        ]
        .map(String::from),
    );

    // 1: SIGKILL in the middle of the run.
    let mut a = Archiver::start(&args, &[]);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    a.kill9();

    // 2: abort after the third file is written, before its messages are acked.
    let mut first = args.clone();
    first.extend(["--abort-after-files", "3"].map(String::from));
    let mut b = Archiver::start(&first, &[]);
    assert!(
        !b.wait_exit(Duration::from_secs(60)).await,
        "the second archiver aborts"
    );

    // 3: drain everything.
    let port = free_port();
    let mut last = args.clone();
    let at = last.iter().position(|a| a == "--metrics-addr").unwrap();
    last[at + 1] = format!("127.0.0.1:{port}");
    let mut c = Archiver::start(&last, &[]);
    publisher.await.unwrap();
    wait_drained(
        &js,
        "LANNER_EVENTS",
        &format!("{durable}-events"),
        Duration::from_secs(180),
    )
    .await;
    let metrics = http_get(port, "/metrics").await;
    c.terminate();

    let ev = read_archive("events", "evt_id", "evt_time", &["--dir", &archive]);
    assert_eq!(num(&ev, "distinct_ids"), total as u64, "{ev}");
    assert_eq!(
        num(&ev, "rows"),
        total as u64,
        "every event exactly once: {ev}"
    );
    assert_eq!(num(&ev, "duckdb_rows"), total as u64);
    let already: u64 = metrics
        .lines()
        .find(|l| l.starts_with("lanner_archiver_already_archived_total{table=\"events\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no already_archived counter in {metrics}"));
    assert!(
        already > 0,
        "the messages of the aborted run's files came back and were found archived"
    );
}

/// JetStream's delivery count is no proof that a message was never delivered before (the
/// crash test above once got a message archived by the aborted replica back with count
/// 1, and wrote it again). A recreated consumer makes that deterministic: it hands out
/// every message of the stream again, each with count 1. The archive must still hold
/// every event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_delivered_again_with_count_1_are_not_written_twice() {
    let nats = Nats::start();
    let js = jetstream(&nats).await;
    let node = unique("arch-recreated");
    let durable = unique("arch-recreated");
    let consumer = format!("{durable}-events");
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().to_str().unwrap().to_owned();
    let total = 4_000;
    let evs = events(
        32,
        &node,
        1_767_225_600_000_000_000 + 5 * HOUR_NS - 100_000_000,
        total,
    );
    publish_events(&js, &node, &evs, 200, "p").await;
    let mut args = archiver_args(&node, &durable, &archive, &nats);
    args.extend(["--tables", "events", "--roll-secs", "1"].map(String::from));

    let mut a = Archiver::start(&args, &[]);
    wait_drained(&js, "LANNER_EVENTS", &consumer, Duration::from_secs(120)).await;
    a.terminate();
    let first = read_archive("events", "evt_id", "evt_time", &["--dir", &archive]);
    assert_eq!(num(&first, "rows"), total as u64, "{first}");

    // The same durable name, a new consumer: all 20 messages again, delivery count 1.
    js.get_stream("LANNER_EVENTS")
        .await
        .unwrap()
        .delete_consumer(&consumer)
        .await
        .unwrap();
    let port = free_port();
    let at = args.iter().position(|a| a == "--metrics-addr").unwrap();
    args[at + 1] = format!("127.0.0.1:{port}");
    let mut b = Archiver::start(&args, &[]);
    wait_drained(&js, "LANNER_EVENTS", &consumer, Duration::from_secs(120)).await;
    let metrics = http_get(port, "/metrics").await;
    b.terminate();

    let ev = read_archive("events", "evt_id", "evt_time", &["--dir", &archive]);
    assert_eq!(num(&ev, "files"), num(&first, "files"), "no new file: {ev}");
    assert_eq!(
        num(&ev, "rows"),
        total as u64,
        "every event exactly once: {ev}"
    );
    assert_eq!(num(&ev, "distinct_ids"), total as u64);
    let already: u64 = metrics
        .lines()
        .find(|l| l.starts_with("lanner_archiver_already_archived_total{table=\"events\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no already_archived counter in {metrics}"));
    assert!(already >= 20, "every message was found archived: {already}");
}

async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}
