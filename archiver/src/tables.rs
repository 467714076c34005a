//! The archive's two tables and how one bus message turns into their rows.
//!
//! | table    | stream          | message                         | time column |
//! |----------|-----------------|---------------------------------|-------------|
//! | `events` | `LANNER_EVENTS` | a binary event batch (contract) | `evt_time`  |
//! | `alerts` | `LANNER_ALERTS` | one alert in Falco's JSON shape | `time`      |

use std::collections::BTreeMap;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use lanner_contract::{Event, codec, subjects};

use crate::partition::Partition;
use crate::{alerts, evolve};

/// Which table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    /// Enriched events.
    Events,
    /// Alerts.
    Alerts,
}

impl Table {
    /// Both tables.
    pub const ALL: [Table; 2] = [Table::Events, Table::Alerts];

    /// Table (and top-level folder) name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Events => "events",
            Table::Alerts => "alerts",
        }
    }

    /// Parses a table name.
    pub fn parse(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The stream the table is filled from.
    pub fn stream(self) -> subjects::StreamDef {
        match self {
            Table::Events => subjects::EVENTS,
            Table::Alerts => subjects::ALERTS,
        }
    }

    /// The table's current schema.
    pub fn schema(self) -> SchemaRef {
        match self {
            Table::Events => lanner_contract::arrow::schema(),
            Table::Alerts => alerts::schema(),
        }
    }

    /// Schema version written into the file metadata.
    pub fn schema_version(self) -> &'static str {
        match self {
            Table::Events => lanner_contract::arrow::SCHEMA_VERSION,
            Table::Alerts => alerts::ALERTS_SCHEMA_VERSION,
        }
    }

    /// The column rows are sorted by within a file.
    pub fn time_column(self) -> &'static str {
        match self {
            Table::Events => "evt_time",
            Table::Alerts => "time",
        }
    }

    /// Id-like columns that get bloom filters (point lookups by id).
    pub fn bloom_columns(self) -> &'static [&'static str] {
        match self {
            Table::Events => &[
                "evt_id",
                "container_id",
                "proc_pid",
                "k8s_pod_uid",
                "k8s_pod_name",
                "fd_sip",
                "dns_name",
            ],
            Table::Alerts => &["alert_id", "evt_id", "container_id", "k8s_pod_name"],
        }
    }

    /// Decodes one message into record batches per partition. `fallback_nanos` (the
    /// message's publish time) places rows that carry no time. An `Err` is the DLQ reason.
    pub fn decode(
        self,
        subject: &str,
        payload: &[u8],
        fallback_nanos: i64,
    ) -> Result<BTreeMap<Partition, RecordBatch>, String> {
        match self {
            Table::Events => decode_events(payload, fallback_nanos),
            Table::Alerts => {
                let alert = alerts::parse(subject, payload)?;
                let part = Partition::of_nanos(alert.time);
                let batch = alerts::to_record_batch(std::slice::from_ref(&alert))
                    .map_err(|e| format!("alert does not fit the alerts schema: {e}"))?;
                Ok(BTreeMap::from([(part, batch)]))
            }
        }
    }

    /// Brings a batch read from an older file to the current schema.
    pub fn evolve(self, batch: &RecordBatch) -> Result<RecordBatch, arrow_schema::ArrowError> {
        evolve::to_schema(batch, &self.schema())
    }
}

fn decode_events(
    payload: &[u8],
    fallback_nanos: i64,
) -> Result<BTreeMap<Partition, RecordBatch>, String> {
    let events =
        codec::decode_batch(payload).map_err(|e| format!("undecodable event batch: {e}"))?;
    let part_of =
        |e: &Event| Partition::of_nanos(e.evt_time.map(|t| t.0).unwrap_or(fallback_nanos));
    let to_batch = |evs: &[Event]| {
        lanner_contract::arrow::to_record_batch(evs)
            .map_err(|e| format!("events do not fit the archive schema: {e}"))
    };
    let mut out = BTreeMap::new();
    let Some(first) = events.first().map(part_of) else {
        return Ok(out);
    };
    if events.iter().all(|e| part_of(e) == first) {
        out.insert(first, to_batch(&events)?);
        return Ok(out);
    }
    let mut groups: BTreeMap<Partition, Vec<Event>> = BTreeMap::new();
    for ev in events {
        groups.entry(part_of(&ev)).or_default().push(ev);
    }
    for (p, evs) in groups {
        out.insert(p, to_batch(&evs)?);
    }
    Ok(out)
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
        let hour = 3_600_000_000_000;
        let payload =
            codec::encode_batch(&[ev(hour - 1), ev(hour), ev(hour + 1), Event::default()]);
        let parts = Table::Events
            .decode("lanner.events.n", &payload, 0)
            .expect("decodes");
        let rows: Vec<usize> = parts.values().map(|b| b.num_rows()).collect();
        assert_eq!(rows, vec![2, 2], "hour 0 holds the timeless event too");
        assert!(
            Table::Events
                .decode("lanner.events.n", b"garbage", 0)
                .is_err()
        );
    }
}
