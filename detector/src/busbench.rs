//! `lanner-detector bench-bus`: throughput of 1..N detector replicas on a real
//! JetStream stream, against bare consumption (pull, decode, ack) of the same stream,
//! measured in the same run.
//!
//! The events (the [`lanner_engine::mix`] mix) are published once to `lanner.events.<node>`;
//! each measurement creates a fresh durable consumer that starts at the beginning of
//! the stream and times how long its replicas take to ack every batch. Replicas run as
//! tasks of this process, each with its own NATS connection. N replicas are compared
//! with N bare consumers measured just before them, in time and in CPU (this process's,
//! plus nats-server's with `--nats-pid`): on a shared machine the CPU ratio is the
//! steadier of the two.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer::pull};
use lanner_contract::batch_pool::{BatchPool, PooledBatch};
use lanner_contract::bus::{
    self, Delivery, NatsArgs, Outgoing, Stage, StageConfig, StageStats, StreamSettings,
};
use lanner_contract::{codec, subjects};

use crate::service::{Counters, DEFAULT_APPEND_OUTPUT, Detector, Loaded, OutputKind};
use lanner_engine::rules::{Matching, load_files};

/// Flags of `bench-bus`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Rule files.
    #[arg(long = "rules", required = true)]
    pub rules: Vec<std::path::PathBuf>,
    /// Events to publish.
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// Events per message.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Replica counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub replicas: Vec<usize>,
    /// Rounds; each measures bare consumption, then every replica count, so each
    /// ratio compares runs moments apart. The summary gives each ratio's median.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Keep the mix's firing events in one block of 100 out of N, near misses in the
    /// others: 1 is the mix's 2 % of events raising an alert, 20 is 0.1 %.
    #[arg(long, default_value_t = 1)]
    pub alerts_one_in: usize,
    /// Replicas decode the next pulled batch while judging one (the detector's
    /// `--decode-ahead`), instead of judging each message as soon as it is decoded.
    #[arg(long)]
    pub decode_ahead: bool,
    /// Process id of the nats-server, to also report its CPU per event (Linux).
    #[arg(long)]
    pub nats_pid: Option<u32>,
    /// NATS connection.
    #[command(flatten)]
    pub nats: NatsArgs,
}

/// Pull, decode (every field, into the events of batches already consumed, as the
/// detector decodes), ack: the floor any stage pays.
struct Bare {
    pool: Arc<BatchPool>,
}

impl Bare {
    fn new() -> Self {
        Bare {
            pool: Arc::new(BatchPool::new(128)),
        }
    }
}

impl Stage for Bare {
    type Input = PooledBatch;
    fn decode(
        &mut self,
        _: &str,
        _: Option<&HeaderMap>,
        payload: &[u8],
    ) -> Result<PooledBatch, String> {
        self.pool.decode(payload, None).map_err(|e| e.to_string())
    }
    /// As a replica consumes: each message's events go back to the pool, still in the
    /// cache, before the next message is decoded.
    fn process_each(&self) -> bool {
        true
    }

    async fn process(
        &mut self,
        _batch: Vec<Delivery<PooledBatch>>,
    ) -> anyhow::Result<Vec<Outgoing>> {
        Ok(Vec::new())
    }
}

async fn drain<S: Stage + 'static>(
    args: &BenchArgs,
    node: &str,
    replicas: usize,
    make: impl Fn() -> S,
) -> anyhow::Result<Duration> {
    let durable = format!(
        "bench_{}_{}",
        std::process::id(),
        lanner_engine::output::alert_id(node, &format!("{replicas}{:?}", Instant::now()))[..8]
            .to_owned()
    );
    let mut cfg = StageConfig::new(
        "bench",
        subjects::EVENTS.name,
        &durable,
        &subjects::events(node),
    );
    cfg.batch_max = 64;
    let client = args.nats.connect("lanner-bench").await?;
    let js = jetstream::new(client);
    let consumer = bus::stage::open_consumer(&js, &cfg).await?;
    drop(consumer);
    let shutdown = bus::shutdown::Shutdown::new();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..replicas {
        let js = jetstream::new(args.nats.connect("lanner-bench-replica").await?);
        let (cfg, stage, sd) = (cfg.clone(), make(), shutdown.clone());
        tasks.push(tokio::spawn(async move {
            bus::run_stage(js, cfg, stage, sd, Arc::new(StageStats::default())).await
        }));
    }
    let stream = js.get_stream(subjects::EVENTS.name).await?;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut c = stream
            .get_consumer::<pull::Config>(&durable)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let info = c.info().await?;
        if info.num_pending == 0
            && info.num_ack_pending == 0
            && info.ack_floor.stream_sequence >= info.delivered.stream_sequence
            && info.delivered.stream_sequence > 0
        {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("consumer did not drain in 10 minutes");
        }
    }
    let took = start.elapsed();
    shutdown.trigger();
    for t in tasks {
        t.await.context("replica task")??;
    }
    stream.delete_consumer(&durable).await.ok();
    Ok(took)
}

/// CPU seconds (user + system) this process has used; 0 off Linux.
fn process_cpu_secs() -> f64 {
    cpu_secs_of("self")
}

/// CPU seconds (user + system) of process `pid` (`self` for this one); 0 off Linux.
fn cpu_secs_of(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Runs the measurement and prints a table.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let (rs, _) = load_files(&args.rules, DEFAULT_APPEND_OUTPUT)
        .map_err(|e| anyhow::anyhow!("rules do not load:\n{e}"))?;
    let js = jetstream::new(args.nats.connect("lanner-bench").await?);
    bus::ensure_streams(&js, &StreamSettings::default()).await?;
    let node = format!("bench{}", std::process::id());
    let events = lanner_engine::mix::mix_with_fewer_alerts(args.events, args.alerts_one_in);
    let mut acks = Vec::new();
    for (i, chunk) in events.chunks(args.batch.max(1)).enumerate() {
        let mut h = HeaderMap::new();
        h.insert("Nats-Msg-Id", format!("{node}-{i}").as_str());
        acks.push(
            js.publish_with_headers(
                subjects::events(&node),
                h,
                codec::encode_batch(chunk).into(),
            )
            .await?,
        );
        if acks.len() >= 256 {
            for a in acks.drain(..) {
                a.await?;
            }
        }
    }
    for a in acks {
        a.await?;
    }
    let n = events.len() as f64;
    println!(
        "{} events in {} messages of {} on {}",
        events.len(),
        events.len().div_ceil(args.batch.max(1)),
        args.batch,
        subjects::events(&node)
    );
    // Gigabytes of events: freed before measuring, not during.
    drop(events);
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); args.replicas.len()];
    // The same comparison in CPU (this process and, with `--nats-pid`, nats-server):
    // what the detector costs does not depend on what else shares the machine.
    let mut cpu_ratios: Vec<Vec<f64>> = vec![Vec::new(); args.replicas.len()];
    let nats_cpu = || {
        args.nats_pid
            .map_or(0.0, |pid| cpu_secs_of(&pid.to_string()))
    };
    let nats_note = |secs: f64| match args.nats_pid {
        Some(_) => format!("  nats-server {:>5.2} µs CPU/event", secs / n * 1e6),
        None => String::new(),
    };
    for round in 1..=args.rounds.max(1) {
        for (k, &r) in args.replicas.iter().enumerate() {
            // Bare consumption with as many consumers as replicas: several consumers
            // decode on several cores, so one bare consumer would flatter replicas.
            let (cpu0, ncpu0) = (process_cpu_secs(), nats_cpu());
            let bare = drain(&args, &node, r, Bare::new).await?;
            let (bare_cpu, bare_ncpu) = (process_cpu_secs() - cpu0, nats_cpu() - ncpu0);
            println!(
                "round {round}: bare consumption (pull+decode+ack), {r} consumer(s): {:>7.3} s {:>9.0} events/s  {:>5.2} µs CPU/event{}",
                bare.as_secs_f64(),
                n / bare.as_secs_f64(),
                bare_cpu / n * 1e6,
                nats_note(bare_ncpu),
            );
            // Each replica count starts from uncalibrated rules, as fresh replicas do.
            let state = Arc::new(std::sync::RwLock::new(Arc::new(Loaded::new(
                rs.clone(),
                None,
            ))));
            let counters = Arc::new(Counters::default());
            let decode_ahead = args.decode_ahead;
            let (cpu0, ncpu0) = (process_cpu_secs(), nats_cpu());
            let took = drain(&args, &node, r, || {
                Detector::new(
                    state.clone(),
                    Matching::First,
                    OutputKind::Nats,
                    counters.clone(),
                )
                .with_decode_ahead(decode_ahead)
            })
            .await?;
            let (cpu, ncpu) = (process_cpu_secs() - cpu0, nats_cpu() - ncpu0);
            let ratio = took.as_secs_f64() / bare.as_secs_f64();
            ratios[k].push(ratio);
            let cpu_ratio = (cpu + ncpu) / (bare_cpu + bare_ncpu).max(1e-9);
            cpu_ratios[k].push(cpu_ratio);
            println!(
                "round {round}: detector, {r} replica(s), decode ahead {}: {:>7.3} s {:>9.0} events/s  {:>5.2} µs CPU/event{}  ({:+.1}% time, {:+.1}% CPU vs bare with {r}, {} alerts)",
                if decode_ahead { "on " } else { "off" },
                took.as_secs_f64(),
                n / took.as_secs_f64(),
                cpu / n * 1e6,
                nats_note(ncpu),
                (ratio - 1.0) * 100.0,
                (cpu_ratio - 1.0) * 100.0,
                counters.alerts.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
    }
    for (k, r) in args.replicas.iter().enumerate() {
        println!(
            "median over {} rounds: {r} replica(s) {:+.1}% time, {:+.1}% CPU{} vs bare with {r} consumer(s)",
            ratios[k].len(),
            (median(&mut ratios[k]) - 1.0) * 100.0,
            (median(&mut cpu_ratios[k]) - 1.0) * 100.0,
            if args.nats_pid.is_some() {
                " (with nats-server's)"
            } else {
                ""
            }
        );
    }
    let stream = js.get_stream(subjects::EVENTS.name).await?;
    stream.purge().filter(subjects::events(&node)).await.ok();
    let alerts = js.get_stream(subjects::ALERTS.name).await?;
    alerts.purge().filter(subjects::alerts(&node)).await.ok();
    Ok(())
}
