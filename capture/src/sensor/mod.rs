//! Live capture with eBPF: load the kernel programs, read their ring buffer on a
//! dedicated thread, decode records into events with process and container context,
//! and hand batches to the output (JSON lines on stdout, a recording file, and/or
//! `lanner.raw.<node>` on JetStream). Loss is never silent: kernel drops (per CPU),
//! userspace queue drops and NATS-buffer drops are counted, exported as metrics and
//! reported on the bus as `lanner_drop` events.

pub mod btf;
pub mod container;
pub mod decode;
pub mod dns;
pub mod load;
pub mod metrics;
pub mod output;
pub mod proctable;
pub mod reader;
pub mod render;
pub mod stop;
pub mod sys;
pub mod users;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};

/// Flags of live capture (in addition to the common ones in `Cli`).
#[derive(Clone, Debug, clap::Args)]
pub struct SensorArgs {
    /// With --stdout: publish to lanner.raw.<node> as well as printing.
    #[arg(long, env = "LANNER_PUBLISH")]
    pub publish: bool,
    /// Drop read-only opens in the kernel unless their path starts with a --keep-prefix.
    #[arg(long, env = "LANNER_DROP_READ_ONLY_OPENS")]
    pub drop_read_only_opens: bool,
    /// Path prefixes whose read-only opens are kept by --drop-read-only-opens (at most 8,
    /// 32 bytes each).
    #[arg(
        long = "keep-prefix",
        env = "LANNER_KEEP_PREFIXES",
        value_delimiter = ',',
        default_value = "/etc/,/root/,/home/,/boot/,/var/run/secrets,/run/secrets,/proc/1/,/dev/"
    )]
    pub keep_prefixes: Vec<String>,
    /// Drop failed opens in the kernel.
    #[arg(long, env = "LANNER_DROP_FAILED_OPENS")]
    pub drop_failed_opens: bool,
    /// Syscalls not to record, by name (comma-separated).
    #[arg(long, env = "LANNER_SKIP_SYSCALLS", value_delimiter = ',')]
    pub skip_syscalls: Vec<String>,
    /// Wake the reader once this many bytes wait in the ring buffer (it also polls every
    /// 20 ms).
    #[arg(long, env = "LANNER_WAKE_BYTES", default_value_t = 256 * 1024)]
    pub wake_bytes: u64,
    /// Ring buffer size in bytes (a power of two): what absorbs bursts before the kernel
    /// drops (and counts) records.
    #[arg(long, env = "LANNER_RING_BYTES", default_value_t = 16 << 20)]
    pub ring_bytes: u32,
    /// Publish a partial batch after this many milliseconds.
    #[arg(long, env = "LANNER_FLUSH_MS", default_value_t = 200)]
    pub flush_ms: u64,
    /// Bytes of encoded batches kept in memory while NATS is unreachable; beyond that new
    /// batches are dropped and counted.
    #[arg(long, env = "LANNER_BUFFER_BYTES", default_value_t = 256 << 20)]
    pub buffer_bytes: usize,
    /// Seconds between `lanner_drop` reports (sent only when something was lost).
    #[arg(long, env = "LANNER_DROP_REPORT_SECS", default_value_t = 5)]
    pub drop_report_secs: u64,
    /// Decoded events waiting for the outputs (stdout, file, NATS buffer) at most; past
    /// that, batches are dropped and counted.
    #[arg(long, env = "LANNER_QUEUE_EVENTS", default_value_t = 65536)]
    pub queue_events: u64,
    /// Serve Prometheus /metrics and /healthz on this address.
    #[arg(long, env = "LANNER_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Stop after this many events (tests, benchmarks).
    #[arg(long, env = "LANNER_MAX_EVENTS")]
    pub max_events: Option<u64>,
    /// Count events without decoding or emitting them (measures the kernel-to-userspace
    /// rate).
    #[arg(long, hide = true)]
    pub count_only: bool,
    /// Decode events and discard them (measures the decoder: process table, ancestry,
    /// container, rendering) without any output cost.
    #[arg(long, hide = true)]
    pub decode_only: bool,
}

/// A random 16-hex-digit session id.
fn session_id() -> String {
    let mut seed = [0u8; 16];
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    seed[..16].copy_from_slice(&nanos.to_le_bytes());
    let h = xxhash_rust::xxh3::xxh3_64(&[&seed[..], &std::process::id().to_le_bytes()].concat());
    format!("{h:016x}")
}

/// Runs the live sensor until SIGTERM (or `--max-events`).
pub async fn run(cli: &crate::Cli, node: &str) -> Result<()> {
    let args = &cli.sensor;
    let opts = load::KernelOptions {
        drop_read_only_opens: args.drop_read_only_opens,
        keep_prefixes: args.keep_prefixes.clone(),
        drop_failed_opens: args.drop_failed_opens,
        skip_syscalls: args.skip_syscalls.clone(),
        wake_bytes: args.wake_bytes.min(u64::from(args.ring_bytes) / 4),
        ring_bytes: args.ring_bytes,
    };
    let cfg = load::config(&opts, std::process::id())?;
    let loaded = load::load(&cfg, opts.ring_bytes)?;
    let session = session_id();
    let stats = Arc::new(metrics::Stats::default());
    let shutdown = stop::Stop::on_signals();
    if let Some(addr) = args.metrics_addr {
        metrics::serve(addr, stats.clone())
            .await
            .with_context(|| format!("serving metrics on {addr}"))?;
    }
    // A bounded queue (by events, enforced by the reader): when the outputs fall behind,
    // batches are dropped (and counted) there rather than piling up in memory.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<output::Batch>();
    let reader_cfg = reader::ReaderConfig {
        node: node.to_owned(),
        session: session.clone(),
        batch_events: cli.batch_events.max(1),
        flush: Duration::from_millis(args.flush_ms.max(1)),
        drop_report: Duration::from_secs(args.drop_report_secs.max(1)),
        max_events: args.max_events,
        count_only: args.count_only,
        decode_only: args.decode_only,
        queue_events: args.queue_events,
    };
    tracing::info!(node, session, "sensor attached; reading events");
    let reader_stop = shutdown.clone();
    let reader_stats = stats.clone();
    let reader = std::thread::Builder::new()
        .name("lanner-ring".into())
        .spawn(move || reader::run(loaded, reader_cfg, tx, reader_stats, reader_stop))
        .context("starting the ring reader thread")?;
    let out_cfg = output::OutputConfig {
        stdout: cli.stdout,
        publish: args.publish || !cli.stdout,
        record: cli.record.clone(),
        node: node.to_owned(),
        session,
        batch_bytes: cli.batch_bytes,
        max_in_flight: cli.max_in_flight.max(1),
        buffer_bytes: args.buffer_bytes,
    };
    let result = output::run(cli, out_cfg, rx, stats.clone(), shutdown.clone()).await;
    shutdown.set();
    let reader_result = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the ring reader thread panicked"))?;
    tracing::info!("{}", stats.summary());
    result.and(reader_result)
}
