//! Rule files and the compiled ruleset.
//!
//! [`Loader`] reads rule files in order into one collection (later files may `append`
//! to or `override` what earlier files defined), then [`Loader::finish`] compiles it:
//! lists expanded, macros parsed and checked for visibility, rules compiled with their
//! exceptions, fields resolved once. The [`Ruleset`] indexes enabled rules by the event
//! types their condition can match, so an event meets only its candidate rules.

mod build;
mod reader;

use std::fmt;
use std::sync::Arc;

use lanner_contract::Event;

use crate::evttype::TypeSet;
use crate::output::OutputFormat;
use crate::predicate::Pred;
use crate::program::{Program, Scratch};
use crate::yaml::Pos;

pub use reader::ENGINE_VERSION;

/// A place in a rule file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loc {
    /// File name as given.
    pub file: Arc<str>,
    /// Position in it.
    pub pos: Pos,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// A load problem: where, in which item, what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where.
    pub loc: Loc,
    /// The item (`rule 'Terminal shell in container'`), if any.
    pub item: Option<String>,
    /// What.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.item {
            Some(i) => write!(f, "{}: {}: {}", self.loc, i, self.message),
            None => write!(f, "{}: {}", self.loc, self.message),
        }
    }
}

/// Rule priorities, most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Emergency.
    Emergency,
    /// Alert.
    Alert,
    /// Critical.
    Critical,
    /// Error.
    Error,
    /// Warning.
    Warning,
    /// Notice.
    Notice,
    /// Informational (also `info`).
    Informational,
    /// Debug.
    Debug,
}

impl Priority {
    /// Parses a priority, case-insensitively.
    pub fn parse(s: &str) -> Option<Priority> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "emergency" => Priority::Emergency,
            "alert" => Priority::Alert,
            "critical" => Priority::Critical,
            "error" => Priority::Error,
            "warning" => Priority::Warning,
            "notice" => Priority::Notice,
            "informational" | "info" => Priority::Informational,
            "debug" => Priority::Debug,
            _ => return None,
        })
    }

    /// Parses a priority for a command line or an API: the message of an unknown one
    /// lists the known ones.
    pub fn parse_arg(s: &str) -> Result<Priority, String> {
        Priority::parse(s).ok_or_else(|| {
            format!(
                "unknown priority {s:?} (emergency, alert, critical, error, warning, notice, informational, debug)"
            )
        })
    }

    /// Falco's rendering (`Critical`).
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Emergency => "Emergency",
            Priority::Alert => "Alert",
            Priority::Critical => "Critical",
            Priority::Error => "Error",
            Priority::Warning => "Warning",
            Priority::Notice => "Notice",
            Priority::Informational => "Informational",
            Priority::Debug => "Debug",
        }
    }
}

/// A compiled, enabled rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Name.
    pub name: String,
    /// Description.
    pub desc: String,
    /// Priority.
    pub priority: Priority,
    /// Tags, in definition order.
    pub tags: Vec<String>,
    /// The condition (with exceptions folded in).
    pub pred: Pred,
    /// The condition as judging runs it: [`Rule::pred`] flattened, rebuilt whenever
    /// the ruleset reorders it.
    pub program: Program,
    /// The output format.
    pub output: OutputFormat,
    /// Event types the condition can match.
    pub evttypes: TypeSet,
    /// Where it was defined.
    pub loc: Loc,
}

/// Why a rule is not running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DisabledReason {
    /// `enabled: false`.
    NotEnabled,
    /// It uses fields lanner cannot provide.
    MissingFields(Vec<String>),
    /// Same, and the rule asked to be skipped silently (`skip-if-unknown-filter`).
    SkippedUnknownFilter(Vec<String>),
    /// Its `source` is not `syscall`.
    UnknownSource(String),
    /// Less severe than the configured minimum priority.
    BelowMinPriority(Priority),
}

impl fmt::Display for DisabledReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisabledReason::NotEnabled => f.write_str("enabled: false"),
            DisabledReason::MissingFields(v) => {
                write!(f, "uses fields lanner does not provide: {}", v.join(", "))
            }
            DisabledReason::SkippedUnknownFilter(v) => {
                write!(
                    f,
                    "skip-if-unknown-filter: uses fields lanner does not provide: {}",
                    v.join(", ")
                )
            }
            DisabledReason::UnknownSource(s) => {
                write!(f, "source '{s}' is not handled by lanner (only syscall)")
            }
            DisabledReason::BelowMinPriority(p) => {
                write!(f, "priority below the minimum {}", p.as_str())
            }
        }
    }
}

/// A rule that was loaded but does not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisabledRule {
    /// Rule name.
    pub name: String,
    /// Where it was defined.
    pub loc: Loc,
    /// Why.
    pub reason: DisabledReason,
}

/// What one file contributed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileStats {
    /// File name.
    pub file: String,
    /// Rules defined in it.
    pub rules: usize,
    /// Macros defined in it.
    pub macros: usize,
    /// Lists defined in it.
    pub lists: usize,
}

/// Everything a load found out.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Per file, in load order.
    pub files: Vec<FileStats>,
    /// Errors (the load failed if any).
    pub errors: Vec<Problem>,
    /// Warnings.
    pub warnings: Vec<Problem>,
    /// Rules not running, and why.
    pub disabled: Vec<DisabledRule>,
    /// Rules enabled and compiled.
    pub enabled: usize,
}

/// Which rules fire when several match one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Matching {
    /// Only the first matching rule in load order (Falco's default `rule_matching: first`).
    #[default]
    First,
    /// Every matching rule.
    All,
}

/// Candidate rules by event type. The types are sorted by length, then bytes, with
/// where each length starts: a lookup compares the few types of the event's length
/// ([`crate::matchers::same_text`]) instead of hashing the name.
#[derive(Clone, Debug, Default)]
struct TypeIndex {
    types: Vec<(Box<str>, Vec<u32>)>,
    /// For each length, the range of `types` with that length.
    by_len: Vec<(u32, u32)>,
}

impl TypeIndex {
    fn new(mut types: Vec<(Box<str>, Vec<u32>)>) -> TypeIndex {
        types.sort_by(|a, b| (a.0.len(), &a.0).cmp(&(b.0.len(), &b.0)));
        let longest = types.last().map_or(0, |t| t.0.len());
        let mut by_len = vec![(0u32, 0u32); longest + 1];
        for (i, (t, _)) in types.iter().enumerate() {
            if let Some(slot) = by_len.get_mut(t.len()) {
                if slot.1 == 0 {
                    slot.0 = i as u32;
                }
                slot.1 = i as u32 + 1;
            }
        }
        TypeIndex { types, by_len }
    }

    #[inline]
    fn get(&self, t: &str) -> Option<&[u32]> {
        let &(start, end) = self.by_len.get(t.len())?;
        self.types
            .get(start as usize..end as usize)?
            .iter()
            .find(|(k, _)| crate::matchers::same_text(k, t))
            .map(|(_, rules)| rules.as_slice())
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.types.iter().map(|(t, _)| &**t)
    }
}

/// The compiled rules, indexed by event type.
#[derive(Clone, Debug)]
pub struct Ruleset {
    rules: Vec<Rule>,
    by_type: TypeIndex,
    other_types: Vec<u32>,
}

impl Ruleset {
    fn new(rules: Vec<Rule>) -> Ruleset {
        let mut named: Vec<&str> = rules
            .iter()
            .flat_map(|r| r.evttypes.named().iter().map(|t| &**t))
            .collect();
        named.sort_unstable();
        named.dedup();
        let by_type = named
            .iter()
            .map(|t| {
                let ids = rules
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.evttypes.contains(t))
                    .map(|(i, _)| i as u32)
                    .collect();
                (Box::<str>::from(*t), ids)
            })
            .collect();
        let by_type = TypeIndex::new(by_type);
        let other_types = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r.evttypes, TypeSet::AllBut(_)))
            .map(|(i, _)| i as u32)
            .collect();
        Ruleset {
            rules,
            by_type,
            other_types,
        }
    }

    /// Reorders each rule's `and`/`or` children by how often they held on `sample`
    /// (events like those to come: the detector takes the first events it judges), so
    /// that each rule gives up on a typical event after as few checks as possible.
    /// Which rules match which events does not change (see [`Pred::calibrate`]).
    pub fn calibrate(&mut self, sample: &[Event]) {
        let mut per_rule: Vec<Vec<&Event>> = vec![Vec::new(); self.rules.len()];
        for ev in sample {
            for &i in self.candidates(ev.evt_type.as_deref()) {
                per_rule[i as usize].push(ev);
            }
        }
        for (rule, events) in self.rules.iter_mut().zip(per_rule) {
            if !events.is_empty() {
                rule.pred.calibrate(&events);
                rule.program = Program::new(&rule.pred);
            }
        }
    }

    /// The enabled rules, in load order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The stored fields judging and alerting read: every field of every enabled rule's
    /// condition (exceptions included) and output, and the event's type, id, time and
    /// host. An event with only these fields set gives the same alerts, so a reader of
    /// stored events (the retro-hunt) can fetch only their columns.
    pub fn stored_fields(&self) -> Vec<lanner_contract::StoredField> {
        use lanner_contract::StoredField as S;
        let mut out = vec![S::evt_type, S::evt_id, S::evt_time, S::evt_hostname];
        for r in &self.rules {
            r.pred.stored_deps(&mut out);
            r.output.stored_deps(&mut out);
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|f| seen.insert(*f));
        out
    }

    /// The event types any rule can match, when every rule names its types (Falco
    /// warns about rules that do not); `None` when some rule may match any type. A
    /// reader of stored events (the retro-hunt) can fetch only these types.
    pub fn event_types(&self) -> Option<Vec<&str>> {
        if !self.other_types.is_empty() {
            return None;
        }
        let mut types: Vec<&str> = self.by_type.names().collect();
        types.sort_unstable();
        Some(types)
    }

    /// The rules an event of type `evt_type` must be judged against.
    pub fn candidates(&self, evt_type: Option<&str>) -> &[u32] {
        evt_type
            .and_then(|t| self.by_type.get(t))
            .unwrap_or(&self.other_types)
    }

    /// Judges an event: calls `hit` with each matching rule (only the first with
    /// [`Matching::First`]). Returns how many matched.
    pub fn judge<'r>(
        &'r self,
        ev: &Event,
        matching: Matching,
        mut hit: impl FnMut(&'r Rule),
    ) -> usize {
        let mut n = 0;
        let mut scratch = Scratch::default();
        for &i in self.candidates(ev.evt_type.as_deref()) {
            let rule = &self.rules[i as usize];
            if rule.program.eval(ev, &mut scratch) {
                hit(rule);
                n += 1;
                if matching == Matching::First {
                    break;
                }
            }
        }
        n
    }

    /// Names of every rule matching the event (for tests and tools).
    pub fn matching_rules(&self, ev: &Event) -> Vec<&str> {
        let mut v = Vec::new();
        self.judge(ev, Matching::All, |r| v.push(r.name.as_str()));
        v
    }
}

/// Reads rule files into one collection and compiles it.
#[derive(Default)]
pub struct Loader {
    col: reader::Collector,
    report: Report,
    append_output: String,
    min_priority: Option<Priority>,
}

impl Loader {
    /// A loader with nothing loaded.
    pub fn new() -> Loader {
        Loader::default()
    }

    /// Text appended to every rule's output (Falco's `append_output`), e.g.
    /// `container_id=%container.id container_name=%container.name`.
    pub fn append_output(&mut self, text: &str) {
        self.append_output = text.trim().to_owned();
    }

    /// Disables rules less severe than `p` (Falco's `priority` setting).
    pub fn min_priority(&mut self, p: Priority) {
        self.min_priority = Some(p);
    }

    /// Reads a rule file from disk; a directory contributes its `*.yaml`/`*.yml` files
    /// in name order, as Falco does.
    pub fn add_file(&mut self, path: &std::path::Path) {
        if path.is_dir() {
            let mut files: Vec<std::path::PathBuf> = match std::fs::read_dir(path) {
                Ok(rd) => rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml")
                    })
                    .collect(),
                Err(e) => {
                    self.report.errors.push(Problem {
                        loc: Loc {
                            file: path.display().to_string().as_str().into(),
                            pos: Pos::default(),
                        },
                        item: None,
                        message: format!("cannot read rules directory: {e}"),
                    });
                    return;
                }
            };
            files.sort();
            for f in files {
                self.add_one_file(&f);
            }
            return;
        }
        self.add_one_file(path);
    }

    fn add_one_file(&mut self, path: &std::path::Path) {
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => self.add_str(&name, &text),
            Err(e) => self.report.errors.push(Problem {
                loc: Loc {
                    file: name.as_str().into(),
                    pos: Pos::default(),
                },
                item: None,
                message: format!("cannot read rule file: {e}"),
            }),
        }
    }

    /// Reads a rule file's text; `name` is used in messages.
    pub fn add_str(&mut self, name: &str, text: &str) {
        let stats = reader::read_file(&mut self.col, name, text, &mut self.report);
        self.report.files.push(stats);
    }

    /// Compiles everything read. The ruleset is `None` when there were errors.
    pub fn finish(self) -> (Option<Ruleset>, Report) {
        let Loader {
            col,
            mut report,
            append_output,
            min_priority,
        } = self;
        let mut rules = build::build(&col, &mut report, &append_output);
        if let Some(min) = min_priority {
            rules.retain(|r| {
                let keep = r.priority <= min;
                if !keep {
                    report.disabled.push(DisabledRule {
                        name: r.name.clone(),
                        loc: r.loc.clone(),
                        reason: DisabledReason::BelowMinPriority(min),
                    });
                }
                keep
            });
        }
        report.enabled = rules.len();
        if report.errors.is_empty() {
            (Some(Ruleset::new(rules)), report)
        } else {
            (None, report)
        }
    }
}

/// Loads rule files in order; an `Err` lists every error, one per line.
pub fn load_files(
    paths: &[std::path::PathBuf],
    append_output: &str,
) -> Result<(Ruleset, Report), String> {
    load_files_with(paths, append_output, None)
}

/// As [`load_files`], disabling rules less severe than `min_priority`.
pub fn load_files_with(
    paths: &[std::path::PathBuf],
    append_output: &str,
    min_priority: Option<Priority>,
) -> Result<(Ruleset, Report), String> {
    let mut l = Loader::new();
    l.append_output(append_output);
    if let Some(p) = min_priority {
        l.min_priority(p);
    }
    for p in paths {
        l.add_file(p);
    }
    match l.finish() {
        (Some(rs), report) => Ok((rs, report)),
        (None, report) => Err(report
            .errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")),
    }
}

#[cfg(test)]
mod type_index_tests {
    use super::TypeIndex;

    #[test]
    fn finds_each_type_and_only_those() {
        let names = ["open", "read", "openat", "execve", "connect", "openat2"];
        let index = TypeIndex::new(
            names
                .iter()
                .enumerate()
                .map(|(i, t)| (Box::<str>::from(*t), vec![i as u32]))
                .collect(),
        );
        for (i, t) in names.iter().enumerate() {
            assert_eq!(index.get(t), Some(&[i as u32][..]), "{t}");
        }
        for absent in ["", "opem", "close", "openat3", &"x".repeat(100)] {
            assert_eq!(index.get(absent), None, "{absent}");
        }
        assert_eq!(TypeIndex::new(Vec::new()).get("open"), None);
        let mut listed: Vec<&str> = index.names().collect();
        listed.sort_unstable();
        let mut expected = names.to_vec();
        expected.sort_unstable();
        assert_eq!(listed, expected);
    }
}
