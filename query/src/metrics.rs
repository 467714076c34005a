//! Counters for `/metrics` (Prometheus text format): queries by client and outcome,
//! rows returned, and a latency histogram.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::engine::ErrorKind;

/// Which client a query came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// `POST /v1/query`.
    Http,
    /// The Postgres wire protocol.
    Pg,
}

impl Client {
    const ALL: [Client; 2] = [Client::Http, Client::Pg];

    fn name(self) -> &'static str {
        match self {
            Client::Http => "http",
            Client::Pg => "pg",
        }
    }
}

const OUTCOMES: [&str; 5] = ["ok", "bad_sql", "forbidden", "limit", "execution"];
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0];

fn outcome_index(outcome: Result<(), ErrorKind>) -> usize {
    match outcome {
        Ok(()) => 0,
        Err(ErrorKind::BadSql) => 1,
        Err(ErrorKind::Forbidden) => 2,
        Err(ErrorKind::Limit) => 3,
        Err(ErrorKind::Execution) => 4,
    }
}

#[derive(Default)]
struct PerClient {
    outcomes: [AtomicU64; 5],
    rows: AtomicU64,
    buckets: [AtomicU64; 10],
    seconds_micros: AtomicU64,
    count: AtomicU64,
}

/// The query service's counters.
#[derive(Default)]
pub struct Metrics {
    clients: [PerClient; 2],
}

impl Metrics {
    fn of(&self, c: Client) -> &PerClient {
        &self.clients[c as usize]
    }

    /// Counts one query that ended with `outcome`.
    pub fn query(&self, client: Client, outcome: Result<(), ErrorKind>) {
        self.of(client).outcomes[outcome_index(outcome)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a finished query's rows and time (HTTP, where the whole result is seen).
    pub fn finished(&self, client: Client, rows: usize, took: Duration) {
        let m = self.of(client);
        m.rows.fetch_add(rows as u64, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                m.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        m.seconds_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        m.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP lanner_query_queries_total Queries by client and outcome."
        );
        let _ = writeln!(s, "# TYPE lanner_query_queries_total counter");
        for c in Client::ALL {
            for (i, o) in OUTCOMES.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "lanner_query_queries_total{{client=\"{}\",outcome=\"{o}\"}} {}",
                    c.name(),
                    self.of(c).outcomes[i].load(Ordering::Relaxed)
                );
            }
        }
        let _ = writeln!(s, "# HELP lanner_query_rows_total Rows returned.");
        let _ = writeln!(s, "# TYPE lanner_query_rows_total counter");
        for c in Client::ALL {
            let _ = writeln!(
                s,
                "lanner_query_rows_total{{client=\"{}\"}} {}",
                c.name(),
                self.of(c).rows.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(s, "# HELP lanner_query_seconds Time to answer a query.");
        let _ = writeln!(s, "# TYPE lanner_query_seconds histogram");
        for c in Client::ALL {
            let m = self.of(c);
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "lanner_query_seconds_bucket{{client=\"{}\",le=\"{b}\"}} {}",
                    c.name(),
                    m.buckets[i].load(Ordering::Relaxed)
                );
            }
            let count = m.count.load(Ordering::Relaxed);
            let _ = writeln!(
                s,
                "lanner_query_seconds_bucket{{client=\"{}\",le=\"+Inf\"}} {count}",
                c.name()
            );
            let _ = writeln!(
                s,
                "lanner_query_seconds_sum{{client=\"{}\"}} {}",
                c.name(),
                m.seconds_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                s,
                "lanner_query_seconds_count{{client=\"{}\"}} {count}",
                c.name()
            );
        }
        s
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics { .. }")
    }
}
