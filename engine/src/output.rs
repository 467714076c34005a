//! Falco output formats (`%proc.name`, `%proc.aname[2]`, `<NA>` for unset fields) and
//! the alert document in Falco's JSON output shape.

use std::fmt::Write as _;

use lanner_contract::{Event, FieldRef, NA, Value};
use serde::Serialize;

/// A compiled output format.
#[derive(Debug, Clone)]
pub struct OutputFormat {
    parts: Vec<Part>,
    /// The fields it prints, as written (`proc.aname[2]`) and resolved.
    fields: Vec<(String, FieldRef)>,
    /// Indexes into `fields`, in name order (the order of `output_fields`).
    by_name: Vec<usize>,
}

/// A piece of an output format: text, or a field to print.
#[derive(Debug, Clone, Copy)]
pub enum Piece<'a> {
    /// Literal text.
    Text(&'a str),
    /// A field (`<NA>` when unset).
    Field(&'a FieldRef),
}

#[derive(Debug, Clone)]
enum Part {
    Lit(String),
    Field(usize),
}

fn is_field_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

impl OutputFormat {
    /// Adds the stored fields the format reads to `out`.
    pub fn stored_deps(&self, out: &mut Vec<lanner_contract::StoredField>) {
        for (_, r) in &self.fields {
            r.stored_deps(out);
        }
    }

    /// Compiles a format; the second value lists field names the accessor does not know.
    pub fn parse(fmt: &str) -> (OutputFormat, Vec<String>) {
        let mut parts = Vec::new();
        let mut fields: Vec<(String, FieldRef)> = Vec::new();
        let mut missing = Vec::new();
        let mut lit = String::new();
        let mut rest = fmt;
        while let Some(i) = rest.find('%') {
            lit.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(a) = after.strip_prefix('%') {
                lit.push('%');
                rest = a;
                continue;
            }
            let mut end = after
                .find(|c: char| !is_field_char(c))
                .unwrap_or(after.len());
            let name_end = end;
            // A trailing dot ends the sentence, not the field name.
            let mut name = after[..name_end].trim_end_matches('.');
            end = name.len();
            if !name.starts_with(|c: char| c.is_ascii_alphabetic()) || !name.contains('.') {
                lit.push('%');
                rest = after;
                continue;
            }
            let mut text = name.to_owned();
            if after[end..].starts_with('[')
                && let Some(close) = after[end..].find(']')
            {
                text = after[..end + close + 1].to_owned();
                end += close + 1;
            }
            if text == "container.info" {
                // Falco kept `%container.info` for compatibility and now expands it to
                // nothing (the container plugin's fields are appended instead).
                rest = &after[end..];
                continue;
            }
            match FieldRef::parse(&text) {
                Ok(r) => {
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    let idx = match fields.iter().position(|(t, _)| *t == text) {
                        Some(i) => i,
                        None => {
                            fields.push((text.clone(), r));
                            fields.len() - 1
                        }
                    };
                    parts.push(Part::Field(idx));
                }
                Err(_) => {
                    name = name.split('[').next().unwrap_or(name);
                    missing.push(name.to_owned());
                    lit.push('%');
                    lit.push_str(&text);
                }
            }
            rest = &after[end..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        let mut by_name: Vec<usize> = (0..fields.len()).collect();
        by_name.sort_by(|&a, &b| fields[a].0.cmp(&fields[b].0));
        (
            OutputFormat {
                parts,
                fields,
                by_name,
            },
            missing,
        )
    }

    /// The format's pieces in order.
    pub fn pieces(&self) -> impl Iterator<Item = Piece<'_>> {
        self.parts.iter().map(|p| match p {
            Part::Lit(s) => Piece::Text(s),
            Part::Field(i) => Piece::Field(&self.fields[*i].1),
        })
    }

    /// The printed fields, as written, in name order (as `output_fields` lists them).
    pub fn fields_by_name(&self) -> impl Iterator<Item = (&str, &FieldRef)> {
        self.by_name
            .iter()
            .map(|&i| (self.fields[i].0.as_str(), &self.fields[i].1))
    }

    /// Renders the format for an event (`<NA>` for unset fields).
    pub fn render(&self, ev: &Event) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Field(i) => match ev.get(&self.fields[*i].1) {
                    Some(Value::Str(s)) => out.push_str(&s),
                    Some(v) => {
                        let _ = write!(out, "{v}");
                    }
                    None => out.push_str(NA),
                },
            }
        }
        out
    }

    /// The printed fields and their values (`null` when unset), for `output_fields`.
    pub fn output_fields(&self, ev: &Event) -> serde_json::Map<String, serde_json::Value> {
        self.fields
            .iter()
            .map(|(text, r)| {
                (
                    text.clone(),
                    ev.get(r).map(json_value).unwrap_or(serde_json::Value::Null),
                )
            })
            .collect()
    }
}

/// Falco's JSON rendering of a field value: numbers and booleans typed, the rest text.
pub fn json_value(v: Value<'_>) -> serde_json::Value {
    match v {
        Value::U64(n) => n.into(),
        Value::I64(n) => n.into(),
        Value::Bool(b) => b.into(),
        Value::Ts(t) => t.0.into(),
        Value::Str(s) => s.into_owned().into(),
        other => other.to_string().into(),
    }
}

/// One alert, in Falco's JSON output shape plus a de-duplication id.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Alert {
    /// Deterministic id (rule name + event id), also the `Nats-Msg-Id`.
    pub uuid: String,
    /// Event time, RFC 3339 with nanoseconds.
    pub time: String,
    /// Rule name.
    pub rule: String,
    /// Priority (`Critical`, `Warning`, ...).
    pub priority: String,
    /// Always `syscall`.
    pub source: String,
    /// Rule tags.
    pub tags: Vec<String>,
    /// Node the event was captured on.
    pub hostname: String,
    /// `<time>: <Priority> <rendered output>`.
    pub output: String,
    /// The printed fields and their values.
    pub output_fields: serde_json::Map<String, serde_json::Value>,
}

impl Alert {
    /// What routing the alert needs besides its JSON.
    pub fn head(&self) -> crate::alert_json::AlertHead<'_> {
        crate::alert_json::AlertHead {
            uuid: &self.uuid,
            time: &self.time,
            rule: &self.rule,
            priority: &self.priority,
            tags: &self.tags,
        }
    }
}

/// A deterministic UUID-shaped id from a rule name and an event id.
pub fn alert_id(rule: &str, event_id: &str) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(rule.as_bytes());
    h.update(&[0]);
    h.update(event_id.as_bytes());
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(36);
    for (i, b) in h.digest128().to_be_bytes().iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            id.push('-');
        }
        id.push(char::from(HEX[usize::from(b >> 4)]));
        id.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fields_and_na() {
        let (f, missing) = OutputFormat::parse(
            "Shell (user=%user.name gp=%proc.aname[2] tty=%proc.tty x=%nope.field 100%% %s)",
        );
        assert_eq!(missing, vec!["nope.field".to_string()]);
        let ev = Event {
            user_name: Some("root".into()),
            proc_aname: Some(vec!["a".into(), "b".into()].into()),
            ..Default::default()
        };
        assert_eq!(
            f.render(&ev),
            "Shell (user=root gp=b tty=<NA> x=%nope.field 100% %s)"
        );
        let fields = f.output_fields(&ev);
        assert_eq!(fields["user.name"], "root");
        assert_eq!(fields["proc.tty"], serde_json::Value::Null);
        assert_eq!(fields["proc.aname[2]"], "b");
    }

    #[test]
    fn container_info_expands_to_nothing() {
        let (f, missing) = OutputFormat::parse("shell %container.info (user=%user.name)");
        assert!(missing.is_empty());
        assert_eq!(f.render(&Event::default()), "shell  (user=<NA>)");
    }

    #[test]
    fn trailing_dot_is_not_part_of_the_field() {
        let (f, missing) = OutputFormat::parse("by %proc.name.");
        assert!(missing.is_empty());
        assert_eq!(
            f.render(&Event {
                proc_name: Some("sh".into()),
                ..Default::default()
            }),
            "by sh."
        );
    }

    #[test]
    fn ids_are_deterministic_and_distinct() {
        assert_eq!(alert_id("r", "e1"), alert_id("r", "e1"));
        assert_ne!(alert_id("r", "e1"), alert_id("r", "e2"));
        assert_ne!(alert_id("r1", "e"), alert_id("r2", "e"));
        assert_eq!(alert_id("r", "e").len(), 36);
        // Ids do not change between releases (archived and live alerts must agree):
        // the same as the hash of `rule NUL event` formatted the plain way.
        for (r, e) in [
            ("r", "e"),
            ("Terminal shell in container", "00aa-17"),
            ("", ""),
        ] {
            let h = xxhash_rust::xxh3::xxh3_128(format!("{r}\u{0}{e}").as_bytes());
            let hex: String = h.to_be_bytes().iter().map(|x| format!("{x:02x}")).collect();
            let plain = format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            );
            assert_eq!(alert_id(r, e), plain);
        }
    }
}
