//! The enricher as a bus stage: `lanner.raw.<node>` batches in, enriched batches out on
//! `lanner.events.<node>` with `Nats-Msg-Id = enricher:<node>:<input stream seq>`.

use async_nats::HeaderMap;
use bytes::Bytes;
use lanner_contract::bus::{Delivery, Outgoing, Stage};
use lanner_contract::{Event, codec, subjects};

use crate::enrich::Enricher;

/// The stage.
#[derive(Debug)]
pub struct EnricherStage {
    node: String,
    out_subject: String,
    enricher: Enricher,
}

impl EnricherStage {
    /// A stage for `node`.
    pub fn new(node: &str, enricher: Enricher) -> Self {
        EnricherStage {
            node: subjects::token(node),
            out_subject: subjects::events(node),
            enricher,
        }
    }
}

impl Stage for EnricherStage {
    type Input = Vec<Event>;

    fn decode(
        &mut self,
        _subject: &str,
        _headers: Option<&HeaderMap>,
        payload: &[u8],
    ) -> Result<Vec<Event>, String> {
        codec::decode_batch(payload).map_err(|e| format!("undecodable event batch: {e}"))
    }

    async fn process(&mut self, batch: Vec<Delivery<Vec<Event>>>) -> anyhow::Result<Vec<Outgoing>> {
        let mut outs = Vec::with_capacity(batch.len());
        for mut d in batch {
            self.enricher.enrich(&mut d.value).await;
            outs.push(Outgoing {
                subject: self.out_subject.clone(),
                payload: Bytes::from(codec::encode_batch(&d.value)),
                msg_id: format!("enricher:{}:{}", self.node, d.stream_seq),
                content: subjects::CONTENT_EVENT_BATCH,
            });
        }
        Ok(outs)
    }
}
