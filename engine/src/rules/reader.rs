//! Reading rule files into the collection: `list`, `macro` and `rule` items with
//! `append` and `override`, `exceptions`, `required_engine_version` and
//! `required_plugin_versions`, as Falco's rule loader does.
//!
//! Redefining an item replaces it in place; `append: true` (or `override` with
//! `append`) extends list items, macro and rule conditions (joined with a space), rule
//! outputs, descriptions, tags and exceptions (values of a same-named exception are
//! added); `override` with `replace` swaps a key's value. A rule item with only
//! `enabled` switches an existing rule on or off. Unknown top-level items and unknown
//! keys are warnings.

use std::collections::HashMap;
use std::sync::Arc;

use super::{FileStats, Loc, Priority, Problem, Report};
use crate::yaml::{self, Node, NodeKind, Pos};

/// The Falco rules engine version lanner implements (for `required_engine_version`).
pub const ENGINE_VERSION: &str = "0.57.0";

#[derive(Clone, Debug)]
pub(super) struct ListInfo {
    pub name: String,
    pub items: Vec<String>,
    pub index: usize,
    pub visibility: usize,
}

#[derive(Clone, Debug)]
pub(super) struct MacroInfo {
    pub name: String,
    pub cond: String,
    pub cond_loc: Loc,
    pub index: usize,
    pub visibility: usize,
}

/// One exception value: a string or a list of strings.
#[derive(Clone, Debug)]
pub(super) enum ExVal {
    Item(String),
    List(Vec<String>),
}

#[derive(Clone, Debug)]
pub(super) struct ExceptionInfo {
    pub name: String,
    /// Field names; `fields_list` says whether they were given as a list.
    pub fields: Vec<String>,
    pub fields_list: bool,
    pub comps: Vec<String>,
    /// One entry per value: for single-field exceptions one item, else a tuple.
    pub values: Vec<Vec<ExVal>>,
}

#[derive(Clone, Debug)]
pub(super) struct RuleInfo {
    pub name: String,
    pub cond: String,
    pub cond_loc: Loc,
    pub output: String,
    pub desc: String,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub enabled: bool,
    pub source: String,
    pub exceptions: Vec<ExceptionInfo>,
    pub skip_unknown: bool,
    pub loc: Loc,
}

#[derive(Default)]
pub(super) struct Collector {
    pub lists: Vec<ListInfo>,
    pub macros: Vec<MacroInfo>,
    pub rules: Vec<RuleInfo>,
    list_ix: HashMap<String, usize>,
    macro_ix: HashMap<String, usize>,
    rule_ix: HashMap<String, usize>,
    counter: usize,
}

type R<T> = Result<T, String>;

fn scalar(n: &Node, key: &str) -> R<String> {
    n.as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("'{key}' must be a string, found {}", n.type_name()))
}

fn string_list(n: &Node, key: &str) -> R<Vec<String>> {
    if n.is_null() {
        return Ok(Vec::new());
    }
    let seq = n
        .as_seq()
        .ok_or_else(|| format!("'{key}' must be a sequence, found {}", n.type_name()))?;
    seq.iter().map(|i| scalar(i, key)).collect()
}

fn boolean(n: &Node, key: &str) -> R<bool> {
    n.as_bool()
        .ok_or_else(|| format!("'{key}' must be true or false"))
}

fn parse_version(s: &str) -> Option<(u64, u64, u64)> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Some((0, n, 0));
    }
    let mut it = s.split('.').map(|p| p.parse::<u64>().ok());
    let v = (
        it.next()??,
        it.next().unwrap_or(Some(0))?,
        it.next().unwrap_or(Some(0))?,
    );
    Some(v)
}

struct Item<'a> {
    node: &'a Node,
    loc: Loc,
    what: String,
}

impl Item<'_> {
    fn get(&self, key: &str) -> Option<&Node> {
        self.node.get(key)
    }

    fn keys(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.node
            .as_map()
            .unwrap_or(&[])
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?, v)))
    }

    fn loc_of(&self, key: &str) -> Loc {
        let pos = self.get(key).map(|n| n.pos).unwrap_or(self.loc.pos);
        Loc {
            file: self.loc.file.clone(),
            pos,
        }
    }
}

/// Reads one file into `col`, recording problems in `report`.
pub(super) fn read_file(
    col: &mut Collector,
    name: &str,
    text: &str,
    report: &mut Report,
) -> FileStats {
    let file: Arc<str> = name.into();
    let mut stats = FileStats {
        file: name.to_owned(),
        ..Default::default()
    };
    let problem = |pos: Pos, item: Option<String>, message: String| Problem {
        loc: Loc {
            file: file.clone(),
            pos,
        },
        item,
        message,
    };
    let docs = match yaml::parse(text) {
        Ok(d) => d,
        Err(e) => {
            report
                .errors
                .push(problem(e.pos, None, format!("invalid YAML: {}", e.message)));
            return stats;
        }
    };
    for doc in &docs {
        if doc.is_null() {
            continue;
        }
        let Some(items) = doc.as_seq() else {
            report.errors.push(problem(
                doc.pos,
                None,
                format!(
                    "rules content must be a sequence of items, found {}",
                    doc.type_name()
                ),
            ));
            continue;
        };
        for node in items {
            let Some(map) = node.as_map() else {
                report.errors.push(problem(
                    node.pos,
                    None,
                    format!("each item must be a mapping, found {}", node.type_name()),
                ));
                continue;
            };
            let kind = [
                "rule",
                "macro",
                "list",
                "required_engine_version",
                "required_plugin_versions",
            ]
            .into_iter()
            .find(|k| node.get(k).is_some());
            let Some(kind) = kind else {
                let first = map.first().and_then(|(k, _)| k.as_str()).unwrap_or("?");
                report.warnings.push(problem(
                    node.pos,
                    None,
                    format!("unknown top level item '{first}', ignored"),
                ));
                continue;
            };
            let name_text = node
                .get(kind)
                .and_then(Node::as_str)
                .unwrap_or("")
                .to_owned();
            let item = Item {
                node,
                loc: Loc {
                    file: file.clone(),
                    pos: node.pos,
                },
                what: match kind {
                    "rule" | "macro" | "list" => format!("{kind} '{name_text}'"),
                    other => other.to_owned(),
                },
            };
            let res = match kind {
                "required_engine_version" => engine_version(&item),
                "required_plugin_versions" => plugin_versions(&item),
                "list" => col
                    .list(&item)
                    .map(|defined| stats.lists += defined as usize),
                "macro" => col
                    .macro_(&item)
                    .map(|defined| stats.macros += defined as usize),
                _ => col
                    .rule(&item, report)
                    .map(|defined| stats.rules += defined as usize),
            };
            if let Err(message) = res {
                report.errors.push(Problem {
                    loc: item.loc.clone(),
                    item: Some(item.what.clone()),
                    message,
                });
            }
            // Unknown keys
            let known: &[&str] = match kind {
                "list" => &["list", "items", "append", "override"],
                "macro" => &["macro", "condition", "append", "override"],
                "rule" => &[
                    "rule",
                    "desc",
                    "condition",
                    "output",
                    "priority",
                    "tags",
                    "enabled",
                    "source",
                    "exceptions",
                    "append",
                    "override",
                    "skip-if-unknown-filter",
                    "warn_evttypes",
                    "capture",
                    "capture_duration",
                ],
                _ => &[kind],
            };
            for (k, v) in item.keys() {
                if !known.contains(&k) {
                    report.warnings.push(problem(
                        v.pos,
                        Some(item.what.clone()),
                        format!("unknown key '{k}', ignored"),
                    ));
                }
            }
        }
    }
    stats
}

fn engine_version(item: &Item<'_>) -> R<()> {
    let n = item.get("required_engine_version").ok_or("missing value")?;
    let text = scalar(n, "required_engine_version")?;
    let want =
        parse_version(&text).ok_or_else(|| format!("invalid required_engine_version '{text}'"))?;
    let have = parse_version(ENGINE_VERSION).unwrap_or_default();
    if want > have {
        return Err(format!(
            "rules require engine version {text}, but lanner implements {ENGINE_VERSION}"
        ));
    }
    Ok(())
}

fn plugin_versions(item: &Item<'_>) -> R<()> {
    let n = item
        .get("required_plugin_versions")
        .ok_or("missing value")?;
    let seq = n
        .as_seq()
        .ok_or("required_plugin_versions must be a sequence")?;
    for p in seq {
        let name = p
            .get("name")
            .and_then(Node::as_str)
            .ok_or("each required plugin needs a 'name'")?;
        let version = p
            .get("version")
            .and_then(Node::as_str)
            .ok_or_else(|| format!("required plugin '{name}' needs a 'version'"))?;
        parse_version(version)
            .ok_or_else(|| format!("invalid required version '{version}' for plugin '{name}'"))?;
    }
    Ok(())
}

/// `override` entries: key → true for append, false for replace.
fn overrides(
    item: &Item<'_>,
    append_ok: &[&str],
    replace_ok: &[&str],
    name_key: &str,
) -> R<Option<Vec<(String, bool)>>> {
    let Some(ov) = item.get("override") else {
        return Ok(None);
    };
    if item.get("append").and_then(Node::as_bool) == Some(true) {
        return Err("keys 'append' and 'override' cannot be used together".into());
    }
    let map = ov
        .as_map()
        .ok_or("'override' must be a mapping of key: append|replace")?;
    let mut out = Vec::new();
    for (k, v) in map {
        let key = scalar(k, "override")?;
        let how = scalar(v, "override")?;
        let append = match how.as_str() {
            "append" => true,
            "replace" => false,
            other => {
                return Err(format!(
                    "override of '{key}' must be 'append' or 'replace', not '{other}'"
                ));
            }
        };
        let allowed = if append { append_ok } else { replace_ok };
        if !allowed.contains(&key.as_str()) {
            return Err(format!("key '{key}' cannot be overridden with '{how}'"));
        }
        if item.get(&key).is_none() {
            return Err(format!(
                "key '{key}' is in 'override' but not defined in the item"
            ));
        }
        out.push((key, append));
    }
    for (k, _) in item.keys() {
        if k != name_key && k != "override" && !out.iter().any(|(o, _)| o == k) {
            return Err(format!(
                "key '{k}' must be listed in 'override' (append or replace)"
            ));
        }
    }
    Ok(Some(out))
}

impl Collector {
    fn next(&mut self) -> usize {
        self.counter += 1;
        self.counter
    }

    /// Returns true when the item defined (rather than updated) a list.
    fn list(&mut self, item: &Item<'_>) -> R<bool> {
        let name = scalar(item.get("list").ok_or("missing name")?, "list")?;
        let items = match item.get("items") {
            Some(n) => string_list(n, "items")?,
            None => return Err("item has no mapping for key 'items'".into()),
        };
        let ov = overrides(item, &["items"], &["items"], "list")?;
        let append = item
            .get("append")
            .map(|n| boolean(n, "append"))
            .transpose()?
            .unwrap_or(false)
            || ov.as_ref().is_some_and(|o| o.iter().any(|(_, a)| *a));
        let id = self.next();
        match (self.list_ix.get(&name).copied(), append || ov.is_some()) {
            (Some(i), true) => {
                let l = &mut self.lists[i];
                if append {
                    l.items.extend(items);
                } else {
                    l.items = items;
                }
                l.visibility = id;
                Ok(false)
            }
            (None, true) => Err(format!(
                "list has '{}' but no list by that name already exists",
                if append { "append" } else { "override" }
            )),
            (Some(i), false) => {
                let l = &mut self.lists[i];
                l.items = items;
                l.visibility = id;
                Ok(true)
            }
            (None, false) => {
                self.list_ix.insert(name.clone(), self.lists.len());
                self.lists.push(ListInfo {
                    name,
                    items,
                    index: id,
                    visibility: id,
                });
                Ok(true)
            }
        }
    }

    fn macro_(&mut self, item: &Item<'_>) -> R<bool> {
        let name = scalar(item.get("macro").ok_or("missing name")?, "macro")?;
        let cond = scalar(
            item.get("condition")
                .ok_or("item has no mapping for key 'condition'")?,
            "condition",
        )?;
        let cond_loc = item.loc_of("condition");
        let ov = overrides(item, &["condition"], &["condition"], "macro")?;
        let append = item
            .get("append")
            .map(|n| boolean(n, "append"))
            .transpose()?
            .unwrap_or(false)
            || ov.as_ref().is_some_and(|o| o.iter().any(|(_, a)| *a));
        let id = self.next();
        match (self.macro_ix.get(&name).copied(), append || ov.is_some()) {
            (Some(i), true) => {
                let m = &mut self.macros[i];
                if append {
                    m.cond.push(' ');
                    m.cond.push_str(&cond);
                } else {
                    m.cond = cond;
                    m.cond_loc = cond_loc;
                }
                m.visibility = id;
                Ok(false)
            }
            (None, true) => Err(format!(
                "macro has '{}' but no macro by that name already exists",
                if append { "append" } else { "override" }
            )),
            (Some(i), false) => {
                let m = &mut self.macros[i];
                m.cond = cond;
                m.cond_loc = cond_loc;
                m.visibility = id;
                Ok(true)
            }
            (None, false) => {
                self.macro_ix.insert(name.clone(), self.macros.len());
                self.macros.push(MacroInfo {
                    name,
                    cond,
                    cond_loc,
                    index: id,
                    visibility: id,
                });
                Ok(true)
            }
        }
    }

    fn rule(&mut self, item: &Item<'_>, report: &mut Report) -> R<bool> {
        let name = scalar(item.get("rule").ok_or("missing name")?, "rule")?;
        const APPENDABLE: &[&str] = &["condition", "output", "desc", "tags", "exceptions"];
        const REPLACEABLE: &[&str] = &[
            "condition",
            "output",
            "desc",
            "tags",
            "exceptions",
            "priority",
            "enabled",
            "warn_evttypes",
            "capture",
            "capture_duration",
            "skip-if-unknown-filter",
        ];
        let ov = overrides(item, APPENDABLE, REPLACEABLE, "rule")?;
        let append = item
            .get("append")
            .map(|n| boolean(n, "append"))
            .transpose()?
            .unwrap_or(false);
        let exceptions = match item.get("exceptions") {
            Some(n) => Some(parse_exceptions(n)?),
            None => None,
        };
        if append || ov.is_some() {
            let i = *self.rule_ix.get(&name).ok_or_else(|| {
                format!(
                    "rule has '{}' but no rule by that name already exists",
                    if append { "append" } else { "override" }
                )
            })?;
            let plan: Vec<(String, bool)> = match ov {
                Some(o) => o,
                None => {
                    let keys: Vec<(String, bool)> = item
                        .keys()
                        .filter(|(k, _)| APPENDABLE.contains(k))
                        .map(|(k, _)| (k.to_owned(), true))
                        .collect();
                    if keys.is_empty() {
                        return Err(
                            "appended rule must have exceptions or condition property".into()
                        );
                    }
                    keys
                }
            };
            let cond_loc = item.loc_of("condition");
            let r = &mut self.rules[i];
            for (key, app) in plan {
                let n = item.get(&key).ok_or("internal: key vanished")?;
                apply(r, &key, n, app, exceptions.as_deref(), &cond_loc)?;
            }
            return Ok(false);
        }
        if item.get("condition").is_none() && item.get("enabled").is_some() {
            let i = *self
                .rule_ix
                .get(&name)
                .ok_or("rule has 'enabled' key but no rule by that name already exists")?;
            self.rules[i].enabled = boolean(item.get("enabled").ok_or("enabled")?, "enabled")?;
            return Ok(false);
        }
        let req = |k: &str| {
            item.get(k)
                .ok_or_else(|| format!("item has no mapping for key '{k}'"))
        };
        let cond = scalar(req("condition")?, "condition")?;
        let output = scalar(req("output")?, "output")?;
        let desc = scalar(req("desc")?, "desc")?;
        let prio_text = scalar(req("priority")?, "priority")?;
        let priority =
            Priority::parse(&prio_text).ok_or_else(|| format!("invalid priority '{prio_text}'"))?;
        let tags = item
            .get("tags")
            .map(|n| string_list(n, "tags"))
            .transpose()?
            .unwrap_or_default();
        let enabled = item
            .get("enabled")
            .map(|n| boolean(n, "enabled"))
            .transpose()?
            .unwrap_or(true);
        let source = item
            .get("source")
            .map(|n| scalar(n, "source"))
            .transpose()?
            .unwrap_or_else(|| "syscall".into());
        let skip_unknown = item
            .get("skip-if-unknown-filter")
            .map(|n| boolean(n, "skip-if-unknown-filter"))
            .transpose()?
            .unwrap_or(false);
        let mut exceptions = exceptions.unwrap_or_default();
        for ex in &mut exceptions {
            validate_exception(ex)?;
        }
        let info = RuleInfo {
            name: name.clone(),
            cond,
            cond_loc: item.loc_of("condition"),
            output: output.trim().to_owned(),
            desc,
            priority,
            tags,
            enabled,
            source,
            exceptions,
            skip_unknown,
            loc: item.loc.clone(),
        };
        let _ = report;
        let _ = self.next();
        match self.rule_ix.get(&name) {
            Some(&i) => {
                if self.rules[i].source != info.source {
                    return Err("rule has been re-defined with a different source".into());
                }
                self.rules[i] = info;
            }
            None => {
                self.rule_ix.insert(name, self.rules.len());
                self.rules.push(info);
            }
        }
        Ok(true)
    }
}

fn apply(
    r: &mut RuleInfo,
    key: &str,
    n: &Node,
    append: bool,
    exceptions: Option<&[ExceptionInfo]>,
    cond_loc: &Loc,
) -> R<()> {
    let join = |dst: &mut String, v: String| {
        if append {
            if !v.is_empty() {
                dst.push(' ');
                dst.push_str(&v);
            }
        } else {
            *dst = v;
        }
    };
    match key {
        "condition" => {
            join(&mut r.cond, scalar(n, key)?);
            if !append {
                r.cond_loc = cond_loc.clone();
            }
        }
        "output" => join(&mut r.output, scalar(n, key)?.trim().to_owned()),
        "desc" => join(&mut r.desc, scalar(n, key)?),
        "tags" => {
            let tags = string_list(n, key)?;
            if append {
                for t in tags {
                    if !r.tags.contains(&t) {
                        r.tags.push(t);
                    }
                }
            } else {
                r.tags = tags;
            }
        }
        "exceptions" => {
            let new = exceptions.unwrap_or_default();
            if append {
                for ex in new {
                    match r.exceptions.iter_mut().find(|e| e.name == ex.name) {
                        Some(prev) => {
                            if !ex.fields.is_empty() {
                                return Err(format!(
                                    "exception '{}': can not append exception fields to existing exception, only values",
                                    ex.name
                                ));
                            }
                            if !ex.comps.is_empty() {
                                return Err(format!(
                                    "exception '{}': can not append exception comps to existing exception, only values",
                                    ex.name
                                ));
                            }
                            prev.values.extend(ex.values.iter().cloned());
                        }
                        None => {
                            if ex.values.is_empty() {
                                return Err(format!(
                                    "exception '{}' must have values property with a list of values",
                                    ex.name
                                ));
                            }
                            let mut ex = ex.clone();
                            validate_exception(&mut ex)?;
                            r.exceptions.push(ex);
                        }
                    }
                }
            } else {
                let mut v = new.to_vec();
                for ex in &mut v {
                    validate_exception(ex)?;
                }
                r.exceptions = v;
            }
        }
        "priority" => {
            let t = scalar(n, key)?;
            r.priority = Priority::parse(&t).ok_or_else(|| format!("invalid priority '{t}'"))?;
        }
        "enabled" => r.enabled = boolean(n, key)?,
        "skip-if-unknown-filter" => r.skip_unknown = boolean(n, key)?,
        _ => {}
    }
    Ok(())
}

fn parse_exceptions(n: &Node) -> R<Vec<ExceptionInfo>> {
    let seq = n.as_seq().ok_or("'exceptions' must be a sequence")?;
    let mut out = Vec::new();
    for e in seq {
        let name = e
            .get("name")
            .and_then(Node::as_str)
            .ok_or("exception item must have a 'name'")?
            .to_owned();
        let ctx = |m: String| format!("exception '{name}': {m}");
        let (fields, fields_list) = match e.get("fields") {
            None => (Vec::new(), false),
            Some(f) if f.as_seq().is_some() => (string_list(f, "fields").map_err(ctx)?, true),
            Some(f) => (vec![scalar(f, "fields").map_err(ctx)?], false),
        };
        let comps = match e.get("comps") {
            None => Vec::new(),
            Some(c) if c.as_seq().is_some() => string_list(c, "comps").map_err(ctx)?,
            Some(c) => vec![scalar(c, "comps").map_err(ctx)?],
        };
        let mut values = Vec::new();
        if let Some(v) = e.get("values") {
            let vs = if v.is_null() {
                &[][..]
            } else {
                v.as_seq()
                    .ok_or_else(|| ctx("'values' must be a sequence".into()))?
            };
            for val in vs {
                let tuple = match &val.kind {
                    NodeKind::Scalar { text, .. } => vec![ExVal::Item(text.clone())],
                    NodeKind::Seq(items) => items
                        .iter()
                        .map(|i| match &i.kind {
                            NodeKind::Scalar { text, .. } => Ok(ExVal::Item(text.clone())),
                            NodeKind::Seq(_) => string_list(i, "values").map(ExVal::List),
                            NodeKind::Map(_) => {
                                Err("exception values must be strings or lists of strings"
                                    .to_owned())
                            }
                        })
                        .collect::<R<Vec<_>>>()
                        .map_err(ctx)?,
                    NodeKind::Map(_) => {
                        return Err(ctx("exception values must be strings or lists".into()));
                    }
                };
                values.push(tuple);
            }
        }
        out.push(ExceptionInfo {
            name,
            fields,
            fields_list,
            comps,
            values,
        });
    }
    Ok(out)
}

fn validate_exception(ex: &mut ExceptionInfo) -> R<()> {
    let ctx = |m: &str| format!("exception '{}': {m}", ex.name);
    if ex.fields.is_empty() {
        return Err(ctx(
            "rule exception item must have fields property with a list of fields",
        ));
    }
    if ex.fields_list {
        if ex.comps.is_empty() {
            ex.comps = vec!["=".into(); ex.fields.len()];
        }
        if ex.comps.len() != ex.fields.len() {
            return Err(ctx("fields and comps lists must have equal length"));
        }
        for c in &ex.comps {
            if crate::condition::Op::from_name(c).is_none() {
                return Err(ctx(&format!(
                    "'{c}' is not a supported comparison operator"
                )));
            }
        }
        for v in &ex.values {
            if v.len() != ex.fields.len() {
                return Err(ctx("fields and values lists must have equal length"));
            }
        }
    } else {
        if ex.comps.is_empty() {
            ex.comps = vec!["in".into()];
        }
        if ex.comps.len() != 1 || !matches!(ex.comps[0].as_str(), "in" | "pmatch" | "intersects") {
            return Err(ctx(
                "when fields is a single value, comps must be one of (in, pmatch, intersects)",
            ));
        }
        for v in &ex.values {
            if v.len() != 1 || matches!(v[0], ExVal::List(_)) {
                return Err(ctx("expected values array to contain a list of strings"));
            }
        }
    }
    Ok(())
}
