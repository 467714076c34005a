//! `lanner-query`: SQL over lanner's Parquet archive (see the library docs).
//!
//! - `lanner-query [serve]`: the HTTP API (`--http`, with `/metrics` and `/healthz`) and
//!   the Postgres wire server (`--pg`) over one shared, read-only session;
//! - `lanner-query sql "SELECT ..."`: one query, printed as a table, CSV, JSON, or
//!   written as Parquet/Arrow with `--output`;
//! - `lanner-query hunt --rules FILE --since 2h`: retro-hunt, the alerts the rules would
//!   have raised over the archived events of the window.

use std::io::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser as _;
use lanner_contract::bus::shutdown::Shutdown;
use lanner_query::archive::Archive;
use lanner_query::cli::{Cli, Command, HuntArgs, HuntFormat, ServeArgs, SqlArgs};
use lanner_query::engine::Engine;
use lanner_query::format::{self, Format};
use lanner_query::metrics::Metrics;
use lanner_query::pg::{self, PgConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lanner_contract::allocator::keep_freed_memory();
    lanner_contract::logging::init();
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Sql(args)) => sql(args).await,
        Some(Command::Hunt(args)) => hunt(args).await,
    }
}

/// A retro-hunt: alerts on stdout, a summary on stderr.
async fn hunt(args: HuntArgs) -> anyhow::Result<()> {
    use lanner_query::hunt::{self, Hunt, Window};
    let window = Window::parse(&args.since, &args.until, chrono::Utc::now())?;
    let (rules, report) = lanner_engine::rules::load_files_with(
        &args.rules,
        &args.append_output,
        Some(args.min_priority),
    )
    .map_err(|e| anyhow::anyhow!("rule files do not load:\n{e}"))?;
    for d in &report.disabled {
        tracing::warn!(rule = %d.name, at = %d.loc, reason = %d.reason, "rule disabled");
    }
    let archive = Archive::open(&args.archive.archive, &args.archive.s3)?;
    let engine = Engine::new(&archive, args.limits.limits())
        .await
        .context("setting up the session")?;
    let found = hunt::run(
        &engine,
        Hunt {
            rules: &rules,
            matching: args.rule_matching,
            window,
        },
    )
    .await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for a in &found.alerts {
        match args.format {
            HuntFormat::Json => serde_json::to_writer(&mut out, a)?,
            HuntFormat::Text => out.write_all(a.output.as_bytes())?,
        }
        out.write_all(b"\n")?;
    }
    out.flush()?;
    let secs = found.elapsed.as_secs_f64();
    eprintln!(
        "hunt: {} rules over {} events ({}) from {} to {}: {} alerts in {:.2} s ({:.0} events/s)",
        rules.rules().len(),
        found.events,
        found
            .types
            .as_ref()
            .map_or_else(|| "every type".to_owned(), |t| format!("{} types", t.len())),
        window.since.to_rfc3339(),
        window.until.to_rfc3339(),
        found.alerts.len(),
        secs,
        found.events as f64 / secs.max(1e-9),
    );
    eprintln!(
        "hunt: reading {:.2} s, events from Arrow {:.2} s, judging {:.2} s",
        (found.elapsed.saturating_sub(found.convert + found.judge)).as_secs_f64(),
        found.convert.as_secs_f64(),
        found.judge.as_secs_f64(),
    );
    for (rule, n) in found.by_rule() {
        eprintln!("{n:>8}  {rule}");
    }
    Ok(())
}

/// One query: run, print or write, exit non-zero with the message on error.
async fn sql(args: SqlArgs) -> anyhow::Result<()> {
    if matches!(args.format, Format::Parquet | Format::Arrow) && args.output.is_none() {
        anyhow::bail!("--format {:?} is binary: give --output FILE", args.format);
    }
    let archive = Archive::open(&args.archive.archive, &args.archive.s3)?;
    let limits = args.limits.limits();
    if !limits.timeout.is_zero() {
        // A watchdog outside the runtime: a busy query can keep every worker thread,
        // timers included, from running.
        std::thread::spawn(move || {
            std::thread::sleep(limits.timeout);
            eprintln!(
                "Error: {}",
                lanner_query::guard::LimitError::Timeout(limits.timeout)
            );
            std::process::exit(1);
        });
    }
    let engine = Engine::new(&archive, limits)
        .await
        .context("setting up the session")?;
    let result = match engine.collect(&args.sql).await {
        Ok(r) => r,
        Err(e) => {
            // Exit at once: a timed-out query may still be busy on a worker thread, and
            // dropping the runtime would wait for it.
            eprintln!("Error: {e}");
            std::process::exit(1);
        }
    };
    match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            format::write(
                args.format,
                &result.schema,
                &result.batches,
                std::io::BufWriter::new(file),
            )?;
            eprintln!("{} rows written to {}", result.num_rows(), path.display());
        }
        None => {
            let stdout = std::io::stdout();
            format::write(
                args.format,
                &result.schema,
                &result.batches,
                std::io::BufWriter::new(stdout),
            )?;
            std::io::stdout().flush()?;
        }
    }
    Ok(())
}

/// The servers, until SIGTERM/SIGINT.
async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.http.is_empty() || !args.pg.is_empty(),
        "nothing to serve: both --http and --pg are empty"
    );
    let archive = Archive::open(&args.archive.archive, &args.archive.s3)?;
    let limits = args.limits.limits();
    let engine = Engine::new(&archive, limits)
        .await
        .context("setting up the session")?;
    let metrics = Arc::new(Metrics::default());
    let shutdown = Shutdown::on_signals();
    tracing::info!(archive = %archive.root, ?limits, "lanner-query starting");

    let mut tasks = tokio::task::JoinSet::new();
    if !args.http.is_empty() {
        let listener = tokio::net::TcpListener::bind(&args.http)
            .await
            .with_context(|| format!("listening on --http {}", args.http))?;
        tracing::info!(addr = %args.http, "HTTP API on POST /v1/query, /metrics, /healthz");
        let router = lanner_query::http::router(
            engine.clone(),
            args.http_token.clone(),
            Arc::clone(&metrics),
        );
        let stop = shutdown.clone();
        tasks.spawn(async move {
            lanner_query::http::serve(listener, router, async move { stop.wait().await })
                .await
                .context("HTTP server")
        });
    }
    if !args.pg.is_empty() {
        pg::setup_catalog(engine.context())?;
        let config = PgConfig {
            addr: args.pg.clone(),
            login: args
                .pg_password
                .clone()
                .filter(|p| !p.is_empty())
                .map(|p| (args.pg_user.clone(), p)),
            tls: args.pg_tls_cert.clone().zip(args.pg_tls_key.clone()),
        };
        tracing::info!(addr = %args.pg, password = config.login.is_some(), "Postgres wire protocol");
        let ctx = Arc::new(engine.context().clone());
        let metrics = Arc::clone(&metrics);
        tasks.spawn(async move {
            pg::serve(ctx, config, metrics)
                .await
                .map_err(anyhow::Error::from)
        });
    }
    tokio::select! {
        () = shutdown.wait() => {
            tracing::info!("shutting down");
            Ok(())
        }
        Some(done) = tasks.join_next() => {
            match done {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(anyhow::anyhow!("server task failed: {e}")),
            }
        }
    }
}

/// mimalloc, as the other stages: converting archived rows back into events (the
/// retro-hunt) allocates and frees many small strings, where glibc's allocator spent a
/// third of the time (see BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
