//! # lanner-query-bench
//!
//! Times the hunting queries ([`queries::QUERIES`]) on one archive with lanner-query
//! (the session the server builds, [`lanner_query::engine::Engine`], each query run as
//! a client's query is: planned, checked read-only, collected) and with DuckDB (PyPI
//! `duckdb`, reading the same files with `read_parquet(..., hive_partitioning = true)`,
//! in a Python worker), in the same run:
//!
//! ```text
//! scripts/bench-query --reps 3      # builds the archive when missing, then runs this
//! cargo run --release -p lanner-query-bench -- --archive /var/tmp/lanner-bench-archive
//! ```
//!
//! Both engines first run every query once untimed, and their results are compared
//! row by row ([`canon`]): a query whose answers differ fails the run. Then `--reps`
//! rounds run every query on both engines, interleaved (the order alternates each
//! round), and the table reports the median times, their ratio (lanner-query / DuckDB)
//! and the row counts. Both engines get `--threads` threads. Beside wall time, each
//! engine's process CPU time over the same spans (lanner-query's from `/proc/self/stat`,
//! DuckDB's worker's from `time.process_time()`) and its ratio: on this shared machine
//! the CPU a query costs moves less than its wall time.

mod canon;
mod queries;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::UInt64Type;
use datafusion::arrow::record_batch::RecordBatch;
use lanner_query::archive::{Archive, S3Args};
use lanner_query::engine::{Engine, session_config};
use lanner_query::guard::Limits;

const DUCKDB_WORKER: &str = include_str!("duckdb_worker.py");

/// Flags.
#[derive(Parser, Debug)]
#[command(about = "Hunting queries timed with lanner-query and DuckDB on the same archive")]
struct Args {
    /// Archive directory (holding `events/dt=.../hour=.../*.parquet`).
    #[arg(
        long,
        env = "LANNER_BENCH_ARCHIVE",
        default_value = "/var/tmp/lanner-bench-archive"
    )]
    archive: String,
    /// Timed rounds.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Threads of each engine (DataFusion target partitions and tokio workers, DuckDB
    /// threads).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Only the queries whose names contain one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Extra session setting `KEY=VALUE` on top of lanner-query's (repeatable):
    /// `datafusion.*`, or `lanner.time_partitions=false`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
    /// Python with duckdb and pyarrow.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Parquet metadata cache of lanner-query's session, in MiB (the server's default).
    #[arg(long, default_value_t = 256)]
    metadata_cache_mib: usize,
    /// Print each query's DataFusion plan with metrics (EXPLAIN ANALYZE, after two
    /// warm-up runs) and exit.
    #[arg(long)]
    explain: bool,
}

/// The DuckDB worker process.
struct Duck {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// One DuckDB answer.
struct DuckAnswer {
    ms: f64,
    cpu_ms: f64,
    rows: usize,
    canon: Option<Vec<String>>,
}

impl Duck {
    fn start(python: &str, archive: &str, threads: usize) -> anyhow::Result<Self> {
        let mut child = Command::new(python)
            .args(["-u", "-c", DUCKDB_WORKER, archive, &threads.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {python} with duckdb"))?;
        let stdin = child.stdin.take().context("worker stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("worker stdout")?);
        Ok(Duck {
            child,
            stdin,
            stdout,
        })
    }

    fn run(&mut self, sql: &str, check: bool) -> anyhow::Result<DuckAnswer> {
        let req = serde_json::json!({"sql": sql, "check": check});
        writeln!(self.stdin, "{req}")?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("the duckdb worker exited (is the Python package duckdb installed?)");
        }
        let v: serde_json::Value = serde_json::from_str(&line)?;
        if let Some(e) = v.get("error") {
            bail!("duckdb: {e}");
        }
        Ok(DuckAnswer {
            ms: v["ms"].as_f64().context("ms")?,
            cpu_ms: v["cpu_ms"].as_f64().context("cpu_ms")?,
            rows: usize::try_from(v["rows"].as_u64().context("rows")?)?,
            canon: v.get("canon").and_then(|c| {
                c.as_array().map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
            }),
        })
    }
}

impl Drop for Duck {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `sql` as a lanner-query client's query: milliseconds, and the result batches.
async fn df_run(engine: &Engine, sql: &str) -> anyhow::Result<(f64, Vec<RecordBatch>)> {
    let t = Instant::now();
    let c = engine.collect(sql).await?;
    Ok((t.elapsed().as_secs_f64() * 1000.0, c.batches))
}

/// CPU time this process has used (all threads, user and system), in milliseconds,
/// from `/proc/self/stat` (clock ticks of 10 ms); `None` where that is not readable.
fn process_cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ').skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 10.0)
}

/// The first value of the first column, as text.
async fn first_text(engine: &Engine, sql: &str) -> anyhow::Result<Option<String>> {
    let (_, b) = df_run(engine, sql).await?;
    Ok(b.iter().find(|b| b.num_rows() > 0).and_then(|b| {
        b.column(0)
            .as_string_opt::<i32>()
            .map(|a| a.value(0).to_owned())
            .or_else(|| {
                b.column(0)
                    .as_string_view_opt()
                    .map(|a| a.value(0).to_owned())
            })
    }))
}

/// The values the queries need, read from the archive: its first day, the id of
/// container shop-api-1 and the pid of its main process at 02:00.
async fn discover(engine: &Engine) -> anyhow::Result<(String, String, u64)> {
    let day = first_text(engine, "SELECT CAST(min(dt) AS VARCHAR) AS d FROM events")
        .await?
        .context("the archive has no events")?;
    let window =
        format!("evt_time >= TIMESTAMP '{day} 02:00:00' AND evt_time < TIMESTAMP '{day} 02:10:00'");
    let cid = first_text(
        engine,
        &format!(
            "SELECT CAST(container_id AS VARCHAR) FROM events WHERE {window} \
             AND container_name = 'shop-api-1' LIMIT 1"
        ),
    )
    .await?
    .context("no container shop-api-1 at 02:00 (not a generated archive?)")?;
    let (_, b) = df_run(
        engine,
        &format!("SELECT min(proc_pid) FROM events WHERE container_id = '{cid}' AND {window}"),
    )
    .await?;
    let pid = b
        .iter()
        .find(|b| b.num_rows() > 0)
        .and_then(|b| {
            b.column(0)
                .as_primitive_opt::<UInt64Type>()
                .filter(|a| a.is_valid(0))
                .map(|a| a.value(0))
        })
        .context("no main pid")?;
    Ok((day, cid, pid))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    // As lanner-query runs.
    lanner_contract::allocator::keep_freed_memory();
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let archive = Archive::open(&args.archive, &S3Args::default())?;
    // The server's limits, without the timeout: a slow run is a figure, not an error.
    let limits = Limits {
        timeout: Duration::ZERO,
        metadata_cache_bytes: args.metadata_cache_mib.saturating_mul(1 << 20),
        ..Limits::default()
    };
    let mut config = session_config().with_target_partitions(args.threads.max(1));
    for kv in &args.settings {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--set {kv}: expected KEY=VALUE"))?;
        config.options_mut().set(k, v)?;
    }
    let engine = Engine::with_config(&archive, limits, config).await?;
    let (day, cid, pid) = discover(&engine).await?;
    let queries: Vec<_> = queries::QUERIES
        .iter()
        .filter(|q| args.only.is_empty() || args.only.iter().any(|o| q.name.contains(o.as_str())))
        .map(|q| (q, queries::fill(q.sql, &day, &cid, pid)))
        .collect();
    if args.explain {
        for (q, sql) in &queries {
            // Two runs first, so the metrics are of a warm process (memory already
            // faulted in, metadata cached), as the timed rounds are.
            for _ in 0..2 {
                df_run(&engine, sql).await?;
            }
            let (ms, b) = df_run(&engine, &format!("EXPLAIN ANALYZE {sql}")).await?;
            println!("== {} ({ms:.0} ms)", q.name);
            println!(
                "{}",
                datafusion::arrow::util::pretty::pretty_format_batches(&b)?
            );
        }
        return Ok(());
    }
    println!(
        "archive {} (day {day}, container {cid}, pid {pid}); {} threads each; extra settings: {:?}",
        args.archive, args.threads, args.settings
    );
    let start_load = loadavg();
    let mut duck = Duck::start(&args.python, &args.archive, args.threads)?;

    // Warm-up and check: both engines answer each query the same.
    let mut rows = Vec::new();
    for (q, sql) in &queries {
        let (_, batches) = df_run(&engine, sql)
            .await
            .with_context(|| format!("lanner-query, {}", q.name))?;
        let ours = canon::rows(&batches)?;
        let theirs = duck
            .run(sql, true)
            .with_context(|| q.name.to_owned())?
            .canon
            .unwrap_or_default();
        if ours != theirs {
            let diff = ours
                .iter()
                .zip(&theirs)
                .find(|(a, b)| a != b)
                .map(|(a, b)| {
                    format!("first difference:\n  lanner-query: {a:?}\n  duckdb:       {b:?}")
                })
                .unwrap_or_default();
            bail!(
                "{}: lanner-query returned {} rows, duckdb {}; {diff}",
                q.name,
                ours.len(),
                theirs.len()
            );
        }
        rows.push(ours.len());
    }
    println!("results checked: both engines return the same rows for every query");
    let cache = engine
        .context()
        .runtime_env()
        .cache_manager
        .get_file_metadata_cache();
    let entries = cache.list_entries();
    println!(
        "Parquet metadata cache: {} files, {:.1} of {:.1} MiB, {} hits",
        entries.len(),
        entries.values().map(|e| e.size_bytes).sum::<usize>() as f64 / 1048576.0,
        cache.cache_limit() as f64 / 1048576.0,
        entries.values().map(|e| e.hits).sum::<usize>(),
    );
    if let Some(statistics) = engine
        .context()
        .runtime_env()
        .cache_manager
        .get_file_statistic_cache()
    {
        println!(
            "file statistics cache: {} files, limit {:.1} MiB",
            statistics.len(),
            statistics.cache_limit() as f64 / 1048576.0,
        );
    }

    let mut times: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); queries.len()];
    let mut cpu: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); queries.len()];
    for rep in 0..args.reps {
        for (i, (q, sql)) in queries.iter().enumerate() {
            for side in 0..2 {
                // Alternate which engine goes first, round by round.
                if (side + rep) % 2 == 0 {
                    let c0 = process_cpu_ms();
                    let (ms, b) = df_run(&engine, sql).await?;
                    if let (Some(c0), Some(c1)) = (c0, process_cpu_ms()) {
                        cpu[i].0.push(c1 - c0);
                    }
                    let n: usize = b.iter().map(RecordBatch::num_rows).sum();
                    anyhow::ensure!(n == rows[i], "{}: row count changed", q.name);
                    times[i].0.push(ms);
                } else {
                    let a = duck.run(sql, false)?;
                    anyhow::ensure!(a.rows == rows[i], "{}: duckdb row count changed", q.name);
                    times[i].1.push(a.ms);
                    cpu[i].1.push(a.cpu_ms);
                }
            }
        }
    }
    println!("load average: {start_load} at start, {} at end", loadavg());
    println!();
    println!(
        "| query | lanner-query ms | DuckDB ms | ratio | rows | target met | CPU ms (lanner-query / DuckDB) | CPU ratio |"
    );
    println!("|---|---:|---:|---:|---:|---|---:|---:|");
    let mut ratios = Vec::new();
    let mut cpu_ratios = Vec::new();
    for (i, (q, _)) in queries.iter().enumerate() {
        let df = median(&mut times[i].0);
        let dk = median(&mut times[i].1);
        let ratio = df / dk;
        ratios.push(ratio);
        let mut met = Vec::new();
        if ratio <= 1.0 {
            met.push("ratio ≤ 1");
        }
        if q.interactive {
            met.push(if df < 1000.0 { "< 1 s" } else { "not < 1 s" });
        }
        let met = if met.is_empty() {
            "no".to_owned()
        } else {
            met.join(", ")
        };
        let name = if q.interactive {
            format!("{} (interactive)", q.name)
        } else {
            q.name.to_owned()
        };
        let (cpu_cell, cpu_ratio_cell) = if cpu[i].0.is_empty() {
            ("n/a".to_owned(), "n/a".to_owned())
        } else {
            let (ours, theirs) = (median(&mut cpu[i].0), median(&mut cpu[i].1));
            cpu_ratios.push(ours / theirs);
            (
                format!("{ours:.0} / {theirs:.0}"),
                format!("{:.2}", ours / theirs),
            )
        };
        println!(
            "| {name} | {df:.0} | {dk:.0} | {ratio:.2} | {} | {met} | {cpu_cell} | {cpu_ratio_cell} |",
            rows[i]
        );
    }
    let geo = |r: &[f64]| (r.iter().map(|r| r.ln()).sum::<f64>() / r.len().max(1) as f64).exp();
    println!();
    println!(
        "geometric mean ratio {:.2} (CPU {:.2}); medians of {} interleaved rounds",
        geo(&ratios),
        geo(&cpu_ratios),
        args.reps
    );
    Ok(())
}

/// The allocator lanner-query's binary uses, so the figures stand for it.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
