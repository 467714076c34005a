//! The detection service: replicas share one durable pull consumer on
//! `lanner.events.>`, judge each batch against the ruleset, and publish each alert once
//! to `lanner.alerts.<node>` (Falco's JSON, `Nats-Msg-Id` = alert id, so a redelivered
//! batch never doubles an alert), or print them as JSON lines (`--output stdout`).
//!
//! With `--policy`, alerts a response policy matches also publish an action request to
//! `lanner.actions.<node>` (see [`crate::policy`]).
//!
//! SIGHUP reloads the rule (and policy) files: a batch is always judged by one ruleset (the one
//! current when it arrived), and a bad new file leaves the old rules running.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::HeaderMap;
use bytes::Bytes;
use lanner_contract::batch_pool::{BatchPool, PooledBatch};
use lanner_contract::bus::{
    self, Decoder, Delivery, NatsArgs, Outgoing, Stage, StageConfig, StageStats, StreamSettings,
};
use lanner_contract::{Event, subjects};

use crate::calibrate::Calibration;
use crate::policy::PolicySet;
use crate::webhook::{Webhook, WebhookError};
use lanner_contract::field_set::StoredFieldSet;
use lanner_engine::alert::AlertBuilder;
use lanner_engine::rules::{Matching, Priority, Ruleset, load_files_with};

/// Content type of alert messages (`Lanner-Content` header).
pub const CONTENT_ALERT: &str = "alert";
/// Content type of response action requests.
pub use lanner_contract::subjects::CONTENT_ACTION;

/// What a replica judges with: the ruleset and the response policy, swapped as one
/// on SIGHUP.
#[derive(Debug)]
pub struct Loaded {
    /// The rules.
    pub rules: Ruleset,
    /// The response policy, if any.
    pub policy: Option<PolicySet>,
    /// The event fields the rules, their outputs and the policy read: the only ones
    /// decoded.
    pub fields: StoredFieldSet,
    /// Whether the rules were calibrated on live events (see [`crate::calibrate`]).
    pub calibrated: bool,
}

impl Loaded {
    /// Rules and policy, with the fields they read.
    pub fn new(rules: Ruleset, policy: Option<PolicySet>) -> Self {
        let mut fields: StoredFieldSet = rules.stored_fields().into_iter().collect();
        if policy.is_some() {
            for f in PolicySet::STORED_FIELDS {
                fields.insert(*f);
            }
        }
        Loaded {
            rules,
            policy,
            fields,
            calibrated: false,
        }
    }

    /// A copy whose rules are calibrated on `sample`.
    pub fn calibrated_on(&self, sample: &[Event]) -> Loaded {
        let mut rules = self.rules.clone();
        rules.calibrate(sample);
        Loaded {
            rules,
            policy: self.policy.clone(),
            fields: self.fields.clone(),
            calibrated: true,
        }
    }
}

/// A message's events, decoded for the rules in force when it arrived, which then judge
/// them (a reload between decoding and judging cannot meet events lacking a field).
#[derive(Debug)]
pub struct Decoded {
    loaded: Arc<Loaded>,
    events: PooledBatch,
}

pub use lanner_engine::DEFAULT_APPEND_OUTPUT;

/// Where alerts go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputKind {
    /// Publish to `lanner.alerts.<node>` on JetStream.
    Nats,
    /// Print JSON lines on stdout.
    Stdout,
}

/// Flags of `lanner-detector run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Rule files, loaded in order as one ruleset.
    #[arg(
        long = "rules",
        env = "LANNER_DETECTOR_RULES",
        value_delimiter = ',',
        required = true
    )]
    pub rules: Vec<PathBuf>,
    /// Where alerts go.
    #[arg(
        long,
        env = "LANNER_DETECTOR_OUTPUT",
        value_enum,
        default_value = "nats"
    )]
    pub output: OutputKind,
    /// Which rules fire when several match one event.
    #[arg(
        long,
        env = "LANNER_DETECTOR_RULE_MATCHING",
        value_enum,
        default_value = "first"
    )]
    pub rule_matching: Matching,
    /// Disable rules less severe than this (Falco's `priority` setting).
    #[arg(long, env = "LANNER_DETECTOR_MIN_PRIORITY", default_value = "debug", value_parser = Priority::parse_arg)]
    pub min_priority: Priority,
    /// Appended to every rule output (Falco's `append_output`).
    #[arg(long, env = "LANNER_DETECTOR_APPEND_OUTPUT", default_value = DEFAULT_APPEND_OUTPUT)]
    pub append_output: String,
    /// Durable consumer name shared by all replicas.
    #[arg(long, env = "LANNER_DETECTOR_DURABLE", default_value = "detector")]
    pub durable: String,
    /// Subject filter of the consumer.
    #[arg(
        long,
        env = "LANNER_DETECTOR_FILTER",
        default_value = "lanner.events.>"
    )]
    pub filter: String,
    /// Response policy file: alerts it matches publish action requests to
    /// `lanner.actions.<node>`.
    #[arg(long, env = "LANNER_DETECTOR_POLICY")]
    pub policy: Option<PathBuf>,
    /// Also POST every alert's JSON to this URL (falcosidekick-compatible; http only).
    #[arg(long, env = "LANNER_DETECTOR_WEBHOOK")]
    pub webhook: Option<String>,
    /// Webhook retries after the first attempt (exponential backoff).
    #[arg(long, env = "LANNER_DETECTOR_WEBHOOK_RETRIES", default_value_t = 5)]
    pub webhook_retries: u32,
    /// Webhook request timeout, seconds.
    #[arg(long, env = "LANNER_DETECTOR_WEBHOOK_TIMEOUT", default_value_t = 5)]
    pub webhook_timeout_secs: u64,
    /// Address of `/metrics` and `/healthz` (empty: off). A replica that cannot bind
    /// it (another replica on the same host has it) runs without.
    #[arg(
        long = "metrics-addr",
        env = "LANNER_DETECTOR_METRICS_ADDR",
        default_value = "127.0.0.1:9465"
    )]
    pub metrics_addr: String,
    /// Pull and decode the next pulled batch on another core while judging this one.
    /// Off (the default), each message is judged right after it is decoded, while its
    /// events are still in the cache: on this project's 2-core benchmark that costs
    /// less CPU and time than decoding ahead, even for a lone replica (BENCHMARKS.md).
    #[arg(
        long,
        env = "LANNER_DETECTOR_DECODE_AHEAD",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub decode_ahead: bool,
    /// Events judged before the rules are calibrated on them (reordering each
    /// condition's checks by what this traffic shows; results do not change). 0: never.
    #[arg(long, env = "LANNER_DETECTOR_CALIBRATE_SAMPLE", default_value_t = crate::calibrate::DEFAULT_SAMPLE)]
    pub calibrate_sample: usize,
    /// Most messages (event batches) judged at once.
    #[arg(long, env = "LANNER_DETECTOR_BATCH_MAX", default_value_t = 64)]
    pub batch_max: usize,
    /// Seconds JetStream waits for an ack before redelivering to another replica.
    #[arg(
        long = "ack-wait",
        env = "LANNER_DETECTOR_ACK_WAIT",
        default_value_t = 30
    )]
    pub ack_wait_secs: u64,
    /// NATS connection.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Stream settings.
    #[command(flatten)]
    pub streams: StreamSettings,
}

/// Counters of one replica.
#[derive(Debug, Default)]
pub struct Counters {
    /// Events judged (those of types no rule matches included: the rule index judges
    /// them).
    pub events: AtomicU64,
    /// Events of types no rule matches, checked and skipped undecoded.
    pub skipped: AtomicU64,
    /// Batches judged.
    pub batches: AtomicU64,
    /// Alerts produced.
    pub alerts: AtomicU64,
    /// Action requests produced.
    pub actions: AtomicU64,
    /// Alerts per (rule, priority).
    pub by_rule: std::sync::Mutex<std::collections::BTreeMap<(String, String), u64>>,
}

impl Counters {
    fn count_alert(&self, rule: &str, priority: &str) {
        self.alerts.fetch_add(1, Ordering::Relaxed);
        let mut m = match self.by_rule.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        match m.get_mut(&(rule.to_owned(), priority.to_owned())) {
            Some(n) => *n += 1,
            None => {
                m.insert((rule.to_owned(), priority.to_owned()), 1);
            }
        }
    }
}

/// Batches whose events a replica keeps for reuse: as many as are in flight at the
/// default `--batch-max` (one batch judged, the next decoded).
const POOLED_BATCHES: usize = 128;

/// The stage: decodes event batches, judges them, emits alerts.
pub struct Detector {
    state: Arc<RwLock<Arc<Loaded>>>,
    builder: AlertBuilder,
    output: OutputKind,
    counters: Arc<Counters>,
    webhook: Option<Webhook>,
    calibration: Calibration,
    /// Events of judged batches, decoded into again (see
    /// [`lanner_contract::batch_pool`]).
    pool: Arc<BatchPool>,
    /// Whether the next batch is decoded in a task of its own ([`Stage::decoder`]).
    decode_ahead: bool,
}

impl Detector {
    /// Calibrates the rules after judging `sample` events (`0`: never); see
    /// [`crate::calibrate`].
    pub fn with_calibration(mut self, sample: usize) -> Self {
        self.calibration = Calibration::new(sample);
        self
    }

    /// Decodes the next batch beside judging this one, or each message in the judging
    /// task just before judging it (the default); see [`RunArgs::decode_ahead`].
    pub fn with_decode_ahead(mut self, on: bool) -> Self {
        self.decode_ahead = on;
        self
    }

    /// Also posts alerts to a webhook.
    pub fn with_webhook(mut self, webhook: Option<Webhook>) -> Self {
        self.webhook = webhook;
        self
    }

    /// A detector over a shared, reloadable ruleset.
    pub fn new(
        state: Arc<RwLock<Arc<Loaded>>>,
        matching: Matching,
        output: OutputKind,
        counters: Arc<Counters>,
    ) -> Self {
        Detector {
            state,
            builder: AlertBuilder::new(matching),
            output,
            counters,
            webhook: None,
            calibration: Calibration::new(crate::calibrate::DEFAULT_SAMPLE),
            pool: Arc::new(BatchPool::new(POOLED_BATCHES)),
            decode_ahead: false,
        }
    }

    fn snapshot(&self) -> Arc<Loaded> {
        snapshot(&self.state)
    }
}

/// The rules in force.
fn snapshot(state: &RwLock<Arc<Loaded>>) -> Arc<Loaded> {
    match state.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

/// Decodes the events some rule in force may match (by their type: Falco, too, only
/// follows the syscalls its rules need) and the fields the rules read, into the events
/// of a batch judged earlier. The other events are checked and skipped: no rule could
/// raise an alert on them.
fn decode_for(
    loaded: Arc<Loaded>,
    pool: &Arc<BatchPool>,
    payload: &[u8],
) -> Result<Decoded, String> {
    // Every field kept (the upstream rules' outputs read them all): decoding without
    // a filter skips a set lookup per field.
    let keep = (loaded.fields.len() < lanner_contract::model::STORED_FIELDS.len())
        .then_some(&loaded.fields);
    let rules = &loaded.rules;
    let events = pool
        .decode_wanted(payload, keep, &|t| !rules.candidates(t).is_empty())
        .map_err(|e| e.to_string())?;
    Ok(Decoded { loaded, events })
}

/// The node an events subject belongs to (`lanner.events.<node>` → `<node>`).
fn node_of(subject: &str) -> &str {
    subject.rsplit('.').next().unwrap_or(subject)
}

impl Stage for Detector {
    type Input = Decoded;

    fn decode(
        &mut self,
        _subject: &str,
        _headers: Option<&HeaderMap>,
        payload: &[u8],
    ) -> Result<Decoded, String> {
        decode_for(self.snapshot(), &self.pool, payload)
    }

    fn decoder(&self) -> Option<Decoder<Decoded>> {
        if !self.decode_ahead {
            return None;
        }
        let (state, pool) = (self.state.clone(), self.pool.clone());
        Some(Box::new(move |_subject, _headers, payload| {
            decode_for(snapshot(&state), &pool, payload)
        }))
    }

    fn process_each(&self) -> bool {
        // Decoded events take many times their message's bytes: a whole pulled batch
        // of them (up to `--batch-max` messages) leaves the cache before it is judged.
        !self.decode_ahead
    }

    async fn process(&mut self, batch: Vec<Delivery<Decoded>>) -> anyhow::Result<Vec<Outgoing>> {
        let mut out = Vec::new();
        let mut stdout = String::new();
        let mut hooks: Vec<String> = Vec::new();
        let mut json = String::new();
        for d in &batch {
            let loaded = &d.value.loaded;
            let rules = &loaded.rules;
            let node = node_of(&d.subject);
            let subject = subjects::alerts(node);
            let action_subject = subjects::actions(node);
            let events = &d.value.events;
            for (i, ev) in events.iter().enumerate() {
                // The event's place in the message, skipped events counted.
                let fallback = || format!("{}/{}/{}", d.subject, d.stream_seq, events.position(i));
                self.builder
                    .judge_json(rules, ev, node, fallback, &mut json, |alert, json| {
                        if let Some(req) = loaded
                            .policy
                            .as_ref()
                            .and_then(|p| p.decide(&alert, ev, node))
                        {
                            let req_json = serde_json::to_string(&req).unwrap_or_default();
                            match self.output {
                                OutputKind::Nats => out.push(Outgoing {
                                    subject: action_subject.clone(),
                                    payload: Bytes::from(req_json),
                                    msg_id: req.id.clone(),
                                    content: CONTENT_ACTION,
                                }),
                                OutputKind::Stdout => {
                                    stdout.push_str(&format!("{{\"lanner_action\":{req_json}}}\n"));
                                }
                            }
                            self.counters.actions.fetch_add(1, Ordering::Relaxed);
                        }
                        if self.webhook.is_some() {
                            hooks.push(json.to_owned());
                        }
                        match self.output {
                            OutputKind::Nats => out.push(Outgoing {
                                subject: subject.clone(),
                                payload: Bytes::copy_from_slice(json.as_bytes()),
                                msg_id: alert.uuid.to_owned(),
                                content: CONTENT_ALERT,
                            }),
                            OutputKind::Stdout => {
                                stdout.push_str(json);
                                stdout.push('\n');
                            }
                        }
                        self.counters.count_alert(alert.rule, alert.priority);
                    });
            }
            self.counters
                .events
                .fetch_add(events.batch_events() as u64, Ordering::Relaxed);
            self.counters.skipped.fetch_add(
                (events.batch_events() - events.len()) as u64,
                Ordering::Relaxed,
            );
            self.calibration
                .observe(&self.state, &d.value.loaded, &d.value.events);
        }
        self.counters
            .batches
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        if let Some(w) = &self.webhook {
            for body in &hooks {
                match w.post(body.as_bytes()).await {
                    Ok(()) => {}
                    Err(e @ WebhookError::Rejected(_)) => {
                        tracing::warn!(error = %e, "webhook rejected an alert; not retrying it")
                    }
                    Err(e) => {
                        return Err(anyhow::anyhow!(e).context("posting alerts to the webhook"));
                    }
                }
            }
        }
        if !stdout.is_empty() {
            use std::io::Write as _;
            let mut so = std::io::stdout().lock();
            so.write_all(stdout.as_bytes())
                .context("writing alerts to stdout")?;
            so.flush().context("flushing stdout")?;
        }
        Ok(out)
    }
}

fn load(args: &RunArgs) -> anyhow::Result<Loaded> {
    let (rs, report) = load_files_with(&args.rules, &args.append_output, Some(args.min_priority))
        .map_err(|e| anyhow::anyhow!("rule files do not load:\n{e}"))?;
    for d in &report.disabled {
        tracing::warn!(rule = %d.name, at = %d.loc, reason = %d.reason, "rule disabled");
    }
    let policy = match &args.policy {
        Some(p) => Some(
            PolicySet::load(p).map_err(|e| anyhow::anyhow!("policy file does not load: {e}"))?,
        ),
        None => None,
    };
    tracing::info!(
        enabled = rs.rules().len(),
        disabled = report.disabled.len(),
        policies = policy.as_ref().map_or(0, |p| p.policies().len()),
        "rules loaded"
    );
    Ok(Loaded::new(rs, policy))
}

/// Reloads the rules on every SIGHUP; keeps the old ones when the new files are bad.
fn spawn_reloader(
    args: Arc<RunArgs>,
    rules: Arc<RwLock<Arc<Loaded>>>,
    rules_enabled: Arc<AtomicU64>,
) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; rule reload disabled");
            return;
        };
        while hup.recv().await.is_some() {
            let a = args.clone();
            match tokio::task::spawn_blocking(move || load(&a)).await {
                Ok(Ok(rs)) => {
                    let n = rs.rules.rules().len();
                    rules_enabled.store(n as u64, Ordering::Relaxed);
                    match rules.write() {
                        Ok(mut g) => *g = Arc::new(rs),
                        Err(p) => *p.into_inner() = Arc::new(rs),
                    }
                    tracing::info!(enabled = n, "rules reloaded on SIGHUP");
                }
                Ok(Err(e)) => tracing::error!(
                    error = format!("{e:#}"),
                    "rule reload failed; keeping the previous rules"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "rule reload task failed; keeping the previous rules")
                }
            }
        }
    });
}

/// Runs the service until SIGTERM/SIGINT.
pub fn main(args: RunArgs) -> anyhow::Result<()> {
    lanner_contract::logging::init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(run(args))
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let loaded = load(&args)?;
    let rules_enabled = Arc::new(AtomicU64::new(loaded.rules.rules().len() as u64));
    let rules = Arc::new(RwLock::new(Arc::new(loaded)));
    let args = Arc::new(args);
    spawn_reloader(args.clone(), rules.clone(), rules_enabled.clone());
    let client = args.nats.connect("lanner-detector").await?;
    let js = async_nats::jetstream::new(client);
    bus::ensure_streams(&js, &args.streams).await?;
    let mut cfg = StageConfig::new(
        "detector",
        subjects::EVENTS.name,
        &args.durable,
        &args.filter,
    );
    cfg.batch_max = args.batch_max.max(1);
    cfg.ack_wait = Duration::from_secs(args.ack_wait_secs.max(1));
    let counters = Arc::new(Counters::default());
    let webhook = match &args.webhook {
        Some(url) => Some(Webhook::new(
            url,
            args.webhook_retries,
            Duration::from_secs(args.webhook_timeout_secs.max(1)),
        )?),
        None => None,
    };
    let detector = Detector::new(rules, args.rule_matching, args.output, counters.clone())
        .with_webhook(webhook)
        .with_calibration(args.calibrate_sample)
        .with_decode_ahead(args.decode_ahead);
    let stats = Arc::new(StageStats::default());
    if !args.metrics_addr.is_empty() {
        match tokio::net::TcpListener::bind(&args.metrics_addr).await {
            Ok(l) => {
                tracing::info!(addr = %args.metrics_addr, "serving /metrics and /healthz");
                let sources = Arc::new(crate::metrics::Sources {
                    counters: counters.clone(),
                    stage: stats.clone(),
                    rules_enabled: rules_enabled.clone(),
                });
                tokio::spawn(crate::metrics::serve(l, sources));
            }
            Err(e) => {
                tracing::warn!(addr = %args.metrics_addr, error = %e, "cannot serve metrics; continuing without")
            }
        }
    }
    let shutdown = bus::shutdown::Shutdown::on_signals();
    let res = bus::run_stage(js, cfg, detector, shutdown, stats.clone()).await;
    eprintln!(
        "lanner-detector: judged_events={} judged_batches={} alerts={} actions={} published={} duplicates={} dead_lettered={}",
        counters.events.load(Ordering::Relaxed),
        counters.batches.load(Ordering::Relaxed),
        counters.alerts.load(Ordering::Relaxed),
        counters.actions.load(Ordering::Relaxed),
        StageStats::get(&stats.published),
        StageStats::get(&stats.duplicates),
        StageStats::get(&stats.dead_lettered),
    );
    res
}
