//! The hunting queries, written once in SQL both engines accept.
//!
//! `{day}`, `{cid}` and `{pid}` are filled in from the archive ([`crate::discover`]):
//! the day the archive starts, the id of container `shop-api-1`, and the pid of that
//! container's main process in the 02:00 generation (processes restart every 10 minutes
//! in the generated archive). Every query's result is deterministic (ties broken in
//! `ORDER BY`), so both engines must return the same rows.

/// One query.
pub struct Query {
    /// Short name.
    pub name: &'static str,
    /// Whether it is an interactive query (a window or an id: target under one second).
    pub interactive: bool,
    /// The SQL, with `{day}`, `{cid}`, `{pid}` placeholders.
    pub sql: &'static str,
}

/// The queries, in the order they run.
pub const QUERIES: &[Query] = &[
    Query {
        name: "pid_tree",
        interactive: true,
        sql: "WITH RECURSIVE edges AS (
    SELECT DISTINCT proc_pid, proc_ppid, proc_exepath FROM events
    WHERE evt_time >= TIMESTAMP '{day} 02:00:00' AND evt_time < TIMESTAMP '{day} 03:00:00'),
  tree AS (
    SELECT proc_pid, proc_ppid, proc_exepath, 0 AS depth FROM edges WHERE proc_pid = {pid}
    UNION ALL
    SELECT e.proc_pid, e.proc_ppid, e.proc_exepath, t.depth + 1 FROM edges e
    JOIN tree t ON e.proc_ppid = t.proc_pid WHERE t.depth < 4)
SELECT depth, proc_exepath, count(DISTINCT proc_pid) AS pids FROM tree
GROUP BY depth, proc_exepath ORDER BY depth, proc_exepath",
    },
    Query {
        name: "dns_history",
        interactive: true,
        sql: "SELECT dns_name, count(*) AS lookups, min(evt_time) AS first_seen, max(evt_time) AS last_seen
FROM events WHERE container_id = '{cid}' AND dns_name IS NOT NULL
GROUP BY dns_name ORDER BY lookups DESC, dns_name",
    },
    Query {
        name: "top_talkers",
        interactive: false,
        sql: "SELECT container_name, fd_sip, count(*) AS connects FROM events
WHERE evt_type = 'connect' GROUP BY container_name, fd_sip
ORDER BY connects DESC, container_name, fd_sip LIMIT 20",
    },
    Query {
        name: "rare_execs",
        interactive: false,
        sql: "SELECT container_image_repository, proc_exepath, count(*) AS execs,
  count(DISTINCT container_id) AS containers FROM events
WHERE evt_type = 'execve' GROUP BY container_image_repository, proc_exepath
HAVING count(*) < 100 ORDER BY execs, container_image_repository, proc_exepath",
    },
    Query {
        name: "etc_writes_4h",
        interactive: true,
        sql: "SELECT evt_time, container_name, proc_name, proc_pid, fd_name FROM events
WHERE evt_time >= TIMESTAMP '{day} 01:00:00' AND evt_time < TIMESTAMP '{day} 05:00:00'
  AND evt_type = 'openat' AND fd_name LIKE '/etc/%' AND evt_arg_flags LIKE '%O_WRONLY%'
ORDER BY evt_time, proc_pid",
    },
    Query {
        name: "tty_execs",
        interactive: false,
        sql: "SELECT container_name, user_name, proc_cmdline, count(*) AS sessions,
  min(evt_time) AS first_seen, max(evt_time) AS last_seen FROM events
WHERE evt_type = 'execve' AND proc_tty <> 0 AND container_id IS NOT NULL
GROUP BY container_name, user_name, proc_cmdline ORDER BY container_name, proc_cmdline, user_name",
    },
    Query {
        name: "outbound_resolved_2h",
        interactive: true,
        sql: "WITH dns AS (
    SELECT DISTINCT container_id, dns_name, dns_answers[1] AS ip FROM events
    WHERE dt = '{day}' AND hour BETWEEN 3 AND 4 AND evt_type = 'sendto' AND dns_name IS NOT NULL)
SELECT c.container_name, d.dns_name, c.fd_sip, c.fd_sport, count(*) AS connects
FROM events c JOIN dns d ON c.container_id = d.container_id AND c.fd_sip = d.ip
WHERE c.dt = '{day}' AND c.hour BETWEEN 3 AND 4 AND c.evt_type = 'connect'
GROUP BY c.container_name, d.dns_name, c.fd_sip, c.fd_sport
ORDER BY connects DESC, c.container_name, d.dns_name, c.fd_sip, c.fd_sport",
    },
    Query {
        name: "timeline_10min",
        interactive: true,
        sql: "SELECT evt_time, evt_type, proc_pid, proc_name, proc_cmdline, fd_name, dns_name, fd_sip
FROM events WHERE container_id = '{cid}'
  AND evt_time >= TIMESTAMP '{day} 02:00:00' AND evt_time < TIMESTAMP '{day} 02:10:00'
ORDER BY evt_time, proc_pid",
    },
    Query {
        name: "types_per_hour",
        interactive: false,
        sql: "SELECT dt, hour, evt_type, count(*) AS events FROM events
GROUP BY dt, hour, evt_type ORDER BY dt, hour, evt_type",
    },
    Query {
        name: "cmdline_like",
        interactive: false,
        sql: "SELECT container_name, proc_cmdline, count(*) AS n FROM events
WHERE proc_cmdline LIKE '%/etc/shadow%' OR proc_cmdline LIKE '%/bin/sh %'
GROUP BY container_name, proc_cmdline ORDER BY container_name, proc_cmdline",
    },
];

/// `sql` with the placeholders filled in.
pub fn fill(sql: &str, day: &str, cid: &str, pid: u64) -> String {
    sql.replace("{day}", day)
        .replace("{cid}", cid)
        .replace("{pid}", &pid.to_string())
}
