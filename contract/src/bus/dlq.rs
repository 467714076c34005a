//! Dead letters: a message a stage cannot decode goes to `lanner.dlq.<stage>` with the
//! reason in a header, and the stage carries on.

use anyhow::Context as _;
use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;

use crate::subjects::{self, HDR_DLQ_REASON, HDR_DLQ_SEQ, HDR_DLQ_STAGE, HDR_DLQ_SUBJECT};

/// Longest reason kept in the header.
const MAX_REASON: usize = 1024;

/// Makes `reason` a valid one-line header value.
pub fn header_safe(reason: &str) -> String {
    let mut r: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if r.len() > MAX_REASON {
        let mut cut = MAX_REASON;
        while !r.is_char_boundary(cut) {
            cut -= 1;
        }
        r.truncate(cut);
    }
    r
}

/// Publishes `payload` (the original bytes) to `lanner.dlq.<stage>` and waits for the ack.
/// `stream_seq` makes the message id deterministic, so a redelivery is not doubled.
pub async fn dead_letter(
    js: &jetstream::Context,
    stage: &str,
    subject: &str,
    stream_seq: u64,
    payload: Bytes,
    reason: &str,
) -> anyhow::Result<()> {
    let mut h = super::publish::headers("dead-letter");
    h.insert(HDR_DLQ_REASON, header_safe(reason).as_str());
    h.insert(HDR_DLQ_STAGE, stage);
    h.insert(HDR_DLQ_SUBJECT, subject);
    h.insert(HDR_DLQ_SEQ, stream_seq.to_string().as_str());
    let msg = PublishMessage::build()
        .payload(payload)
        .headers(h)
        .message_id(format!("dlq:{stage}:{subject}:{stream_seq}"));
    js.send_publish(subjects::dlq(stage), msg)
        .await
        .context("publishing a dead letter")?
        .await
        .context("waiting for the dead letter's ack")?;
    Ok(())
}
