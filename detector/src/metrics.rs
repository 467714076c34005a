//! `/metrics` (Prometheus text format) and `/healthz` over a minimal HTTP/1.1 server.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use lanner_contract::bus::StageStats;
use tokio::net::TcpListener;

use crate::service::Counters;

/// What `/metrics` reports.
pub struct Sources {
    /// Detector counters.
    pub counters: Arc<Counters>,
    /// Stage loop counters.
    pub stage: Arc<StageStats>,
    /// Enabled rules now.
    pub rules_enabled: Arc<std::sync::atomic::AtomicU64>,
}

/// Renders the metrics in Prometheus' text format.
pub fn render(s: &Sources) -> String {
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    };
    let c = &s.counters;
    counter(
        "lanner_detector_events_judged_total",
        "Events judged against the rules.",
        c.events.load(Ordering::Relaxed),
    );
    counter(
        "lanner_detector_events_skipped_total",
        "Events of types no rule matches, skipped undecoded (counted as judged too).",
        c.skipped.load(Ordering::Relaxed),
    );
    counter(
        "lanner_detector_batches_judged_total",
        "Event batches judged.",
        c.batches.load(Ordering::Relaxed),
    );
    counter(
        "lanner_detector_alerts_total",
        "Alerts produced.",
        c.alerts.load(Ordering::Relaxed),
    );
    counter(
        "lanner_detector_actions_total",
        "Response action requests produced.",
        c.actions.load(Ordering::Relaxed),
    );
    let st = &s.stage;
    counter(
        "lanner_detector_messages_received_total",
        "Messages pulled from the events stream.",
        StageStats::get(&st.received),
    );
    counter(
        "lanner_detector_messages_acked_total",
        "Input messages acked.",
        StageStats::get(&st.acked),
    );
    counter(
        "lanner_detector_dead_lettered_total",
        "Messages sent to the DLQ.",
        StageStats::get(&st.dead_lettered),
    );
    counter(
        "lanner_detector_published_total",
        "Messages stored by JetStream (alerts, actions).",
        StageStats::get(&st.published),
    );
    counter(
        "lanner_detector_duplicates_total",
        "Publishes JetStream recognised as duplicates.",
        StageStats::get(&st.duplicates),
    );
    counter(
        "lanner_detector_failed_batches_total",
        "Batches that failed and were redelivered.",
        StageStats::get(&st.failed_batches),
    );
    let _ = writeln!(
        out,
        "# HELP lanner_detector_alerts_by_rule_total Alerts produced, by rule and priority.\n# TYPE lanner_detector_alerts_by_rule_total counter"
    );
    if let Ok(m) = c.by_rule.lock() {
        for ((rule, prio), n) in m.iter() {
            let esc = |v: &str| {
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            };
            let _ = writeln!(
                out,
                "lanner_detector_alerts_by_rule_total{{rule=\"{}\",priority=\"{}\"}} {n}",
                esc(rule),
                esc(prio)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP lanner_detector_rules_enabled Rules enabled now.\n# TYPE lanner_detector_rules_enabled gauge\nlanner_detector_rules_enabled {}",
        s.rules_enabled.load(Ordering::Relaxed)
    );
    out
}

/// Serves `/metrics` and `/healthz` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, sources: Arc<Sources>) {
    lanner_contract::bus::http::serve_metrics(listener, move || render(&sources)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn serves_metrics_and_health() {
        let counters = Arc::new(Counters::default());
        counters.alerts.fetch_add(3, Ordering::Relaxed);
        counters
            .by_rule
            .lock()
            .expect("lock")
            .insert(("Say \"hi\"".into(), "Notice".into()), 3);
        let sources = Arc::new(Sources {
            counters,
            stage: Arc::new(StageStats::default()),
            rules_enabled: Arc::new(std::sync::atomic::AtomicU64::new(25)),
        });
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let h = tokio::spawn(serve(l, sources));
        let get = |path: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .expect("write");
            let mut out = String::new();
            s.read_to_string(&mut out).await.expect("read");
            out
        };
        let m = get("/metrics").await;
        assert!(m.starts_with("HTTP/1.1 200 OK"), "{m}");
        assert!(m.contains("lanner_detector_alerts_total 3"), "{m}");
        assert!(m.contains("lanner_detector_rules_enabled 25"), "{m}");
        assert!(m.contains("lanner_detector_alerts_by_rule_total{rule=\"Say \\\"hi\\\"\",priority=\"Notice\"} 3"), "{m}");
        assert!(get("/healthz").await.ends_with("ok\n"));
        assert!(get("/nope").await.starts_with("HTTP/1.1 404"));
        h.abort();
    }
}
