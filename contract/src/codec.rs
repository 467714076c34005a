//! The versioned binary wire codec for event batches (see `docs/wire-format.md`).
//!
//! A batch is a header (magic `LNRB`, format version, flags, the writer's field list
//! as kinds), four tables of shared values (texts, text lists, number lists, label maps:
//! each distinct value once), then the events: for each, a presence bitmap over the
//! writer's fields and the present values in field order, where text, lists and maps are
//! indices into the tables. Events of one process or container share their strings, so
//! a batch stays small and decoding allocates each distinct value once. Carrying the
//! writer's kinds lets a reader skip fields newer than itself and read older writers.
//!
//! ```
//! use lanner_contract::{codec, Event};
//! let ev = Event { evt_type: Some("openat".into()), fd_name: Some("/etc/shadow".into()), ..Default::default() };
//! let bytes = codec::encode_batch(std::slice::from_ref(&ev));
//! assert_eq!(codec::decode_batch(&bytes).unwrap(), vec![ev]);
//! assert!(codec::decode_batch(&bytes[..bytes.len() - 1]).is_err());
//! ```

use crate::field_set::StoredFieldSet;
use crate::model::{Event, STORED_FIELDS};
use crate::value::Kind;
use crate::wire::{Reader, Writer, put_varint};

/// First bytes of every batch.
pub const MAGIC: &[u8; 4] = b"LNRB";
/// Version of the batch format this crate writes.
pub const WIRE_VERSION: u8 = 1;
/// Header flag: each event starts with its length in bytes (a varint), so a reader can
/// step over an event it has no use for. Written always; batches without it (written
/// before it existed) are read too.
pub const FLAG_EVENT_LENGTHS: u8 = 0x01;
/// Largest batch a reader accepts.
pub const MAX_BATCH_BYTES: usize = 64 << 20;

/// Why a batch could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The input does not start with [`MAGIC`].
    #[error("not a lanner event batch (bad magic)")]
    BadMagic,
    /// A format version this reader does not know.
    #[error("unsupported batch format version {0} (this reader knows {WIRE_VERSION})")]
    UnsupportedVersion(u8),
    /// Flags this reader does not know.
    #[error("unsupported batch flags {0:#04x}")]
    UnsupportedFlags(u8),
    /// The input is larger than [`MAX_BATCH_BYTES`].
    #[error("batch of {0} bytes exceeds the limit of {MAX_BATCH_BYTES}")]
    TooLarge(usize),
    /// The input ended inside a value.
    #[error("truncated at byte {at}")]
    Truncated {
        /// Byte offset.
        at: usize,
    },
    /// A malformed value.
    #[error("invalid input at byte {at}: {what}")]
    Invalid {
        /// Byte offset.
        at: usize,
        /// What was wrong.
        what: &'static str,
    },
    /// The writer declares a field with another kind than this reader's.
    #[error("field {field} has kind {found:?} in the batch but {expected:?} here")]
    SchemaMismatch {
        /// Falco name of the field.
        field: &'static str,
        /// Kind in the batch.
        found: Kind,
        /// Kind here.
        expected: Kind,
    },
    /// Bytes left after the last event.
    #[error("{0} trailing bytes after the last event")]
    TrailingBytes(usize),
    /// An error inside one field.
    #[error("field {field}: {source}")]
    Field {
        /// Falco name of the field.
        field: &'static str,
        /// The underlying error.
        source: Box<CodecError>,
    },
}

impl CodecError {
    pub(crate) fn in_field(self, field: &'static str) -> CodecError {
        CodecError::Field {
            field,
            source: Box::new(self),
        }
    }
}

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

fn kind_from_code(code: u8, at: usize) -> Result<Kind, CodecError> {
    Ok(match code {
        1 => Kind::Str,
        2 => Kind::U64,
        3 => Kind::I64,
        4 => Kind::Bool,
        5 => Kind::Ts,
        6 => Kind::Ip,
        7 => Kind::StrList,
        8 => Kind::U64List,
        9 => Kind::Map,
        _ => {
            return Err(CodecError::Invalid {
                at,
                what: "unknown field kind",
            });
        }
    })
}

/// Encodes a batch of events.
pub fn encode_batch(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + events.len() * 128);
    encode_batch_into(events, &mut out);
    out
}

/// Encodes a batch of events, appending to `out` (reuse its allocation on hot paths).
pub fn encode_batch_into(events: &[Event], out: &mut Vec<u8>) {
    let mut w = Writer::for_events(events.len());
    for ev in events {
        ev.encode_fields(&mut w);
    }
    out.extend_from_slice(MAGIC);
    out.push(WIRE_VERSION);
    out.push(FLAG_EVENT_LENGTHS);
    put_varint(out, STORED_FIELDS.len() as u64);
    out.extend(STORED_FIELDS.iter().map(|f| kind_code(f.kind)));
    for table in [&w.strings, &w.lists, &w.pids, &w.maps] {
        put_varint(out, u64::from(table.count));
        out.extend_from_slice(&table.buf);
    }
    put_varint(out, events.len() as u64);
    out.extend_from_slice(&w.buf);
}

/// Reads a batch's header and shared-value tables (built, checked or skipped): the
/// reader positioned at the first event, the writer's field kinds,
/// and the number of events.
/// What [`open_batch`] does with a batch's shared-value tables.
#[derive(Clone, Copy)]
enum Tables {
    /// Builds them, for decoding.
    Read,
    /// Checks every entry without building anything.
    Check,
    /// Steps over them by their lengths.
    Skip,
    /// Leaves them to the caller, with the event count after them.
    #[cfg(feature = "arrow")]
    Leave,
}

fn open_batch(bytes: &[u8], tables: Tables) -> Result<(Reader<'_>, Vec<Kind>, usize), CodecError> {
    if bytes.len() > MAX_BATCH_BYTES {
        return Err(CodecError::TooLarge(bytes.len()));
    }
    let mut r = Reader::new(bytes);
    if r.take(4).map_err(|_| CodecError::BadMagic)? != MAGIC {
        return Err(CodecError::BadMagic);
    }
    let version = r.u8()?;
    if version != WIRE_VERSION {
        return Err(CodecError::UnsupportedVersion(version));
    }
    let flags = r.u8()?;
    if flags & !FLAG_EVENT_LENGTHS != 0 {
        return Err(CodecError::UnsupportedFlags(flags));
    }
    r.event_lengths = flags & FLAG_EVENT_LENGTHS != 0;
    let field_count = r.count(1)?;
    let mut kinds = Vec::with_capacity(field_count);
    for i in 0..field_count {
        let at = r.position();
        let kind = kind_from_code(r.u8()?, at)?;
        if let Some(ours) = STORED_FIELDS.get(i)
            && ours.kind != kind
        {
            return Err(CodecError::SchemaMismatch {
                field: ours.name,
                found: kind,
                expected: ours.kind,
            });
        }
        kinds.push(kind);
    }
    match tables {
        Tables::Read => r.read_tables()?,
        Tables::Check => r.check_tables()?,
        Tables::Skip => r.skip_tables()?,
        #[cfg(feature = "arrow")]
        Tables::Leave => return Ok((r, kinds, 0)),
    }
    let event_count = r.count(field_count.div_ceil(8).max(1))?;
    Ok((r, kinds, event_count))
}

/// Opens a batch for [`crate::arrow_wire`]: its header checked, its tables read into
/// `tables` as places in `bytes`. Returns the reader at the first event, whether the
/// writer's field list is this crate's, and the number of events.
#[cfg(feature = "arrow")]
pub(crate) fn open_raw<'a>(
    bytes: &'a [u8],
    tables: &mut crate::wire::RawTables,
) -> Result<(Reader<'a>, bool, usize), CodecError> {
    let (mut r, kinds, _) = open_batch(bytes, Tables::Leave)?;
    r.read_raw_tables(tables)?;
    let event_count = r.count(kinds.len().div_ceil(8).max(1))?;
    Ok((r, kinds.len() == STORED_FIELDS.len(), event_count))
}

/// The time of each event of a batch (`evt.time`, `None` where unset), read without
/// decoding the events: the header is checked, the tables are stepped over by their
/// lengths and each event by its length, so damage elsewhere goes unnoticed here (a
/// full decoding finds it). `Ok(false)` when the batch's events carry no lengths or
/// its writer had another field list: decode it instead.
pub fn event_times(bytes: &[u8], times: &mut Vec<Option<i64>>) -> Result<bool, CodecError> {
    const ID: usize = crate::model::StoredField::evt_id as usize;
    const TIME: usize = crate::model::StoredField::evt_time as usize;
    const _: () = assert!(ID == 0 && TIME == 1, "evt.id and evt.time come first");
    times.clear();
    let (mut r, kinds, event_count) = open_batch(bytes, Tables::Skip)?;
    if !r.event_lengths || kinds.len() != STORED_FIELDS.len() {
        return Ok(false);
    }
    times.reserve(event_count);
    for _ in 0..event_count {
        let end = r.event_start()?.unwrap_or(0);
        let presence = r.presence(kinds.len())?;
        let first = presence.first().copied().unwrap_or(0);
        if first & 1 != 0 {
            r.varint()?;
        }
        times.push(if first & 2 != 0 {
            Some(<crate::value::Timestamp as crate::wire::Wire>::decode(&mut r)?.0)
        } else {
            None
        });
        r.skip_to(end);
    }
    Ok(true)
}

/// Checks that a batch decodes, without building its events (no per-event allocation,
/// no shared-value reference counting): what [`decode_batch`] would reject, this
/// rejects. Returns the number of events. For relaying batches unchanged, as replaying a
/// recording does. The shared-value tables are checked in place, nothing is allocated
/// for them.
pub fn check_batch(bytes: &[u8]) -> Result<usize, CodecError> {
    let (mut r, kinds, event_count) = open_batch(bytes, Tables::Check)?;
    // Per field of the writer, how its values are checked in this batch.
    let plan: Vec<_> = kinds.iter().map(|&k| r.value_check(k)).collect();
    for _ in 0..event_count {
        let end = r.event_start()?;
        let presence = r.presence(kinds.len())?;
        // Only the set bits: an event has a few dozen of its ~100 fields.
        r.check_present(presence, 0, &plan)?;
        r.event_end(end)?;
    }
    if r.remaining() != 0 {
        return Err(CodecError::TrailingBytes(r.remaining()));
    }
    Ok(event_count)
}

/// The number of events in a batch, from its header: checks the header (magic,
/// version, the field kinds) and steps over the shared-value tables by their lengths,
/// without checking what they hold or walking the events. For bytes known to be what
/// lanner encoded (a recording frame that matches its checksum); [`check_batch`] checks
/// everything.
pub fn batch_events(bytes: &[u8]) -> Result<usize, CodecError> {
    open_batch(bytes, Tables::Skip).map(|(_, _, events)| events)
}

/// Decodes a batch. Bounded: never panics, and allocates at most in proportion to the
/// input's length.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<Event>, CodecError> {
    decode(bytes, None)
}

/// Decodes a batch keeping only the fields in `keep` (the others are checked and
/// skipped, as [`check_batch`] does): what a reader that needs a few fields of each
/// event pays, without an `Arc` clone and drop for each field it does not read.
/// Rejects exactly what [`decode_batch`] rejects.
pub fn decode_batch_fields(bytes: &[u8], keep: &StoredFieldSet) -> Result<Vec<Event>, CodecError> {
    decode(bytes, Some(keep))
}

/// Decodes a batch into `events`, reusing the events already there (which
/// [`crate::batch_pool`] guarantees were decoded with the same `keep`): no event is
/// built or dropped, only the kept fields are overwritten or unset. Returns how many
/// events the batch has (the first ones of `events`; the vector only grows).
pub(crate) fn decode_reusing(
    bytes: &[u8],
    keep: Option<&StoredFieldSet>,
    events: &mut Vec<Event>,
) -> Result<usize, CodecError> {
    let (mut r, kinds, event_count) = open_batch(bytes, Tables::Read)?;
    let plan: Vec<_> = kinds.iter().map(|&k| r.value_check(k)).collect();
    let keep = keep.map(Event::keep_mask);
    let keep = keep.as_ref();
    if events.len() < event_count {
        events.resize_with(event_count, Event::default);
    }
    for ev in &mut events[..event_count] {
        let end = r.event_start()?;
        ev.decode_fields(&mut r, &plan, keep, true)?;
        r.event_end(end)?;
    }
    if r.remaining() != 0 {
        return Err(CodecError::TrailingBytes(r.remaining()));
    }
    Ok(event_count)
}

/// Which events of a batch a reader wants, by their `evt.type` (`None`: the event has
/// none). Asked once per event, or once per distinct type when only some fields are
/// kept; keep it cheap (the detector looks the type up in its rule index).
pub type WantedTypes<'a> = &'a dyn Fn(Option<&str>) -> bool;

/// [`decode_reusing`] keeping only the events whose type `wanted` accepts: they go to
/// the front of `events` in batch order, and `positions` gets each one's index in the
/// batch. The others are read up to their type and stepped over by their length,
/// unread (in a batch without event lengths: checked value by value, as decoding
/// checks them, and not built). So the result is that of [`decode_reusing`] with the
/// unwanted events taken out, and so are the errors, but for damage inside a
/// stepped-over event, which goes unnoticed. An event's type is the one in the batch,
/// whether `keep` has `evt.type` or not. Batches written with another field list are
/// decoded whole, every event kept. Returns how many events were kept and how many the
/// batch has.
pub(crate) fn decode_reusing_wanted(
    bytes: &[u8],
    keep: Option<&StoredFieldSet>,
    wanted: WantedTypes<'_>,
    events: &mut Vec<Event>,
    positions: &mut Vec<u32>,
) -> Result<(usize, usize), CodecError> {
    let (mut r, kinds, event_count) = open_batch(bytes, Tables::Read)?;
    let plan: Vec<_> = kinds.iter().map(|&k| r.value_check(k)).collect();
    let keep = keep.map(Event::keep_mask);
    let keep = keep.as_ref();
    let own = plan.len() == crate::model::STORED_FIELDS.len();
    // Per string of the batch (and for no type): not asked yet, wanted, or not.
    let mut verdicts = vec![Verdict::Unknown; r.tables.strings.len()];
    let mut untyped = Verdict::Unknown;
    let skip_all = Event::keep_mask(&StoredFieldSet::default());
    let mut skipped: Option<Box<Event>> = None;
    positions.clear();
    let mut n = 0;
    // Every field kept (as the detector decodes): the type decides half-way through.
    let fused = own && keep.is_none();
    for i in 0..event_count {
        let end = r.event_start()?;
        if fused {
            if events.len() <= n {
                events.push(Event::default());
            }
            if let Some(ev) = events.get_mut(n)
                && ev.decode_own_fields_wanted(&mut r, &plan, wanted, end)?
            {
                r.event_end(end)?;
                positions.push(i as u32);
                n += 1;
            }
            continue;
        }
        if own && let Ok(ty) = peek_type(&mut r, &plan) {
            let verdict = match ty {
                Some(t) => verdicts.get_mut(t),
                None => Some(&mut untyped),
            };
            if let Some(v) = verdict {
                if *v == Verdict::Unknown {
                    let text = ty.and_then(|t| r.tables.strings.get(t)).map(|t| t.as_str());
                    *v = if wanted(text) {
                        Verdict::Wanted
                    } else {
                        Verdict::Unwanted
                    };
                }
                if *v == Verdict::Unwanted {
                    match end {
                        Some(end) => r.skip_to(end),
                        None => {
                            // Nothing is kept, nothing written: the event is only checked.
                            let scratch = skipped.get_or_insert_with(Box::default);
                            scratch.decode_fields(&mut r, &plan, Some(&skip_all), false)?;
                        }
                    }
                    continue;
                }
            }
        }
        if events.len() <= n {
            events.push(Event::default());
        }
        if let Some(ev) = events.get_mut(n) {
            ev.decode_fields(&mut r, &plan, keep, true)?;
        }
        r.event_end(end)?;
        positions.push(i as u32);
        n += 1;
    }
    if r.remaining() != 0 {
        return Err(CodecError::TrailingBytes(r.remaining()));
    }
    Ok((n, event_count))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Unknown,
    Wanted,
    Unwanted,
}

/// The string-table index of the next event's `evt.type` (`None`: the event has none),
/// read ahead without moving on, in a batch of this crate's own field list. An error
/// here is left for decoding the event to report.
fn peek_type(
    r: &mut Reader<'_>,
    plan: &[crate::wire::ValueCheck],
) -> Result<Option<usize>, CodecError> {
    const TYPE: usize = crate::model::StoredField::evt_type as usize;
    let start = r.position();
    let found = (|| {
        let presence = r.presence(plan.len())?;
        for (bit, check) in plan.iter().enumerate().take(TYPE) {
            if crate::wire::is_present(presence, bit) {
                r.check_value(*check)?;
            }
        }
        if !crate::wire::is_present(presence, TYPE) {
            return Ok(None);
        }
        r.text_index().map(Some)
    })();
    r.rewind(start);
    found
}

fn decode(bytes: &[u8], keep: Option<&StoredFieldSet>) -> Result<Vec<Event>, CodecError> {
    let (mut r, kinds, event_count) = open_batch(bytes, Tables::Read)?;
    let plan: Vec<_> = kinds.iter().map(|&k| r.value_check(k)).collect();
    let keep = keep.map(Event::keep_mask);
    let keep = keep.as_ref();
    // Built in place: an event is large, and moving each one costs a copy. Each event
    // is decoded right after it is set to its default, while it is still in the cache
    // (defaulting the whole batch first wrote ~2 MB that decoding then read back).
    let mut events = Vec::with_capacity(event_count);
    for i in 0..event_count {
        let end = r.event_start()?;
        events.resize_with(i + 1, Event::default);
        if let Some(ev) = events.last_mut() {
            ev.decode_fields(&mut r, &plan, keep, false)?;
        }
        r.event_end(end)?;
    }
    if r.remaining() != 0 {
        return Err(CodecError::TrailingBytes(r.remaining()));
    }
    Ok(events)
}

/// The same batch as a writer from before [`FLAG_EVENT_LENGTHS`] wrote it: the events'
/// lengths taken out and the flag cleared (for tests of reading such batches).
#[doc(hidden)]
pub fn without_event_lengths(bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
    let (mut r, _, event_count) = open_batch(bytes, Tables::Skip)?;
    if !r.event_lengths {
        return Ok(bytes.to_vec());
    }
    let events_at = r.position();
    let mut out = bytes.get(..events_at).unwrap_or_default().to_vec();
    if let Some(flags) = out.get_mut(5) {
        *flags &= !FLAG_EVENT_LENGTHS;
    }
    for _ in 0..event_count {
        let len = r.count(1)?;
        out.extend_from_slice(r.take(len)?);
    }
    out.extend_from_slice(r.take(r.remaining())?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::Synth;

    #[test]
    fn batches_without_event_lengths_read_the_same() {
        let events: Vec<Event> = Synth::new(3, "n").take(300).collect();
        let with = encode_batch(&events);
        let without = without_event_lengths(&with).expect("strips");
        assert!(without.len() < with.len());
        assert_eq!(without.get(5), Some(&0));
        assert_eq!(decode_batch(&without).expect("decodes"), events);
        assert_eq!(check_batch(&without), Ok(events.len()));
        assert_eq!(decode_batch(&with).expect("decodes"), events);
    }

    #[test]
    fn an_event_length_that_does_not_match_its_values_is_refused() {
        let ev = Event {
            evt_type: Some("openat".into()),
            fd_name: Some("/etc/shadow".into()),
            ..Default::default()
        };
        let bytes = encode_batch(&[ev.clone(), ev]);
        let (r, _, _) = open_batch(&bytes, Tables::Skip).expect("opens");
        let first_len = r.position();
        for delta in [1u8, 255] {
            let mut bad = bytes.clone();
            if let Some(b) = bad.get_mut(first_len) {
                *b = b.wrapping_add(delta);
            }
            let err = decode_batch(&bad).expect_err("refused");
            assert!(
                matches!(err, CodecError::Invalid { what, .. } if what.contains("event length")),
                "{err}"
            );
            assert!(check_batch(&bad).is_err());
        }
    }
}
