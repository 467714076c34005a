//! Stream definitions, created or updated idempotently at every start.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, stream};

use crate::subjects::{ALL_STREAMS, StreamDef};

/// Retention and placement of lanner's streams (flags `--stream-*`, env `LANNER_STREAM_*`).
#[derive(Clone, Debug, clap::Args)]
pub struct StreamSettings {
    /// How long messages are kept, in seconds (0 = forever).
    #[arg(long = "stream-max-age", env = "LANNER_STREAM_MAX_AGE", default_value_t = 24 * 3600)]
    pub max_age_secs: u64,
    /// Bytes kept per stream (-1 = unlimited).
    #[arg(long = "stream-max-bytes", env = "LANNER_STREAM_MAX_BYTES", default_value_t = -1)]
    pub max_bytes: i64,
    /// Replicas per stream (for NATS clusters).
    #[arg(
        long = "stream-replicas",
        env = "LANNER_STREAM_REPLICAS",
        default_value_t = 1
    )]
    pub replicas: usize,
    /// Keep streams in memory instead of on disk.
    #[arg(long = "stream-memory", env = "LANNER_STREAM_MEMORY")]
    pub memory: bool,
    /// JetStream de-duplication window for `Nats-Msg-Id`, in seconds.
    #[arg(
        long = "stream-dedup-window",
        env = "LANNER_STREAM_DEDUP_WINDOW",
        default_value_t = 120
    )]
    pub dedup_window_secs: u64,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            max_age_secs: 24 * 3600,
            max_bytes: -1,
            replicas: 1,
            memory: false,
            dedup_window_secs: 120,
        }
    }
}

impl StreamSettings {
    /// The JetStream configuration of one stream.
    pub fn config(&self, def: &StreamDef) -> stream::Config {
        stream::Config {
            name: def.name.to_owned(),
            subjects: vec![def.subjects.to_owned()],
            description: Some(def.description.to_owned()),
            max_age: Duration::from_secs(self.max_age_secs),
            max_bytes: self.max_bytes,
            num_replicas: self.replicas.max(1),
            storage: if self.memory {
                stream::StorageType::Memory
            } else {
                stream::StorageType::File
            },
            duplicate_window: Duration::from_secs(self.dedup_window_secs),
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            ..Default::default()
        }
    }
}

fn differs(have: &stream::Config, want: &stream::Config) -> bool {
    have.subjects != want.subjects
        || have.max_age != want.max_age
        || have.max_bytes != want.max_bytes
        || have.num_replicas != want.num_replicas
        || have.duplicate_window != want.duplicate_window
        || have.description != want.description
}

/// Creates each of lanner's streams, or updates it when its settings changed.
/// Safe to call from every replica at every start.
pub async fn ensure_streams(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> anyhow::Result<()> {
    for def in ALL_STREAMS {
        ensure_stream(js, settings, def).await?;
    }
    Ok(())
}

/// Creates or updates one stream.
pub async fn ensure_stream(
    js: &jetstream::Context,
    settings: &StreamSettings,
    def: &StreamDef,
) -> anyhow::Result<()> {
    let want = settings.config(def);
    let stream = js
        .get_or_create_stream(want.clone())
        .await
        .with_context(|| format!("creating stream {}", def.name))?;
    let have = &stream.cached_info().config;
    if have.storage != want.storage {
        tracing::warn!(
            stream = def.name,
            "stream storage type differs from the settings; JetStream cannot change it in place"
        );
    }
    if differs(have, &want) {
        let mut update = want;
        update.storage = have.storage;
        js.update_stream(update)
            .await
            .with_context(|| format!("updating stream {}", def.name))?;
        tracing::info!(stream = def.name, "stream settings updated");
    }
    Ok(())
}
