//! Record batches read back into events: every stored field round-trips, batches as
//! query engines hand them out (string views, dictionaries, a subset of columns in
//! another order) read the same, and bad columns are errors naming the column.
#![cfg(feature = "arrow")]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use lanner_contract::arrow::{from_record_batch, to_record_batch};
use lanner_contract::synth::Synth;
use lanner_contract::{Event, jsonl};

#[test]
fn every_event_of_the_mix_and_the_example_round_trips() {
    let mut events: Vec<Event> = Synth::new(7, "node-a").take(3000).collect();
    let example = include_str!("../../examples/attack-in-container.jsonl");
    events.extend(example.lines().map(|l| jsonl::parse_line(l).unwrap()));
    let batch = to_record_batch(&events).unwrap();
    assert_eq!(from_record_batch(&batch).unwrap(), events);
}

#[test]
fn engine_shaped_batches_read_the_same() {
    let events: Vec<Event> = Synth::new(8, "node-a").take(200).collect();
    let batch = to_record_batch(&events).unwrap();
    // Every text column as a string view or a dictionary, columns reversed, and the
    // derived (materialized) columns dropped.
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (i, (f, c)) in batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .enumerate()
        .rev()
    {
        if f.name() == "proc_cmdline" {
            continue;
        }
        let to = match (f.data_type(), i % 2) {
            (DataType::Utf8, 0) => DataType::Utf8View,
            (DataType::Utf8, _) => {
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
            }
            (t, _) => t.clone(),
        };
        columns.push(arrow_cast::cast(c, &to).unwrap());
        fields.push(Field::new(f.name(), to, true));
    }
    let odd = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    assert_eq!(from_record_batch(&odd).unwrap(), events);
    // A few columns only: the rest stay unset.
    let few = batch.project(&[3, 0]).unwrap();
    let back = from_record_batch(&few).unwrap();
    assert_eq!(back[0].evt_id, events[0].evt_id);
    assert_eq!(back[0].evt_type, events[0].evt_type);
    assert_eq!(back[0].proc_name, None);
}

#[test]
fn bad_columns_are_errors_naming_the_column() {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "fd_sip",
        DataType::Utf8,
        true,
    )]));
    let col: ArrayRef = Arc::new(StringArray::from(vec![Some("10.0.0.1"), Some("not-an-ip")]));
    let err = from_record_batch(&RecordBatch::try_new(schema, vec![col]).unwrap()).unwrap_err();
    assert!(err.to_string().contains("column fd_sip, row 1"), "{err}");

    let schema = Arc::new(Schema::new(vec![Field::new(
        "proc_apid",
        DataType::Utf8,
        true,
    )]));
    let col: ArrayRef = Arc::new(StringArray::from(vec![Some("1,2")]));
    let err = from_record_batch(&RecordBatch::try_new(schema, vec![col]).unwrap()).unwrap_err();
    assert!(err.to_string().contains("proc_apid"), "{err}");
}
