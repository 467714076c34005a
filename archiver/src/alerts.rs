//! The `alerts` table: one row per alert, from Falco's JSON output shape (`time`, `rule`,
//! `priority`, `source`, `tags`, `hostname`, `output`, `output_fields`, plus lanner's `id`
//! or `uuid`).
//!
//! `output_fields` is kept whole as JSON text, and the fields a hunt joins on are pulled
//! out into their own columns (`evt_id`, `container_id`, `k8s_pod_name`, ...) when
//! present. `node` comes from the subject `lanner.alerts.<node>`.

use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder, TimestampNanosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use serde_json::Value as Json;

pub use lanner_contract::arrow::alerts::{ALERTS_SCHEMA_VERSION, PULLED_FIELDS};

/// One alert, decoded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Alert {
    /// Alert time, UTC nanoseconds.
    pub time: i64,
    /// Rule name.
    pub rule: String,
    /// Falco priority (`Critical`, `Warning`, ...).
    pub priority: Option<String>,
    /// Event source (`syscall`).
    pub source: Option<String>,
    /// Rule tags.
    pub tags: Option<Vec<String>>,
    /// Host name.
    pub hostname: Option<String>,
    /// Rendered output line.
    pub output: Option<String>,
    /// `output_fields` as JSON text.
    pub output_fields: Option<String>,
    /// De-duplication id (`id` or `uuid`).
    pub alert_id: Option<String>,
    /// Node from the subject.
    pub node: Option<String>,
    /// Values of [`PULLED_FIELDS`], rendered as text.
    pub pulled: Vec<Option<String>>,
}

/// The schema of the `alerts` table.
pub fn schema() -> SchemaRef {
    lanner_contract::arrow::alerts::alerts_schema()
}

fn text_of(v: &Json) -> Option<String> {
    match v {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn opt_str(obj: &serde_json::Map<String, Json>, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("field {key:?} is not a string")),
    }
}

/// Parses a time as Falco writes it: RFC 3339 text, or integer nanoseconds.
fn parse_time(v: &Json) -> Result<i64, String> {
    match v {
        Json::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map_err(|e| format!("field \"time\" {s:?} is not RFC 3339: {e}"))?
            .timestamp_nanos_opt()
            .ok_or_else(|| format!("field \"time\" {s:?} is out of range")),
        Json::Number(n) => n
            .as_i64()
            .ok_or_else(|| "field \"time\" is not an integer".to_owned()),
        _ => Err("field \"time\" is neither RFC 3339 text nor nanoseconds".to_owned()),
    }
}

/// Decodes one alert message published on `subject`. An `Err` is the DLQ reason.
pub fn parse(subject: &str, payload: &[u8]) -> Result<Alert, String> {
    let doc: Json =
        serde_json::from_slice(payload).map_err(|e| format!("alert is not JSON: {e}"))?;
    let Json::Object(obj) = doc else {
        return Err("alert is not a JSON object".to_owned());
    };
    let time = parse_time(obj.get("time").ok_or("alert has no \"time\"")?)?;
    let rule = opt_str(&obj, "rule")?.ok_or("alert has no \"rule\"")?;
    let tags = match obj.get("tags") {
        None | Some(Json::Null) => None,
        Some(Json::Array(a)) => Some(a.iter().filter_map(text_of).collect()),
        Some(_) => return Err("field \"tags\" is not an array".to_owned()),
    };
    let fields = match obj.get("output_fields") {
        None | Some(Json::Null) => None,
        Some(Json::Object(m)) => Some(m),
        Some(_) => return Err("field \"output_fields\" is not an object".to_owned()),
    };
    let pulled = PULLED_FIELDS
        .iter()
        .map(|k| fields.and_then(|m| m.get(*k)).and_then(text_of))
        .collect();
    let alert_id = match opt_str(&obj, "id")? {
        Some(id) => Some(id),
        None => opt_str(&obj, "uuid")?,
    };
    let node = subject
        .strip_prefix("lanner.alerts.")
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    Ok(Alert {
        time,
        rule,
        priority: opt_str(&obj, "priority")?,
        source: opt_str(&obj, "source")?,
        tags,
        hostname: opt_str(&obj, "hostname")?,
        output: opt_str(&obj, "output")?,
        output_fields: fields.map(|m| Json::Object(m.clone()).to_string()),
        alert_id,
        node,
        pulled,
    })
}

/// Converts alerts into one record batch with [`schema`].
pub fn to_record_batch(alerts: &[Alert]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut time = TimestampNanosecondBuilder::new().with_timezone("UTC");
    let mut tags = ListBuilder::new(StringBuilder::new());
    let mut texts: Vec<StringBuilder> = (0..8 + PULLED_FIELDS.len())
        .map(|_| StringBuilder::new())
        .collect();
    for a in alerts {
        time.append_value(a.time);
        match &a.tags {
            Some(t) => {
                for s in t {
                    tags.values().append_value(s);
                }
                tags.append(true);
            }
            None => tags.append(false),
        }
        texts[0].append_value(&a.rule);
        let fixed = [
            &a.priority,
            &a.source,
            &a.hostname,
            &a.output,
            &a.output_fields,
            &a.alert_id,
            &a.node,
        ];
        for (b, v) in texts[1..8].iter_mut().zip(fixed) {
            b.append_option(v.as_deref());
        }
        for (i, b) in texts[8..].iter_mut().enumerate() {
            b.append_option(a.pulled.get(i).and_then(|v| v.as_deref()));
        }
    }
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(texts.len() + 2);
    cols.push(Arc::new(time.finish()));
    let mut texts = texts
        .into_iter()
        .map(|mut b| Arc::new(b.finish()) as ArrayRef);
    cols.extend(texts.next()); // rule
    cols.extend(texts.by_ref().take(2)); // priority, source
    cols.push(Arc::new(tags.finish()));
    cols.extend(texts);
    RecordBatch::try_new(schema(), cols)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;

    const FALCO: &str = r#"{"time":"2024-03-05T07:00:01.123456789Z","rule":"Terminal shell in container",
      "priority":"Notice","source":"syscall","tags":["container","shell"],"hostname":"node-1",
      "output":"A shell was spawned","uuid":"u-1",
      "output_fields":{"evt.id":"ab-7","container.id":"0123456789ab","proc.pid":42,"k8s.pod.name":null}}"#;

    #[test]
    fn falco_json_becomes_a_row() {
        let a = parse("lanner.alerts.node-1", FALCO.as_bytes()).expect("parses");
        assert_eq!(a.time, 1_709_622_001_123_456_789);
        assert_eq!(a.alert_id.as_deref(), Some("u-1"));
        assert_eq!(a.node.as_deref(), Some("node-1"));
        let b = to_record_batch(&[a]).expect("batch");
        assert_eq!(b.schema(), schema());
        let col = |n: &str| {
            b.column_by_name(n)
                .expect("column")
                .as_string::<i32>()
                .value(0)
                .to_owned()
        };
        assert_eq!(col("rule"), "Terminal shell in container");
        assert_eq!(col("evt_id"), "ab-7");
        assert_eq!(col("container_id"), "0123456789ab");
        assert_eq!(col("proc_pid"), "42");
        assert_eq!(col("priority"), "Notice");
        assert!(b.column_by_name("k8s_pod_name").expect("column").is_null(0));
        assert!(col("output_fields").contains("\"evt.id\":\"ab-7\""));
    }

    #[test]
    fn bad_alerts_say_why() {
        for (bad, why) in [
            ("nope", "not JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"rule":"r"}"#, "no \"time\""),
            (r#"{"time":"yesterday","rule":"r"}"#, "RFC 3339"),
            (r#"{"time":1}"#, "no \"rule\""),
            (r#"{"time":1,"rule":"r","tags":"x"}"#, "tags"),
        ] {
            let e = parse("lanner.alerts.n", bad.as_bytes()).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
