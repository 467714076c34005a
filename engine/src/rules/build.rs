//! Compiling the collection: list expansion (a list sees earlier lists), macro parsing
//! and visibility (a macro sees earlier macros and every list), rule conditions with
//! exceptions folded in as Falco builds them, field resolution and outputs.

use std::collections::{BTreeSet, HashMap};

use super::reader::{Collector, ExVal, ExceptionInfo, RuleInfo};
use super::{DisabledReason, DisabledRule, Loc, Problem, Report, Rule};
use crate::compile::{self, Scope};
use crate::condition::{self, Expr, Op, line_col};
use crate::output::OutputFormat;

fn needs_quotes(v: &str) -> bool {
    v.is_empty()
        || v.chars()
            .any(|c| c.is_whitespace() || matches!(c, '(' | ')' | ',' | '=' | '"' | '\''))
}

/// Quotes a value for a condition unless it is already quoted (as Falco's `quote_item`,
/// but escaping embedded quotes so any value round-trips).
fn quote_item(v: &str) -> String {
    if v.starts_with('"') || v.starts_with('\'') || !needs_quotes(v) {
        return v.to_owned();
    }
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The rule condition with its exceptions: `(cond) and not (...) and not (...)`.
fn with_exceptions(cond: &str, exceptions: &[ExceptionInfo]) -> String {
    let mut out = format!("({cond})");
    for ex in exceptions {
        let icond = if !ex.fields_list {
            let vals: Vec<String> = ex
                .values
                .iter()
                .filter_map(|t| match t.first() {
                    Some(ExVal::Item(s)) => Some(quote_item(s)),
                    _ => None,
                })
                .collect();
            if vals.is_empty() {
                String::new()
            } else {
                format!("({} {} ({}))", ex.fields[0], ex.comps[0], vals.join(", "))
            }
        } else {
            let tuples: Vec<String> = ex
                .values
                .iter()
                .map(|tuple| {
                    let checks: Vec<String> = ex
                        .fields
                        .iter()
                        .zip(&ex.comps)
                        .zip(tuple)
                        .map(|((f, c), v)| {
                            let val = match v {
                                ExVal::List(items) => {
                                    format!(
                                        "({})",
                                        items
                                            .iter()
                                            .map(|i| quote_item(i))
                                            .collect::<Vec<_>>()
                                            .join(", ")
                                    )
                                }
                                ExVal::Item(s) if Op::from_name(c).is_some_and(Op::is_list_op) => {
                                    if s.starts_with('(') {
                                        s.clone()
                                    } else {
                                        format!("({s})")
                                    }
                                }
                                ExVal::Item(s) => quote_item(s),
                            };
                            format!("{f} {c} {val}")
                        })
                        .collect();
                    format!("({})", checks.join(" and "))
                })
                .collect();
            if tuples.is_empty() {
                String::new()
            } else {
                format!("({})", tuples.join(" or "))
            }
        };
        if !icond.is_empty() {
            out.push_str(" and not ");
            out.push_str(&icond);
        }
    }
    out
}

fn macro_refs(e: &Expr, out: &mut Vec<(String, usize)>) {
    match e {
        Expr::And(v) | Expr::Or(v) => v.iter().for_each(|c| macro_refs(c, out)),
        Expr::Not(c) => macro_refs(c, out),
        Expr::Macro { name, at } => out.push((name.clone(), *at)),
        Expr::Check { .. } => {}
    }
}

fn cond_problem(loc: &Loc, item: String, cond: &str, at: usize, message: &str) -> Problem {
    let (l, c) = line_col(cond, at);
    Problem {
        loc: loc.clone(),
        item: Some(item),
        message: format!("condition at {l}:{c}: {message}"),
    }
}

/// Compiles the collection; returns the enabled rules, records problems in `report`.
pub(super) fn build(col: &Collector, report: &mut Report, append_output: &str) -> Vec<Rule> {
    // Lists: items naming an earlier list are replaced by its items.
    let mut lists: HashMap<&str, Vec<String>> = HashMap::new();
    let by_name: HashMap<&str, &super::reader::ListInfo> =
        col.lists.iter().map(|l| (l.name.as_str(), l)).collect();
    let mut ordered: Vec<&super::reader::ListInfo> = col.lists.iter().collect();
    ordered.sort_by_key(|l| l.index);
    for l in ordered {
        let mut items = Vec::new();
        for it in &l.items {
            match by_name.get(it.as_str()) {
                Some(r) if r.index < l.visibility && r.name != l.name => {
                    match lists.get(r.name.as_str()) {
                        Some(done) => items.extend(done.iter().cloned()),
                        None => items.extend(r.items.iter().cloned()),
                    }
                }
                _ => items.push(it.clone()),
            }
        }
        lists.insert(l.name.as_str(), items);
    }

    // Macros: parse, then check visibility of the macros each one uses.
    let mut parsed: HashMap<&str, Expr> = HashMap::new();
    for m in &col.macros {
        match condition::parse(&m.cond) {
            Ok(e) => {
                parsed.insert(m.name.as_str(), e);
            }
            Err(e) => report.errors.push(cond_problem(
                &m.cond_loc,
                format!("macro '{}'", m.name),
                &m.cond,
                e.at,
                &e.message,
            )),
        }
    }
    let macro_index: HashMap<&str, usize> = col
        .macros
        .iter()
        .map(|m| (m.name.as_str(), m.index))
        .collect();
    for m in &col.macros {
        let Some(e) = parsed.get(m.name.as_str()) else {
            continue;
        };
        let mut refs = Vec::new();
        macro_refs(e, &mut refs);
        for (r, at) in refs {
            if !macro_index
                .get(r.as_str())
                .is_some_and(|&i| i < m.visibility && r != m.name)
            {
                report.errors.push(cond_problem(
                    &m.cond_loc,
                    format!("macro '{}'", m.name),
                    &m.cond,
                    at,
                    &format!("undefined macro '{r}' used in filter (a macro sees only macros defined before it)"),
                ));
            }
        }
    }

    let scope = Scope {
        macros: parsed.iter().map(|(k, v)| (*k, v)).collect(),
        lists: lists.iter().map(|(k, v)| (*k, v.as_slice())).collect(),
    };

    let mut out = Vec::new();
    for r in &col.rules {
        if let Some(rule) = build_rule(r, &scope, report, append_output) {
            out.push(rule);
        }
    }
    out
}

fn build_rule(
    r: &RuleInfo,
    scope: &Scope<'_>,
    report: &mut Report,
    append_output: &str,
) -> Option<Rule> {
    let what = format!("rule '{}'", r.name);
    let disable = |report: &mut Report, reason: DisabledReason| {
        report.disabled.push(DisabledRule {
            name: r.name.clone(),
            loc: r.loc.clone(),
            reason,
        });
    };
    if r.source != "syscall" {
        report.warnings.push(Problem {
            loc: r.loc.clone(),
            item: Some(what),
            message: format!("unknown source {}, skipping", r.source),
        });
        disable(report, DisabledReason::UnknownSource(r.source.clone()));
        return None;
    }
    let text = with_exceptions(&r.cond, &r.exceptions);
    let expr = match condition::parse(&text) {
        Ok(e) => e,
        Err(e) => {
            let (at, msg) = if e.at >= 1 && e.at <= r.cond.len() + 1 {
                (e.at.saturating_sub(1), e.message.clone())
            } else {
                (
                    0,
                    format!("in exceptions: {} (built condition: {text})", e.message),
                )
            };
            report
                .errors
                .push(cond_problem(&r.cond_loc, what, &r.cond, at, &msg));
            return None;
        }
    };
    let compiled = match compile::compile(&expr, scope) {
        Ok(c) => c,
        Err(e) => {
            match &e.in_macro {
                Some(m) => report.errors.push(Problem {
                    loc: r.cond_loc.clone(),
                    item: Some(what),
                    message: format!("in macro '{m}': {}", e.message),
                }),
                None => {
                    let at = e.at.saturating_sub(1).min(r.cond.len());
                    report
                        .errors
                        .push(cond_problem(&r.cond_loc, what, &r.cond, at, &e.message));
                }
            }
            return None;
        }
    };
    let full_output = if append_output.is_empty() {
        r.output.clone()
    } else {
        format!("{} {}", r.output, append_output)
    };
    let (output, out_missing) = OutputFormat::parse(&full_output);
    let mut missing: BTreeSet<String> = compiled.missing;
    missing.extend(out_missing);
    if !missing.is_empty() {
        let fields: Vec<String> = missing.into_iter().collect();
        let reason = if r.skip_unknown {
            DisabledReason::SkippedUnknownFilter(fields)
        } else {
            DisabledReason::MissingFields(fields)
        };
        disable(report, reason);
        return None;
    }
    if !r.enabled {
        disable(report, DisabledReason::NotEnabled);
        return None;
    }
    if compiled.evttypes.is_all() {
        report.warnings.push(Problem {
            loc: r.loc.clone(),
            item: Some(what),
            message: "condition does not restrict evt.type: the rule is judged on every event"
                .into(),
        });
    }
    Some(Rule {
        name: r.name.clone(),
        desc: r.desc.clone(),
        priority: r.priority,
        tags: r.tags.clone(),
        program: crate::program::Program::new(&compiled.pred),
        pred: compiled.pred,
        output,
        evttypes: compiled.evttypes,
        loc: r.loc.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_follows_falco_and_escapes() {
        assert_eq!(quote_item("bash"), "bash");
        assert_eq!(quote_item("a b"), "\"a b\"");
        assert_eq!(quote_item("'a b'"), "'a b'");
        assert_eq!(quote_item("say \"hi\" now"), "\"say \\\"hi\\\" now\"");
    }
}
