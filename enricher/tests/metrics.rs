//! `/metrics` after real traffic: events of a real Docker container (a cache miss, then a
//! hit), of an unknown container (passed through), and response actions (one done, one
//! failed), scraped over HTTP from the running enricher.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{IMAGE_REPO, IMAGE_TAG, docker, docker_engine, event};

/// `/metrics` as name (with labels) → value.
fn scrape(port: u16) -> HashMap<String, f64> {
    let out = std::process::Command::new("curl")
        .args(["-sf", &format!("http://127.0.0.1:{port}/metrics")])
        .output()
        .expect("curl /metrics");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_hits_misses_pass_through_lookup_latency_and_actions() {
    let Some(socket) = docker_engine() else {
        return;
    };
    let name = lanner_tests::unique("lanner-enr-metrics");
    let id = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        &format!("{IMAGE_REPO}:{IMAGE_TAG}"),
        "/bin/sleep",
        "120",
    ]);
    let short = &id[..12];
    let port = lanner_tests::free_port();
    let enr = common::start_with(&socket, |a| {
        a.metrics_addr = Some(format!("127.0.0.1:{port}").parse().unwrap());
    })
    .await;
    // First batch: both containers are misses; the unknown one passes through.
    enr.publish(&[event(short, "execve"), event("0000deadbeef", "execve")])
        .await;
    enr.enriched(1).await;
    // Second batch: a hit.
    enr.publish(&[event(short, "openat")]).await;
    let out = enr.enriched(2).await;
    assert_eq!(out[2].container_name.as_deref(), Some(name.as_str()));
    let audits = common::request_actions(
        &enr,
        &[
            ("m-pause", "pause", short),
            ("m-gone", "kill", "0000deadbeef"),
        ],
    )
    .await;
    assert_eq!(audits.len(), 2);

    // Counters move just after JetStream acked each publish: poll briefly.
    let want: &[(&str, f64)] = &[
        ("lanner_enricher_events_total", 3.0),
        ("lanner_enricher_events_enriched_total", 2.0),
        ("lanner_enricher_events_unenriched_total", 1.0),
        ("lanner_enricher_cache_hits_total", 1.0),
        ("lanner_enricher_cache_misses_total", 2.0),
        ("lanner_enricher_lookup_batches_total", 1.0),
        ("lanner_enricher_lookup_duration_seconds_count", 1.0),
        (
            "lanner_enricher_lookup_duration_seconds_bucket{le=\"+Inf\"}",
            1.0,
        ),
        ("lanner_enricher_batch_duration_seconds_count", 2.0),
        ("lanner_enricher_actions_done_total", 1.0),
        ("lanner_enricher_actions_failed_total", 1.0),
        ("lanner_enricher_events_published_total", 2.0),
        ("lanner_enricher_actions_published_total", 2.0),
    ];
    let since = Instant::now();
    let metrics = loop {
        let m = scrape(port);
        if want.iter().all(|(k, v)| m.get(*k) == Some(v)) {
            break m;
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "/metrics: want {want:?}, got {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    docker(&["rm", "-f", &name]);
    enr.stop().await;
    // The lookup waited a real, positive time, and the buckets are cumulative.
    assert!(metrics["lanner_enricher_lookup_duration_seconds_sum"] > 0.0);
    let mut last = 0.0;
    for le in lanner_enricher::metrics::BUCKETS {
        let b = metrics[&format!("lanner_enricher_lookup_duration_seconds_bucket{{le=\"{le}\"}}")];
        assert!(b >= last, "bucket le={le} holds {b} < {last}");
        last = b;
    }
}
