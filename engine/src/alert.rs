//! Turning matches into alerts: Falco's JSON output shape with a deterministic id.

use lanner_contract::{Event, Timestamp};

use crate::alert_json::AlertHead;
use crate::output::{Alert, alert_id};
use crate::rules::{Matching, Rule, Ruleset};

/// Builds alerts for the rules an event matches.
#[derive(Debug, Clone, Copy)]
pub struct AlertBuilder {
    matching: Matching,
}

/// `HH:MM:SS.nnnnnnnnn` in UTC, as Falco prints `%evt.time`, out of the RFC 3339 time.
fn clock(rfc: &str) -> &str {
    // 2026-01-01T12:34:56.123456789Z
    rfc.get(11..29).unwrap_or(rfc)
}

impl AlertBuilder {
    /// A builder with the given matching mode.
    pub fn new(matching: Matching) -> Self {
        AlertBuilder { matching }
    }

    /// The alert for one rule and event. `node` is used when the event has no
    /// `evt.hostname`; `fallback_id` when it has no `evt.id`.
    pub fn alert(
        rule: &Rule,
        ev: &Event,
        node: &str,
        fallback_id: impl FnOnce() -> String,
    ) -> Alert {
        let t = ev.evt_time.unwrap_or_else(Timestamp::now);
        let event_id = match ev.evt_id.as_deref() {
            Some(id) => id.to_owned(),
            None => fallback_id(),
        };
        let rendered = rule.output.render(ev);
        let time = t.to_rfc3339();
        Alert {
            uuid: alert_id(&rule.name, &event_id),
            output: format!("{}: {} {}", clock(&time), rule.priority.as_str(), rendered),
            time,
            rule: rule.name.clone(),
            priority: rule.priority.as_str().to_owned(),
            source: "syscall".to_owned(),
            tags: rule.tags.clone(),
            hostname: ev.evt_hostname.as_deref().unwrap_or(node).to_owned(),
            output_fields: rule.output.output_fields(ev),
        }
    }

    /// Judges events and writes their alerts as JSON (counted in `n`), as the service
    /// does; for benchmarks and tools.
    pub fn judge_all(&self, rules: &Ruleset, events: &[Event], n: &mut usize) {
        let mut buf = String::new();
        for (i, ev) in events.iter().enumerate() {
            self.judge_json(
                rules,
                ev,
                "node",
                || i.to_string(),
                &mut buf,
                |_, json| {
                    *n += json.len().min(1);
                },
            );
        }
    }

    /// Judges an event and calls `emit` with each alert's head and JSON, written
    /// straight into `buf` (reused from one alert to the next; see
    /// [`crate::alert_json`]). The JSON is what serialising [`AlertBuilder::judge`]'s
    /// alert gives, for a fraction of the cost.
    pub fn judge_json(
        &self,
        rules: &Ruleset,
        ev: &Event,
        node: &str,
        fallback_id: impl Fn() -> String,
        buf: &mut String,
        mut emit: impl FnMut(AlertHead<'_>, &str),
    ) {
        rules.judge(ev, self.matching, |rule| {
            let (uuid, time) = crate::alert_json::write(rule, ev, node, &fallback_id, buf);
            emit(
                AlertHead {
                    uuid: &uuid,
                    time: &time,
                    rule: &rule.name,
                    priority: rule.priority.as_str(),
                    tags: &rule.tags,
                },
                buf,
            )
        });
    }

    /// Judges an event and calls `emit` with each alert.
    pub fn judge(
        &self,
        rules: &Ruleset,
        ev: &Event,
        node: &str,
        fallback_id: impl Fn() -> String,
        mut emit: impl FnMut(Alert),
    ) {
        rules.judge(ev, self.matching, |rule| {
            emit(Self::alert(rule, ev, node, &fallback_id))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Loader;

    #[test]
    fn alert_has_falco_shape() {
        let mut l = Loader::new();
        l.append_output("container_id=%container.id");
        l.add_str("t.yaml", "- rule: Shell\n  desc: d\n  condition: evt.type = execve and proc.name = bash\n  output: Shell run (user=%user.name tty=%proc.tty)\n  priority: NOTICE\n  tags: [shell, T1059]\n");
        let (rs, report) = l.finish();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let rs = rs.expect("ruleset");
        let ev = Event {
            evt_id: Some("abc-1".into()),
            evt_time: Timestamp::parse_rfc3339("2026-01-02T03:04:05.123456789Z"),
            evt_type: Some("execve".into()),
            evt_hostname: Some("node1".into()),
            proc_name: Some("bash".into()),
            user_name: Some("root".into()),
            container_id: Some("0123456789ab".into()),
            ..Default::default()
        };
        let mut alerts = Vec::new();
        AlertBuilder::new(Matching::All).judge(&rs, &ev, "n", || "x".into(), |a| alerts.push(a));
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(a.rule, "Shell");
        assert_eq!(a.priority, "Notice");
        assert_eq!(a.time, "2026-01-02T03:04:05.123456789Z");
        assert_eq!(a.hostname, "node1");
        assert_eq!(
            a.output,
            "03:04:05.123456789: Notice Shell run (user=root tty=<NA>) container_id=0123456789ab"
        );
        assert_eq!(a.output_fields["proc.tty"], serde_json::Value::Null);
        assert_eq!(a.output_fields["container.id"], "0123456789ab");
        assert_eq!(a.tags, vec!["shell".to_string(), "T1059".to_string()]);
        assert_eq!(a.uuid, crate::output::alert_id("Shell", "abc-1"));
        let json: serde_json::Value = serde_json::to_value(a).expect("json");
        for k in [
            "time",
            "rule",
            "priority",
            "source",
            "tags",
            "hostname",
            "output",
            "output_fields",
            "uuid",
        ] {
            assert!(json.get(k).is_some(), "{k}");
        }
    }
}
