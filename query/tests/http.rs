//! The HTTP API over the shared archive: JSON rows by default, NDJSON, CSV and Arrow IPC
//! by `Accept` header or `format` field, bearer-token auth, JSON errors with status
//! 400, forbidden statements refused, `/metrics` and `/healthz`.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;

const TOKEN: &str = "s3cret-token";

fn server() -> Server {
    Server::start(&archive().dir, &["--http-token", TOKEN])
}

fn auth() -> (&'static str, String) {
    ("Authorization", format!("Bearer {TOKEN}"))
}

#[test]
fn answers_every_format() {
    let s = server();
    let (k, v) = auth();
    let sql = "SELECT query, direction, answers FROM dns_history \
               WHERE container_id = '5b1e0c7d2f3a' ORDER BY evt_time";

    let (code, ctype, body) = s.post(&json!({ "sql": sql }), &[(k, &v)]);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ctype, "application/json");
    let rows: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        rows,
        json!([
            {"query": "evil.example.net", "direction": "query"},
            {"query": "evil.example.net", "direction": "answer", "answers": ["203.0.113.7"]}
        ])
    );

    let (code, ctype, body) = s.post(
        &json!({ "sql": sql }),
        &[(k, &v), ("Accept", "application/x-ndjson")],
    );
    assert_eq!((code, ctype.as_str()), (200, "application/x-ndjson"));
    let lines: Vec<serde_json::Value> = String::from_utf8(body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["answers"], json!(["203.0.113.7"]));

    let (code, ctype, body) = s.post(&json!({ "sql": sql, "format": "csv" }), &[(k, &v)]);
    assert_eq!(code, 200);
    assert!(ctype.starts_with("text/csv"), "{ctype}");
    let csv = String::from_utf8(body).unwrap();
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        [
            "query,direction,answers",
            "evil.example.net,query,",
            "evil.example.net,answer,[203.0.113.7]"
        ],
        "{csv}"
    );

    let (code, ctype, body) = s.post(
        &json!({ "sql": "SELECT count(*) AS n, count(DISTINCT hour) AS hours FROM events" }),
        &[(k, &v), ("Accept", "application/vnd.apache.arrow.stream")],
    );
    assert_eq!(
        (code, ctype.as_str()),
        (200, "application/vnd.apache.arrow.stream")
    );
    // An independent reader: pyarrow's IPC stream reader.
    let path = std::env::temp_dir().join(format!("{}.arrows", unique("ipc")));
    std::fs::write(&path, &body).unwrap();
    let py = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, pyarrow.ipc as ipc\n\
             t = ipc.open_stream(open(sys.argv[1], 'rb')).read_all()\n\
             print(t.column('n')[0].as_py(), t.column('hours')[0].as_py())",
            path.to_str().unwrap(),
        ])
        .output()
        .expect("python3 with pyarrow");
    let got = ok_stdout(&py);
    assert_eq!(got.trim(), format!("{} 4", 11 + 3 * SYNTH_PER_HOUR));
    let _ = std::fs::remove_file(path);

    let (code, ctype, body) = s.post(&json!({ "sql": sql, "format": "parquet" }), &[(k, &v)]);
    assert_eq!(
        (code, ctype.as_str()),
        (200, "application/vnd.apache.parquet")
    );
    assert_eq!(&body[..4], b"PAR1");
}

#[test]
fn errors_are_json_with_status_400_and_auth_is_required() {
    let s = server();
    let (k, v) = auth();
    let (code, _, body) = s.post(&json!({ "sql": "SELECT 1" }), &[]);
    assert_eq!(code, 401, "{}", String::from_utf8_lossy(&body));
    let (code, _, _) = s.post(
        &json!({ "sql": "SELECT 1" }),
        &[("Authorization", "Bearer wrong")],
    );
    assert_eq!(code, 401);

    for (sql, kind, want) in [
        ("SELECT * FROM events WHERE", "bad_sql", "expected"),
        ("SELECT nope FROM events", "bad_sql", "nope"),
        ("CREATE TABLE t AS SELECT 1", "forbidden", "read-only"),
        ("CREATE VIEW v AS SELECT 1", "forbidden", "read-only"),
        (
            "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'",
            "forbidden",
            "read-only",
        ),
        (
            "INSERT INTO events (evt_id) VALUES ('x')",
            "forbidden",
            "read-only",
        ),
        (
            "COPY events TO '/tmp/lanner-exfil.parquet'",
            "forbidden",
            "read-only",
        ),
        ("DROP VIEW timeline", "forbidden", "read-only"),
        (
            "SET datafusion.runtime.memory_limit = '100G'",
            "forbidden",
            "read-only",
        ),
        (
            "EXPLAIN CREATE TABLE t AS SELECT 1",
            "forbidden",
            "read-only",
        ),
        ("SELECT * FROM '/etc/passwd'", "bad_sql", "passwd"),
        (
            "SELECT * FROM read_csv('/etc/passwd')",
            "bad_sql",
            "read_csv",
        ),
        ("SELECT 1; DROP TABLE events", "bad_sql", "single"),
    ] {
        let (code, ctype, body) = s.post(&json!({ "sql": sql }), &[(k, &v)]);
        let text = String::from_utf8_lossy(&body).to_string();
        assert_eq!(code, 400, "{sql}: {text}");
        assert_eq!(ctype, "application/json", "{sql}");
        let e: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(e["kind"], kind, "{sql}: {text}");
        let msg = e["error"].as_str().unwrap().to_lowercase();
        assert!(msg.contains(want), "{sql}: {text}");
    }
    assert!(!std::path::Path::new("/tmp/lanner-exfil.parquet").exists());
    // Still serving, views intact.
    let (code, _, body) = s.post(
        &json!({ "sql": "SELECT count(*) AS n FROM timeline" }),
        &[(k, &v)],
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));

    let (code, _, body) = s.post(&json!({ "nope": 1 }), &[(k, &v)]);
    assert_eq!(code, 400, "{}", String::from_utf8_lossy(&body));

    let (code, _, body) = s.get("/metrics");
    assert_eq!(code, 200);
    let m = String::from_utf8(body).unwrap();
    assert!(
        m.contains("lanner_query_queries_total{client=\"http\",outcome=\"forbidden\"} 8"),
        "{m}"
    );
    assert!(
        m.contains("lanner_query_queries_total{client=\"http\",outcome=\"ok\"} 1"),
        "{m}"
    );
    let (code, _, body) = s.get("/healthz");
    assert_eq!((code, body.as_slice()), (200, b"ok\n".as_slice()));
}

#[test]
fn limits_stop_large_results() {
    let s = Server::start(&archive().dir, &["--max-rows", "100"]);
    let (code, _, body) = s.post(&json!({ "sql": "SELECT * FROM events" }), &[]);
    assert_eq!(code, 400);
    let e: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(e["kind"], "limit", "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("more than 100 rows"),
        "{e}"
    );
    let (code, _, _) = s.post(&json!({ "sql": "SELECT * FROM events LIMIT 100" }), &[]);
    assert_eq!(code, 200);
}
