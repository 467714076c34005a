//! The real `psql` against `lanner-query --pg`: every hunting view answers, the
//! read-only rules hold on the wire, and the password is checked.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

const PASSWORD: &str = "hunter2";

fn server() -> Server {
    Server::start(
        &archive().dir,
        &["--pg-user", "analyst", "--pg-password", PASSWORD],
    )
}

/// Rows of `psql -A -t` output (unaligned, tuples only, `|` separated).
fn psql_at(s: &Server, sql: &str) -> Vec<Vec<String>> {
    let out = s.psql_with(&["-A", "-t"], sql, "analyst", Some(PASSWORD));
    ok_stdout(&out)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect()
}

#[test]
fn psql_runs_every_hunting_view() {
    let s = server();
    let q = |sql: &str| -> Vec<Vec<String>> {
        let out = s.psql(sql, "analyst", Some(PASSWORD));
        let text = ok_stdout(&out);
        // psql's aligned output: header, separator, rows, "(N rows)".
        text.lines()
            .skip(2)
            .take_while(|l| !l.starts_with('('))
            .map(|l| l.split('|').map(|c| c.trim().to_owned()).collect())
            .collect()
    };
    let c = CONTAINER;

    let r = q(&format!(
        "SELECT pid, name, lineage FROM process_tree WHERE container_id = '{c}' ORDER BY evt_time"
    ));
    assert_eq!(r.len(), 4, "{r:?}");
    assert_eq!(r[0][1], "bash");
    assert_eq!(r[0][2], "systemd > containerd-shim > runc > bash");
    assert_eq!(r[3][2], "systemd > containerd-shim > runc > bash > curl");

    let r = q("SELECT pid, name FROM process_tree(4242) ORDER BY evt_time");
    let names: Vec<&str> = r.iter().map(|row| row[1].as_str()).collect();
    assert_eq!(names, ["bash", "cat", "tee", "curl"], "{r:?}");

    let r = q(&format!(
        "SELECT query, direction, rcode FROM dns_history WHERE container_id = '{c}' ORDER BY evt_time"
    ));
    assert_eq!(
        r,
        [
            vec!["evil.example.net", "query", ""],
            vec!["evil.example.net", "answer", "NOERROR"],
        ]
    );

    let r = q(&format!(
        "SELECT path, is_write, proc_name FROM file_access WHERE container_id = '{c}' ORDER BY evt_time"
    ));
    assert_eq!(
        r,
        [
            vec!["/etc/shadow", "f", "cat"],
            vec!["/etc/ld.so.preload", "t", "tee"],
        ]
    );

    let r = q(&format!(
        "SELECT dest_ip, dest_port, dest_name, proc_name FROM outbound_connections \
         WHERE container_id = '{c}' ORDER BY evt_time"
    ));
    assert_eq!(
        r,
        [
            vec!["203.0.113.7", "80", "evil.example.net", "curl"],
            vec!["203.0.113.7", "4444", "", "bash"],
        ]
    );

    let r = q(&format!(
        "SELECT session_pid, program, login_user, user_name, tty, interactive, via \
         FROM exec_sessions WHERE container_id = '{c}'"
    ));
    assert_eq!(
        r,
        [vec!["4242", "bash", "alice", "root", "34816", "t", "runc"]]
    );

    let r = q(&format!(
        "SELECT login_user, program, cmdline FROM exec_commands WHERE container_id = '{c}' ORDER BY evt_time"
    ));
    assert_eq!(r.len(), 4, "{r:?}");
    assert_eq!(r[1], ["alice", "cat", "cat /etc/shadow"]);

    let r = q(&format!(
        "SELECT kind, summary FROM forensic_timeline('{c}', '2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z') \
         ORDER BY evt_time, kind DESC"
    ));
    assert_eq!(r.len(), 12, "{r:?}");
    assert_eq!(r[2][0], "alert");

    let r = q(&format!(
        "SELECT count(*) FROM timeline WHERE container_id = '{c}' AND dt = '2026-01-01' AND hour = 0"
    ));
    assert_eq!(r, [vec!["12"]]);

    // Unaligned output and the synthetic hours.
    let r = psql_at(
        &s,
        "SELECT hour, count(*) FROM events GROUP BY hour ORDER BY hour",
    );
    assert_eq!(
        r,
        [0, 1, 2, 3]
            .iter()
            .map(|h| vec![
                h.to_string(),
                if *h == 0 {
                    "11".into()
                } else {
                    SYNTH_PER_HOUR.to_string()
                }
            ])
            .collect::<Vec<_>>()
    );
}

#[test]
fn psql_cannot_write_or_change_the_server() {
    let s = server();
    for sql in [
        "CREATE TABLE t (a INT)",
        "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'",
        "CREATE VIEW v AS SELECT 1",
        "INSERT INTO events (evt_id) VALUES ('x')",
        "COPY (SELECT 1) TO '/tmp/lanner-pg-copy.csv'",
        "DROP TABLE events",
        "SET datafusion.runtime.memory_limit = '100G'",
        "SET datafusion.execution.target_partitions = 1",
    ] {
        let out = s.psql(sql, "analyst", Some(PASSWORD));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sql} was accepted");
        // CREATE EXTERNAL TABLE is not even Postgres syntax: refused by the parser.
        assert!(
            err.contains("read-only") || err.contains("sql parser error"),
            "{sql}: {err}"
        );
    }
    assert!(!std::path::Path::new("/tmp/lanner-pg-copy.csv").exists());
    // Session settings clients send are fine; the tables are all still there.
    let out = s.psql(
        "SET application_name = 'grafana'; SET extra_float_digits = 3; SELECT count(*) FROM events",
        "analyst",
        Some(PASSWORD),
    );
    assert!(ok_stdout(&out).contains(&(11 + 3 * SYNTH_PER_HOUR).to_string()));
}

#[test]
fn psql_needs_the_password() {
    let s = server();
    let out = s.psql("SELECT 1", "analyst", Some("wrong"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .to_lowercase()
            .contains("password authentication failed"),
        "{out:?}"
    );
    let out = s.psql("SELECT 1", "someone-else", Some(PASSWORD));
    assert!(!out.status.success());
    let out = s.psql("SELECT 1", "analyst", None);
    assert!(!out.status.success());
}
