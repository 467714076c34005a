//! `lanner-detector`: Falco rules judged at scale.
//!
//! - `validate RULES...`: loads rule files, prints per-file counts and disabled rules,
//!   exits non-zero on any error;
//! - `lint-condition`: one condition per line on stdin → `ok` or `error: <message>`;
//! - `judge --rules FILE... [EVENTS.jsonl...]`: offline judging of JSON-lines events;
//! - `run --rules FILE...`: the detection service (see `lanner_detector::service`);
//! - `bench-bus`: replica throughput against bare consumption on a real JetStream.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lanner_engine::condition;
use lanner_engine::rules::Loader;

#[derive(Parser)]
#[command(
    name = "lanner-detector",
    version,
    about = "Falco-compatible detection for lanner"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Load rule files (in order, as one ruleset) and report what loaded.
    Validate {
        /// Rule files.
        #[arg(required = true)]
        rules: Vec<PathBuf>,
        /// Also print warnings.
        #[arg(long)]
        warnings: bool,
    },
    /// Check condition syntax: one condition per line on stdin.
    LintCondition,
    /// Judge events from JSON lines (files or stdin) offline; alerts as JSON lines.
    Judge {
        /// Rule files (or directories).
        #[arg(long = "rules", required = true)]
        rules: Vec<PathBuf>,
        /// Event files in JSON lines (default: stdin).
        events: Vec<PathBuf>,
        /// Which rules fire when several match one event.
        #[arg(long, value_enum, default_value = "first")]
        rule_matching: lanner_engine::rules::Matching,
        /// Appended to every rule output.
        #[arg(long, default_value = lanner_detector::service::DEFAULT_APPEND_OUTPUT)]
        append_output: String,
    },
    /// Run the detection service.
    Run(Box<lanner_detector::service::RunArgs>),
    /// Measure replica throughput against bare consumption on a real JetStream.
    BenchBus(Box<lanner_detector::busbench::BenchArgs>),
}

fn validate(rules: &[PathBuf], warnings: bool) -> ExitCode {
    let mut loader = Loader::new();
    for r in rules {
        loader.add_file(r);
    }
    let (_, report) = loader.finish();
    for f in &report.files {
        let disabled: Vec<_> = report
            .disabled
            .iter()
            .filter(|d| *d.loc.file == *f.file)
            .collect();
        println!(
            "{}: {} rules, {} macros, {} lists loaded; {} rules enabled, {} disabled",
            f.file,
            f.rules,
            f.macros,
            f.lists,
            f.rules.saturating_sub(disabled.len()),
            disabled.len()
        );
        for d in disabled {
            println!("  disabled: {} ({}): {}", d.name, d.loc, d.reason);
        }
    }
    if warnings {
        for w in &report.warnings {
            println!("warning: {w}");
        }
    }
    for e in &report.errors {
        println!("error: {e}");
    }
    println!(
        "total: {} rules enabled, {} disabled, {} errors, {} warnings",
        report.enabled,
        report.disabled.len(),
        report.errors.len(),
        report.warnings.len()
    );
    if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn lint() -> ExitCode {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let res = match condition::parse(&line) {
            Ok(_) => writeln!(out, "ok"),
            Err(e) => {
                failed = true;
                writeln!(out, "error: {e}")
            }
        };
        if res.is_err() {
            return ExitCode::FAILURE;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn judge(
    rules: &[PathBuf],
    events: &[PathBuf],
    matching: lanner_engine::rules::Matching,
    append: &str,
) -> ExitCode {
    let (rs, report) = match lanner_engine::rules::load_files(rules, append) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: rule files do not load:\n{e}");
            return ExitCode::FAILURE;
        }
    };
    for d in &report.disabled {
        eprintln!("disabled: {} ({}): {}", d.name, d.loc, d.reason);
    }
    let builder = lanner_engine::alert::AlertBuilder::new(matching);
    let mut out = std::io::stdout().lock();
    let (mut n, mut alerts, mut bad) = (0usize, 0usize, 0usize);
    let mut run = |name: &str, reader: Box<dyn BufRead>| {
        for item in lanner_contract::jsonl::read_events(reader) {
            match item {
                Ok((line, ev)) => {
                    n += 1;
                    builder.judge(
                        &rs,
                        &ev,
                        "local",
                        || format!("{name}:{line}"),
                        |a| {
                            alerts += 1;
                            let _ =
                                writeln!(out, "{}", serde_json::to_string(&a).unwrap_or_default());
                        },
                    );
                }
                Err(e) => {
                    bad += 1;
                    eprintln!("error: {name}: {e}");
                }
            }
        }
    };
    let mut unreadable = 0usize;
    if events.is_empty() {
        run("stdin", Box::new(std::io::BufReader::new(std::io::stdin())));
    } else {
        for f in events {
            match std::fs::File::open(f) {
                Ok(file) => run(
                    &f.display().to_string(),
                    Box::new(std::io::BufReader::new(file)),
                ),
                Err(e) => {
                    unreadable += 1;
                    eprintln!("error: {}: {e}", f.display());
                }
            }
        }
    }
    let bad = bad + unreadable;
    eprintln!("judged {n} events: {alerts} alerts, {bad} bad lines");
    if bad > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// mimalloc: every stage allocates and frees many small shared strings per batch;
/// it costs less per allocation than the system allocator (see BENCHMARKS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    lanner_contract::allocator::keep_freed_memory();
    let cli: Cli = lanner_contract::config::parse();
    match cli.cmd {
        Cmd::Validate { rules, warnings } => validate(&rules, warnings),
        Cmd::LintCondition => lint(),
        Cmd::Judge {
            rules,
            events,
            rule_matching,
            append_output,
        } => judge(&rules, &events, rule_matching, &append_output),
        Cmd::BenchBus(args) => {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(lanner_detector::busbench::run(*args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Run(args) => match lanner_detector::service::main(*args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
