//! Events and alerts from a real nats-server land in a local Parquet archive, each
//! exactly once, readable by pyarrow and DuckDB with the expected schema and layout;
//! undecodable messages go to the DLQ with a reason.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, pull};
use common::*;
use futures::StreamExt;
use lanner_archiver::naming::FileName;

const HOUR_NS: i64 = 3_600_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_alerts_land_in_parquet_once_each() {
    let nats = Nats::start();
    let js = jetstream(&nats).await;
    let node = unique("arch-local");
    let durable = unique("arch-local");
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().to_str().unwrap().to_owned();

    // 6000 events straddling an hour boundary (2026-01-01T10:00Z), in batches of 250.
    let start = 1_767_225_600_000_000_000 + 10 * HOUR_NS - 30_000_000;
    let evs = events(11, &node, start, 6000);
    publish_events(&js, &node, &evs, 250, "b").await;
    let alerts = lanner_contract::subjects::alerts(&node);
    for i in 0..5 {
        let doc = serde_json::json!({
            "time": format!("2026-01-01T10:00:0{i}.5Z"), "rule": "Terminal shell in container",
            "priority": "Notice", "source": "syscall", "tags": ["shell"], "hostname": node,
            "output": "shell", "id": format!("alert-{i}"),
            "output_fields": {"evt.id": format!("e-{i}"), "container.id": "0123456789ab"}
        });
        publish_raw(&js, &alerts, doc.to_string().as_bytes()).await;
    }
    publish_raw(&js, &alerts, b"{\"rule\": \"no time\"}").await;
    publish_raw(
        &js,
        &lanner_contract::subjects::events(&node),
        b"not an event batch",
    )
    .await;

    let mut args = archiver_args(&node, &durable, &archive, &nats);
    args.extend(["--roll-secs", "1"].map(String::from));
    let mut archiver = Archiver::start(&args, &[]);
    wait_drained(
        &js,
        "LANNER_EVENTS",
        &format!("{durable}-events"),
        Duration::from_secs(120),
    )
    .await;
    wait_drained(
        &js,
        "LANNER_ALERTS",
        &format!("{durable}-alerts"),
        Duration::from_secs(120),
    )
    .await;
    archiver.terminate();

    let ev = read_archive("events", "evt_id", "evt_time", &["--dir", &archive]);
    assert_eq!(num(&ev, "rows"), 6000, "{ev}");
    assert_eq!(num(&ev, "distinct_ids"), 6000);
    assert_eq!(num(&ev, "duckdb_rows"), 6000);
    assert_eq!(num(&ev, "duckdb_distinct_ids"), 6000);
    let want: Vec<String> = lanner_contract::arrow::schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let got: Vec<String> = serde_json::from_value(ev["columns"].clone()).unwrap();
    assert_eq!(got, want, "file columns are the contract's schema");
    let parts: Vec<String> = serde_json::from_value(ev["partitions"].clone()).unwrap();
    assert_eq!(parts, ["dt=2026-01-01/hour=09", "dt=2026-01-01/hour=10"]);
    for f in ev["file_facts"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        assert!(
            FileName::parse(name.rsplit('/').next().unwrap()).is_some(),
            "{name}"
        );
        assert_eq!(f["compression"], "ZSTD", "{f}");
        let t = f["time_index"].as_u64().unwrap();
        assert_eq!(
            f["sorting_columns"],
            serde_json::json!([[t, false, true]]),
            "{f}"
        );
        assert_eq!(f["sorted"], true, "{f}");
        assert_eq!(f["has_column_index"], true, "{f}");
        assert_eq!(f["has_offset_index"], true, "{f}");
        assert_eq!(f["has_statistics"], true, "{f}");
        assert_eq!(
            f["metadata"]["lanner.schema_version"],
            lanner_contract::arrow::SCHEMA_VERSION,
            "{f}"
        );
        assert_eq!(f["metadata"]["lanner.stream"], "LANNER_EVENTS", "{f}");
    }
    let blooms: Vec<String> = serde_json::from_value(ev["bloom_columns"].clone()).unwrap();
    for c in ["evt_id", "container_id", "proc_pid"] {
        assert!(
            blooms.iter().any(|b| b == c),
            "no bloom filter on {c}: {blooms:?}"
        );
    }

    let al = read_archive("alerts", "alert_id", "time", &["--dir", &archive]);
    assert_eq!(num(&al, "rows"), 5, "{al}");
    assert_eq!(num(&al, "distinct_ids"), 5);
    let cols: Vec<String> = serde_json::from_value(al["columns"].clone()).unwrap();
    for c in [
        "time",
        "rule",
        "priority",
        "tags",
        "output_fields",
        "evt_id",
        "container_id",
        "node",
    ] {
        assert!(cols.iter().any(|x| x == c), "alerts lack {c}: {cols:?}");
    }

    // Both undecodable messages are in the DLQ, with a reason.
    let stream = js.get_stream("LANNER_DLQ").await.unwrap();
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: "lanner.dlq.archiver".into(),
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut msgs = consumer
        .fetch()
        .max_messages(10_000)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .unwrap();
    let mut ours = Vec::new();
    while let Some(m) = msgs.next().await {
        let m = m.unwrap();
        let h = m.headers.clone().unwrap_or_default();
        let subject = h
            .get("Lanner-Dlq-Subject")
            .map(|v| v.to_string())
            .unwrap_or_default();
        if subject.ends_with(&lanner_contract::subjects::token(&node)) {
            ours.push((
                subject,
                h.get("Lanner-Dlq-Reason")
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
            ));
        }
    }
    ours.sort();
    assert_eq!(ours.len(), 2, "{ours:?}");
    assert!(ours[0].1.contains("time"), "{ours:?}");
    assert!(ours[1].1.contains("undecodable"), "{ours:?}");
}
