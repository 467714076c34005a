//! Retro-hunt: Falco rules run over the archive, giving the alerts they would have
//! raised, with the very engine the live detector runs (`lanner-engine`), so the same
//! events give the same alerts: same rule, output, fields and `uuid` (the uuid is
//! derived from the rule name and the event id, both of which the archive keeps).
//!
//! Only the events the rules can fire on are read: the time window prunes the `dt`
//! partitions and the row groups (files are sorted by `evt_time`), and when every rule
//! names its event types (every upstream rule does) only those types are fetched, and
//! only the columns the rules and their outputs read. The rows come back as events with
//! [`lanner_contract::arrow::from_record_batch_unshared`] and are judged batch by batch as the
//! scan streams, so memory stays flat over any window.
//!
//! ```text
//! lanner-query hunt --rules rules/falco_rules.yaml --since 2026-01-01T00:00:00Z --until 2h
//! ```
//!
//! The query's timeout bounds a hunt; its row limit bounds the alerts returned (the
//! events read are not limited).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{DataFrame, SessionContext, col, lit};
use futures::StreamExt;
use lanner_contract::arrow::from_record_batch_unshared;
use lanner_engine::alert::AlertBuilder;
use lanner_engine::output::Alert;
use lanner_engine::rules::{Matching, Ruleset};

use crate::engine::Engine;
use crate::guard::LimitError;
use crate::tables::EVENTS;

/// Why a hunt failed.
#[derive(Debug, thiserror::Error)]
pub enum HuntError {
    /// A time bound that is neither RFC 3339 nor a duration before now.
    #[error(
        "{which}: {value:?} is neither an RFC 3339 time (2026-01-01T00:00:00Z) nor a duration before now (90s, 30m, 2h, 7d)"
    )]
    BadTime {
        /// `since` or `until`.
        which: &'static str,
        /// The value given.
        value: String,
    },
    /// The window is empty.
    #[error("the window is empty: since {since} is not before until {until}")]
    EmptyWindow {
        /// Start.
        since: DateTime<Utc>,
        /// End.
        until: DateTime<Utc>,
    },
    /// The rules do not load.
    #[error("the rules do not load:\n{0}")]
    Rules(String),
    /// Reading the archive failed.
    #[error("reading the archive: {}", .0.find_root())]
    Read(#[from] DataFusionError),
    /// A batch of the archive could not be read back into events.
    #[error("reading events back from the archive: {0}")]
    Convert(#[from] datafusion::arrow::error::ArrowError),
    /// The timeout or the alert limit was hit.
    #[error("{0}")]
    Limit(#[from] LimitError),
}

/// The time window `[since, until)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// First instant included.
    pub since: DateTime<Utc>,
    /// First instant excluded.
    pub until: DateTime<Utc>,
}

impl Window {
    /// Parses `since`/`until`: RFC 3339 times, or durations before `now` (`90s`,
    /// `30m`, `2h`, `7d`); an empty `until` means now.
    pub fn parse(since: &str, until: &str, now: DateTime<Utc>) -> Result<Window, HuntError> {
        let since = parse_time("since", since, now)?;
        let until = if until.trim().is_empty() {
            now
        } else {
            parse_time("until", until, now)?
        };
        if since >= until {
            return Err(HuntError::EmptyWindow { since, until });
        }
        Ok(Window { since, until })
    }
}

fn parse_time(
    which: &'static str,
    v: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, HuntError> {
    let bad = || HuntError::BadTime {
        which,
        value: v.to_owned(),
    };
    let v = v.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    let split = v.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let n: i64 = v[..split].parse().map_err(|_| bad())?;
    let unit: i64 = match &v[split..] {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(unit).ok_or_else(bad)?;
    now.checked_sub_signed(chrono::TimeDelta::try_seconds(secs).ok_or_else(bad)?)
        .ok_or_else(bad)
}

/// What to hunt for.
#[derive(Clone, Copy, Debug)]
pub struct Hunt<'a> {
    /// The rules.
    pub rules: &'a Ruleset,
    /// Which rules fire when several match one event (as the detector's
    /// `--rule-matching`).
    pub matching: Matching,
    /// The time window (of `evt.time`).
    pub window: Window,
}

/// What a hunt found.
#[derive(Debug, Default)]
pub struct HuntReport {
    /// The alerts, in event time order (then by uuid).
    pub alerts: Vec<Alert>,
    /// Events read from the archive and judged.
    pub events: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Of which: turning Arrow rows back into events.
    pub convert: Duration,
    /// Of which: judging the events and building alerts (the rest is reading).
    pub judge: Duration,
    /// The event types read (`None`: every type).
    pub types: Option<Vec<String>>,
}

impl HuntReport {
    /// Alerts per rule, most first.
    pub fn by_rule(&self) -> Vec<(&str, usize)> {
        let mut m: BTreeMap<&str, usize> = BTreeMap::new();
        for a in &self.alerts {
            *m.entry(a.rule.as_str()).or_default() += 1;
        }
        let mut v: Vec<_> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }
}

/// The engine's session without the row limit (a hunt reads any number of events; its
/// alerts are limited instead), sharing its tables and memory pool.
pub fn unlimited_rows(engine: &Engine) -> SessionContext {
    let state = engine.context().state();
    let rules: Vec<_> = state
        .physical_optimizers()
        .iter()
        .filter(|r| r.name() != crate::guard::GUARD_RULE)
        .cloned()
        .collect();
    SessionContext::new_with_state(
        SessionStateBuilder::new_from_existing(state)
            .with_physical_optimizer_rules(rules)
            .build(),
    )
}

/// Runs a hunt over the engine's `events` table, under its limits (the timeout for the
/// whole hunt, the row limit for the alerts).
pub async fn run(engine: &Engine, hunt: Hunt<'_>) -> Result<HuntReport, HuntError> {
    let limits = engine.limits();
    let ctx = unlimited_rows(engine);
    let work = judge_window(&ctx, hunt, limits.max_rows);
    if limits.timeout.is_zero() {
        return work.await;
    }
    tokio::time::timeout(limits.timeout, work)
        .await
        .unwrap_or(Err(HuntError::Limit(LimitError::Timeout(limits.timeout))))
}

/// `evt_time` within the window (and the `dt` days it spans, which prunes folders
/// before any file is opened), and `evt_type` among the rules' types when they all
/// name theirs.
fn filter(hunt: &Hunt<'_>, types: Option<&[&str]>) -> datafusion::prelude::Expr {
    let ns = |t: DateTime<Utc>| t.timestamp_nanos_opt().unwrap_or(i64::MAX);
    let ts = |t| {
        lit(ScalarValue::TimestampNanosecond(
            Some(ns(t)),
            Some("UTC".into()),
        ))
    };
    let day = |t: DateTime<Utc>| {
        let days = t
            .date_naive()
            .signed_duration_since(chrono::NaiveDate::default());
        lit(ScalarValue::Date32(i32::try_from(days.num_days()).ok()))
    };
    let w = hunt.window;
    let mut filter = col("evt_time")
        .gt_eq(ts(w.since))
        .and(col("evt_time").lt(ts(w.until)))
        .and(col("dt").between(day(w.since), day(w.until)));
    if let Some(types) = types {
        filter =
            filter.and(col("evt_type").in_list(types.iter().map(|t| lit(*t)).collect(), false));
    }
    filter
}

/// The events a hunt reads: the window's rows of the rules' event types, and only the
/// columns the rules and their outputs read ([`Ruleset::stored_fields`]).
pub async fn window_frame(ctx: &SessionContext, hunt: &Hunt<'_>) -> Result<DataFrame, HuntError> {
    let types = hunt.rules.event_types();
    let columns: Vec<&str> = hunt
        .rules
        .stored_fields()
        .into_iter()
        .map(|f| f.info().column)
        .collect();
    Ok(ctx
        .table(EVENTS)
        .await?
        .filter(filter(hunt, types.as_deref()))?
        .select_columns(&columns)?)
}

async fn judge_window(
    ctx: &SessionContext,
    hunt: Hunt<'_>,
    max_alerts: usize,
) -> Result<HuntReport, HuntError> {
    let started = Instant::now();
    let types = hunt.rules.event_types();
    let mut stream = window_frame(ctx, &hunt).await?.execute_stream().await?;
    let builder = AlertBuilder::new(hunt.matching);
    let mut report = HuntReport {
        types: types.map(|t| t.into_iter().map(str::to_owned).collect()),
        ..HuntReport::default()
    };
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let t0 = Instant::now();
        let events = from_record_batch_unshared(&batch)?;
        let t1 = Instant::now();
        report.convert += t1 - t0;
        report.events += events.len() as u64;
        for ev in &events {
            // Archived events carry their node and id; the fallbacks only matter for
            // archives made by hand.
            builder.judge(hunt.rules, ev, "unknown", String::new, |a| {
                report.alerts.push(a)
            });
        }
        report.judge += t1.elapsed();
        if max_alerts > 0 && report.alerts.len() > max_alerts {
            return Err(HuntError::Limit(LimitError::TooManyRows(max_alerts)));
        }
        // Judging is CPU work between reads: let the runtime's timers (the timeout)
        // and other clients in.
        tokio::task::yield_now().await;
    }
    report
        .alerts
        .sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.uuid.cmp(&b.uuid)));
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Loads rules from YAML texts (name, text), as the detector loads files.
pub fn load_rules(
    texts: &[(&str, &str)],
    append_output: &str,
    min_priority: Option<lanner_engine::rules::Priority>,
) -> Result<Arc<Ruleset>, HuntError> {
    let mut l = lanner_engine::rules::Loader::new();
    l.append_output(append_output);
    if let Some(p) = min_priority {
        l.min_priority(p);
    }
    for (name, text) in texts {
        l.add_str(name, text);
    }
    match l.finish() {
        (Some(rs), _) => Ok(Arc::new(rs)),
        (None, report) => Err(HuntError::Rules(
            report
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-04T05:06:07Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn windows_parse_times_and_durations() {
        let w = Window::parse("2h", "", now()).expect("window");
        assert_eq!(w.until, now());
        assert_eq!((w.until - w.since).num_seconds(), 7200);
        let w = Window::parse("2026-03-01T00:00:00Z", "30m", now()).expect("window");
        assert_eq!(w.since.to_rfc3339(), "2026-03-01T00:00:00+00:00");
        assert_eq!((now() - w.until).num_seconds(), 1800);
        for (s, u) in [
            ("yesterday", ""),
            ("5w", ""),
            ("", ""),
            ("1h", "2h"),
            ("99999999999999999d", ""),
        ] {
            assert!(Window::parse(s, u, now()).is_err(), "{s} {u}");
        }
        let e = Window::parse("2h", "x", now()).expect_err("bad until");
        assert!(e.to_string().contains("until: \"x\""), "{e}");
    }
}
