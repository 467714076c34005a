//! The little of the protobuf wire format the containerd client needs: writing string
//! fields of requests, and reading the fields of the few messages it looks at (container
//! records, images, event envelopes). Unknown fields are skipped, as protobuf requires.

use std::collections::BTreeMap;

use lanner_contract::model::Text;
use lanner_contract::value::Timestamp;

/// A malformed message.
#[derive(Debug, thiserror::Error)]
#[error("malformed protobuf message: {0}")]
pub struct DecodeError(&'static str);

/// Appends a varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a length-delimited (string or bytes) field.
pub fn put_bytes(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    put_varint(out, u64::from(field) << 3 | 2);
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// Appends a varint field (uint32, uint64, bool, enum); zero is omitted, as proto3 does.
pub fn put_uint(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        put_varint(out, u64::from(field) << 3);
        put_varint(out, value);
    }
}

/// A field's value as it is on the wire.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: strings, bytes, embedded messages, packed repeated fields.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

impl<'a> Value<'a> {
    /// The bytes of a length-delimited field.
    pub fn bytes(self) -> Result<&'a [u8], DecodeError> {
        match self {
            Value::Bytes(b) => Ok(b),
            _ => Err(DecodeError("expected a length-delimited field")),
        }
    }

    /// A string field (invalid UTF-8 is replaced, never an error).
    pub fn text(self) -> Result<String, DecodeError> {
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }

    /// A varint field.
    pub fn varint(self) -> Result<u64, DecodeError> {
        match self {
            Value::Varint(v) => Ok(v),
            _ => Err(DecodeError("expected a varint field")),
        }
    }
}

/// Iterates over the fields of one message.
#[derive(Debug)]
pub struct Fields<'a> {
    buf: &'a [u8],
}

/// The fields of `buf`.
pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf }
}

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self
                .buf
                .split_first()
                .ok_or(DecodeError("truncated varint"))?;
            self.buf = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(DecodeError("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError("field runs past the end of the message"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let item = (|| {
            let key = self.varint()?;
            let field = u32::try_from(key >> 3).map_err(|_| DecodeError("field number"))?;
            let value = match key & 7 {
                0 => Value::Varint(self.varint()?),
                1 => {
                    let b = self.take(8)?;
                    Value::Fixed64(u64::from_le_bytes(
                        b.try_into().map_err(|_| DecodeError("fixed64"))?,
                    ))
                }
                2 => {
                    let n = usize::try_from(self.varint()?).map_err(|_| DecodeError("length"))?;
                    Value::Bytes(self.take(n)?)
                }
                5 => {
                    let b = self.take(4)?;
                    Value::Fixed32(u32::from_le_bytes(
                        b.try_into().map_err(|_| DecodeError("fixed32"))?,
                    ))
                }
                _ => return Err(DecodeError("unsupported wire type")),
            };
            Ok((field, value))
        })();
        if item.is_err() {
            self.buf = &[];
        }
        Some(item)
    }
}

/// `google.protobuf.Timestamp` as nanoseconds since the epoch; `None` for the zero time.
pub fn timestamp(buf: &[u8]) -> Result<Option<Timestamp>, DecodeError> {
    let (mut secs, mut nanos) = (0i64, 0i64);
    for f in fields(buf) {
        match f? {
            (1, v) => secs = v.varint()? as i64,
            (2, v) => nanos = i64::from(v.varint()? as i32),
            _ => {}
        }
    }
    Ok((secs > 0).then(|| Timestamp(secs.saturating_mul(1_000_000_000).saturating_add(nanos))))
}

/// `google.protobuf.Any`: (type url, value).
pub fn any(buf: &[u8]) -> Result<(String, &[u8]), DecodeError> {
    let (mut url, mut value) = (String::new(), &[][..]);
    for f in fields(buf) {
        match f? {
            (1, v) => url = v.text()?,
            (2, v) => value = v.bytes()?,
            _ => {}
        }
    }
    Ok((url, value))
}

/// One `map<string, string>` entry: (key, value).
fn string_entry(buf: &[u8]) -> Result<(Text, Text), DecodeError> {
    let (mut k, mut val) = (String::new(), String::new());
    for f in fields(buf) {
        match f? {
            (1, v) => k = v.text()?,
            (2, v) => val = v.text()?,
            _ => {}
        }
    }
    Ok((k.into(), val.into()))
}

/// `containerd.services.containers.v1.Container`, the fields the enricher uses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Container {
    /// Full id.
    pub id: String,
    /// Labels.
    pub labels: BTreeMap<Text, Text>,
    /// Image reference.
    pub image: String,
    /// Runtime name (`io.containerd.runc.v2`).
    pub runtime: String,
    /// When the container record was created.
    pub created_at: Option<Timestamp>,
    /// Extensions: name → (type url, value). The CRI plugin keeps its metadata here.
    pub extensions: BTreeMap<String, (String, Vec<u8>)>,
    /// Sandbox id (containerd 1.7+).
    pub sandbox: String,
}

impl Container {
    /// Decodes a container record.
    pub fn decode(buf: &[u8]) -> Result<Container, DecodeError> {
        let mut c = Container::default();
        for f in fields(buf) {
            match f? {
                (1, v) => c.id = v.text()?,
                (2, v) => {
                    let (k, val) = string_entry(v.bytes()?)?;
                    c.labels.insert(k, val);
                }
                (3, v) => c.image = v.text()?,
                (4, v) => {
                    for r in fields(v.bytes()?) {
                        if let (1, name) = r? {
                            c.runtime = name.text()?;
                        }
                    }
                }
                (8, v) => c.created_at = timestamp(v.bytes()?)?,
                (10, v) => {
                    let (mut name, mut ext) = (String::new(), (String::new(), Vec::new()));
                    for e in fields(v.bytes()?) {
                        match e? {
                            (1, k) => name = k.text()?,
                            (2, a) => {
                                let (url, value) = any(a.bytes()?)?;
                                ext = (url, value.to_vec());
                            }
                            _ => {}
                        }
                    }
                    c.extensions.insert(name, ext);
                }
                (11, v) => c.sandbox = v.text()?,
                _ => {}
            }
        }
        Ok(c)
    }
}

/// The embedded messages of `field` in `buf` (a response's repeated or single message field).
pub fn messages(buf: &[u8], field: u32) -> Result<Vec<&[u8]>, DecodeError> {
    let mut out = Vec::new();
    for f in fields(buf) {
        let (n, v) = f?;
        if n == field {
            out.push(v.bytes()?);
        }
    }
    Ok(out)
}

/// `containerd.services.images.v1.Image`: its target's digest (`sha256:...`).
pub fn image_target_digest(image: &[u8]) -> Result<Option<String>, DecodeError> {
    for f in fields(image) {
        if let (3, target) = f? {
            for d in fields(target.bytes()?) {
                if let (2, digest) = d? {
                    return Ok(Some(digest.text()?));
                }
            }
        }
    }
    Ok(None)
}

/// An event envelope: (namespace, topic, event type url, event value).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Envelope {
    /// Namespace the event happened in.
    pub namespace: String,
    /// Topic (`/containers/create`, ...).
    pub topic: String,
    /// The event: (type url, value).
    pub event: (String, Vec<u8>),
}

impl Envelope {
    /// Decodes an envelope.
    pub fn decode(buf: &[u8]) -> Result<Envelope, DecodeError> {
        let mut e = Envelope::default();
        for f in fields(buf) {
            match f? {
                (2, v) => e.namespace = v.text()?,
                (3, v) => e.topic = v.text()?,
                (4, v) => {
                    let (url, value) = any(v.bytes()?)?;
                    e.event = (url, value.to_vec());
                }
                _ => {}
            }
        }
        Ok(e)
    }

    /// The container id a container or task event is about (field 1 of `ContainerCreate`,
    /// `ContainerUpdate`, `ContainerDelete`, `TaskStart`, ...).
    pub fn container_id(&self) -> Result<Option<String>, DecodeError> {
        for f in fields(&self.event.1) {
            if let (1, v) = f? {
                return Ok(Some(v.text()?));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(parts: &[(u32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (f, b) in parts {
            put_bytes(&mut out, *f, b);
        }
        out
    }

    #[test]
    fn decodes_a_container_record_and_skips_unknown_fields() {
        let mut ts = Vec::new();
        put_varint(&mut ts, 1 << 3);
        put_varint(&mut ts, 1_700_000_000);
        put_varint(&mut ts, 2 << 3);
        put_varint(&mut ts, 5);
        let label = msg(&[(1, b"app"), (2, b"web")]);
        let runtime = msg(&[(1, b"io.containerd.runc.v2")]);
        let any = msg(&[(1, b"types.containerd.io/x"), (2, b"{}")]);
        let ext = msg(&[(1, b"io.cri-containerd.container.metadata"), (2, &any)]);
        let mut c = msg(&[
            (1, b"abc"),
            (2, &label),
            (3, b"docker.io/library/busybox:1"),
            (4, &runtime),
            (8, &ts),
            (10, &ext),
            (11, b"sb"),
        ]);
        // An unknown varint field (99) and an unknown fixed32 one (98).
        put_varint(&mut c, 99 << 3);
        put_varint(&mut c, 300);
        put_varint(&mut c, 98 << 3 | 5);
        c.extend_from_slice(&[1, 2, 3, 4]);
        let got = Container::decode(&c).expect("decodes");
        assert_eq!(got.id, "abc");
        assert_eq!(got.labels.get("app").map(|v| &**v), Some("web"));
        assert_eq!(got.image, "docker.io/library/busybox:1");
        assert_eq!(got.runtime, "io.containerd.runc.v2");
        assert_eq!(got.created_at, Some(Timestamp(1_700_000_000_000_000_005)));
        assert_eq!(
            got.extensions.get("io.cri-containerd.container.metadata"),
            Some(&("types.containerd.io/x".to_owned(), b"{}".to_vec()))
        );
        assert_eq!(got.sandbox, "sb");
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        assert!(
            Container::decode(&[0x0a, 0x05, b'a']).is_err(),
            "length past the end"
        );
        assert!(Container::decode(&[0x80]).is_err(), "truncated varint");
        assert!(Container::decode(&[0x0b]).is_err(), "wire type 3");
        assert!(Container::decode(&[0x08, 0x01]).is_err(), "id as a varint");
        assert!(Envelope::decode(&[0xff; 11]).is_err(), "overlong varint");
    }
}
