//! The one-shot CLI over an archive the real archiver wrote: an aligned table, CSV,
//! JSON, a Parquet export read back by pyarrow, and clear errors (exit 1, no panic) for
//! bad and forbidden SQL.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

#[test]
fn prints_an_aligned_table_csv_and_json() {
    let fx = archive();
    let sql = "SELECT program, login_user, tty FROM exec_commands \
               WHERE container_id = '5b1e0c7d2f3a' ORDER BY evt_time";
    let table = ok_stdout(&cli(&fx.dir, sql, &[]));
    let lines: Vec<&str> = table.lines().collect();
    // +---------+------------+-------+ / | program | login_user | tty | / +--- / rows / +--- / (4 rows)
    assert!(
        lines[0].starts_with("+-") && lines[1].starts_with("| program"),
        "{table}"
    );
    let widths: Vec<usize> = lines[..lines.len() - 1]
        .iter()
        .map(|l| l.chars().count())
        .collect();
    assert!(
        widths.windows(2).all(|w| w[0] == w[1]),
        "columns not aligned:\n{table}"
    );
    let programs: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| program"))
        .map(|l| l.split('|').nth(1).unwrap().trim())
        .collect();
    assert_eq!(programs, ["bash", "cat", "tee", "curl"], "{table}");
    assert!(table.contains("| alice"), "{table}");
    assert_eq!(lines.last(), Some(&"(4 rows)"));

    let csv = ok_stdout(&cli(&fx.dir, sql, &["--format", "csv"]));
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        [
            "program,login_user,tty",
            "bash,alice,34816",
            "cat,alice,34816",
            "tee,alice,34816",
            "curl,alice,34816"
        ]
    );

    let json = ok_stdout(&cli(&fx.dir, sql, &["--format", "json"]));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[3]["program"], "curl");
    assert_eq!(rows[3]["tty"], 34816);
}

#[test]
fn exports_a_forensic_timeline_as_parquet() {
    let fx = archive();
    let out = std::env::temp_dir().join(format!("{}.parquet", unique("timeline")));
    let sql = "SELECT * FROM forensic_timeline('5b1e0c7d2f3a', '2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z') \
               ORDER BY evt_time, kind DESC";
    let res = cli(
        &fx.dir,
        sql,
        &["--format", "parquet", "--output", out.to_str().unwrap()],
    );
    ok_stdout(&res);
    // An independent reader: pyarrow.
    let py = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, json, pyarrow.parquet as pq\n\
             t = pq.read_table(sys.argv[1])\n\
             print(json.dumps({'rows': t.num_rows, 'kinds': t.column('kind').to_pylist(),\n\
                               'summaries': t.column('summary').to_pylist()}))",
            out.to_str().unwrap(),
        ])
        .output()
        .expect("python3 with pyarrow (scripts/install-s3s-fs installs it)");
    let text = ok_stdout(&py);
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["rows"], 12, "11 events and 1 alert: {v}");
    let kinds: Vec<String> = serde_json::from_value(v["kinds"].clone()).unwrap();
    assert_eq!(kinds.iter().filter(|k| *k == "alert").count(), 1);
    let summaries: Vec<String> = serde_json::from_value(v["summaries"].clone()).unwrap();
    assert_eq!(summaries[0], "exec bash", "time order: {summaries:?}");
    assert!(
        summaries[1].starts_with("exec cat /etc/shadow"),
        "{summaries:?}"
    );
    assert!(
        summaries[2].starts_with("ALERT Warning Read sensitive file untrusted"),
        "{summaries:?}"
    );
    assert!(
        summaries
            .iter()
            .any(|s| s == "connect 172.18.0.5:50412->203.0.113.7:80 (evil.example.net)"),
        "{summaries:?}"
    );
    let _ = std::fs::remove_file(out);
}

#[test]
fn bad_and_forbidden_sql_fail_clearly() {
    let fx = archive();
    for (sql, want) in [
        ("SELEC 1", "expected"),
        ("SELECT no_such_column FROM events", "no_such_column"),
        ("SELECT * FROM no_such_table", "no_such_table"),
        ("DROP TABLE events", "read-only"),
        (
            "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/'",
            "read-only",
        ),
        ("COPY (SELECT 1) TO '/tmp/lanner-copy.csv'", "read-only"),
    ] {
        let out = cli(&fx.dir, sql, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{sql}: {err}");
        assert!(err.to_lowercase().contains(want), "{sql}: {err}");
        assert!(!err.contains("panicked"), "{sql}: {err}");
    }
    assert!(!std::path::Path::new("/tmp/lanner-copy.csv").exists());
}
