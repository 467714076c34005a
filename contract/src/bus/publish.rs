//! Publishing to JetStream with de-duplication ids, waiting for every ack.

use anyhow::Context as _;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use bytes::Bytes;

use crate::subjects::{HDR_CONTENT, HDR_SCHEMA};

/// Schema version carried by every message in the `Lanner-Schema` header.
pub const SCHEMA_VERSION: &str = "1";

/// A message a stage wants published.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// Subject to publish on.
    pub subject: String,
    /// Payload.
    pub payload: Bytes,
    /// `Nats-Msg-Id`: must be derived from the input (stream sequence, content hash),
    /// so that a redelivered input produces the same id and JetStream drops the copy.
    pub msg_id: String,
    /// `Lanner-Content` header value.
    pub content: &'static str,
}

/// What JetStream said about a set of publishes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// Messages stored.
    pub stored: u64,
    /// Messages JetStream recognised as duplicates (same `Nats-Msg-Id`).
    pub duplicates: u64,
}

/// The headers lanner puts on every message.
pub fn headers(content: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(HDR_SCHEMA, SCHEMA_VERSION);
    h.insert(HDR_CONTENT, content);
    h
}

/// Sends one message; returns the future of its ack.
pub async fn send(js: &jetstream::Context, out: Outgoing) -> anyhow::Result<PublishAckFuture> {
    let msg = PublishMessage::build()
        .payload(out.payload)
        .headers(headers(out.content))
        .message_id(&out.msg_id);
    js.send_publish(out.subject.clone(), msg)
        .await
        .with_context(|| format!("publishing to {}", out.subject))
}

/// Publishes all messages (pipelined) and waits until JetStream acked every one.
/// An error means some may not be stored: the caller must not ack its inputs.
pub async fn publish_all(
    js: &jetstream::Context,
    outs: Vec<Outgoing>,
) -> anyhow::Result<PublishReport> {
    acked(send_all(js, outs).await?).await
}

/// Sends all messages, in order, without waiting for JetStream; returns the futures
/// of their acks, for [`acked`].
pub async fn send_all(
    js: &jetstream::Context,
    outs: Vec<Outgoing>,
) -> anyhow::Result<Vec<PublishAckFuture>> {
    let mut pending = Vec::with_capacity(outs.len());
    for out in outs {
        pending.push(send(js, out).await?);
    }
    Ok(pending)
}

/// Waits until JetStream acked every message sent by [`send_all`].
pub async fn acked(pending: Vec<PublishAckFuture>) -> anyhow::Result<PublishReport> {
    let mut report = PublishReport::default();
    for fut in pending {
        let ack = fut
            .await
            .context("waiting for JetStream to ack a publish")?;
        if ack.duplicate {
            report.duplicates += 1;
        } else {
            report.stored += 1;
        }
    }
    Ok(report)
}
