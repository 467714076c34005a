//! One bus message's rows, placed in partitions, and the rows an open file buffers.
//!
//! Events are appended one by one into the file's long-lived Arrow builders
//! ([`EventColumns`]), so a file becomes one record batch when it is written, however
//! many messages it holds; an alert (one per message) arrives as a one-row batch.

use std::collections::BTreeSet;

use arrow_array::RecordBatch;
use lanner_contract::arrow_columns::EventColumns;
use std::sync::Arc;

use lanner_contract::batch_pool::{BatchPool, PooledBatch};
#[cfg(test)]
use lanner_contract::{Event, codec};

use crate::alerts;
use crate::partition::Partition;
use crate::tables::Table;

const HOUR_NS: i64 = 3_600_000_000_000;

/// The rows of one decoded message.
pub enum Decoded {
    /// An event batch; `hours[i]` is the hour (`nanos / 1h`) of `events[i]`.
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
        payload: &[u8],
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

    /// [`Decoded::decode`], decoding events into those of messages already appended
    /// (see [`lanner_contract::batch_pool`]).
    pub fn decode_with(
        table: Table,
        subject: &str,
        payload: &[u8],
        fallback_nanos: i64,
        pool: &Arc<BatchPool>,
    ) -> Result<Self, String> {
        match table {
            Table::Events => {
                let events = pool
                    .decode(payload, None)
                    .map_err(|e| format!("undecodable event batch: {e}"))?;
                let hours = events
                    .iter()
                    .map(|e| {
                        e.evt_time
                            .map(|t| t.0)
                            .unwrap_or(fallback_nanos)
                            .div_euclid(HOUR_NS)
                    })
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

    /// The partitions the message has rows in.
    pub fn partitions(&self) -> BTreeSet<Partition> {
        match self {
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

    /// Appends the message's rows of partition `p` to `rows`; returns how many.
    pub fn append_to(&self, p: Partition, rows: &mut FileRows) -> usize {
        match self {
            Decoded::Events { events, hours } => {
                let capacity = rows.capacity.max(1024);
                let cols = rows
                    .columns
                    .get_or_insert_with(|| Box::new(EventColumns::with_capacity(capacity)));
                let mut n = 0;
                let mut last: Option<(i64, bool)> = None;
                for (ev, &h) in events.iter().zip(hours) {
                    let inside = match last {
                        Some((lh, inside)) if lh == h => inside,
                        _ => {
                            let inside = partition_of_hour(h) == p;
                            last = Some((h, inside));
                            inside
                        }
                    };
                    if inside {
                        cols.append(ev);
                        n += 1;
                    }
                }
                rows.rows += n;
                n
            }
            Decoded::Alert { part, batch } => {
                if *part != p {
                    return 0;
                }
                rows.rows += batch.num_rows();
                rows.batch_bytes += batch.get_array_memory_size();
                rows.batches.push(batch.clone());
                batch.num_rows()
            }
        }
    }
}

fn partition_of_hour(h: i64) -> Partition {
    Partition::of_nanos(h.saturating_mul(HOUR_NS))
}

/// The rows buffered for one file.
#[derive(Default)]
pub struct FileRows {
    // Boxed: a hundred builders, moved with the file between the loop and its writer.
    columns: Option<Box<EventColumns>>,
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

    /// The buffered rows as record batches (the events as one batch); the builders are
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

    #[test]
    fn a_batch_spanning_two_hours_splits_into_two_partitions() {
        let ev = |ns: i64| Event {
            evt_time: Some(Timestamp(ns)),
            ..Default::default()
        };
        let payload = codec::encode_batch(&[
            ev(HOUR_NS - 1),
            ev(HOUR_NS),
            ev(HOUR_NS + 1),
            Event::default(),
        ]);
        let d = Decoded::decode(Table::Events, "lanner.events.n", &payload, 0).expect("decodes");
        let parts: Vec<Partition> = d.partitions().into_iter().collect();
        assert_eq!(parts.len(), 2);
        let mut rows: Vec<usize> = Vec::new();
        for p in &parts {
            let mut f = FileRows::default();
            rows.push(d.append_to(*p, &mut f));
            let batches = f.batches().expect("batch");
            assert_eq!(batches.len(), 1);
            assert_eq!(batches[0].num_rows(), f.rows());
        }
        assert_eq!(rows, vec![2, 2], "hour 0 holds the timeless event too");
        assert!(Decoded::decode(Table::Events, "lanner.events.n", b"garbage", 0).is_err());
    }
}
