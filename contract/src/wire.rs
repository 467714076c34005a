//! Low-level encoding of field values: varints, length-prefixed text, bounded reads.
//!
//! Every read checks the remaining length first, so decoding untrusted bytes can fail
//! but never panics and never allocates more than the input could hold.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::codec::CodecError;
use crate::model::{Labels, StrList, Text, U64List};
use crate::share::PtrHasher;
use crate::short_key::ShortKey;
use crate::value::{Kind, Timestamp, Value};

type PtrMap = HashMap<usize, u32, BuildHasherDefault<PtrHasher>>;

/// A table of shared values being written: each distinct allocation once.
pub(crate) struct TableWriter {
    index: PtrMap,
    /// A direct-mapped cache in front of `index`, by allocation: most lookups are of a
    /// value met a moment ago (an event's process ancestry, its container's labels) and
    /// cost a multiply and a compare here instead of a hash-map probe. Address 0 (no
    /// allocation has it) marks an empty slot.
    recent: Vec<(usize, u32)>,
    shift: u32,
    pub(crate) count: u32,
    pub(crate) buf: Vec<u8>,
}

impl TableWriter {
    /// A table expecting about `n` distinct values.
    fn with_capacity(n: usize) -> Self {
        let slots = n.next_power_of_two().clamp(16, 256);
        TableWriter {
            index: PtrMap::with_capacity_and_hasher(n, Default::default()),
            recent: vec![(0, 0); slots],
            shift: 64 - slots.trailing_zeros(),
            count: 0,
            buf: Vec::with_capacity(n * 16),
        }
    }

    #[inline]
    fn slot(&self, ptr: usize) -> usize {
        ((ptr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// The index of the value at `ptr`, or `None` when it must be added (then call
    /// [`TableWriter::added`] after writing it into `buf`).
    #[inline]
    fn lookup(&mut self, ptr: usize) -> Option<u32> {
        let slot = self.slot(ptr);
        if let Some(&(p, i)) = self.recent.get(slot)
            && p == ptr
        {
            return Some(i);
        }
        let found = self.index.get(&ptr).copied();
        if let (Some(i), Some(place)) = (found, self.recent.get_mut(slot)) {
            *place = (ptr, i);
        }
        found
    }

    /// Records that the value at `ptr` is entry `i`.
    fn remember(&mut self, ptr: usize, i: u32) {
        self.index.insert(ptr, i);
        let slot = self.slot(ptr);
        if let Some(place) = self.recent.get_mut(slot) {
            *place = (ptr, i);
        }
    }

    fn added(&mut self, ptr: usize) -> u32 {
        let i = self.count;
        self.remember(ptr, i);
        self.count += 1;
        i
    }
}

pub(crate) fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Output of the codec: the event section plus the shared-value tables.
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
    pub(crate) strings: TableWriter,
    pub(crate) lists: TableWriter,
    pub(crate) pids: TableWriter,
    pub(crate) maps: TableWriter,
    /// Content hash of each text written → (index, start and end in `strings.buf`).
    text_spans: HashMap<u64, (u32, u32, u32), BuildHasherDefault<PtrHasher>>,
    /// Texts of up to 24 bytes already written, by their bytes (see [`ShortTexts`]).
    short: ShortTexts,
    /// The buffer each event is written into before it joins `buf` (see [`put_u8`]).
    event_scratch: Vec<u8>,
}

/// The most bytes one value takes on the wire: an IPv6 address (family and 16 bytes);
/// a varint takes at most 10.
pub(crate) const MAX_VALUE_BYTES: usize = 17;

/// Writes one byte at `at` of an event's buffer, returning where the next byte goes.
///
/// Events are written into a buffer long enough for any event
/// ([`crate::model::MAX_EVENT_BYTES`]) with the position passed by value, so it stays in
/// a register: a byte costs a store and a bounds check rather than a `Vec` push (a
/// capacity check and a length stored through the writer), and the event joins the
/// batch in one copy. The buffer holds the largest event, so a write is never skipped.
#[inline(always)]
fn put_u8(out: &mut [u8], at: usize, v: u8) -> usize {
    if let Some(b) = out.get_mut(at) {
        *b = v;
    }
    at + 1
}

/// Writes a varint at `at` (see [`put_u8`]).
#[inline(always)]
fn put_varint_at(out: &mut [u8], mut at: usize, mut v: u64) -> usize {
    while v >= 0x80 {
        at = put_u8(out, at, (v as u8) | 0x80);
        v >>= 7;
    }
    put_u8(out, at, v as u8)
}

/// Writes bytes at `at` (see [`put_u8`]).
fn put_slice(out: &mut [u8], at: usize, s: &[u8]) -> usize {
    if let Some(place) = out.get_mut(at..at + s.len()) {
        place.copy_from_slice(s);
    }
    at + s.len()
}

/// A direct-mapped cache in front of the text table for short texts (most of an
/// event's: names, types, users, ids): a hit costs building the key, one multiply and
/// a comparison of four words, where the table costs an xxh3 hash, a hash-map probe and
/// a `memcmp`. A miss (or a slot taken by another text) falls back to the table.
struct ShortTexts {
    /// `(key, table index + 1)`; 0 marks an empty slot.
    slots: Vec<(ShortKey, u32)>,
    shift: u32,
}

impl ShortTexts {
    /// A cache of a power of two slots, about four per event (16 to 4096).
    fn for_events(events: usize) -> Self {
        let n = (events * 4).next_power_of_two().clamp(16, 4096);
        ShortTexts {
            slots: vec![(ShortKey::default(), 0); n],
            shift: 64 - n.trailing_zeros(),
        }
    }

    #[inline]
    fn slot(&self, key: &ShortKey) -> usize {
        (key.hash() >> self.shift) as usize
    }
}

impl Writer {
    /// A writer sized for `events` events.
    pub(crate) fn for_events(events: usize) -> Self {
        let table = TableWriter::with_capacity;
        Writer {
            buf: Vec::with_capacity(events * 96),
            strings: table(events * 2 + 64),
            lists: table(events + 16),
            pids: table(events + 16),
            maps: table(16),
            text_spans: HashMap::with_capacity_and_hasher(events + 64, Default::default()),
            short: ShortTexts::for_events(events),
            event_scratch: vec![0; crate::model::MAX_EVENT_BYTES],
        }
    }

    /// The buffer events are written into, taken while an event is written (the
    /// writer's tables are borrowed at the same time), then given back.
    pub(crate) fn take_event_scratch(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.event_scratch)
    }

    /// Gives back what [`Writer::take_event_scratch`] took.
    pub(crate) fn put_event_scratch(&mut self, scratch: Vec<u8>) {
        self.event_scratch = scratch;
    }

    /// The table index of a text: shared (heap) text by allocation first (cheap), then
    /// by content, so equal strings from different allocations (a sensor's `"openat"` per
    /// event) are still written once and decode as one value. Inline text, which has no
    /// allocation to key on, goes by content.
    fn intern_text(&mut self, t: &Text) -> u32 {
        if !t.is_heap_allocated() {
            return self.intern_short(t.as_bytes());
        }
        let ptr = t.as_ptr() as usize;
        if let Some(i) = self.strings.lookup(ptr) {
            return i;
        }
        let (i, _) = self.intern_bytes(t.as_bytes());
        self.strings.remember(ptr, i);
        i
    }

    /// The table index of an inline text, through the short-text cache.
    #[inline]
    fn intern_short(&mut self, bytes: &[u8]) -> u32 {
        let Some(key) = ShortKey::of(bytes) else {
            return self.intern_bytes(bytes).0;
        };
        let slot = self.short.slot(&key);
        if let Some(&(k, i)) = self.short.slots.get(slot)
            && i != 0
            && k == key
        {
            return i - 1;
        }
        let (i, _) = self.intern_bytes(bytes);
        if let Some(place) = self.short.slots.get_mut(slot) {
            *place = (key, i.wrapping_add(1));
        }
        i
    }

    /// The table index of a text by content, adding it when new, and where its bytes are
    /// in `strings.buf` (start, end).
    fn intern_bytes(&mut self, bytes: &[u8]) -> (u32, (u32, u32)) {
        let hash = xxhash_rust::xxh3::xxh3_64(bytes);
        let buf = &self.strings.buf;
        let same = self.text_spans.get(&hash).and_then(|&(i, start, end)| {
            (buf.get(start as usize..end as usize) == Some(bytes)).then_some((i, (start, end)))
        });
        if let Some(found) = same {
            return found;
        }
        put_varint(&mut self.strings.buf, bytes.len() as u64);
        let start = self.strings.buf.len();
        self.strings.buf.extend_from_slice(bytes);
        let i = self.strings.count;
        self.strings.count += 1;
        // Texts are bounded by the batch size, far below u32::MAX bytes; a span that
        // does not fit is not remembered (the text is then written again if repeated).
        match (u32::try_from(start), u32::try_from(self.strings.buf.len())) {
            (Ok(start), Ok(end)) => {
                self.text_spans.insert(hash, (i, start, end));
                (i, (start, end))
            }
            _ => (i, (0, 0)),
        }
    }
}

/// Whether `bit` is set in a presence bitmap (bits past its end are unset).
pub(crate) fn is_present(bitmap: &[u8], bit: usize) -> bool {
    bitmap
        .get(bit / 8)
        .is_some_and(|b| b & (1 << (bit % 8)) != 0)
}

/// The decoded shared-value tables of a batch.
#[derive(Default)]
pub(crate) struct Tables {
    pub(crate) strings: Vec<Text>,
    pub(crate) lists: Vec<StrList>,
    pub(crate) pids: Vec<U64List>,
    pub(crate) maps: Vec<Labels>,
}

/// How many entries each shared-value table of a batch has (what skipping and
/// checking need: an index is valid when below its table's length).
#[derive(Default, Clone, Copy)]
struct TableLens {
    strings: usize,
    lists: usize,
    pids: usize,
    maps: usize,
}

/// A varint of at most nine bytes at the start of `rest`, read as a little-endian word
/// (and one byte more): `(length, value)`, or `None` when `rest` is shorter than ten
/// bytes or the varint longer than nine (the bytewise reader then decides).
#[inline]
fn varint_from_words(rest: &[u8]) -> Option<(usize, u64)> {
    let head: [u8; 10] = rest.get(..10)?.try_into().ok()?;
    let [b0, b1, b2, b3, b4, b5, b6, b7, b8, _] = head;
    let word = u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]);
    let stops = !word & 0x8080_8080_8080_8080;
    let (len, word) = if stops == 0 {
        // No end in the first eight bytes: the ninth must end it.
        if b8 & 0x80 != 0 {
            return None;
        }
        (9, word)
    } else {
        let len = (stops.trailing_zeros() / 8 + 1) as usize;
        // Bytes after the varint's end are masked off (len 8 keeps the whole word).
        (len, word & (u64::MAX >> (64 - 8 * len)))
    };
    let mut v = 0u64;
    for group in 0..8 {
        v |= (word >> group) & (0x7f << (7 * group));
    }
    if len == 9 {
        v |= u64::from(b8) << 56;
    }
    Some((len, v))
}

/// Entry `i` of a shared-value table, read at byte `at`: one bounds check (the
/// table's own), where checking the index and then indexing made two.
#[inline]
fn entry<T: Clone>(table: &[T], i: u64, at: usize, what: &'static str) -> Result<T, CodecError> {
    match usize::try_from(i).ok().and_then(|i| table.get(i)) {
        Some(v) => Ok(v.clone()),
        None => Err(CodecError::Invalid { at, what }),
    }
}

/// Cursor over untrusted input.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    pub(crate) tables: Tables,
    lens: TableLens,
    /// Whether each event starts with its length in bytes (`FLAG_EVENT_LENGTHS`).
    pub(crate) event_lengths: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            tables: Tables::default(),
            lens: TableLens::default(),
            event_lengths: false,
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Checks the values of the fields present in `presence` from field `from` on, as
    /// decoding them would check them, and moves past them: one present field after the
    /// other, absent ones cost nothing. Bits past the batch's fields (the bitmap's last
    /// byte) mean nothing, as in decoding. Inlined, so that a constant `from` (0 when
    /// checking whole events) leaves no masking behind.
    #[inline(always)]
    pub(crate) fn check_present(
        &mut self,
        presence: &[u8],
        from: usize,
        plan: &[ValueCheck],
    ) -> Result<(), CodecError> {
        for (i, &byte) in presence.iter().enumerate() {
            let base = i * 8;
            // The bits of fields before `from` cleared.
            let mut bits = if base + 8 <= from {
                0
            } else if base >= from {
                byte
            } else {
                byte & (0xffu8 << (from - base))
            };
            while bits != 0 {
                let bit = base + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(&check) = plan.get(bit) {
                    self.check_value(check)?;
                }
            }
        }
        Ok(())
    }

    /// Starts reading an event: where it ends, in a batch whose events carry their
    /// length (checked against the input left), else `None`.
    #[inline]
    pub(crate) fn event_start(&mut self) -> Result<Option<usize>, CodecError> {
        if !self.event_lengths {
            return Ok(None);
        }
        let at = self.pos;
        let len = self.varint()?;
        match usize::try_from(len) {
            Ok(len) if len <= self.remaining() => Ok(Some(self.pos + len)),
            _ => Err(CodecError::Invalid {
                at,
                what: "event length exceeds the remaining input",
            }),
        }
    }

    /// Ends an event that [`Reader::event_start`] said ends at `end`: its values must
    /// have taken exactly its length.
    #[inline]
    pub(crate) fn event_end(&self, end: Option<usize>) -> Result<(), CodecError> {
        match end {
            Some(end) if end != self.pos => Err(CodecError::Invalid {
                at: self.pos,
                what: "event length does not match its values",
            }),
            _ => Ok(()),
        }
    }

    /// Moves on to `end`, the end of the event being read (from [`Reader::event_start`]):
    /// what is left of it is not read.
    pub(crate) fn skip_to(&mut self, end: usize) {
        self.pos = end.clamp(self.pos, self.buf.len());
    }

    /// Goes back to `pos`, an earlier [`Reader::position`] (to read ahead, then again).
    pub(crate) fn rewind(&mut self, pos: usize) {
        self.pos = pos.min(self.pos);
    }

    /// The string-table index of the next text value (checked, not cloned).
    pub(crate) fn text_index(&mut self) -> Result<usize, CodecError> {
        self.index(self.lens.strings, "text index out of range")
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if n > self.remaining() {
            return Err(CodecError::Truncated { at: self.pos });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64, CodecError> {
        // Fast paths: table indices and small numbers take one or two bytes.
        match self.buf.get(self.pos..) {
            Some([b0, ..]) if *b0 < 0x80 => {
                self.pos += 1;
                return Ok(u64::from(*b0));
            }
            Some([b0, b1, ..]) if *b1 < 0x80 => {
                self.pos += 2;
                return Ok(u64::from(b0 & 0x7f) | (u64::from(*b1) << 7));
            }
            _ => {}
        }
        self.varint_long()
    }

    /// A varint of three bytes or more (timestamps, large numbers).
    #[inline(never)]
    fn varint_long(&mut self) -> Result<u64, CodecError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        // Eight bytes at once: the first byte without its continuation bit ends the
        // varint, and the 7-bit groups are gathered with shifts instead of a loop. A
        // timestamp (nanoseconds, zigzagged) takes nine bytes: one more after the word.
        if let Some((len, v)) = varint_from_words(rest) {
            self.pos += len;
            return Ok(v);
        }
        self.varint_bytewise(rest)
    }

    /// The general varint reader: any length, any place in the input, and the errors.
    fn varint_bytewise(&mut self, rest: &[u8]) -> Result<u64, CodecError> {
        let mut v: u64 = 0;
        for (i, &b) in rest.iter().take(10).enumerate() {
            if i == 9 && b > 1 {
                return Err(CodecError::Invalid {
                    at: self.pos + i,
                    what: "varint overflows u64",
                });
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.pos += i + 1;
                return Ok(v);
            }
        }
        if rest.len() < 10 {
            return Err(CodecError::Truncated { at: self.buf.len() });
        }
        Err(CodecError::Invalid {
            at: self.pos + 10,
            what: "varint longer than 10 bytes",
        })
    }

    /// A length or count that must fit in the remaining input (each unit at least
    /// `min_unit` bytes), so a hostile count cannot make us allocate.
    pub(crate) fn count(&mut self, min_unit: usize) -> Result<usize, CodecError> {
        let at = self.pos;
        let n = self.varint()?;
        let fits = usize::try_from(n)
            .ok()
            .filter(|n| n.saturating_mul(min_unit.max(1)) <= self.remaining());
        // A match, not `ok_or`: building the error eagerly costs on every call.
        match fits {
            Some(n) => Ok(n),
            None => Err(CodecError::Invalid {
                at,
                what: "count exceeds the remaining input",
            }),
        }
    }

    pub(crate) fn str(&mut self) -> Result<&'a str, CodecError> {
        let n = self.count(1)?;
        let at = self.pos;
        let b = self.take(n)?;
        std::str::from_utf8(b).map_err(|_| CodecError::Invalid {
            at,
            what: "text is not UTF-8",
        })
    }

    /// An index into a table of `len` entries.
    #[inline]
    fn index(&mut self, len: usize, what: &'static str) -> Result<usize, CodecError> {
        let at = self.pos;
        let i = self.varint()?;
        match usize::try_from(i) {
            Ok(i) if i < len => Ok(i),
            _ => Err(CodecError::Invalid { at, what }),
        }
    }

    fn text_ref(&mut self) -> Result<Text, CodecError> {
        self.shared(|t| &t.strings, "text index out of range")
    }

    /// The entry of a shared-value table (`table` picks it) whose index is read here.
    #[inline]
    fn shared<T: Clone>(
        &mut self,
        table: impl Fn(&Tables) -> &[T],
        what: &'static str,
    ) -> Result<T, CodecError> {
        let at = self.pos;
        let i = self.varint()?;
        entry(table(&self.tables), i, at, what)
    }

    /// Reads the four shared-value tables that precede the events.
    pub(crate) fn read_tables(&mut self) -> Result<(), CodecError> {
        let n = self.count(1)?;
        let mut strings = Vec::with_capacity(n);
        for _ in 0..n {
            strings.push(Text::from(self.str()?));
        }
        self.tables.strings = strings;

        let n = self.count(1)?;
        let mut lists = Vec::with_capacity(n);
        for _ in 0..n {
            let len = self.count(1)?;
            let items = (0..len)
                .map(|_| self.text_ref())
                .collect::<Result<Vec<_>, _>>()?;
            lists.push(StrList::from(items));
        }
        self.tables.lists = lists;

        let n = self.count(1)?;
        let mut pids = Vec::with_capacity(n);
        for _ in 0..n {
            let len = self.count(1)?;
            let items = (0..len)
                .map(|_| self.varint())
                .collect::<Result<Vec<_>, _>>()?;
            pids.push(U64List::from(items));
        }
        self.tables.pids = pids;

        let n = self.count(1)?;
        let mut maps = Vec::with_capacity(n);
        for _ in 0..n {
            let len = self.count(2)?;
            let mut m = BTreeMap::new();
            for _ in 0..len {
                let k = self.text_ref()?;
                let v = self.text_ref()?;
                m.insert(k, v);
            }
            maps.push(Arc::new(m));
        }
        self.tables.maps = maps;
        self.lens = TableLens {
            strings: self.tables.strings.len(),
            lists: self.tables.lists.len(),
            pids: self.tables.pids.len(),
            maps: self.tables.maps.len(),
        };
        Ok(())
    }

    /// Checks the four shared-value tables as [`Reader::read_tables`] reads them, without
    /// building any value: the text is UTF-8, every index within its table, every
    /// number a valid varint. Only the tables' lengths are kept, for [`Reader::value_check`].
    pub(crate) fn check_tables(&mut self) -> Result<(), CodecError> {
        let strings = self.count(1)?;
        for _ in 0..strings {
            self.str()?;
        }
        let lists = self.count(1)?;
        for _ in 0..lists {
            for _ in 0..self.count(1)? {
                self.index(strings, "text index out of range")?;
            }
        }
        let pids = self.count(1)?;
        for _ in 0..pids {
            for _ in 0..self.count(1)? {
                self.varint()?;
            }
        }
        let maps = self.count(1)?;
        for _ in 0..maps {
            for _ in 0..self.count(2)? {
                self.index(strings, "text index out of range")?;
                self.index(strings, "text index out of range")?;
            }
        }
        self.lens = TableLens {
            strings,
            lists,
            pids,
            maps,
        };
        Ok(())
    }

    /// Steps over the four shared-value tables by their lengths, checking only that
    /// they fit in the batch (their text is not checked to be UTF-8, nor their indexes
    /// to be in range).
    pub(crate) fn skip_tables(&mut self) -> Result<(), CodecError> {
        for _ in 0..self.count(1)? {
            let n = self.count(1)?;
            self.take(n)?;
        }
        // Lists of text indexes, lists of pids, maps of (key, value) index pairs.
        for pair in [1, 1, 2] {
            for _ in 0..self.count(1)? {
                for _ in 0..self.count(pair)? * pair {
                    self.varint()?;
                }
            }
        }
        Ok(())
    }

    /// The presence bitmap of an event with `n` fields.
    pub(crate) fn presence(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        self.take(n.div_ceil(8))
    }

    /// The presence bitmap of an event with this crate's own fields (`N` bytes).
    #[inline]
    pub(crate) fn presence_array<const N: usize>(&mut self) -> Result<&'a [u8; N], CodecError> {
        let at = self.pos;
        self.take(N)?
            .try_into()
            .map_err(|_| CodecError::Truncated { at })
    }

    /// How to check one value of `kind` in this batch (after its tables are read):
    /// most kinds are one varint with an upper bound, checked without a dispatch on
    /// the kind (see [`Reader::check_value`]).
    pub(crate) fn value_check(&self, kind: Kind) -> ValueCheck {
        let index = |len: usize, what| ValueCheck::Varint {
            limit: len as u64,
            what,
        };
        match kind {
            Kind::Str => index(self.lens.strings, "text index out of range"),
            Kind::StrList => index(self.lens.lists, "list index out of range"),
            Kind::U64List => index(self.lens.pids, "number list index out of range"),
            Kind::Map => index(self.lens.maps, "map index out of range"),
            Kind::U64 | Kind::I64 | Kind::Ts => ValueCheck::Varint {
                limit: u64::MAX,
                what: "",
            },
            Kind::Bool => ValueCheck::Bool,
            Kind::Ip => ValueCheck::Ip,
        }
    }

    /// Checks one value as its decoding would, per a [`Reader::value_check`] plan.
    #[inline]
    pub(crate) fn check_value(&mut self, check: ValueCheck) -> Result<(), CodecError> {
        match check {
            ValueCheck::Varint { limit, what } => {
                let at = self.pos;
                let v = self.varint()?;
                // Numbers have no bound (u64::MAX is a valid number).
                if v >= limit && limit != u64::MAX {
                    return Err(CodecError::Invalid { at, what });
                }
                Ok(())
            }
            ValueCheck::Bool => bool::decode(self).map(drop),
            ValueCheck::Ip => IpAddr::decode(self).map(drop),
        }
    }
}

/// How one field's values are checked in a batch (see [`Reader::value_check`]).
#[derive(Clone, Copy)]
pub(crate) enum ValueCheck {
    /// One varint below `limit` (`u64::MAX`: any), else `Invalid { what }`.
    Varint { limit: u64, what: &'static str },
    /// A boolean byte.
    Bool,
    /// An address: family byte and 4 or 16 bytes.
    Ip,
}

/// Binary form of one field value.
pub(crate) trait Wire: Sized {
    /// Writes the value at `at` of an event's buffer (see [`put_u8`]), adding what it
    /// shares to `w`'s tables; returns where the next value goes.
    fn encode(&self, w: &mut Writer, out: &mut [u8], at: usize) -> usize;
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError>;
    /// Checks a value as [`Wire::decode`] would and steps over it, building nothing.
    fn skip(r: &mut Reader<'_>) -> Result<(), CodecError>;
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

impl Wire for Text {
    fn encode(&self, w: &mut Writer, out: &mut [u8], at: usize) -> usize {
        let i = w.intern_text(self);
        put_varint_at(out, at, u64::from(i))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        r.text_ref()
    }
    #[inline]
    fn skip(r: &mut Reader<'_>) -> Result<(), CodecError> {
        r.index(r.lens.strings, "text index out of range").map(drop)
    }
}

impl Wire for u64 {
    fn encode(&self, _: &mut Writer, out: &mut [u8], at: usize) -> usize {
        put_varint_at(out, at, *self)
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        r.varint()
    }
    #[inline]
    fn skip(r: &mut Reader<'_>) -> Result<(), CodecError> {
        r.varint().map(drop)
    }
}

impl Wire for i64 {
    fn encode(&self, _: &mut Writer, out: &mut [u8], at: usize) -> usize {
        put_varint_at(out, at, zigzag(*self))
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        r.varint().map(unzigzag)
    }
    #[inline]
    fn skip(r: &mut Reader<'_>) -> Result<(), CodecError> {
        r.varint().map(drop)
    }
}

impl Wire for bool {
    fn encode(&self, _: &mut Writer, out: &mut [u8], at: usize) -> usize {
        put_u8(out, at, u8::from(*self))
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let at = r.position();
        match r.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(CodecError::Invalid {
                at,
                what: "boolean is neither 0 nor 1",
            }),
        }
    }
    fn skip(r: &mut Reader<'_>) -> Result<(), CodecError> {
        bool::decode(r).map(drop)
    }
}

impl Wire for Timestamp {
    fn encode(&self, w: &mut Writer, out: &mut [u8], at: usize) -> usize {
        self.0.encode(w, out, at)
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        i64::decode(r).map(Timestamp)
    }
    #[inline]
    fn skip(r: &mut Reader<'_>) -> Result<(), CodecError> {
        r.varint().map(drop)
    }
}

impl Wire for IpAddr {
    fn encode(&self, _: &mut Writer, out: &mut [u8], at: usize) -> usize {
        match self {
            IpAddr::V4(a) => {
                let at = put_u8(out, at, 4);
                put_slice(out, at, &a.octets())
            }
            IpAddr::V6(a) => {
                let at = put_u8(out, at, 6);
                put_slice(out, at, &a.octets())
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let at = r.position();
        match r.u8()? {
            4 => {
                let b = r.take(4)?;
                Ok(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))
            }
            6 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(r.take(16)?);
                Ok(IpAddr::V6(Ipv6Addr::from(o)))
            }
            _ => Err(CodecError::Invalid {
                at,
                what: "IP address family is neither 4 nor 6",
            }),
        }
    }
    fn skip(r: &mut Reader<'_>) -> Result<(), CodecError> {
        IpAddr::decode(r).map(drop)
    }
}

impl Wire for StrList {
    fn encode(&self, w: &mut Writer, out: &mut [u8], at: usize) -> usize {
        let ptr = Arc::as_ptr(self) as *const u8 as usize;
        let i = match w.lists.lookup(ptr) {
            Some(i) => i,
            None => {
                let idx: Vec<u32> = self.iter().map(|t| w.intern_text(t)).collect();
                put_varint(&mut w.lists.buf, idx.len() as u64);
                for i in idx {
                    put_varint(&mut w.lists.buf, u64::from(i));
                }
                w.lists.added(ptr)
            }
        };
        put_varint_at(out, at, u64::from(i))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        r.shared(|t| &t.lists, "list index out of range")
    }
    #[inline]
    fn skip(r: &mut Reader<'_>) -> Result<(), CodecError> {
        r.index(r.lens.lists, "list index out of range").map(drop)
    }
}

impl Wire for U64List {
    fn encode(&self, w: &mut Writer, out: &mut [u8], at: usize) -> usize {
        let ptr = Arc::as_ptr(self) as *const u8 as usize;
        let i = match w.pids.lookup(ptr) {
            Some(i) => i,
            None => {
                put_varint(&mut w.pids.buf, self.len() as u64);
                for v in self.iter() {
                    put_varint(&mut w.pids.buf, *v);
                }
                w.pids.added(ptr)
            }
        };
        put_varint_at(out, at, u64::from(i))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        r.shared(|t| &t.pids, "number list index out of range")
    }
    #[inline]
    fn skip(r: &mut Reader<'_>) -> Result<(), CodecError> {
        r.index(r.lens.pids, "number list index out of range")
            .map(drop)
    }
}

impl Wire for Labels {
    fn encode(&self, w: &mut Writer, out: &mut [u8], at: usize) -> usize {
        let ptr = Arc::as_ptr(self) as *const u8 as usize;
        let i = match w.maps.lookup(ptr) {
            Some(i) => i,
            None => {
                let idx: Vec<(u32, u32)> = self
                    .iter()
                    .map(|(k, v)| (w.intern_text(k), w.intern_text(v)))
                    .collect();
                put_varint(&mut w.maps.buf, idx.len() as u64);
                for (k, v) in idx {
                    put_varint(&mut w.maps.buf, u64::from(k));
                    put_varint(&mut w.maps.buf, u64::from(v));
                }
                w.maps.added(ptr)
            }
        };
        put_varint_at(out, at, u64::from(i))
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        r.shared(|t| &t.maps, "map index out of range")
    }
    #[inline]
    fn skip(r: &mut Reader<'_>) -> Result<(), CodecError> {
        r.index(r.lens.maps, "map index out of range").map(drop)
    }
}

/// Borrowed [`Value`] view of a stored field.
pub(crate) trait AsValue {
    fn as_value(&self) -> Value<'_>;
}

impl AsValue for Text {
    fn as_value(&self) -> Value<'_> {
        Value::Str(std::borrow::Cow::Borrowed(self))
    }
}
impl AsValue for u64 {
    fn as_value(&self) -> Value<'_> {
        Value::U64(*self)
    }
}
impl AsValue for i64 {
    fn as_value(&self) -> Value<'_> {
        Value::I64(*self)
    }
}
impl AsValue for bool {
    fn as_value(&self) -> Value<'_> {
        Value::Bool(*self)
    }
}
impl AsValue for Timestamp {
    fn as_value(&self) -> Value<'_> {
        Value::Ts(*self)
    }
}
impl AsValue for IpAddr {
    fn as_value(&self) -> Value<'_> {
        Value::Ip(*self)
    }
}
impl AsValue for StrList {
    fn as_value(&self) -> Value<'_> {
        Value::StrList(self)
    }
}
impl AsValue for U64List {
    fn as_value(&self) -> Value<'_> {
        Value::U64List(std::borrow::Cow::Borrowed(self))
    }
}
impl AsValue for Labels {
    fn as_value(&self) -> Value<'_> {
        Value::Map(self)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(feature = "arrow")]
    #[test]
    fn map_entries_are_sorted_by_key_keeping_the_last_of_a_key() {
        // Texts "b", "a", "c", "x" at bytes 0..4.
        let bytes = b"bacx";
        let strings = [(0, 1), (1, 2), (2, 3), (3, 4)];
        let mut items = vec![(9, 9), (0, 3), (1, 2), (0, 1)];
        super::sort_map_entries(bytes, &strings, &mut items, 1);
        assert_eq!(items, vec![(9, 9), (1, 2), (0, 1)]);
        // Sorted entries stay as they are.
        let mut sorted = vec![(1, 0), (0, 2), (2, 3)];
        super::sort_map_entries(bytes, &strings, &mut sorted, 0);
        assert_eq!(sorted, vec![(1, 0), (0, 2), (2, 3)]);
    }

    use super::*;

    #[test]
    fn zigzag_round_trips_extremes() {
        for v in [0, 1, -1, i64::MIN, i64::MAX, 12345, -98765] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    proptest::proptest! {
        /// Texts written through the short-text cache come back as written, equal texts
        /// as one table entry, however the cache's slots collide (a batch of one event
        /// has 16 slots).
        #[test]
        fn short_texts_intern_to_one_entry_each(
            texts in proptest::collection::vec("[ab]{0,3}|[ab]{5,9}|[ab]{17,24}", 1..200),
        ) {
            let mut w = Writer::for_events(1);
            let mut seen: HashMap<&str, u32> = HashMap::new();
            for t in &texts {
                let i = w.intern_short(t.as_bytes());
                proptest::prop_assert_eq!(*seen.entry(t.as_str()).or_insert(i), i);
            }
            proptest::prop_assert_eq!(w.strings.count as usize, seen.len());
        }
    }

    /// Every value fits in `MAX_VALUE_BYTES` (table indexes are varints of a `u32`,
    /// shorter than any `u64`), which sizes the buffer events are written into.
    #[test]
    fn the_largest_values_fit_in_max_value_bytes() {
        let mut w = Writer::for_events(1);
        let mut out = [0u8; 64];
        let sizes = [
            u64::MAX.encode(&mut w, &mut out, 0),
            i64::MIN.encode(&mut w, &mut out, 0),
            Timestamp(i64::MAX).encode(&mut w, &mut out, 0),
            true.encode(&mut w, &mut out, 0),
            IpAddr::V6(Ipv6Addr::from([0xff; 16])).encode(&mut w, &mut out, 0),
            IpAddr::V4(Ipv4Addr::from([0xff; 4])).encode(&mut w, &mut out, 0),
        ];
        assert_eq!(sizes.iter().max(), Some(&MAX_VALUE_BYTES));
        assert_eq!(u64::from(u32::MAX).encode(&mut w, &mut out, 0), 5);
    }

    proptest::proptest! {
        /// The word-at-a-time varint reader agrees with the bytewise one on any input:
        /// encoded numbers followed by anything, and arbitrary bytes (overlong,
        /// overflowing or truncated varints included).
        #[test]
        fn varints_read_by_words_as_by_bytes(
            v in proptest::prelude::any::<u64>(),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
            raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..14),
        ) {
            let mut encoded = Vec::new();
            put_varint(&mut encoded, v);
            encoded.extend_from_slice(&tail);
            for bytes in [&encoded[..], &raw[..]] {
                let (mut fast, mut slow) = (Reader::new(bytes), Reader::new(bytes));
                let got = fast.varint();
                let want = slow.varint_bytewise(bytes);
                proptest::prop_assert_eq!(&got, &want);
                proptest::prop_assert_eq!(fast.position(), slow.position());
            }
            proptest::prop_assert_eq!(Reader::new(&encoded).varint(), Ok(v));
        }
    }

    #[test]
    fn varint_rejects_overflow() {
        let bytes = [0xffu8; 11];
        assert!(Reader::new(&bytes).varint().is_err());
    }
}

/// A batch's shared-value tables as places in its bytes: nothing is copied or counted,
/// for readers that move values into columns of their own ([`crate::arrow_wire`]).
/// Read and checked by [`Reader::read_raw_tables`] as [`Reader::read_tables`] checks
/// them; each map's entries are sorted by key with one entry per key, as decoding into
/// a `BTreeMap` leaves them.
#[cfg(feature = "arrow")]
#[derive(Default)]
pub(crate) struct RawTables {
    /// Each text's start and end in the batch.
    pub(crate) strings: Vec<(u32, u32)>,
    /// Each text list's range of `list_items`.
    pub(crate) lists: Vec<(u32, u32)>,
    /// The texts of all lists, as indices into `strings`.
    pub(crate) list_items: Vec<u32>,
    /// Each number list's range of `pid_items`.
    pub(crate) pids: Vec<(u32, u32)>,
    /// The numbers of all number lists.
    pub(crate) pid_items: Vec<u64>,
    /// Each map's range of `map_items`.
    pub(crate) maps: Vec<(u32, u32)>,
    /// The entries of all maps: key and value, as indices into `strings`.
    pub(crate) map_items: Vec<(u32, u32)>,
}

#[cfg(feature = "arrow")]
impl RawTables {
    fn clear(&mut self) {
        self.strings.clear();
        self.lists.clear();
        self.list_items.clear();
        self.pids.clear();
        self.pid_items.clear();
        self.maps.clear();
        self.map_items.clear();
    }
}

#[cfg(feature = "arrow")]
impl<'a> Reader<'a> {
    /// The batch's bytes.
    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Reads the four shared-value tables into `t` (emptied first) as places in the
    /// batch, checked as [`Reader::read_tables`] checks them.
    pub(crate) fn read_raw_tables(&mut self, t: &mut RawTables) -> Result<(), CodecError> {
        t.clear();
        let n = self.count(1)?;
        t.strings.reserve(n);
        for _ in 0..n {
            let s = self.str()?;
            let end = self.pos as u32;
            t.strings.push((end - s.len() as u32, end));
        }
        let strings = t.strings.len();
        let n = self.count(1)?;
        t.lists.reserve(n);
        for _ in 0..n {
            let len = self.count(1)?;
            let start = t.list_items.len() as u32;
            for _ in 0..len {
                let i = self.index(strings, "text index out of range")?;
                t.list_items.push(i as u32);
            }
            t.lists.push((start, t.list_items.len() as u32));
        }
        let n = self.count(1)?;
        t.pids.reserve(n);
        for _ in 0..n {
            let len = self.count(1)?;
            let start = t.pid_items.len() as u32;
            for _ in 0..len {
                let v = self.varint()?;
                t.pid_items.push(v);
            }
            t.pids.push((start, t.pid_items.len() as u32));
        }
        let n = self.count(1)?;
        t.maps.reserve(n);
        for _ in 0..n {
            let len = self.count(2)?;
            let start = t.map_items.len();
            for _ in 0..len {
                let k = self.index(strings, "text index out of range")?;
                let v = self.index(strings, "text index out of range")?;
                t.map_items.push((k as u32, v as u32));
            }
            sort_map_entries(self.buf, &t.strings, &mut t.map_items, start);
            t.maps.push((start as u32, t.map_items.len() as u32));
        }
        self.lens = TableLens {
            strings,
            lists: t.lists.len(),
            pids: t.pids.len(),
            maps: t.maps.len(),
        };
        Ok(())
    }

    /// The table index of the next text list value (checked).
    #[inline]
    pub(crate) fn list_index(&mut self) -> Result<usize, CodecError> {
        self.index(self.lens.lists, "list index out of range")
    }

    /// The table index of the next number list value (checked).
    #[inline]
    pub(crate) fn pid_list_index(&mut self) -> Result<usize, CodecError> {
        self.index(self.lens.pids, "number list index out of range")
    }

    /// The table index of the next map value (checked).
    #[inline]
    pub(crate) fn map_index(&mut self) -> Result<usize, CodecError> {
        self.index(self.lens.maps, "map index out of range")
    }
}

/// Sorts the entries of one map (`items[start..]`) by their keys' text and keeps the
/// last entry of a repeated key, as inserting them into a `BTreeMap` in order does.
/// Maps lanner writes are sorted already: one pass finds that out.
#[cfg(feature = "arrow")]
fn sort_map_entries(
    bytes: &[u8],
    strings: &[(u32, u32)],
    items: &mut Vec<(u32, u32)>,
    start: usize,
) {
    let text = |i: u32| -> &[u8] {
        strings
            .get(i as usize)
            .and_then(|&(s, e)| bytes.get(s as usize..e as usize))
            .unwrap_or_default()
    };
    let Some(entries) = items.get(start..) else {
        return;
    };
    if entries.windows(2).all(|w| text(w[0].0) < text(w[1].0)) {
        return;
    }
    let mut entries: Vec<(usize, (u32, u32))> = entries.iter().copied().enumerate().collect();
    // By key, the later of equal keys first: the first of each key is kept.
    entries.sort_by(|a, b| text(a.1.0).cmp(text(b.1.0)).then(b.0.cmp(&a.0)));
    entries.dedup_by(|later, first| text(later.1.0) == text(first.1.0));
    items.truncate(start);
    items.extend(entries.into_iter().map(|(_, e)| e));
}
