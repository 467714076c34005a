//! Record batches read back into events: every stored field round-trips, batches as
//! query engines hand them out (string views, dictionaries, a subset of columns in
//! another order) read the same, and bad columns are errors naming the column.
#![cfg(feature = "arrow")]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use lanner_contract::arrow::{from_record_batch, from_record_batch_unshared, to_record_batch};
use lanner_contract::synth::Synth;
use lanner_contract::{Event, jsonl};

#[test]
fn every_event_of_the_mix_and_the_example_round_trips() {
    let mut events: Vec<Event> = Synth::new(7, "node-a").take(3000).collect();
    let example = include_str!("../../examples/attack-in-container.jsonl");
    events.extend(example.lines().map(|l| jsonl::parse_line(l).unwrap()));
    let batch = to_record_batch(&events).unwrap();
    assert_eq!(from_record_batch(&batch).unwrap(), events);
    assert_eq!(from_record_batch_unshared(&batch).unwrap(), events);
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
    // The same as a dictionary column (the archive's type), the bad value on row 2.
    let dict =
        arrow_schema::DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let schema = Arc::new(Schema::new(vec![Field::new("fd_sip", dict.clone(), true)]));
    let col: ArrayRef = Arc::new(StringArray::from(vec![
        Some("10.0.0.1"),
        None,
        Some("not-an-ip"),
    ]));
    let col = arrow_cast::cast(&col, &dict).unwrap();
    let err = from_record_batch(&RecordBatch::try_new(schema, vec![col]).unwrap()).unwrap_err();
    assert!(err.to_string().contains("column fd_sip, row 2"), "{err}");

    let schema = Arc::new(Schema::new(vec![Field::new(
        "proc_apid",
        DataType::Utf8,
        true,
    )]));
    let col: ArrayRef = Arc::new(StringArray::from(vec![Some("1,2")]));
    let err = from_record_batch(&RecordBatch::try_new(schema, vec![col]).unwrap()).unwrap_err();
    assert!(err.to_string().contains("proc_apid"), "{err}");
}

/// Every field, read from an event that has only the columns `FieldRef::stored_deps`
/// names (as the retro-hunt reads the archive), has the value it has on the whole event.
#[test]
fn every_field_reads_the_same_from_its_dependencies_alone() {
    use lanner_contract::FieldRef;
    let mut events: Vec<Event> = Synth::new(11, "node-a").take(3000).collect();
    let example = include_str!("../../examples/attack-in-container.jsonl");
    events.extend(example.lines().map(|l| jsonl::parse_line(l).unwrap()));
    // What the mix lacks: server-side sockets, directories, group leaders.
    let variants: Vec<Event> = events
        .iter()
        .take(1000)
        .map(|e| {
            let mut v = e.clone();
            v.fd_is_server = Some(true);
            if v.fd_type.as_deref() == Some("file") {
                v.fd_type = Some("directory".into());
            }
            v.proc_vpgid = v.proc_vpid;
            v
        })
        .collect();
    events.extend(variants);
    let full = to_record_batch(&events).unwrap();
    let mut names: Vec<String> = lanner_contract::field::all_field_names()
        .map(str::to_owned)
        .collect();
    for list in [
        "proc.aname",
        "proc.apid",
        "proc.aexe",
        "proc.aexepath",
        "proc.acmdline",
    ] {
        names.extend((0..3).map(|i| format!("{list}[{i}]")));
    }
    names.push("container.label[com.docker.compose.service]".into());
    names.push("k8s.pod.label[app]".into());
    let mut checked = 0;
    for name in &names {
        let Ok(r) = FieldRef::parse(name) else {
            continue; // a field that needs an argument, given above
        };
        let mut deps = Vec::new();
        r.stored_deps(&mut deps);
        let indices: Vec<usize> = deps
            .iter()
            .map(|d| full.schema().index_of(d.info().column).unwrap())
            .collect();
        let slim = if indices.is_empty() {
            vec![Event::default(); events.len()]
        } else {
            from_record_batch(&full.project(&indices).unwrap()).unwrap()
        };
        for (ev, sl) in events.iter().zip(&slim) {
            assert_eq!(
                ev.get(&r),
                sl.get(&r),
                "{name} from {deps:?} alone differs on {}",
                jsonl::to_line(ev)
            );
        }
        checked += 1;
    }
    assert!(checked > 150, "only {checked} fields checked");
}
