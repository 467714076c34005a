//! DNS messages seen on port 53 (UDP, or TCP with its length prefix): the question
//! (name, type) of a query, and the response code and answer addresses of a response.
//! Malformed or cut messages give what could be read, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a DNS message says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dns {
    /// Transaction id.
    pub id: u16,
    /// A response (QR bit).
    pub response: bool,
    /// Question name, without the trailing dot.
    pub name: String,
    /// Question type (`A`, `AAAA`, ...).
    pub qtype: String,
    /// Response code name (responses only).
    pub rcode: Option<String>,
    /// A/AAAA addresses in the answer section.
    pub answers: Vec<IpAddr>,
}

fn type_name(t: u16) -> String {
    match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        65 => "HTTPS",
        255 => "ANY",
        _ => return t.to_string(),
    }
    .to_owned()
}

fn rcode_name(r: u16) -> String {
    match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => return r.to_string(),
    }
    .to_owned()
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Reads a (possibly compressed) name at `at`; returns it and the offset after it.
fn name_at(b: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut labels: Vec<String> = Vec::new();
    let mut end = None;
    for _ in 0..64 {
        let len = *b.get(at)? as usize;
        if len == 0 {
            return Some((labels.join("."), end.unwrap_or(at + 1)));
        }
        if len & 0xc0 == 0xc0 {
            let ptr = (u16_at(b, at)? & 0x3fff) as usize;
            end.get_or_insert(at + 2);
            at = ptr;
            continue;
        }
        let label = b.get(at + 1..at + 1 + len)?;
        labels.push(String::from_utf8_lossy(label).into_owned());
        at += 1 + len;
    }
    None
}

/// Parses a DNS message; `None` when not even the header and question are readable.
pub fn parse(b: &[u8]) -> Option<Dns> {
    let id = u16_at(b, 0)?;
    let flags = u16_at(b, 2)?;
    let qd = u16_at(b, 4)?;
    let an = u16_at(b, 6)?;
    if qd == 0 {
        return None;
    }
    let (name, mut at) = name_at(b, 12)?;
    let qtype = u16_at(b, at)?;
    at += 4;
    let response = flags & 0x8000 != 0;
    let mut dns = Dns {
        id,
        response,
        name,
        qtype: type_name(qtype),
        ..Default::default()
    };
    for _ in 1..qd {
        let (_, next) = name_at(b, at)?;
        at = next + 4;
    }
    if response {
        dns.rcode = Some(rcode_name(flags & 0xf));
        for _ in 0..an {
            let Some((_, next)) = name_at(b, at) else {
                break;
            };
            let (Some(t), Some(len)) = (u16_at(b, next), u16_at(b, next + 8)) else {
                break;
            };
            let data = next + 10;
            let Some(rdata) = b.get(data..data + len as usize) else {
                break;
            };
            match (t, rdata.len()) {
                (1, 4) => dns.answers.push(IpAddr::V4(Ipv4Addr::new(
                    rdata[0], rdata[1], rdata[2], rdata[3],
                ))),
                (28, 16) => {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(rdata);
                    dns.answers.push(IpAddr::V6(Ipv6Addr::from(o)));
                }
                _ => {}
            }
            at = data + len as usize;
        }
    }
    Some(dns)
}

/// Parses a DNS message read from or written to a TCP stream: the bytes may start with
/// the message's 2-byte length (Go and musl write length and message in one call) or be
/// the bare message (glibc writes the length on its own; the second of two reads).
pub fn parse_stream(b: &[u8]) -> Option<Dns> {
    if let Some(len) = u16_at(b, 0)
        && usize::from(len) + 2 >= b.len()
        && usize::from(len) >= 12
        && let Some(d) = parse(&b[2..])
    {
        return Some(d);
    }
    parse(b)
}

/// Encodes a query (for tests).
#[cfg(test)]
pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut b = vec![];
    b.extend(id.to_be_bytes());
    b.extend([1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        b.push(label.len() as u8);
        b.extend(label.as_bytes());
    }
    b.push(0);
    b.extend(qtype.to_be_bytes());
    b.extend([0, 1]);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_answer() {
        let q = query(0x1234, "example.com", 1);
        let d = parse(&q).expect("query parses");
        assert_eq!(
            (d.id, d.response, d.name.as_str(), d.qtype.as_str()),
            (0x1234, false, "example.com", "A")
        );
        // Response: same question, one A answer with a compressed name pointer.
        let mut r = q.clone();
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 1;
        r.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 93, 184, 216, 34]);
        let d = parse(&r).expect("response parses");
        assert_eq!(d.rcode.as_deref(), Some("NOERROR"));
        assert_eq!(d.answers, vec![IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34))]);
        // Cut short: the answer is dropped, the question kept.
        let d = parse(&r[..r.len() - 3]).expect("question still parses");
        assert!(d.answers.is_empty());
        assert_eq!(parse(&r[..5]), None);
        // On a TCP stream, with or without the 2-byte length in front.
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend(&q);
        assert_eq!(
            parse_stream(&framed).map(|d| d.name),
            Some("example.com".into())
        );
        assert_eq!(parse_stream(&q).map(|d| d.name), Some("example.com".into()));
        // A pointer loop ends.
        assert_eq!(parse(&[0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12]), None);
    }
}
