//! Alerts written straight to their JSON form.
//!
//! The detector publishes every alert as JSON. Building an [`Alert`](crate::output::Alert)
//! first (owned strings, a map of owned field values) and serialising it cost about four
//! times as much as writing the same bytes directly, which is what [`write`] does: the
//! output is byte for byte what `serde_json::to_string(&alert)` gives for the alert
//! [`AlertBuilder::alert`](crate::alert::AlertBuilder::alert) builds (a test checks it on
//! every upstream case).

use std::fmt::Write as _;

use lanner_contract::{Event, NA, Timestamp, Value};

use crate::output::{Piece, alert_id};
use crate::rules::Rule;

/// What routing an alert needs besides its JSON: the rule and the alert's id.
#[derive(Clone, Copy, Debug)]
pub struct AlertHead<'a> {
    /// Deterministic id (rule name + event id), also the `Nats-Msg-Id`.
    pub uuid: &'a str,
    /// Event time, RFC 3339 with nanoseconds.
    pub time: &'a str,
    /// Rule name.
    pub rule: &'a str,
    /// Priority as Falco prints it (`Warning`, ...).
    pub priority: &'a str,
    /// Rule tags.
    pub tags: &'a [String],
}

/// Writes the alert for `rule` and `ev` as JSON into `out` (cleared first) and returns
/// its id and time. `node` is used when the event has no `evt.hostname`, `fallback_id`
/// when it has no `evt.id`.
pub fn write(
    rule: &Rule,
    ev: &Event,
    node: &str,
    fallback_id: impl FnOnce() -> String,
    out: &mut String,
) -> (String, String) {
    out.clear();
    let t = ev.evt_time.unwrap_or_else(Timestamp::now);
    let uuid = match ev.evt_id.as_deref() {
        Some(id) => alert_id(&rule.name, id),
        None => alert_id(&rule.name, &fallback_id()),
    };
    let time = t.to_rfc3339();
    let priority = rule.priority.as_str();
    out.push_str("{\"uuid\":");
    string(out, &uuid);
    out.push_str(",\"time\":");
    string(out, &time);
    out.push_str(",\"rule\":");
    string(out, &rule.name);
    out.push_str(",\"priority\":");
    string(out, priority);
    out.push_str(",\"source\":\"syscall\",\"tags\":[");
    for (i, tag) in rule.tags.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(out, tag);
    }
    out.push_str("],\"hostname\":");
    string(out, ev.evt_hostname.as_deref().unwrap_or(node));
    out.push_str(",\"output\":\"");
    // `<time>: <Priority> <rendered output>`, escaped as it is written.
    escaped(out, time.get(11..29).unwrap_or(&time));
    out.push_str(": ");
    escaped(out, priority);
    out.push(' ');
    let mut text = String::new();
    for piece in rule.output.pieces() {
        match piece {
            Piece::Text(lit) => escaped(out, lit),
            Piece::Field(field) => match ev.get(field) {
                Some(Value::Str(s)) => escaped(out, &s),
                Some(v) => {
                    text.clear();
                    let _ = write!(text, "{v}");
                    escaped(out, &text);
                }
                None => out.push_str(NA),
            },
        }
    }
    out.push_str("\",\"output_fields\":{");
    for (i, (name, field)) in rule.output.fields_by_name().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(out, name);
        out.push(':');
        match ev.get(field) {
            None => out.push_str("null"),
            Some(Value::U64(n)) => {
                let _ = write!(out, "{n}");
            }
            Some(Value::I64(n)) => {
                let _ = write!(out, "{n}");
            }
            Some(Value::Ts(t)) => {
                let _ = write!(out, "{}", t.0);
            }
            Some(Value::Bool(b)) => out.push_str(if b { "true" } else { "false" }),
            Some(Value::Str(s)) => string(out, &s),
            Some(v) => {
                text.clear();
                let _ = write!(text, "{v}");
                string(out, &text);
            }
        }
    }
    out.push_str("}}");
    (uuid, time)
}

/// A JSON string: quoted and escaped.
fn string(out: &mut String, s: &str) {
    out.push('"');
    escaped(out, s);
    out.push('"');
}

/// Escapes `s` into `out` as serde_json does: `"` and `\` with a backslash, the usual
/// short forms for control characters, `\u00XX` for the others; everything else as is.
/// Clean runs (nearly all of an alert) are skipped eight bytes at a time.
fn escaped(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        while let Some(word) = bytes.get(i..i + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            if word_needs_escape(u64::from_le_bytes(w)) {
                break;
            }
            i += 8;
        }
        if bytes.len() - i < 8 {
            // The tail, padded with a clean byte: most tails are clean too.
            let mut w = [b'a'; 8];
            w[..bytes.len() - i].copy_from_slice(&bytes[i..]);
            if !word_needs_escape(u64::from_le_bytes(w)) {
                break;
            }
        }
        let Some(&b) = bytes.get(i) else {
            break;
        };
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(&s[start..i]);
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(short);
        }
        i += 1;
        start = i;
    }
    out.push_str(&s[start..]);
}

/// Whether any of eight bytes is `"`, `\` or below 0x20 (may say yes for a clean word
/// next to a byte that is, never no for a word that needs escaping).
fn word_needs_escape(v: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_in = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_0x20 = v.wrapping_sub(ONES * 0x20) & !v & HIGH;
    below_0x20 | zero_in(v ^ (ONES * u64::from(b'"'))) | zero_in(v ^ (ONES * u64::from(b'\\'))) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_serde_json_does() {
        let nasty = "a\"b\\c\nd\re\tf\u{8}g\u{c}h\u{1}i\u{1f}j\u{7f}k é 日本 \u{2028}";
        let mut out = String::new();
        string(&mut out, nasty);
        assert_eq!(out, serde_json::to_string(nasty).expect("json"));
    }

    proptest::proptest! {
        #[test]
        fn any_text_escapes_as_serde_json_does(s in "(\\PC|[\"\\\\\u{0}-\u{1f}\u{7f}]){0,80}") {
            let mut out = String::new();
            string(&mut out, &s);
            proptest::prop_assert_eq!(out, serde_json::to_string(&s).expect("json"));
        }
    }
}
