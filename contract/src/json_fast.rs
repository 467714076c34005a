//! A direct parser for the usual shape of an event line: one flat object of known
//! field names whose values are plain strings (simple escapes at most), integers,
//! booleans, `null`, lists and label objects. It reads each value straight into its
//! field by the field's kind, finding the ends of strings eight bytes at a time.
//!
//! It accepts a subset of what the serde path ([`crate::json`]) accepts and builds the
//! same event: anything else (a `\u` escape, a float where an integer belongs, an
//! unknown key, bad syntax) returns `None`, and the caller parses the line with serde,
//! which gives the event or the error. A differential property test holds the two to
//! the same result.
//!
//! A [`State`] carries what one line teaches the next: the order of keys (each key is
//! tried as the one that followed the previous key last time) and, when sharing, the
//! texts, lists and label maps seen so far, lists and maps found by their JSON text
//! before they are parsed. None of it changes a result (the same property tests run one
//! state over many lines).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use crate::model::{Event, Labels, STORED_FIELDS, StoredField, StrList, Text, U64List};
use crate::share::{Hashing, Pool, Share};
use crate::value::Timestamp;

/// What the fast path keeps between lines: scratch buffers, and the pool equal values
/// are shared through when the caller shares (see [`crate::jsonl::LineParser`]).
#[derive(Default)]
pub(crate) struct State {
    /// Unescaped text of the current string, when it had escapes.
    unescaped: String,
    /// Items of the list being read.
    texts: Vec<Text>,
    numbers: Vec<u64>,
    /// Texts and lists are taken from (and added to) this pool while parsing.
    pool: Option<Pool>,
    /// Lists and label maps by their JSON text, when sharing: a container's labels or a
    /// process's ancestors repeat on every event of it, and looking up their text costs
    /// a tenth of parsing it.
    seen_lists: Seen<StrList>,
    seen_numbers: Seen<U64List>,
    seen_labels: Seen<Labels>,
    /// For each field (and, last, the start of the object), the key that followed it on
    /// the previous line: lines of one kind of event list the same keys in the same
    /// order, so the next key is usually known before it is read.
    next_key: Vec<Option<StoredField>>,
}

type Seen<T> = HashMap<Box<[u8]>, T, Hashing>;

impl State {
    /// A state whose values are shared through a pool.
    pub(crate) fn sharing() -> Self {
        Self {
            pool: Some(Pool::default()),
            ..Self::default()
        }
    }

    /// Forgets the values shared so far.
    pub(crate) fn clear(&mut self) {
        if let Some(pool) = &mut self.pool {
            pool.clear();
        }
        self.seen_lists.clear();
        self.seen_numbers.clear();
        self.seen_labels.clear();
    }

    /// Shares what serde parsed, when sharing.
    pub(crate) fn share(&mut self, ev: &mut Event) {
        if let Some(pool) = &mut self.pool {
            ev.share(pool);
        }
    }
}

/// The event of `line`, or `None` when the line needs the general parser.
pub(crate) fn parse(line: &str) -> Option<Event> {
    let mut ev = Event::default();
    parse_into(line, &mut ev, &mut State::default()).then_some(ev)
}

/// Reads `line` into `ev` (empty): `false` when the line needs the general parser, `ev`
/// then holding part of it.
pub(crate) fn parse_into(line: &str, ev: &mut Event, state: &mut State) -> bool {
    parse_fields(line, ev, state).is_some()
}

fn parse_fields(line: &str, ev: &mut Event, state: &mut State) -> Option<()> {
    let mut p = Parser {
        src: line,
        b: line.as_bytes(),
        i: 0,
        st: state,
    };
    p.ws();
    p.eat(b'{')?;
    p.ws();
    if !p.eat_if(b'}') {
        if p.st.next_key.is_empty() {
            p.st.next_key = vec![None; STORED_FIELDS.len() + 1];
        }
        // The key that followed the previous one last time (the first: after the brace).
        let mut prev = STORED_FIELDS.len();
        loop {
            p.ws();
            let expected = p.st.next_key.get(prev).copied().flatten();
            let field = match expected.filter(|&f| p.eat_key(f)) {
                Some(f) => f,
                None => {
                    let f = StoredField::from_name(p.string()?)?;
                    if let Some(slot) = p.st.next_key.get_mut(prev) {
                        *slot = Some(f);
                    }
                    f
                }
            };
            prev = field as usize;
            p.ws();
            p.eat(b':')?;
            p.ws();
            if p.eat_word(b"null") {
                ev.clear_field(field);
            } else {
                ev.parse_field(field, &mut p)?;
            }
            p.ws();
            if p.eat_if(b',') {
                continue;
            }
            p.eat(b'}')?;
            break;
        }
    }
    p.ws();
    (p.i == p.b.len()).then_some(())
}

/// A field type the fast path reads (`None`: leave the line to serde).
pub(crate) trait FastJson: Sized {
    fn parse_json(p: &mut Parser<'_>) -> Option<Self>;
}

impl FastJson for Text {
    fn parse_json(p: &mut Parser<'_>) -> Option<Self> {
        p.text()
    }
}

impl FastJson for u64 {
    fn parse_json(p: &mut Parser<'_>) -> Option<Self> {
        p.unsigned()
    }
}

impl FastJson for i64 {
    fn parse_json(p: &mut Parser<'_>) -> Option<Self> {
        p.signed()
    }
}

impl FastJson for bool {
    fn parse_json(p: &mut Parser<'_>) -> Option<Self> {
        if p.eat_word(b"true") {
            Some(true)
        } else if p.eat_word(b"false") {
            Some(false)
        } else {
            None
        }
    }
}

impl FastJson for Timestamp {
    fn parse_json(p: &mut Parser<'_>) -> Option<Self> {
        if p.b.get(p.i) == Some(&b'"') {
            Timestamp::parse_rfc3339(p.string()?)
        } else {
            p.signed().map(Timestamp)
        }
    }
}

impl FastJson for IpAddr {
    fn parse_json(p: &mut Parser<'_>) -> Option<Self> {
        p.string()?.parse().ok()
    }
}

impl FastJson for StrList {
    fn parse_json(p: &mut Parser<'_>) -> Option<Self> {
        p.seen_or_parse(
            |st| &mut st.seen_lists,
            b']',
            |p| {
                let mut items = std::mem::take(&mut p.st.texts);
                items.clear();
                let read = p.list(&mut items, Parser::text);
                let list = read.map(|()| match &mut p.st.pool {
                    Some(pool) => pool.list_from(&mut items),
                    None => items.drain(..).collect(),
                });
                p.st.texts = items;
                list
            },
        )
    }
}

impl FastJson for U64List {
    fn parse_json(p: &mut Parser<'_>) -> Option<Self> {
        p.seen_or_parse(
            |st| &mut st.seen_numbers,
            b']',
            |p| {
                let mut items = std::mem::take(&mut p.st.numbers);
                items.clear();
                let read = p.list(&mut items, Parser::unsigned);
                let list = read.map(|()| Arc::from(&items[..]));
                p.st.numbers = items;
                list
            },
        )
    }
}

impl FastJson for Labels {
    fn parse_json(p: &mut Parser<'_>) -> Option<Self> {
        p.seen_or_parse(
            |st| &mut st.seen_labels,
            b'}',
            |p| {
                let mut m = BTreeMap::new();
                p.eat(b'{')?;
                p.ws();
                if !p.eat_if(b'}') {
                    loop {
                        p.ws();
                        let k = p.text()?;
                        p.ws();
                        p.eat(b':')?;
                        p.ws();
                        let v = p.text()?;
                        m.insert(k, v);
                        p.ws();
                        if p.eat_if(b',') {
                            continue;
                        }
                        p.eat(b'}')?;
                        break;
                    }
                }
                let mut labels = Arc::new(m);
                if let Some(pool) = &mut p.st.pool {
                    labels.share(pool);
                }
                Some(labels)
            },
        )
    }
}

/// The index of the first byte of `s` that ends a plain run of string text: a quote, a
/// backslash or a control character (which JSON strings may not hold). Eight bytes at a
/// time: event strings are short (names, paths, ids), where a vector search's setup
/// costs more than it saves.
#[inline(always)]
fn string_stop(s: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let mut words = s.chunks_exact(8);
    let mut at = 0;
    for w in words.by_ref() {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        let v = u64::from_le_bytes(b);
        // A byte's high bit is set where it equals the pattern (or is below 0x20); bits
        // above the lowest true hit may be false, the lowest one never is.
        let quote = v ^ (ONES * u64::from(b'"'));
        let backslash = v ^ (ONES * u64::from(b'\\'));
        let hits = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (v.wrapping_sub(ONES * 0x20) & !v);
        let hits = hits & HIGH;
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|i| at + i)
}

/// The cursor over a line.
pub(crate) struct Parser<'a> {
    src: &'a str,
    b: &'a [u8],
    i: usize,
    st: &'a mut State,
}

impl<'a> Parser<'a> {
    #[inline]
    fn ws(&mut self) {
        // Lines written by lanner have no whitespace between tokens.
        if self.b.get(self.i).is_none_or(|&c| c > b' ') {
            return;
        }
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.eat_if(c).then_some(())
    }

    fn eat_if(&mut self, c: u8) -> bool {
        let hit = self.b.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }

    fn eat_word(&mut self, w: &[u8]) -> bool {
        let hit = self.b.get(self.i..self.i + w.len()) == Some(w);
        if hit {
            self.i += w.len();
        }
        hit
    }

    /// Reads the key `"NAME"` of `field` if it is next.
    #[inline]
    fn eat_key(&mut self, field: StoredField) -> bool {
        let name = field.info().name.as_bytes();
        let end = self.i + name.len() + 2;
        let hit = self.b.get(self.i) == Some(&b'"')
            && self.b.get(self.i + 1..end - 1) == Some(name)
            && self.b.get(end - 1) == Some(&b'"');
        if hit {
            self.i = end;
        }
        hit
    }

    /// A string without escapes, borrowed from the line.
    #[inline(always)]
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let rest = self.b.get(self.i..)?;
        let end = string_stop(rest)?;
        if rest[end] != b'"' {
            return None;
        }
        // Cut at ASCII quotes: always on character boundaries.
        let s = self.src.get(self.i..self.i + end)?;
        self.i += end + 1;
        Some(s)
    }

    /// A string value, with the simple escapes decoded (`\u` is left to serde).
    fn text(&mut self) -> Option<Text> {
        let start = self.i;
        if let Some(s) = self.string() {
            return Some(self.new_text(s));
        }
        self.i = start;
        self.eat(b'"')?;
        let mut unescaped = std::mem::take(&mut self.st.unescaped);
        unescaped.clear();
        let text = self.unescape(&mut unescaped);
        self.st.unescaped = unescaped;
        text
    }

    /// A text value, from the pool when sharing.
    fn new_text(&mut self, s: &str) -> Text {
        match &mut self.st.pool {
            Some(pool) => pool.text_from(s),
            None => Text::from(s),
        }
    }

    /// The rest of a string with escapes, after its opening quote.
    fn unescape(&mut self, scratch: &mut String) -> Option<Text> {
        loop {
            let rest = self.b.get(self.i..)?;
            let end = string_stop(rest)?;
            if rest[end] < 0x20 {
                return None;
            }
            scratch.push_str(self.src.get(self.i..self.i + end)?);
            self.i += end + 1;
            if rest[end] == b'"' {
                return Some(self.new_text(scratch));
            }
            let unescaped = match self.b.get(self.i)? {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                _ => return None,
            };
            scratch.push(unescaped);
            self.i += 1;
        }
    }

    /// An integer: `-?(0|[1-9][0-9]*)` not followed by a fraction or exponent, as
    /// (negative, magnitude).
    fn integer(&mut self) -> Option<(bool, u64)> {
        let negative = self.eat_if(b'-');
        let digits = self.b.get(self.i..)?;
        let n = digits.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || (n > 1 && digits[0] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = digits.get(n) {
            return None;
        }
        let mut v: u64 = 0;
        for &c in &digits[..n] {
            v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
        }
        self.i += n;
        Some((negative, v))
    }

    fn unsigned(&mut self) -> Option<u64> {
        match self.integer()? {
            (false, v) => Some(v),
            // `-0` is 0 to serde too, but it is not worth a special case.
            (true, _) => None,
        }
    }

    fn signed(&mut self) -> Option<i64> {
        match self.integer()? {
            (false, v) => i64::try_from(v).ok(),
            // serde_json reads `-0` as a float (negative zero), which integers refuse.
            (true, 0) => None,
            (true, v) => i64::try_from(-i128::from(v)).ok(),
        }
    }

    /// A list or object value: when sharing, the value seen before with the same JSON
    /// text, else `parse`'s. The text looked up runs to the first `close` byte; only
    /// values that end there are remembered, so a hit is the whole value.
    fn seen_or_parse<T: Clone>(
        &mut self,
        seen: fn(&mut State) -> &mut Seen<T>,
        close: u8,
        parse: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<T> {
        if self.st.pool.is_none() {
            return parse(self);
        }
        let start = self.i;
        let rest = self.b.get(start..)?;
        let raw = memchr::memchr(close, rest).and_then(|end| rest.get(..=end));
        if let Some(v) = raw.and_then(|raw| seen(self.st).get(raw)) {
            self.i = start + raw.map_or(0, <[u8]>::len);
            return Some(v.clone());
        }
        let v = parse(self)?;
        if let Some(raw) = raw.filter(|raw| start + raw.len() == self.i) {
            seen(self.st).insert(raw.into(), v.clone());
        }
        Some(v)
    }

    /// A list's items, appended to `out`.
    fn list<T>(
        &mut self,
        out: &mut Vec<T>,
        mut item: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<()> {
        self.eat(b'[')?;
        self.ws();
        if self.eat_if(b']') {
            return Some(());
        }
        loop {
            self.ws();
            out.push(item(self)?);
            self.ws();
            if self.eat_if(b',') {
                continue;
            }
            self.eat(b']')?;
            return Some(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::string_stop;
    use proptest::prelude::*;

    fn reference(s: &[u8]) -> Option<usize> {
        s.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)
    }

    proptest! {
        #[test]
        fn string_stop_finds_the_first_quote_backslash_or_control(
            // Mostly plain text, with stops, high bytes and borrow-prone bytes mixed in.
            s in proptest::collection::vec(prop_oneof![
                8 => 0x20u8..0x7f,
                1 => Just(b'"'),
                1 => Just(b'\\'),
                1 => 0u8..0x20,
                1 => 0x80u8..=0xff,
                1 => prop_oneof![Just(0x21u8), Just(0x23), Just(0x5d), Just(0x5b), Just(0x1f)],
            ], 0..40)
        ) {
            prop_assert_eq!(string_stop(&s), reference(&s));
        }
    }

    #[test]
    fn string_stop_past_a_hit_in_every_lane() {
        for len in 0..24 {
            for at in 0..len {
                for stop in [b'"', b'\\', 0, 0x1f] {
                    let mut s = vec![b'a'; len];
                    s[at] = stop;
                    // A borrow-prone byte right after the stop must not move it.
                    if at + 1 < len {
                        s[at + 1] = 0x01;
                    }
                    assert_eq!(string_stop(&s), Some(at), "{s:?}");
                }
            }
            assert_eq!(string_stop(&vec![0xffu8; len]), None);
        }
    }
}
