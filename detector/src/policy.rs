//! Response policy: maps alerts (by rule name, tag or priority) to container actions
//! (pause, stop, kill) within a scope, and builds the requests the detector publishes
//! to `lanner.actions.<node>` for the enricher to carry out.
//!
//! ```yaml
//! - policy: kill shells in prod web containers
//!   action: kill                  # pause | stop | kill
//!   rules: [Terminal shell in container]
//!   tags: [T1059]                 # any of these tags
//!   priority: critical            # at least this severe
//!   scope:                        # every given key must hold
//!     container_labels: {app: web}
//!     images: [docker.io/library/nginx]
//!     namespaces: [prod]
//!   enabled: true
//! ```
//!
//! `rules`, `tags` and `priority` each narrow the match when given; at least one is
//! required. Only events inside a container can trigger an action. When several
//! policies match one alert, one request is made with the strongest action.

pub use lanner_contract::action::{Action, ActionRequest};
use lanner_contract::{Event, StoredField};

use lanner_engine::alert_json::AlertHead;
use lanner_engine::output::alert_id;
use lanner_engine::rules::Priority;
use lanner_engine::yaml::{self, Node};

/// One policy entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Name (for audit).
    pub name: String,
    /// What to do.
    pub action: Action,
    /// Rule names (empty: any).
    pub rules: Vec<String>,
    /// Tags, any of which must be on the rule (empty: any).
    pub tags: Vec<String>,
    /// Least severe priority that triggers it.
    pub priority: Option<Priority>,
    /// Container labels that must all match.
    pub labels: Vec<(String, String)>,
    /// Image repositories (empty: any).
    pub images: Vec<String>,
    /// Kubernetes namespaces (empty: any).
    pub namespaces: Vec<String>,
}

/// A loaded policy file.
#[derive(Clone, Debug, Default)]
pub struct PolicySet {
    policies: Vec<Policy>,
}

fn strings(n: Option<&Node>, key: &str) -> Result<Vec<String>, String> {
    let Some(n) = n else { return Ok(Vec::new()) };
    if let Some(s) = n.as_str() {
        return Ok(vec![s.to_owned()]);
    }
    n.as_seq()
        .ok_or_else(|| format!("'{key}' must be a list of strings"))?
        .iter()
        .map(|i| {
            i.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("'{key}' must be a list of strings"))
        })
        .collect()
}

impl PolicySet {
    /// The policies, in file order.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// Parses a policy file; errors name file, line and column.
    pub fn parse(name: &str, text: &str) -> Result<PolicySet, String> {
        let docs = yaml::parse(text)
            .map_err(|e| format!("{name}:{}: invalid YAML: {}", e.pos, e.message))?;
        let mut policies = Vec::new();
        for doc in docs.iter().filter(|d| !d.is_null()) {
            let items = doc.as_seq().ok_or_else(|| {
                format!(
                    "{name}:{}: a policy file is a sequence of policies",
                    doc.pos
                )
            })?;
            for item in items {
                let at = |m: String| format!("{name}:{}: {m}", item.pos);
                let get_str = |k: &str| item.get(k).and_then(Node::as_str).map(str::to_owned);
                let pname = get_str("policy")
                    .ok_or_else(|| at("each policy needs a 'policy' name".into()))?;
                let at = |m: String| format!("{name}:{}: policy '{pname}': {m}", item.pos);
                if let Some((k, _)) = item.as_map().unwrap_or(&[]).iter().find(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        Some(
                            "policy"
                                | "action"
                                | "rules"
                                | "tags"
                                | "priority"
                                | "scope"
                                | "enabled"
                        )
                    )
                }) {
                    return Err(at(format!("unknown key '{}'", k.as_str().unwrap_or("?"))));
                }
                if item.get("enabled").and_then(Node::as_bool) == Some(false) {
                    continue;
                }
                let action = match get_str("action").as_deref() {
                    Some("pause") => Action::Pause,
                    Some("stop") => Action::Stop,
                    Some("kill") => Action::Kill,
                    Some(other) => {
                        return Err(at(format!(
                            "unknown action '{other}' (pause, stop or kill)"
                        )));
                    }
                    None => return Err(at("missing 'action' (pause, stop or kill)".into())),
                };
                let rules = strings(item.get("rules"), "rules").map_err(at)?;
                let tags = strings(item.get("tags"), "tags").map_err(at)?;
                let priority = match get_str("priority") {
                    Some(p) => Some(
                        Priority::parse(&p).ok_or_else(|| at(format!("invalid priority '{p}'")))?,
                    ),
                    None => None,
                };
                if rules.is_empty() && tags.is_empty() && priority.is_none() {
                    return Err(at(
                        "give at least one of 'rules', 'tags' or 'priority'".into()
                    ));
                }
                let scope = item.get("scope");
                let mut labels = Vec::new();
                if let Some(l) = scope.and_then(|s| s.get("container_labels")) {
                    for (k, v) in l
                        .as_map()
                        .ok_or_else(|| at("'container_labels' must be a mapping".into()))?
                    {
                        match (k.as_str(), v.as_str()) {
                            (Some(k), Some(v)) => labels.push((k.to_owned(), v.to_owned())),
                            _ => {
                                return Err(at(
                                    "'container_labels' must map strings to strings".into()
                                ));
                            }
                        }
                    }
                }
                let images = strings(scope.and_then(|s| s.get("images")), "images").map_err(at)?;
                let namespaces =
                    strings(scope.and_then(|s| s.get("namespaces")), "namespaces").map_err(at)?;
                policies.push(Policy {
                    name: pname,
                    action,
                    rules,
                    tags,
                    priority,
                    labels,
                    images,
                    namespaces,
                });
            }
        }
        Ok(PolicySet { policies })
    }

    /// Loads a policy file.
    pub fn load(path: &std::path::Path) -> Result<PolicySet, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read policy file: {e}", path.display()))?;
        PolicySet::parse(&path.display().to_string(), &text)
    }

    /// The event fields [`PolicySet::decide`] reads.
    pub const STORED_FIELDS: &'static [StoredField] = &[
        StoredField::container_id,
        StoredField::container_image_repository,
        StoredField::k8s_ns_name,
        StoredField::container_labels,
        StoredField::container_name,
    ];

    /// The request for an alert, if a policy matches.
    pub fn decide(&self, alert: &AlertHead<'_>, ev: &Event, node: &str) -> Option<ActionRequest> {
        let container = ev
            .container_id
            .as_deref()
            .filter(|c| !c.is_empty() && *c != "host")?;
        let prio = Priority::parse(alert.priority)?;
        let best = self
            .policies
            .iter()
            .filter(|p| p.rules.is_empty() || p.rules.iter().any(|r| r == alert.rule))
            .filter(|p| p.tags.is_empty() || p.tags.iter().any(|t| alert.tags.contains(t)))
            .filter(|p| p.priority.is_none_or(|min| prio <= min))
            .filter(|p| {
                p.images.is_empty()
                    || ev
                        .container_image_repository
                        .as_deref()
                        .is_some_and(|i| p.images.iter().any(|x| x == i))
            })
            .filter(|p| {
                p.namespaces.is_empty()
                    || ev
                        .k8s_ns_name
                        .as_deref()
                        .is_some_and(|n| p.namespaces.iter().any(|x| x == n))
            })
            .filter(|p| {
                p.labels.iter().all(|(k, v)| {
                    ev.container_labels
                        .as_ref()
                        .and_then(|m| {
                            m.iter()
                                .find(|(mk, _)| mk.as_str() == k.as_str())
                                .map(|(_, mv)| mv.as_str() == v.as_str())
                        })
                        .unwrap_or(false)
                })
            })
            .max_by_key(|p| p.action)?;
        Some(ActionRequest {
            id: alert_id(&format!("action:{:?}", best.action), alert.uuid),
            action: best.action,
            policy: Some(best.name.clone()),
            node: Some(node.to_owned()),
            container_id: container.to_owned(),
            container_name: ev.container_name.as_deref().map(str::to_owned),
            image: ev.container_image_repository.as_deref().map(str::to_owned),
            rule: Some(alert.rule.to_owned()),
            priority: Some(alert.priority.to_owned()),
            alert_id: Some(alert.uuid.to_owned()),
            time: Some(alert.time.to_owned()),
            reason: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lanner_engine::output::Alert;

    const POLICY: &str = r#"
- policy: pause on any critical
  action: pause
  priority: critical
- policy: kill web shells
  action: kill
  rules: [Terminal shell in container]
  scope:
    container_labels: {app: web}
    namespaces: [prod]
- policy: off
  action: kill
  tags: [x]
  enabled: false
"#;

    fn alert(rule: &str, priority: &str, tags: &[&str]) -> Alert {
        Alert {
            uuid: "u1".into(),
            time: "t".into(),
            rule: rule.into(),
            priority: priority.into(),
            source: "syscall".into(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            hostname: "n".into(),
            output: String::new(),
            output_fields: Default::default(),
        }
    }

    fn ev(labels: &[(&str, &str)], ns: &str) -> Event {
        Event {
            container_id: Some("0123456789ab".into()),
            container_labels: Some(std::sync::Arc::new(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
            )),
            k8s_ns_name: Some(ns.into()),
            ..Default::default()
        }
    }

    #[test]
    fn matching_and_scope() {
        let p = PolicySet::parse("p.yaml", POLICY).expect("parses");
        assert_eq!(p.policies().len(), 2);
        let shell = alert("Terminal shell in container", "Notice", &["shell"]);
        let r = p
            .decide(&shell.head(), &ev(&[("app", "web")], "prod"), "node1")
            .expect("matches");
        assert_eq!(
            (r.action, r.policy.as_deref(), r.container_id.as_str()),
            (Action::Kill, Some("kill web shells"), "0123456789ab")
        );
        assert!(
            p.decide(&shell.head(), &ev(&[("app", "db")], "prod"), "n")
                .is_none(),
            "label scope"
        );
        assert!(
            p.decide(&shell.head(), &ev(&[("app", "web")], "dev"), "n")
                .is_none(),
            "namespace scope"
        );
        let crit = alert("Other", "Critical", &[]);
        assert_eq!(
            p.decide(&crit.head(), &ev(&[], "dev"), "n")
                .expect("critical")
                .action,
            Action::Pause
        );
        assert!(
            p.decide(&alert("Other", "Warning", &[]).head(), &ev(&[], "dev"), "n")
                .is_none()
        );
        let mut host = ev(&[], "dev");
        host.container_id = Some("host".into());
        assert!(
            p.decide(&crit.head(), &host, "n").is_none(),
            "no container, no action"
        );
        let both = alert("Terminal shell in container", "Critical", &[]);
        assert_eq!(
            p.decide(&both.head(), &ev(&[("app", "web")], "prod"), "n")
                .expect("both")
                .action,
            Action::Kill,
            "strongest wins"
        );
        assert_eq!(
            p.decide(&both.head(), &ev(&[("app", "web")], "prod"), "n"),
            p.decide(&both.head(), &ev(&[("app", "web")], "prod"), "n"),
            "deterministic id"
        );
    }

    #[test]
    fn errors_are_clear() {
        assert!(
            PolicySet::parse(
                "p.yaml",
                "- policy: x\n  action: explode\n  priority: info\n"
            )
            .expect_err("bad")
            .contains("p.yaml:1:3: policy 'x': unknown action 'explode'")
        );
        assert!(
            PolicySet::parse("p.yaml", "- policy: x\n  action: kill\n")
                .expect_err("bad")
                .contains("at least one of")
        );
        assert!(
            PolicySet::parse(
                "p.yaml",
                "- policy: x\n  action: kill\n  priority: info\n  scoop: {}\n"
            )
            .expect_err("bad")
            .contains("unknown key 'scoop'")
        );
        assert!(
            PolicySet::parse("p.yaml", "- action: kill\n")
                .expect_err("bad")
                .contains("'policy' name")
        );
    }
}
