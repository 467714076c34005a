//! The archive's schema of the `alerts` table: Falco's JSON alert in columns, with the
//! `output_fields` hunts join on pulled out into columns of their own. The archiver
//! writes it; the query reads it.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Version of the alerts schema (file metadata [`super::SCHEMA_VERSION_KEY`]).
pub const ALERTS_SCHEMA_VERSION: &str = "1";

/// `output_fields` keys pulled out into columns (the column name has `_` for `.`).
pub const PULLED_FIELDS: &[&str] = &[
    "evt.id",
    "evt.type",
    "evt.time",
    "container.id",
    "container.name",
    "container.image.repository",
    "k8s.ns.name",
    "k8s.pod.name",
    "proc.name",
    "proc.cmdline",
    "proc.pid",
    "user.name",
    "fd.name",
];

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |n: &str| Field::new(n, DataType::Utf8, true);
    let mut fields = vec![
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        ),
        Field::new("rule", DataType::Utf8, false),
        text("priority"),
        text("source"),
        Field::new(
            "tags",
            DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            true,
        ),
        text("hostname"),
        text("output"),
        text("output_fields"),
        text("alert_id"),
        text("node"),
    ];
    fields.extend(PULLED_FIELDS.iter().map(|f| text(&f.replace('.', "_"))));
    let metadata = HashMap::from([(
        super::SCHEMA_VERSION_KEY.to_owned(),
        ALERTS_SCHEMA_VERSION.to_owned(),
    )]);
    Arc::new(Schema::new_with_metadata(fields, metadata))
});

/// The schema of the `alerts` table.
pub fn alerts_schema() -> SchemaRef {
    SCHEMA.clone()
}
