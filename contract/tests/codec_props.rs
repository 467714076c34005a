//! Property tests of the wire codec: every field of every event kind round-trips, and
//! garbage, truncated or mutated input is rejected with an error, never a panic.

use lanner_contract::codec::{self, CodecError};
use lanner_contract::field_set::StoredFieldSet;
use lanner_contract::model::{ALL_STORED, STORED_FIELDS};
use lanner_contract::{Event, Kind, StoredField};
use proptest::prelude::*;
use serde_json::{Map, Value as Json, json};

/// Fields set by each kind of event, on top of the process context every event has.
const KINDS: &[(&str, &[&str])] = &[
    (
        "execve",
        &[
            "evt.arg.filename",
            "proc.aname",
            "proc.apid",
            "proc.acmdline",
            "proc.is_exe_from_memfd",
        ],
    ),
    (
        "openat",
        &[
            "fd.num",
            "fd.name",
            "fd.type",
            "evt.arg.flags",
            "evt.arg.mode",
        ],
    ),
    (
        "connect",
        &[
            "fd.cip",
            "fd.cport",
            "fd.sip",
            "fd.sport",
            "fd.l4proto",
            "fd.sip.name",
        ],
    ),
    (
        "sendto",
        &["dns.name", "dns.type", "dns.rcode", "dns.answers"],
    ),
    (
        "ptrace",
        &["evt.arg.request", "evt.arg.pid", "thread.cap_effective"],
    ),
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
        Kind::StrList => prop::collection::vec(text, 0..5)
            .prop_map(Json::from)
            .boxed(),
        Kind::U64List => prop::collection::vec(any::<u64>(), 0..5)
            .prop_map(Json::from)
            .boxed(),
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

    /// Decoding some fields gives the events with only those fields, and rejects what
    /// full decoding rejects.
    #[test]
    fn decoding_some_fields_keeps_exactly_those(events in prop::collection::vec(event(), 0..4), picks in prop::collection::vec(any::<prop::sample::Index>(), 0..40), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4)) {
        let keep: StoredFieldSet = picks.iter().map(|i| ALL_STORED[i.index(ALL_STORED.len())]).collect();
        let bytes = codec::encode_batch(&events);
        let expected: Vec<Event> = events
            .iter()
            .map(|ev| {
                let Json::Object(mut m) = serde_json::to_value(ev).expect("event to JSON") else {
                    unreachable!("an event is a JSON object")
                };
                m.retain(|name, _| StoredField::from_name(name).is_some_and(|f| keep.contains(f)));
                serde_json::from_value(Json::Object(m)).expect("JSON to event")
            })
            .collect();
        prop_assert_eq!(codec::decode_batch_fields(&bytes, &keep).expect("decodes"), expected);
        let mut mutated = bytes.clone();
        for (i, b) in flips {
            let i = i.index(mutated.len());
            mutated[i] ^= b;
        }
        prop_assert_eq!(
            codec::decode_batch_fields(&mutated, &keep).is_ok(),
            codec::decode_batch(&mutated).is_ok()
        );
    }

    /// `check_batch` accepts exactly what `decode_batch` accepts: valid batches (with
    /// their event count), and neither accepts a truncated or mutated one the other
    /// rejects.
    #[test]
    fn checking_agrees_with_decoding(events in prop::collection::vec(event(), 0..4), cut in any::<prop::sample::Index>(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6)) {
        let bytes = codec::encode_batch(&events);
        prop_assert_eq!(codec::check_batch(&bytes), Ok(events.len()));
        // The header alone gives the same count.
        prop_assert_eq!(codec::batch_events(&bytes), Ok(events.len()));
        let prefix = &bytes[..cut.index(bytes.len())];
        prop_assert!(codec::check_batch(prefix).is_err());
        let mut mutated = bytes.clone();
        for (i, b) in flips {
            let i = i.index(mutated.len());
            mutated[i] ^= b;
        }
        prop_assert_eq!(
            codec::check_batch(&mutated).ok(),
            codec::decode_batch(&mutated).ok().map(|evs| evs.len())
        );
        // Reading the header is weaker than checking, never stricter.
        if let Ok(n) = codec::check_batch(&mutated) {
            prop_assert_eq!(codec::batch_events(&mutated), Ok(n));
        }
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

/// An event with every field set to its longest encoding (the most varint bytes, IPv6
/// addresses) round-trips: the encoder writes each event into a buffer sized for the
/// largest one.
#[test]
fn an_event_with_every_field_at_its_largest_round_trips() {
    let mut obj = Map::new();
    for info in STORED_FIELDS {
        let v = match info.kind {
            Kind::Str => Json::from("x".repeat(100)),
            Kind::U64 => Json::from(u64::MAX),
            Kind::I64 | Kind::Ts => Json::from(i64::MIN),
            Kind::Bool => Json::from(true),
            Kind::Ip => Json::from("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            Kind::StrList => json!(["a", "b"]),
            Kind::U64List => json!([u64::MAX]),
            Kind::Map => json!({"k": "v"}),
        };
        obj.insert(info.name.to_owned(), v);
    }
    let ev: Event = serde_json::from_value(Json::Object(obj)).expect("a valid event");
    let events = vec![ev.clone(), Event::default(), ev];
    let bytes = codec::encode_batch(&events);
    assert_eq!(codec::decode_batch(&bytes).expect("decodes"), events);
}

#[test]
fn hostile_counts_do_not_allocate() {
    let mut bytes = codec::encode_batch(&[]);
    bytes.truncate(bytes.len() - 1);
    bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    assert!(matches!(
        codec::decode_batch(&bytes),
        Err(CodecError::Invalid { .. })
    ));
}

#[test]
fn other_versions_and_flags_are_refused() {
    let mut bytes = codec::encode_batch(&[Event::default()]);
    bytes[4] = 9;
    assert_eq!(
        codec::decode_batch(&bytes),
        Err(CodecError::UnsupportedVersion(9))
    );
    let mut bytes = codec::encode_batch(&[Event::default()]);
    bytes[5] |= 2;
    assert_eq!(
        codec::decode_batch(&bytes),
        Err(CodecError::UnsupportedFlags(3))
    );
}

/// Kind codes as docs/wire-format.md specifies them.
fn kind_code(kind: Kind) -> u8 {
    match kind {
        Kind::Str => 1,
        Kind::U64 => 2,
        Kind::I64 => 3,
        Kind::Bool => 4,
        Kind::Ts => 5,
        Kind::Ip => 6,
        Kind::StrList => 7,
        Kind::U64List => 8,
        Kind::Map => 9,
    }
}

/// A one-event batch written by hand from the documented format: `kinds` is the
/// writer's field list, `present` the (field position, text index) pairs set; the event
/// starts with its length (flag 1), as this crate writes it.
fn hand_batch(kinds: &[u8], strings: &[&str], present: &[(usize, u8)]) -> Vec<u8> {
    hand_batch_with(kinds, strings, present, true)
}

/// [`hand_batch`], with or without the event's length (flags 1 or 0).
fn hand_batch_with(
    kinds: &[u8],
    strings: &[&str],
    present: &[(usize, u8)],
    length: bool,
) -> Vec<u8> {
    let mut b = b"LNRB".to_vec();
    b.extend_from_slice(&[1, u8::from(length)]);
    b.push(kinds.len() as u8);
    b.extend_from_slice(kinds);
    b.push(strings.len() as u8);
    for s in strings {
        b.push(s.len() as u8);
        b.extend_from_slice(s.as_bytes());
    }
    b.extend_from_slice(&[0, 0, 0]); // no lists, number lists or maps
    b.push(1); // one event
    let mut presence = vec![0u8; kinds.len().div_ceil(8)];
    if length {
        // The bitmap and one byte per value.
        b.push((presence.len() + present.len()) as u8);
    }
    for (pos, _) in present {
        presence[pos / 8] |= 1 << (pos % 8);
    }
    b.extend_from_slice(&presence);
    let mut sorted = present.to_vec();
    sorted.sort();
    for (_, idx) in sorted {
        b.push(idx);
    }
    b
}

#[test]
fn older_and_newer_writers_are_read() {
    let ev = Event {
        evt_type: Some("openat".into()),
        proc_name: Some("cat".into()),
        ..Default::default()
    };
    let n = STORED_FIELDS.len();
    assert!(n < 120, "field count fits one varint byte in this test");
    let pos = |name: &str| {
        STORED_FIELDS
            .iter()
            .position(|f| f.name == name)
            .expect("field")
    };
    let ours: Vec<u8> = STORED_FIELDS.iter().map(|f| kind_code(f.kind)).collect();
    let fields = [(pos("evt.type"), 0u8), (pos("proc.name"), 1u8)];

    let same = hand_batch(&ours, &["openat", "cat"], &fields);
    assert_eq!(
        codec::decode_batch(&same).expect("this writer"),
        vec![ev.clone()]
    );
    assert_eq!(
        same,
        codec::encode_batch(std::slice::from_ref(&ev)),
        "the format is as documented"
    );

    // A newer writer: one more text field, present.
    let mut newer_kinds = ours.clone();
    newer_kinds.push(1);
    let mut newer_fields = fields.to_vec();
    newer_fields.push((n, 2));
    let newer = hand_batch(&newer_kinds, &["openat", "cat", "x"], &newer_fields);
    assert_eq!(
        codec::decode_batch(&newer).expect("newer writer"),
        vec![ev.clone()]
    );

    // An older writer that did not know the last field, nor event lengths.
    let older = hand_batch_with(&ours[..n - 1], &["openat", "cat"], &fields, false);
    assert_eq!(codec::decode_batch(&older).expect("older writer"), vec![ev]);

    // A writer that disagrees on a field's kind is refused.
    let mut wrong = ours.clone();
    wrong[pos("proc.name")] = 2;
    assert!(matches!(
        codec::decode_batch(&hand_batch(&wrong, &["openat", "cat"], &fields)),
        Err(CodecError::SchemaMismatch {
            field: "proc.name",
            ..
        })
    ));

    // Indices past the tables are refused.
    let bad_index = hand_batch(&ours, &["openat"], &fields);
    assert!(codec::decode_batch(&bad_index).is_err());
}

#[test]
fn shared_values_are_written_once_and_read_back_equal() {
    let events: Vec<Event> = lanner_contract::synth::Synth::new(3, "node-a")
        .take(2000)
        .collect();
    let bytes = codec::encode_batch(&events);
    assert_eq!(codec::decode_batch(&bytes).expect("decodes"), events);
    let json: usize = events
        .iter()
        .map(|e| lanner_contract::jsonl::to_line(e).len() + 1)
        .sum();
    assert!(
        bytes.len() * 5 < json,
        "binary {} bytes vs JSON lines {json} bytes",
        bytes.len()
    );
}

#[test]
fn equal_texts_from_separate_allocations_are_written_once() {
    // A sensor builds `"openat"` afresh for every event; the batch must still hold it
    // once, and the reader must get one shared value back.
    let path = "/var/lib/some/long/path/that/would/cost/bytes/each/time";
    let events: Vec<Event> = (0..100)
        .map(|_| Event {
            evt_type: Some("openat".into()),
            fd_name: Some(path.into()),
            ..Default::default()
        })
        .collect();
    let bytes = codec::encode_batch(&events);
    let one = codec::encode_batch(&events[..1]).len();
    // Each further event costs its presence bitmap and two one-byte indices, far less
    // than the path it would otherwise repeat.
    let per_event = (bytes.len() - one) / 99;
    assert!(
        per_event < path.len() / 2,
        "{per_event} bytes per further event ({} in all, {one} for one)",
        bytes.len()
    );
    let back = codec::decode_batch(&bytes).expect("decodes");
    assert_eq!(back, events);
    let (a, b) = (&back[0], &back[99]);
    // One shared allocation (the path is too long to be inline).
    assert_eq!(
        a.fd_name.as_ref().expect("set").as_ptr(),
        b.fd_name.as_ref().expect("set").as_ptr()
    );
}

/// One step of a pool's life: a batch (maybe mutated), decoded with some fields kept.
#[derive(Debug, Clone)]
struct Step {
    events: Vec<Event>,
    /// Which of the test's two field sets is kept (`None`: every field). Drawn from
    /// two, so that consecutive batches often keep the same fields and decode into
    /// events that held kept fields before.
    keep: Option<bool>,
    flip: Option<(prop::sample::Index, u8)>,
    keep_batch: bool,
    /// Decode only the events of some types (`BatchPool::decode_wanted`): bit `k` wants
    /// `KINDS[k]`'s type, bit 7 events without a type.
    wanted: Option<u8>,
    /// Written as before events carried their length (`codec::without_event_lengths`).
    unsized_events: bool,
}

/// Whether the types drawn as `mask` (see [`Step::wanted`]) take an event of type `t`.
fn wants(mask: u8, t: Option<&str>) -> bool {
    match t {
        None => mask & 0x80 != 0,
        Some(t) => KINDS
            .iter()
            .position(|(k, _)| *k == t)
            .is_some_and(|k| mask & (1 << k) != 0),
    }
}

fn step() -> impl Strategy<Value = Step> {
    let untyped_or_not = (event(), prop::bool::weighted(0.15)).prop_map(|(mut ev, untyped)| {
        if untyped {
            ev.evt_type = None;
        }
        ev
    });
    (
        prop::collection::vec(untyped_or_not, 0..6),
        prop::option::of(any::<bool>()),
        prop::option::weighted(0.2, (any::<prop::sample::Index>(), 1..=255u8)),
        any::<bool>(),
        prop::option::of(any::<u8>()),
        any::<bool>(),
    )
        .prop_map(
            |(events, keep, flip, keep_batch, wanted, unsized_events)| Step {
                events,
                keep,
                flip,
                keep_batch,
                wanted,
                unsized_events,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Batches decoded into reused events (a pool of 2, with the kept fields changing
    /// between batches, bad batches among good ones, some batches held while others
    /// are decoded, and some decoded for some event types only) equal freshly decoded
    /// ones (less the events of other types), and errors stay errors.
    #[test]
    fn pooled_decoding_equals_fresh_decoding(
        steps in prop::collection::vec(step(), 1..12),
        sets in [
            prop::collection::vec(any::<bool>(), ALL_STORED.len()),
            prop::collection::vec(any::<bool>(), ALL_STORED.len()),
        ],
    ) {
        let pool = std::sync::Arc::new(lanner_contract::batch_pool::BatchPool::new(2));
        let mut held = Vec::new();
        for s in steps {
            let mut bytes = codec::encode_batch(&s.events);
            if s.unsized_events {
                bytes = codec::without_event_lengths(&bytes).expect("a batch just written");
            }
            if let Some((i, b)) = s.flip {
                let i = i.index(bytes.len());
                bytes[i] ^= b;
            }
            let keep: Option<StoredFieldSet> = s.keep.map(|which| {
                ALL_STORED
                    .iter()
                    .zip(sets[usize::from(which)].iter().copied())
                    .filter(|(_, on)| *on)
                    .map(|(f, _)| *f)
                    .collect()
            });
            let fresh = match &keep {
                Some(k) => codec::decode_batch_fields(&bytes, k),
                None => codec::decode_batch(&bytes),
            };
            let pooled = match s.wanted {
                Some(mask) => pool.decode_wanted(&bytes, keep.as_ref(), &|t| wants(mask, t)),
                None => pool.decode(&bytes, keep.as_ref()),
            };
            match (pooled, fresh) {
                (Ok(pooled), Ok(fresh)) => {
                    prop_assert_eq!(pooled.batch_events(), fresh.len());
                    // Events are chosen by their type in the batch, kept or not.
                    let types: Vec<Option<String>> = codec::decode_batch(&bytes)
                        .map(|all| all.into_iter().map(|ev| ev.evt_type.map(|t| t.to_string())).collect())
                        .unwrap_or_default();
                    let (positions, fresh): (Vec<usize>, Vec<Event>) = fresh
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| s.wanted.is_none_or(|m| wants(m, types.get(*i).and_then(|t| t.as_deref()))))
                        .unzip();
                    prop_assert_eq!(&pooled[..], &fresh[..]);
                    let pooled_positions: Vec<usize> = (0..pooled.len()).map(|i| pooled.position(i)).collect();
                    prop_assert_eq!(pooled_positions, positions);
                    if s.keep_batch {
                        held.push((pooled, fresh));
                    }
                }
                (Err(_), Err(_)) => {}
                // Events whose length says where they end are stepped over past their
                // type, unchecked: damage there goes unnoticed when they are not wanted.
                (Ok(_), Err(_)) if s.wanted.is_some() && !s.unsized_events => {}
                (p, f) => prop_assert!(false, "pooled {:?} vs fresh {:?}", p.map(|b| b.len()), f.map(|b| b.len())),
            }
            // Batches still held were not disturbed by later ones.
            for (pooled, fresh) in &held {
                prop_assert_eq!(&pooled[..], &fresh[..]);
            }
            if held.len() > 2 {
                held.remove(0);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every field that reads as one borrowed text (the detector's lean checks) reads
    /// the same as through the general accessor, ancestors and directories included.
    #[test]
    fn text_fields_read_as_the_accessor_does(mut ev in event(), dir in any::<bool>(), path in "(/[a-z]{0,3}){0,3}/?") {
        if dir {
            ev.fd_type = Some("directory".into());
        }
        if !path.is_empty() {
            ev.fd_name = Some(path.as_str().into());
        }
        let names = lanner_contract::field::all_field_names()
            .map(str::to_owned)
            .chain((0..4).flat_map(|i| {
                ["proc.aname", "proc.aexe", "proc.aexepath", "proc.acmdline", "proc.apid"]
                    .map(|f| format!("{f}[{i}]"))
            }));
        let mut lean = 0;
        for name in names {
            let Ok(r) = lanner_contract::FieldRef::parse(&name) else { continue };
            let Some(t) = r.as_text() else { continue };
            lean += 1;
            let text = ev.get_text_field(t).map(|s| lanner_contract::Value::Str(s.into()));
            prop_assert_eq!(text, ev.get(&r), "{}", name);
        }
        prop_assert!(lean >= 80, "only {} fields read as text", lean);
    }
}
