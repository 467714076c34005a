//! Typed field values: what the accessor returns and how Falco renders them.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Nanoseconds since the Unix epoch, UTC.
///
/// Serialized in JSON as RFC 3339 with nanoseconds (`2026-01-02T03:04:05.123456789Z`);
/// an integer number of nanoseconds is accepted on input too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let now = chrono::Utc::now();
        Timestamp(now.timestamp_nanos_opt().unwrap_or(i64::MAX))
    }

    /// RFC 3339 rendering with nanoseconds, as Falco prints `time`.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000) as u32;
        match chrono::DateTime::from_timestamp(secs, nanos) {
            Some(dt) => dt.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            None => self.0.to_string(),
        }
    }

    /// Parses RFC 3339 (any offset) into nanoseconds since the epoch.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        if let Some(t) = Self::parse_canonical(s.as_bytes()) {
            return Some(t);
        }
        let dt = chrono::DateTime::parse_from_rfc3339(s).ok()?;
        dt.timestamp_nanos_opt().map(Timestamp)
    }

    /// The form [`Timestamp::to_rfc3339`] writes, `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`,
    /// parsed directly (JSON-lines events carry two or three per line); `None` for
    /// anything else, which then goes through chrono.
    fn parse_canonical(b: &[u8]) -> Option<Self> {
        let [
            y0,
            y1,
            y2,
            y3,
            b'-',
            m0,
            m1,
            b'-',
            d0,
            d1,
            b'T',
            h0,
            h1,
            b':',
            mi0,
            mi1,
            b':',
            s0,
            s1,
            b'.',
            n @ ..,
            b'Z',
        ] = b
        else {
            return None;
        };
        let digits = |ds: &[u8]| -> Option<i64> {
            ds.iter().try_fold(0i64, |acc, &c| {
                c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
            })
        };
        if n.len() != 9 {
            return None;
        }
        let year = digits(&[*y0, *y1, *y2, *y3])?;
        let (month, day) = (digits(&[*m0, *m1])?, digits(&[*d0, *d1])?);
        let (hour, min, sec) = (
            digits(&[*h0, *h1])?,
            digits(&[*mi0, *mi1])?,
            digits(&[*s0, *s1])?,
        );
        let nanos = digits(n)?;
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let month_days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        // Leap seconds (`:60`) are left to chrono.
        if day < 1 || day > month_days || hour > 23 || min > 59 || sec > 59 {
            return None;
        }
        // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
        // days_from_civil).
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let secs = days * 86_400 + hour * 3_600 + min * 60 + sec;
        // Four-digit years stay far inside i64 nanoseconds' range only from 1677 to
        // 2262; outside it chrono decides (and refuses).
        secs.checked_mul(1_000_000_000)?
            .checked_add(nanos)
            .filter(|_| (1678..=2261).contains(&year))
            .map(Timestamp)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time or an integer of nanoseconds since the epoch")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse_rfc3339(v)
                    .ok_or_else(|| E::custom(format!("invalid RFC 3339 time {v:?}")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Timestamp, E> {
                i64::try_from(v)
                    .map(Timestamp)
                    .map_err(|_| E::custom("timestamp out of range"))
            }
        }
        d.deserialize_any(V)
    }
}

/// The kind of value a field holds; the Arrow type and the wire encoding follow from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// UTF-8 text.
    Str,
    /// Unsigned 64-bit integer.
    U64,
    /// Signed 64-bit integer.
    I64,
    /// Boolean.
    Bool,
    /// Nanosecond timestamp (UTC).
    Ts,
    /// IPv4 or IPv6 address.
    Ip,
    /// List of text values (ancestry, DNS answers, ...).
    StrList,
    /// List of unsigned integers (ancestor pids).
    U64List,
    /// String-to-string map (labels).
    Map,
}

/// A field value as returned by [`crate::Event::get`].
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    /// Text, borrowed from the event or computed.
    Str(Cow<'a, str>),
    /// Unsigned integer.
    U64(u64),
    /// Signed integer.
    I64(i64),
    /// Boolean.
    Bool(bool),
    /// Timestamp.
    Ts(Timestamp),
    /// IP address.
    Ip(IpAddr),
    /// List of text values.
    StrList(&'a [crate::model::Text]),
    /// List of unsigned integers.
    U64List(Cow<'a, [u64]>),
    /// Several IP addresses (`fd.ip`: client and server).
    IpList(Vec<IpAddr>),
    /// Map of labels.
    Map(&'a BTreeMap<crate::model::Text, crate::model::Text>),
}

impl Value<'_> {
    /// The text, when this is a text value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Integer view of numeric values (timestamps as nanoseconds, booleans as 0/1).
    pub fn as_i128(&self) -> Option<i128> {
        match self {
            Value::U64(v) => Some(*v as i128),
            Value::I64(v) => Some(*v as i128),
            Value::Ts(t) => Some(t.0 as i128),
            Value::Bool(b) => Some(*b as i128),
            _ => None,
        }
    }
}

/// Renders as Falco does in outputs: booleans `true`/`false`, lists comma-separated,
/// maps `k:v` comma-separated, timestamps as nanoseconds since epoch.
impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::U64(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Ts(t) => write!(f, "{}", t.0),
            Value::Ip(ip) => write!(f, "{ip}"),
            Value::StrList(l) => f.write_str(&l.join(",")),
            Value::U64List(l) => {
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{v}")?;
                }
                Ok(())
            }
            Value::IpList(l) => {
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{v}")?;
                }
                Ok(())
            }
            Value::Map(m) => {
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{k}:{v}")?;
                }
                Ok(())
            }
        }
    }
}

/// Falco's rendering of an unset field.
pub const NA: &str = "<NA>";
