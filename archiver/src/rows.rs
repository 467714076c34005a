//! One bus message's rows, placed in partitions, and the rows an open file buffers.
//!
//! An event batch is read for its events' times only ([`codec::event_times`]); when they
//! all fall in one partition (nearly always) its bytes go straight into the file's
//! columns ([`WireColumns::append_batch`]: no `Event` is built, and a batch that turns
//! out damaged appends nothing). A batch spanning partitions, or from a writer with
//! another field list, is decoded into events first and they are appended per
//! partition. An alert (one per message) arrives as a one-row batch.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow_array::RecordBatch;
use bytes::Bytes;
use lanner_contract::Event;
use lanner_contract::arrow_wire::WireColumns;
use lanner_contract::batch_pool::{BatchPool, PooledBatch};
use lanner_contract::codec;

use crate::alerts;
use crate::partition::Partition;
use crate::tables::Table;

const HOUR_NS: i64 = 3_600_000_000_000;

/// The rows of one decoded message.
pub enum Decoded {
    /// An event batch whose events all fall in one partition, appended from its bytes.
    Batch {
        /// The batch.
        bytes: Bytes,
        /// Its partition.
        part: Partition,
        /// Its number of events.
        events: usize,
    },
    /// Decoded events (a batch spanning partitions, or from another writer); `hours[i]`
    /// is the hour (`nanos / 1h`) of `events[i]`.
    Events {
        /// The events.
        events: PooledBatch,
        /// Hour number of each event.
        hours: Vec<i64>,
    },
    /// One alert, already a one-row batch.
    Alert {
        /// Its partition.
        part: Partition,
        /// Its row.
        batch: RecordBatch,
    },
}

impl Decoded {
    /// Decodes one message of `table`. `fallback_nanos` (the publish time) places rows
    /// without a time. An `Err` is the DLQ reason.
    pub fn decode(
        table: Table,
        subject: &str,
        payload: &Bytes,
        fallback_nanos: i64,
    ) -> Result<Self, String> {
        Self::decode_with(
            table,
            subject,
            payload,
            fallback_nanos,
            &Arc::new(BatchPool::new(0)),
        )
    }

    /// [`Decoded::decode`], decoding events (when they must be) into those of messages
    /// already appended (see [`lanner_contract::batch_pool`]).
    pub fn decode_with(
        table: Table,
        subject: &str,
        payload: &Bytes,
        fallback_nanos: i64,
        pool: &Arc<BatchPool>,
    ) -> Result<Self, String> {
        let hour = |t: Option<i64>| t.unwrap_or(fallback_nanos).div_euclid(HOUR_NS);
        match table {
            Table::Events => {
                let mut times = Vec::new();
                let read = codec::event_times(payload, &mut times)
                    .map_err(|e| format!("undecodable event batch: {e}"))?;
                if read {
                    let first = times.first().map(|&t| hour(t));
                    if times.iter().all(|&t| Some(hour(t)) == first) {
                        return Ok(Decoded::Batch {
                            bytes: payload.clone(),
                            part: partition_of_hour(first.unwrap_or(hour(None))),
                            events: times.len(),
                        });
                    }
                }
                let events = pool
                    .decode(payload, None)
                    .map_err(|e| format!("undecodable event batch: {e}"))?;
                let hours = events
                    .iter()
                    .map(|e| hour(e.evt_time.map(|t| t.0)))
                    .collect();
                Ok(Decoded::Events { events, hours })
            }
            Table::Alerts => {
                let alert = alerts::parse(subject, payload)?;
                let part = Partition::of_nanos(alert.time);
                let batch = alerts::to_record_batch(std::slice::from_ref(&alert))
                    .map_err(|e| format!("alert does not fit the alerts schema: {e}"))?;
                Ok(Decoded::Alert { part, batch })
            }
        }
    }

    /// The partitions the message has rows in (none for an empty batch).
    pub fn partitions(&self) -> BTreeSet<Partition> {
        match self {
            Decoded::Batch { events: 0, .. } => BTreeSet::new(),
            Decoded::Batch { part, .. } => BTreeSet::from([*part]),
            Decoded::Events { hours, .. } => {
                let mut out = BTreeSet::new();
                let mut last = None;
                for &h in hours {
                    if last != Some(h) {
                        out.insert(partition_of_hour(h));
                        last = Some(h);
                    }
                }
                out
            }
            Decoded::Alert { part, .. } => BTreeSet::from([*part]),
        }
    }

    /// Appends the message's rows of partition `p` to `rows`; returns how many. An
    /// `Err` (the DLQ reason) appended nothing: the batch's events did not decode.
    pub fn append_to(&self, p: Partition, rows: &mut FileRows) -> Result<usize, String> {
        let capacity = rows.capacity.max(1024);
        let undecodable = |e: codec::CodecError| format!("undecodable event batch: {e}");
        let n = match self {
            Decoded::Batch { bytes, part, .. } => {
                if *part != p {
                    return Ok(0);
                }
                rows.columns
                    .get_or_insert_with(|| Box::new(WireColumns::with_capacity(capacity)))
                    .append_batch(bytes)
                    .map_err(undecodable)?
            }
            Decoded::Events { events, hours } => {
                let inside: Vec<Event> = events
                    .iter()
                    .zip(hours)
                    .filter(|&(_, &h)| partition_of_hour(h) == p)
                    .map(|(ev, _)| ev.clone())
                    .collect();
                if inside.is_empty() {
                    return Ok(0);
                }
                rows.columns
                    .get_or_insert_with(|| Box::new(WireColumns::with_capacity(capacity)))
                    .append_events(&inside)
                    .map_err(undecodable)?
            }
            Decoded::Alert { part, batch } => {
                if *part != p {
                    return Ok(0);
                }
                rows.batch_bytes += batch.get_array_memory_size();
                rows.batches.push(batch.clone());
                batch.num_rows()
            }
        };
        rows.rows += n;
        Ok(n)
    }
}

fn partition_of_hour(h: i64) -> Partition {
    Partition::of_nanos(h.saturating_mul(HOUR_NS))
}

/// The rows buffered for one file.
#[derive(Default)]
pub struct FileRows {
    // Boxed: a hundred columns, moved with the file between the loop and its writer.
    columns: Option<Box<WireColumns>>,
    batches: Vec<RecordBatch>,
    rows: usize,
    batch_bytes: usize,
    /// Rows the columns are made room for when the first event comes.
    capacity: usize,
}

impl FileRows {
    /// Rows whose event columns start with room for `rows` rows.
    pub fn with_capacity(rows: usize) -> Self {
        FileRows {
            capacity: rows,
            ..Default::default()
        }
    }

    /// Rows buffered.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes buffered (an estimate, for rolling by size).
    pub fn bytes(&mut self) -> usize {
        self.batch_bytes
            + self
                .columns
                .as_mut()
                .map(|c| c.buffered_bytes())
                .unwrap_or(0)
    }

    /// The buffered rows as record batches (the events as one batch); the columns are
    /// emptied but the rows stay here, so a failed write can be tried again.
    pub fn batches(&mut self) -> Result<Vec<RecordBatch>, arrow_schema::ArrowError> {
        if let Some(cols) = self.columns.as_mut().filter(|c| !c.is_empty()) {
            let batch = cols.finish()?;
            self.batch_bytes += batch.get_array_memory_size();
            self.batches.push(batch);
        }
        self.columns = None;
        Ok(self.batches.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lanner_contract::Timestamp;

    fn ev(ns: i64) -> Event {
        Event {
            evt_time: Some(Timestamp(ns)),
            proc_name: Some("sh".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_batch_spanning_two_hours_splits_into_two_partitions() {
        let payload = Bytes::from(codec::encode_batch(&[
            ev(HOUR_NS - 1),
            ev(HOUR_NS),
            ev(HOUR_NS + 1),
            Event::default(),
        ]));
        let d = Decoded::decode(Table::Events, "lanner.events.n", &payload, 0).expect("decodes");
        assert!(matches!(d, Decoded::Events { .. }));
        let parts: Vec<Partition> = d.partitions().into_iter().collect();
        assert_eq!(parts.len(), 2);
        let mut rows: Vec<usize> = Vec::new();
        for p in &parts {
            let mut f = FileRows::default();
            rows.push(d.append_to(*p, &mut f).expect("appends"));
            let batches = f.batches().expect("batch");
            assert_eq!(batches.len(), 1);
            assert_eq!(batches[0].num_rows(), f.rows());
        }
        assert_eq!(rows, vec![2, 2], "hour 0 holds the timeless event too");
        let garbage = Bytes::from_static(b"garbage");
        assert!(Decoded::decode(Table::Events, "lanner.events.n", &garbage, 0).is_err());
    }

    #[test]
    fn a_batch_of_one_hour_goes_in_whole_and_a_damaged_one_adds_nothing() {
        let events = [ev(HOUR_NS + 5), Event::default(), ev(2 * HOUR_NS - 1)];
        let payload = Bytes::from(codec::encode_batch(&events));
        // The timeless event is placed by the publish time, in the same hour.
        let d = Decoded::decode(Table::Events, "lanner.events.n", &payload, HOUR_NS + 7)
            .expect("decodes");
        assert!(matches!(d, Decoded::Batch { .. }));
        let parts: Vec<Partition> = d.partitions().into_iter().collect();
        assert_eq!(parts, vec![partition_of_hour(1)]);
        let mut f = FileRows::default();
        assert_eq!(d.append_to(parts[0], &mut f), Ok(3));
        assert_eq!(d.append_to(partition_of_hour(0), &mut f), Ok(0));
        // The last event's bytes damaged: its times still read, its values do not.
        let mut bad = payload.to_vec();
        let last = bad.len() - 1;
        bad[last] = 0xff;
        let bad = Bytes::from(bad);
        let d =
            Decoded::decode(Table::Events, "lanner.events.n", &bad, HOUR_NS).expect("times read");
        let err = d.append_to(parts[0], &mut f).expect_err("rejected");
        assert!(err.starts_with("undecodable event batch"), "{err}");
        assert_eq!(f.rows(), 3);
        let batches = f.batches().expect("batch");
        assert_eq!(batches[0].num_rows(), 3);
        // An empty batch has no partition.
        let empty = Bytes::from(codec::encode_batch(&[]));
        let d = Decoded::decode(Table::Events, "lanner.events.n", &empty, 0).expect("decodes");
        assert!(d.partitions().is_empty());
    }
}
