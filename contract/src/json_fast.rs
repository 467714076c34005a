//! A direct parser for the usual shape of an event line: one flat object of known
//! field names whose values are plain strings (simple escapes at most), integers,
//! booleans, `null`, lists and label objects. It reads each value straight into its
//! field by the field's kind, finding the ends of strings with `memchr`.
//!
//! It accepts a subset of what the serde path ([`crate::json`]) accepts and builds the
//! same event: anything else (a `\u` escape, a float where an integer belongs, an
//! unknown key, bad syntax) returns `None`, and the caller parses the line with serde,
//! which gives the event or the error. A differential property test holds the two to
//! the same result.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::model::{Event, Labels, StoredField, StrList, Text, U64List};
use crate::value::Timestamp;

/// The event of `line`, or `None` when the line needs the general parser.
pub(crate) fn parse(line: &str) -> Option<Event> {
    let mut ev = Event::default();
    parse_into(line, &mut ev).then_some(ev)
}

/// Reads `line` into `ev` (empty): `false` when the line needs the general parser, `ev`
/// then holding part of it.
pub(crate) fn parse_into(line: &str, ev: &mut Event) -> bool {
    parse_fields(line, ev).is_some()
}

fn parse_fields(line: &str, ev: &mut Event) -> Option<()> {
    let mut p = Parser {
        src: line,
        b: line.as_bytes(),
        i: 0,
        scratch: String::new(),
    };
    p.ws();
    p.eat(b'{')?;
    p.ws();
    if !p.eat_if(b'}') {
        loop {
            p.ws();
            let field = StoredField::from_name(p.string()?)?;
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
        p.list(Parser::text).map(Arc::from)
    }
}

impl FastJson for U64List {
    fn parse_json(p: &mut Parser<'_>) -> Option<Self> {
        p.list(Parser::unsigned).map(Arc::from)
    }
}

impl FastJson for Labels {
    fn parse_json(p: &mut Parser<'_>) -> Option<Self> {
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
        Some(Arc::new(m))
    }
}

/// Whether `s` holds a control character (which JSON strings may not), in a form the
/// compiler vectorizes (no early exit).
fn has_control(s: &[u8]) -> bool {
    s.iter().fold(0u8, |acc, &c| acc | u8::from(c < 0x20)) != 0
}

/// The cursor over a line.
pub(crate) struct Parser<'a> {
    src: &'a str,
    b: &'a [u8],
    i: usize,
    /// Unescaped text of the current string, when it had escapes.
    scratch: String,
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
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

    /// A string without escapes, borrowed from the line.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let rest = self.b.get(self.i..)?;
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[end] != b'"' {
            return None;
        }
        if has_control(&rest[..end]) {
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
            return Some(Text::from(s));
        }
        self.i = start;
        self.eat(b'"')?;
        self.scratch.clear();
        loop {
            let rest = self.b.get(self.i..)?;
            let end = memchr::memchr2(b'"', b'\\', rest)?;
            if has_control(&rest[..end]) {
                return None;
            }
            self.scratch.push_str(self.src.get(self.i..self.i + end)?);
            self.i += end + 1;
            if rest[end] == b'"' {
                return Some(Text::from(self.scratch.as_str()));
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
            self.scratch.push(unescaped);
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

    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let mut out = Vec::new();
        self.eat(b'[')?;
        self.ws();
        if self.eat_if(b']') {
            return Some(out);
        }
        loop {
            self.ws();
            out.push(item(self)?);
            self.ws();
            if self.eat_if(b',') {
                continue;
            }
            self.eat(b']')?;
            return Some(out);
        }
    }
}
