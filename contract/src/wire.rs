//! Low-level encoding of field values: varints, length-prefixed text, bounded reads.
//!
//! Every read checks the remaining length first, so decoding untrusted bytes can fail
//! but never panics and never allocates more than the input could hold.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::codec::CodecError;
use crate::model::{Labels, StrList, U64List};
use crate::value::{Kind, Timestamp, Value};

/// Output buffer of the codec.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    /// Reserves a zeroed presence bitmap for `n` fields; returns its offset.
    pub(crate) fn begin_presence(&mut self, n: usize) -> usize {
        let start = self.buf.len();
        self.buf.resize(start + n.div_ceil(8), 0);
        start
    }

    pub(crate) fn set_presence(&mut self, start: usize, bit: usize) {
        self.buf[start + bit / 8] |= 1 << (bit % 8);
    }
}

/// Whether `bit` is set in a presence bitmap (bits past its end are unset).
pub(crate) fn is_present(bitmap: &[u8], bit: usize) -> bool {
    bitmap.get(bit / 8).is_some_and(|b| b & (1 << (bit % 8)) != 0)
}

/// Cursor over untrusted input.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
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

    pub(crate) fn varint(&mut self) -> Result<u64, CodecError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(CodecError::Invalid { at: self.pos, what: "varint overflows u64" });
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::Invalid { at: self.pos, what: "varint longer than 10 bytes" })
    }

    /// A length or count that must fit in the remaining input (each unit at least
    /// `min_unit` bytes), so a hostile count cannot make us allocate.
    pub(crate) fn count(&mut self, min_unit: usize) -> Result<usize, CodecError> {
        let at = self.pos;
        let n = self.varint()?;
        let fits = usize::try_from(n)
            .ok()
            .filter(|n| n.saturating_mul(min_unit.max(1)) <= self.remaining());
        fits.ok_or(CodecError::Invalid { at, what: "count exceeds the remaining input" })
    }

    pub(crate) fn str(&mut self) -> Result<&'a str, CodecError> {
        let n = self.count(1)?;
        let at = self.pos;
        let b = self.take(n)?;
        std::str::from_utf8(b).map_err(|_| CodecError::Invalid { at, what: "text is not UTF-8" })
    }

    /// The presence bitmap of an event with `n` fields.
    pub(crate) fn presence(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        self.take(n.div_ceil(8))
    }

    /// Skips one value of the given kind (a field newer than this reader).
    pub(crate) fn skip(&mut self, kind: Kind) -> Result<(), CodecError> {
        match kind {
            Kind::Str => {
                let n = self.count(1)?;
                self.take(n)?;
            }
            Kind::U64 | Kind::I64 | Kind::Ts => {
                self.varint()?;
            }
            Kind::Bool => {
                self.u8()?;
            }
            Kind::Ip => {
                IpAddr::decode(self)?;
            }
            Kind::StrList => {
                StrList::decode(self)?;
            }
            Kind::U64List => {
                U64List::decode(self)?;
            }
            Kind::Map => {
                Labels::decode(self)?;
            }
        }
        Ok(())
    }
}

/// Binary form of one field value.
pub(crate) trait Wire: Sized {
    fn encode(&self, w: &mut Writer);
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError>;
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

impl Wire for String {
    fn encode(&self, w: &mut Writer) {
        w.bytes(self.as_bytes());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        r.str().map(str::to_owned)
    }
}

impl Wire for u64 {
    fn encode(&self, w: &mut Writer) {
        w.varint(*self);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        r.varint()
    }
}

impl Wire for i64 {
    fn encode(&self, w: &mut Writer) {
        w.varint(zigzag(*self));
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        r.varint().map(unzigzag)
    }
}

impl Wire for bool {
    fn encode(&self, w: &mut Writer) {
        w.u8(u8::from(*self));
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let at = r.position();
        match r.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(CodecError::Invalid { at, what: "boolean is neither 0 nor 1" }),
        }
    }
}

impl Wire for Timestamp {
    fn encode(&self, w: &mut Writer) {
        self.0.encode(w);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        i64::decode(r).map(Timestamp)
    }
}

impl Wire for IpAddr {
    fn encode(&self, w: &mut Writer) {
        match self {
            IpAddr::V4(a) => {
                w.u8(4);
                w.buf.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                w.u8(6);
                w.buf.extend_from_slice(&a.octets());
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
            _ => Err(CodecError::Invalid { at, what: "IP address family is neither 4 nor 6" }),
        }
    }
}

impl Wire for StrList {
    fn encode(&self, w: &mut Writer) {
        w.varint(self.len() as u64);
        for s in self {
            s.encode(w);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let n = r.count(1)?;
        (0..n).map(|_| String::decode(r)).collect()
    }
}

impl Wire for U64List {
    fn encode(&self, w: &mut Writer) {
        w.varint(self.len() as u64);
        for v in self {
            w.varint(*v);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let n = r.count(1)?;
        (0..n).map(|_| r.varint()).collect()
    }
}

impl Wire for Labels {
    fn encode(&self, w: &mut Writer) {
        w.varint(self.len() as u64);
        for (k, v) in self {
            k.encode(w);
            v.encode(w);
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let n = r.count(2)?;
        let mut m = BTreeMap::new();
        for _ in 0..n {
            let k = String::decode(r)?;
            let v = String::decode(r)?;
            m.insert(k, v);
        }
        Ok(m)
    }
}

/// Borrowed [`Value`] view of a stored field.
pub(crate) trait AsValue {
    fn as_value(&self) -> Value<'_>;
}

impl AsValue for String {
    fn as_value(&self) -> Value<'_> {
        Value::Str(self.as_str().into())
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
        Value::U64List(self.as_slice().into())
    }
}
impl AsValue for Labels {
    fn as_value(&self) -> Value<'_> {
        Value::Map(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_round_trips_extremes() {
        for v in [0, 1, -1, i64::MIN, i64::MAX, 12345, -98765] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn varint_rejects_overflow() {
        let bytes = [0xffu8; 11];
        assert!(Reader::new(&bytes).varint().is_err());
    }
}
