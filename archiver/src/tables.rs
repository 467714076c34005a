//! The archive's two tables (how one bus message turns into their rows is in
//! [`crate::rows`]).
//!
//! | table    | stream          | message                         | time column |
//! |----------|-----------------|---------------------------------|-------------|
//! | `events` | `LANNER_EVENTS` | a binary event batch (contract) | `evt_time`  |
//! | `alerts` | `LANNER_ALERTS` | one alert in Falco's JSON shape | `time`      |

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use lanner_contract::subjects;

use crate::{alerts, evolve};

/// What a column of distinct values holds (it picks the delta encoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UniqueKind {
    /// Text: `DELTA_BYTE_ARRAY` (shared prefixes stored once).
    Text,
    /// Integers and timestamps: `DELTA_BINARY_PACKED`.
    Number,
}

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

    /// Columns whose values are (nearly) all distinct: no dictionary (it would only cost
    /// hashing every value before falling back), delta encodings instead, which suit
    /// rows sorted by time (increasing times and sequence numbers, ids sharing a prefix).
    pub fn unique_columns(self) -> &'static [(&'static str, UniqueKind)] {
        match self {
            Table::Events => &[
                ("evt_id", UniqueKind::Text),
                ("evt_time", UniqueKind::Number),
                ("evt_num", UniqueKind::Number),
            ],
            Table::Alerts => &[("alert_id", UniqueKind::Text), ("time", UniqueKind::Number)],
        }
    }

    /// Brings a batch read from an older file to the current schema.
    pub fn evolve(self, batch: &RecordBatch) -> Result<RecordBatch, arrow_schema::ArrowError> {
        evolve::to_schema(batch, &self.schema())
    }
}
