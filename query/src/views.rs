//! Hunting out of the box: views over `events` and `alerts`, and table functions where a
//! question needs a parameter a view cannot take.
//!
//! Views are filtered with `WHERE` like tables (filters on `container_id`, `evt_time`,
//! `dt`, `hour` reach the scan, so partitions and row groups are pruned):
//!
//! | view | one row per |
//! |---|---|
//! | `process_tree` | program started (execve), with its ancestry and `lineage` |
//! | `dns_history` | DNS query or answer seen |
//! | `file_access` | file opened, written, renamed, deleted, chmod'ed, linked |
//! | `outbound_connections` | outbound connect, with the name the address was resolved from |
//! | `exec_sessions` | session started into a container by `docker exec`/`kubectl exec` |
//! | `exec_commands` | program run inside such a session: who, what, with which tty, when |
//! | `timeline` | event or alert, with a one-line `summary` |
//!
//! Table functions:
//!
//! - `process_tree(pid [, host])`: the process `pid` and every process below it;
//! - `forensic_timeline(container_id, since, until)`: everything that happened in one
//!   container in `[since, until)`, alerts included. `since`/`until` are any constant
//!   timestamp expression (`'2026-01-01T00:00:00Z'`, `now() - interval '1 hour'`).
//!
//! Like any table, they come in no particular order: add `ORDER BY evt_time`.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::error::{DataFusionError, Result};
use datafusion::functions_nested::expr_fn::array_has;
use datafusion::logical_expr::{ColumnarValue, Expr, LogicalPlanBuilder, col, lit};
use datafusion::prelude::SessionContext;

/// Process-start rows shared by `process_tree` and the exec views.
const PROCESS_TREE: &str = r#"
CREATE VIEW process_tree AS
SELECT evt_time, dt, hour, evt_hostname AS host,
       container_id, container_name, container_image AS image,
       k8s_ns_name AS namespace, k8s_pod_name AS pod,
       proc_pid AS pid, proc_ppid AS ppid, proc_vpid AS vpid,
       proc_name AS name, proc_exepath AS exepath, proc_cmdline AS cmdline,
       proc_pname AS parent, proc_pcmdline AS parent_cmdline,
       user_name, user_uid, user_loginname AS login_user, proc_tty AS tty,
       cardinality(proc_apid) AS depth,
       proc_apid AS ancestor_pids, proc_aname AS ancestors,
       concat(array_to_string(array_reverse(proc_aname), ' > '), ' > ', proc_name) AS lineage,
       evt_id
FROM events
WHERE evt_type IN ('execve', 'execveat') AND (evt_rawres IS NULL OR evt_rawres >= 0)
"#;

const DNS_HISTORY: &str = r#"
CREATE VIEW dns_history AS
SELECT evt_time, dt, hour, evt_hostname AS host,
       container_id, container_name, container_image AS image,
       k8s_ns_name AS namespace, k8s_pod_name AS pod,
       proc_pid AS pid, proc_name, proc_cmdline AS cmdline,
       CASE WHEN dns_rcode IS NULL AND dns_answers IS NULL THEN 'query' ELSE 'answer' END AS direction,
       dns_name AS query, dns_type AS qtype, dns_rcode AS rcode, dns_answers AS answers,
       fd_sip AS server, evt_type, evt_id
FROM events
WHERE dns_name IS NOT NULL
"#;

const FILE_ACCESS: &str = r#"
CREATE VIEW file_access AS
SELECT evt_time, dt, hour, evt_hostname AS host,
       container_id, container_name, container_image AS image,
       k8s_ns_name AS namespace, k8s_pod_name AS pod,
       proc_pid AS pid, proc_name, proc_cmdline AS cmdline, user_name,
       evt_type AS operation,
       coalesce(fd_name, evt_arg_path, evt_arg_newpath, evt_arg_linkpath, evt_arg_name, evt_arg_filename) AS path,
       fd_directory AS directory, fd_filename AS filename,
       evt_arg_flags AS flags, evt_arg_mode AS mode,
       CASE WHEN evt_type IN ('open', 'openat', 'openat2', 'open_by_handle_at')
            THEN coalesce(evt_arg_flags LIKE '%O_WRONLY%' OR evt_arg_flags LIKE '%O_RDWR%'
                          OR evt_arg_flags LIKE '%O_CREAT%' OR evt_arg_flags LIKE '%O_TRUNC%', false)
            ELSE true END AS is_write,
       evt_arg_oldpath AS old_path, evt_arg_newpath AS new_path, evt_arg_target AS target,
       evt_rawres AS result, evt_res, evt_id
FROM events
WHERE fd_type IN ('file', 'directory')
   OR evt_type IN ('creat', 'unlink', 'unlinkat', 'rename', 'renameat', 'renameat2',
                   'mkdir', 'mkdirat', 'rmdir', 'chmod', 'fchmod', 'fchmodat', 'fchmodat2',
                   'chown', 'fchown', 'lchown', 'fchownat', 'symlink', 'symlinkat',
                   'link', 'linkat', 'truncate', 'ftruncate')
"#;

const OUTBOUND_CONNECTIONS: &str = r#"
CREATE VIEW outbound_connections AS
SELECT evt_time, dt, hour, evt_hostname AS host,
       container_id, container_name, container_image AS image,
       k8s_ns_name AS namespace, k8s_pod_name AS pod,
       proc_pid AS pid, proc_name, proc_cmdline AS cmdline, user_name,
       fd_l4proto AS proto, fd_cip AS src_ip, fd_cport AS src_port,
       fd_sip AS dest_ip, fd_sport AS dest_port, fd_sip_name AS dest_name,
       evt_rawres AS result, evt_res, evt_id
FROM events
WHERE evt_type = 'connect' AND fd_type IN ('ipv4', 'ipv6')
  AND (fd_is_server IS NULL OR NOT fd_is_server)
"#;

/// A session into a container: a program started directly by the container runtime
/// (runc, the shim, conmon: what `docker exec` and `kubectl exec` go through) that is
/// not the container's own init (pid 1 in the container).
const EXEC_SESSIONS: &str = r#"
CREATE VIEW exec_sessions AS
SELECT evt_time AS started, dt, hour, host,
       container_id, container_name, image, namespace, pod,
       pid AS session_pid, vpid, name AS program, cmdline,
       user_name, user_uid, login_user, tty,
       coalesce(tty <> 0, false) AS interactive,
       parent AS via, evt_id
FROM process_tree
WHERE container_id IS NOT NULL AND container_id <> 'host'
  AND (vpid IS NULL OR vpid <> 1)
  AND parent IN ('runc', 'runc:[0:PARENT]', 'runc:[1:CHILD]', 'runc:[2:INIT]', 'docker-runc',
                 'docker-runc-cur', 'exe', 'crun', 'containerd-shim', 'containerd-shim-runc-v2',
                 'conmon', 'crio')
"#;

const EXEC_COMMANDS: &str = r#"
CREATE VIEW exec_commands AS
SELECT p.evt_time, p.dt, p.hour, p.host, p.container_id, p.container_name, p.image,
       p.namespace, p.pod,
       s.session_pid, s.started AS session_started, s.login_user, s.user_name AS session_user,
       s.interactive, p.tty,
       p.pid, p.name AS program, p.cmdline, p.user_name, p.parent, p.lineage, p.evt_id
FROM process_tree p
JOIN exec_sessions s
  ON p.container_id = s.container_id AND p.host = s.host
 AND (p.pid = s.session_pid OR array_has(p.ancestor_pids, s.session_pid))
 AND p.evt_time >= s.started
"#;

const TIMELINE: &str = r#"
CREATE VIEW timeline AS
SELECT 'event' AS kind, evt_time, dt, hour, evt_hostname AS host,
       container_id, container_name, container_image_repository AS image,
       k8s_ns_name AS namespace, k8s_pod_name AS pod,
       proc_pid AS pid, proc_name, user_name, evt_type,
       CASE
         WHEN evt_type IN ('execve', 'execveat')
           THEN concat('exec ', coalesce(proc_cmdline, proc_exepath, proc_name))
         WHEN dns_name IS NOT NULL
           THEN concat('dns ', coalesce(dns_type, ''), ' ', dns_name,
                       CASE WHEN dns_answers IS NOT NULL
                            THEN concat(' = ', array_to_string(dns_answers, ',')) ELSE '' END)
         WHEN evt_type IN ('connect', 'accept', 'accept4')
           THEN concat(evt_type, ' ', coalesce(fd_name, ''),
                       CASE WHEN fd_sip_name IS NOT NULL THEN concat(' (', fd_sip_name, ')') ELSE '' END)
         WHEN fd_name IS NOT NULL
           THEN concat(evt_type, ' ', fd_name,
                       CASE WHEN evt_arg_flags IS NOT NULL THEN concat(' ', evt_arg_flags) ELSE '' END)
         ELSE concat(coalesce(evt_type, ''), ' ',
                     coalesce(evt_arg_path, evt_arg_name, evt_arg_filename, evt_arg_uid, ''))
       END AS summary,
       CAST(NULL AS VARCHAR) AS rule, CAST(NULL AS VARCHAR) AS priority,
       evt_res, evt_id
FROM events
UNION ALL
SELECT 'alert' AS kind, time AS evt_time, dt, hour, coalesce(hostname, node) AS host,
       container_id, container_name, container_image_repository AS image,
       k8s_ns_name AS namespace, k8s_pod_name AS pod,
       TRY_CAST(proc_pid AS BIGINT UNSIGNED) AS pid, proc_name, user_name, evt_type,
       concat('ALERT ', coalesce(priority, ''), ' ', rule, ': ', coalesce(output, '')) AS summary,
       rule, priority,
       CAST(NULL AS VARCHAR) AS evt_res, evt_id
FROM alerts
"#;

/// Every view, in dependency order.
pub const VIEWS: &[(&str, &str)] = &[
    ("process_tree", PROCESS_TREE),
    ("dns_history", DNS_HISTORY),
    ("file_access", FILE_ACCESS),
    ("outbound_connections", OUTBOUND_CONNECTIONS),
    ("exec_sessions", EXEC_SESSIONS),
    ("exec_commands", EXEC_COMMANDS),
    ("timeline", TIMELINE),
];

/// Registers the views and table functions (after the tables).
pub async fn register(ctx: &SessionContext) -> Result<()> {
    for (name, sql) in VIEWS {
        ctx.sql(sql)
            .await
            .map_err(|e| e.context(format!("view {name}")))?;
    }
    let tree = view(ctx, "process_tree").await?;
    ctx.register_udtf("process_tree", Arc::new(ProcessTree { view: tree }));
    let timeline = view(ctx, "timeline").await?;
    ctx.register_udtf(
        "forensic_timeline",
        Arc::new(ForensicTimeline { view: timeline }),
    );
    Ok(())
}

async fn view(ctx: &SessionContext, name: &str) -> Result<Arc<dyn TableProvider>> {
    ctx.table_provider(name).await
}

/// Evaluates a constant argument (`4242`, `'node-a'`, `now() - interval '1 hour'`).
fn constant(args: &TableFunctionArgs, i: usize, what: &str) -> Result<Option<ScalarValue>> {
    let Some(expr) = args.exprs().get(i) else {
        return Ok(None);
    };
    let schema = DFSchema::empty();
    let phys = args.session().create_physical_expr(expr.clone(), &schema)?;
    let batch = RecordBatch::new_empty(Arc::new(schema.as_arrow().clone()));
    match phys.evaluate(&batch)? {
        ColumnarValue::Scalar(s) => Ok(Some(s)),
        ColumnarValue::Array(_) => Err(DataFusionError::Plan(format!("{what} must be a constant"))),
    }
}

fn required(v: Option<ScalarValue>, func: &str, what: &str) -> Result<ScalarValue> {
    match v {
        Some(s) if !s.is_null() => Ok(s),
        _ => Err(DataFusionError::Plan(format!(
            "{func}: argument {what} is missing (see docs/query.md)"
        ))),
    }
}

fn cast(v: ScalarValue, to: &DataType, func: &str, what: &str) -> Result<ScalarValue> {
    v.cast_to(to)
        .map_err(|e| DataFusionError::Plan(format!("{func}: argument {what} is not a {to}: {e}")))
}

fn filtered_view(
    name: &str,
    view: &Arc<dyn TableProvider>,
    filter: Expr,
) -> Result<Arc<dyn TableProvider>> {
    let plan = LogicalPlanBuilder::scan(name, provider_as_source(Arc::clone(view)), None)?
        .filter(filter)?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// `process_tree(pid [, host])`.
#[derive(Debug)]
struct ProcessTree {
    view: Arc<dyn TableProvider>,
}

impl TableFunctionImpl for ProcessTree {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        const F: &str = "process_tree(pid [, host])";
        let pid = required(constant(&args, 0, "pid")?, F, "pid")?;
        let pid = cast(pid, &DataType::UInt64, F, "pid")?;
        let mut filter = col("pid")
            .eq(lit(pid.clone()))
            .or(array_has(col("ancestor_pids"), lit(pid)));
        if let Some(host) = constant(&args, 1, "host")?.filter(|h| !h.is_null()) {
            let host = cast(host, &DataType::Utf8, F, "host")?;
            filter = col("host").eq(lit(host)).and(filter);
        }
        filtered_view("process_tree", &self.view, filter)
    }
}

/// `forensic_timeline(container_id, since, until)`.
#[derive(Debug)]
struct ForensicTimeline {
    view: Arc<dyn TableProvider>,
}

impl TableFunctionImpl for ForensicTimeline {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        const F: &str = "forensic_timeline(container_id, since, until)";
        let ts = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
        let container = required(constant(&args, 0, "container_id")?, F, "container_id")?;
        let container = cast(container, &DataType::Utf8, F, "container_id")?;
        let since = cast(
            required(constant(&args, 1, "since")?, F, "since")?,
            &ts,
            F,
            "since",
        )?;
        let until = cast(
            required(constant(&args, 2, "until")?, F, "until")?,
            &ts,
            F,
            "until",
        )?;
        // The day range prunes whole partitions before any file is opened.
        let day = |v: &ScalarValue| cast(v.clone(), &DataType::Date32, F, "since/until");
        let filter = col("container_id")
            .eq(lit(container))
            .and(col("dt").gt_eq(lit(day(&since)?)))
            .and(col("dt").lt_eq(lit(day(&until)?)))
            .and(col("evt_time").gt_eq(lit(since)))
            .and(col("evt_time").lt(lit(until)));
        filtered_view("timeline", &self.view, filter)
    }
}
