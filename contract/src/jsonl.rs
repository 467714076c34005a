//! The JSON-lines form of events, for people, replays and tests (see `docs/events.md`).
//!
//! One JSON object per line, keyed by Falco field names (`"proc.name": "bash"`), unset
//! fields omitted, times in RFC 3339 with nanoseconds. Unknown keys are rejected so a
//! typo never silently drops data.
//!
//! ```
//! use lanner_contract::jsonl;
//! let ev = jsonl::parse_line(r#"{"evt.type":"openat","fd.name":"/etc/shadow","evt.rawres":3}"#).unwrap();
//! assert_eq!(ev.fd_name.as_deref(), Some("/etc/shadow"));
//! assert!(jsonl::parse_line(r#"{"fd.nmae":"/etc/shadow"}"#).is_err());
//! ```

use std::io::{self, BufRead, Write};

use crate::model::Event;

/// A line that could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

/// Parses one line: the usual shape of a line directly, anything else (and every error)
/// through serde.
pub fn parse_line(line: &str) -> Result<Event, serde_json::Error> {
    match crate::json_fast::parse(line) {
        Some(ev) => Ok(ev),
        None => serde_json::from_str(line),
    }
}

/// Parses one line into `ev` (which should be empty), as [`parse_line`] does, without
/// moving the event: for filling a batch in place. On error `ev` is left empty.
pub fn parse_line_into(line: &str, ev: &mut Event) -> Result<(), serde_json::Error> {
    LineParser::default().parse_into(line, ev)
}

/// Parses lines one after another, keeping its buffers between them; with
/// [`LineParser::sharing`], the events it returns already share equal values as
/// [`Event::share`] would make them (see [`crate::share`]), at less cost: a text or
/// list seen before is taken from the pool instead of being built.
///
/// ```
/// use lanner_contract::jsonl::LineParser;
/// let mut parser = LineParser::sharing();
/// let line = r#"{"proc.exe":"/usr/lib/postgresql/16/bin/postgres"}"#;
/// let (mut a, mut b) = (Default::default(), Default::default());
/// parser.parse_into(line, &mut a).unwrap();
/// parser.parse_into(line, &mut b).unwrap();
/// let ptr = |ev: &lanner_contract::Event| ev.proc_exe.as_ref().unwrap().as_ptr();
/// assert_eq!(ptr(&a), ptr(&b));
/// ```
#[derive(Default)]
pub struct LineParser {
    state: crate::json_fast::State,
}

impl LineParser {
    /// A parser whose events share equal values with each other (until [`Self::clear`]).
    pub fn sharing() -> Self {
        Self {
            state: crate::json_fast::State::sharing(),
        }
    }

    /// Forgets the values shared so far (between batches, to bound memory).
    pub fn clear(&mut self) {
        self.state.clear();
    }

    /// Parses one line into `ev` (which should be empty), as [`parse_line`] does. On
    /// error `ev` is left empty.
    pub fn parse_into(&mut self, line: &str, ev: &mut Event) -> Result<(), serde_json::Error> {
        if crate::json_fast::parse_into(line, ev, &mut self.state) {
            return Ok(());
        }
        *ev = Event::default();
        *ev = serde_json::from_str(line)?;
        self.state.share(ev);
        Ok(())
    }
}

/// Whether `line` parses on the fast path (for tests: the usual shape must).
#[doc(hidden)]
pub fn parses_fast(line: &str) -> bool {
    crate::json_fast::parse(line).is_some()
}

/// Parses one line through serde only: the reference [`parse_line`] is tested against.
#[doc(hidden)]
pub fn parse_line_serde(line: &str) -> Result<Event, serde_json::Error> {
    serde_json::from_str(line)
}

/// Renders one event as a JSON line (without the newline).
pub fn to_line(ev: &Event) -> String {
    serde_json::to_string(ev)
        .unwrap_or_else(|e| format!("{{\"lanner.error\":{:?}}}", e.to_string()))
}

/// Writes one event followed by a newline.
pub fn write_event(mut w: impl Write, ev: &Event) -> io::Result<()> {
    serde_json::to_writer(&mut w, ev)?;
    w.write_all(b"\n")
}

/// Iterates the events of a JSON-lines input: `Ok((line, event))`, or `Err` for a line
/// that is not a valid event. Blank lines are skipped. I/O errors end the iteration
/// with an `Err` carrying the line number.
pub fn read_events<R: BufRead>(
    reader: R,
) -> impl Iterator<Item = Result<(usize, Event), LineError>> {
    let mut lines = reader.lines().enumerate();
    let mut parser = LineParser::default();
    let mut done = false;
    std::iter::from_fn(move || {
        loop {
            if done {
                return None;
            }
            let (idx, line) = lines.next()?;
            let line_no = idx + 1;
            match line {
                Err(e) => {
                    done = true;
                    return Some(Err(LineError {
                        line: line_no,
                        message: format!("read error: {e}"),
                    }));
                }
                Ok(l) if l.trim().is_empty() => continue,
                Ok(l) => {
                    let mut ev = Event::default();
                    return Some(
                        parser
                            .parse_into(&l, &mut ev)
                            .map(|()| (line_no, ev))
                            .map_err(|e| LineError {
                                line: line_no,
                                message: e.to_string(),
                            }),
                    );
                }
            }
        }
    })
}
