//! Property tests of the wire codec: every field of every event kind round-trips, and
//! garbage, truncated or mutated input is rejected with an error, never a panic.

use lanner_contract::codec::{self, CodecError};
use lanner_contract::model::STORED_FIELDS;
use lanner_contract::{Event, Kind};
use proptest::prelude::*;
use serde_json::{Map, Value as Json, json};

/// Fields set by each kind of event, on top of the process context every event has.
const KINDS: &[(&str, &[&str])] = &[
    ("execve", &["evt.arg.filename", "proc.aname", "proc.apid", "proc.acmdline", "proc.is_exe_from_memfd"]),
    ("openat", &["fd.num", "fd.name", "fd.type", "evt.arg.flags", "evt.arg.mode"]),
    ("connect", &["fd.cip", "fd.cport", "fd.sip", "fd.sport", "fd.l4proto", "fd.sip.name"]),
    ("sendto", &["dns.name", "dns.type", "dns.rcode", "dns.answers"]),
    ("ptrace", &["evt.arg.request", "evt.arg.pid", "thread.cap_effective"]),
];

fn json_value(kind: Kind) -> BoxedStrategy<Json> {
    let text = "[a-zA-Z0-9/._ -]{0,24}|\\PC{0,8}";
    match kind {
        Kind::Str => text.prop_map(Json::from).boxed(),
        Kind::U64 => any::<u64>().prop_map(Json::from).boxed(),
        Kind::I64 => any::<i64>().prop_map(Json::from).boxed(),
        Kind::Bool => any::<bool>().prop_map(Json::from).boxed(),
        Kind::Ts => any::<i64>().prop_map(Json::from).boxed(),
        Kind::Ip => prop_oneof![
            any::<[u8; 4]>().prop_map(|o| Json::from(std::net::Ipv4Addr::from(o).to_string())),
            any::<[u8; 16]>().prop_map(|o| Json::from(std::net::Ipv6Addr::from(o).to_string())),
        ]
        .boxed(),
        Kind::StrList => prop::collection::vec(text, 0..5).prop_map(Json::from).boxed(),
        Kind::U64List => prop::collection::vec(any::<u64>(), 0..5).prop_map(Json::from).boxed(),
        Kind::Map => prop::collection::btree_map("[a-z.]{1,12}", text, 0..4)
            .prop_map(|m| json!(m))
            .boxed(),
    }
}

/// An event of one of the kinds above, with a random subset of all other fields.
fn event() -> impl Strategy<Value = Event> {
    let per_field: Vec<_> = STORED_FIELDS
        .iter()
        .map(|f| (any::<u8>(), json_value(f.kind)))
        .collect();
    (0..KINDS.len(), per_field).prop_map(|(k, values)| {
        let (evt_type, kind_fields) = KINDS[k];
        let mut obj = Map::new();
        for (info, (dice, v)) in STORED_FIELDS.iter().zip(values) {
            if kind_fields.contains(&info.name) || dice % 3 == 0 {
                obj.insert(info.name.to_owned(), v);
            }
        }
        obj.insert("evt.type".into(), Json::from(evt_type));
        serde_json::from_value(Json::Object(obj)).expect("generated JSON is a valid event")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn batches_round_trip(events in prop::collection::vec(event(), 0..8)) {
        let bytes = codec::encode_batch(&events);
        prop_assert_eq!(codec::decode_batch(&bytes).expect("decodes"), events);
    }

    #[test]
    fn json_lines_round_trip(ev in event()) {
        let line = lanner_contract::jsonl::to_line(&ev);
        prop_assert_eq!(lanner_contract::jsonl::parse_line(&line).expect("parses"), ev);
    }

    #[test]
    fn every_strict_prefix_is_rejected(events in prop::collection::vec(event(), 1..4), cut in any::<prop::sample::Index>()) {
        let bytes = codec::encode_batch(&events);
        let cut = cut.index(bytes.len());
        prop_assert!(codec::decode_batch(&bytes[..cut]).is_err());
    }

    #[test]
    fn mutated_input_never_panics(events in prop::collection::vec(event(), 1..4), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = codec::encode_batch(&events);
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= b;
        }
        let _ = codec::decode_batch(&bytes);
    }

    #[test]
    fn garbage_after_a_valid_header_never_panics(tail in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = codec::encode_batch(&[]);
        bytes.truncate(bytes.len() - 1); // drop the event count
        bytes.extend_from_slice(&tail);
        let _ = codec::decode_batch(&bytes);
    }

    #[test]
    fn random_bytes_are_rejected(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        prop_assume!(!bytes.starts_with(codec::MAGIC));
        prop_assert_eq!(codec::decode_batch(&bytes), Err(CodecError::BadMagic));
    }
}

#[test]
fn hostile_counts_do_not_allocate() {
    let mut bytes = codec::encode_batch(&[]);
    bytes.truncate(bytes.len() - 1);
    bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    assert!(matches!(codec::decode_batch(&bytes), Err(CodecError::Invalid { .. })));
}

#[test]
fn other_versions_and_flags_are_refused() {
    let mut bytes = codec::encode_batch(&[Event::default()]);
    bytes[4] = 9;
    assert_eq!(codec::decode_batch(&bytes), Err(CodecError::UnsupportedVersion(9)));
    let mut bytes = codec::encode_batch(&[Event::default()]);
    bytes[5] = 1;
    assert_eq!(codec::decode_batch(&bytes), Err(CodecError::UnsupportedFlags(1)));
}

#[test]
fn older_and_newer_writers_are_read() {
    let ev = Event { evt_type: Some("openat".into()), proc_name: Some("cat".into()), ..Default::default() };
    let bytes = codec::encode_batch(std::slice::from_ref(&ev));
    // Header: magic(4) version(1) flags(1) field_count(varint) kinds(field_count) event_count.
    let n = STORED_FIELDS.len();
    assert!(n < 128, "field count fits one varint byte in this test");
    let kinds_start = 7;
    let events_start = kinds_start + n + 1;
    let presence_len = n.div_ceil(8);

    // A newer writer: one extra Str field, present, with value "x".
    let mut newer = bytes[..6].to_vec();
    newer.push((n + 1) as u8);
    newer.extend_from_slice(&bytes[kinds_start..kinds_start + n]);
    newer.push(1); // kind Str
    newer.push(1); // one event
    let mut presence = bytes[events_start..events_start + presence_len].to_vec();
    if (n + 1).div_ceil(8) > presence_len {
        presence.push(0);
    }
    presence[n / 8] |= 1 << (n % 8);
    newer.extend_from_slice(&presence);
    newer.extend_from_slice(&bytes[events_start + presence_len..]);
    newer.extend_from_slice(&[1, b'x']);
    assert_eq!(codec::decode_batch(&newer).expect("newer writer"), vec![ev.clone()]);

    // An older writer that did not know the last field.
    let mut older = bytes[..6].to_vec();
    older.push((n - 1) as u8);
    older.extend_from_slice(&bytes[kinds_start..kinds_start + n - 1]);
    older.push(1);
    older.extend_from_slice(&bytes[events_start..events_start + (n - 1).div_ceil(8)]);
    older.extend_from_slice(&bytes[events_start + presence_len..]);
    assert_eq!(codec::decode_batch(&older).expect("older writer"), vec![ev]);
}
