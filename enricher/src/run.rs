//! Command-line flags (with `LANNER_*` environment overrides) and the service: connect,
//! ensure the streams, follow the container runtimes, run the stage until SIGTERM/SIGINT.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use lanner_contract::bus::{
    self, NatsArgs, StageConfig, StageStats, StreamSettings, shutdown::Shutdown,
};
use lanner_contract::subjects;

use crate::actions::{ActionPolicy, ActionStage};
use crate::cache::MetaCache;
use crate::enrich::Enricher;
use crate::http::Sources;
use crate::metrics::EnrichStats;
use crate::runtime::Runtimes;
use crate::stage::EnricherStage;

/// Flags of `lanner-enricher`.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "lanner-enricher",
    version,
    about = "Adds container context to raw events (lanner.raw.<node> -> lanner.events.<node>)"
)]
pub struct Args {
    /// Node whose raw events to enrich.
    #[arg(long, env = "LANNER_NODE")]
    pub node: String,
    /// Docker Engine API socket.
    #[arg(
        long,
        env = "LANNER_DOCKER_SOCKET",
        default_value = "/var/run/docker.sock"
    )]
    pub docker_socket: String,
    /// containerd API socket (Kubernetes nodes without Docker); asked after Docker.
    #[arg(
        long,
        env = "LANNER_CONTAINERD_SOCKET",
        default_value = "/run/containerd/containerd.sock"
    )]
    pub containerd_socket: String,
    /// containerd namespace holding the containers (the CRI plugin's is `k8s.io`).
    #[arg(long, env = "LANNER_CONTAINERD_NAMESPACE", default_value = "k8s.io")]
    pub containerd_namespace: String,
    /// Do not ask containerd.
    #[arg(long, env = "LANNER_ENRICHER_NO_CONTAINERD")]
    pub no_containerd: bool,
    /// Run without a container runtime (events pass through with `container.id` alone).
    #[arg(long, env = "LANNER_ENRICHER_NO_RUNTIME")]
    pub no_runtime: bool,
    /// Longest wait for the engine on a cache miss, per batch, in milliseconds.
    #[arg(long, env = "LANNER_ENRICHER_LOOKUP_WAIT_MS", default_value_t = 300)]
    pub lookup_wait_ms: u64,
    /// Most input messages processed at once.
    #[arg(long, env = "LANNER_ENRICHER_BATCH_MAX", default_value_t = 64)]
    pub batch_max: usize,
    /// Seconds between counter lines in the log (0: never).
    #[arg(long, env = "LANNER_ENRICHER_STATS_INTERVAL", default_value_t = 60)]
    pub stats_interval: u64,
    /// Audit response actions without carrying them out.
    #[arg(long, env = "LANNER_ENRICHER_DRY_RUN")]
    pub dry_run: bool,
    /// Containers with this label (any value but `false`) are never acted on.
    #[arg(
        long,
        env = "LANNER_ENRICHER_EXEMPT_LABEL",
        default_value = "lanner.exempt"
    )]
    pub exempt_label: String,
    /// Label marking lanner's own containers, never acted on.
    #[arg(
        long,
        env = "LANNER_ENRICHER_OWN_LABEL",
        default_value = "lanner.component"
    )]
    pub own_label: String,
    /// Seconds a stop action waits before killing.
    #[arg(long, env = "LANNER_ENRICHER_STOP_GRACE", default_value_t = 10)]
    pub stop_grace_secs: i32,
    /// Address for `/metrics` and `/healthz` (e.g. `0.0.0.0:9102`); none when unset.
    #[arg(long, env = "LANNER_ENRICHER_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// NATS connection.
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Stream settings (applied by `ensure_streams`).
    #[command(flatten)]
    pub streams: StreamSettings,
}

/// Runs the enricher until `shutdown` is set, counting into `stats`.
pub async fn run(args: Args, shutdown: Shutdown, stats: Arc<EnrichStats>) -> anyhow::Result<()> {
    let client = args.nats.connect("lanner-enricher").await?;
    let js = async_nats::jetstream::new(client);
    bus::ensure_streams(&js, &args.streams)
        .await
        .context("creating the streams")?;
    let runtimes = if args.no_runtime {
        Runtimes::default()
    } else {
        Runtimes::new(
            Some(&args.docker_socket),
            (!args.no_containerd).then_some((
                args.containerd_socket.as_str(),
                args.containerd_namespace.as_str(),
            )),
        )
    };
    let cache = MetaCache::new(
        runtimes.clone(),
        Duration::from_millis(args.lookup_wait_ms),
        stats.clone(),
    );
    let follower = tokio::spawn(cache.clone().follow());
    let reporter = (args.stats_interval > 0).then(|| {
        let stats = stats.clone();
        let every = Duration::from_secs(args.stats_interval);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                tracing::info!(counters = %stats.summary(), "enricher");
            }
        })
    });
    let node = args.node.as_str();
    let mut cfg = StageConfig::new(
        "enricher",
        subjects::RAW.name,
        &format!("enricher-{}", subjects::token(node)),
        &subjects::raw(node),
    );
    cfg.batch_max = args.batch_max.max(1);
    let stage = EnricherStage::new(node, Enricher::new(cache, stats.clone()));
    let events_stage = Arc::new(StageStats::default());
    let actions_stage = Arc::new(StageStats::default());
    let server = match args.metrics_addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening for /metrics on {addr}"))?;
            let sources = Arc::new(Sources {
                enrich: stats.clone(),
                events_stage: events_stage.clone(),
                actions_stage: actions_stage.clone(),
            });
            Some(tokio::spawn(crate::http::serve(listener, sources)))
        }
        None => None,
    };
    let events = bus::run_stage(js.clone(), cfg, stage, shutdown.clone(), events_stage);
    let actions = async {
        if runtimes.is_empty() {
            return Ok(());
        }
        let rt = runtimes.clone();
        let policy = ActionPolicy {
            dry_run: args.dry_run,
            exempt_label: args.exempt_label.clone(),
            own_label: args.own_label.clone(),
            stop_grace_secs: args.stop_grace_secs,
        };
        let mut cfg = StageConfig::new(
            "enricher-actions",
            subjects::ACTIONS.name,
            &format!("enricher-actions-{}", subjects::token(node)),
            &subjects::actions(node),
        );
        cfg.batch_max = 16;
        let stage = ActionStage::new(node, rt, policy, stats.clone());
        bus::run_stage(
            js.clone(),
            cfg,
            stage,
            shutdown.clone(),
            actions_stage.clone(),
        )
        .await
    };
    let result = tokio::try_join!(events, actions).map(|_| ());
    follower.abort();
    if let Some(s) = server {
        s.abort();
    }
    if let Some(r) = reporter {
        r.abort();
    }
    tracing::info!(counters = %stats.summary(), "enricher stopped");
    result
}
