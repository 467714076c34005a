//! A compiled condition flattened into a branching program, which is what judging runs.
//!
//! The leaves of a [`Pred`] go into one array, in the order the tree would try them;
//! each knows where to go next when it holds and when it does not. `and`, `or` and
//! `not` become those jumps (`not` swaps them), so evaluating a condition is a loop
//! over leaves, without recursion or walking boxed nodes, and it tries exactly the
//! leaves the tree would, in the same order: the result is the same.
//!
//! [`Scratch`] holds what judging one event works out once for all its rules: the
//! three `evt.is_open_*` flags, which many rules test on every open.
//!
//! ```
//! use lanner_engine::compile::{Scope, compile};
//! use lanner_engine::condition::parse;
//! use lanner_engine::program::{Program, Scratch};
//! use lanner_contract::Event;
//! let cond = parse("evt.type = openat and not (fd.name startswith /proc or fd.name = /dev/null)").unwrap();
//! let c = compile(&cond, &Scope::default()).unwrap();
//! let program = Program::new(&c.pred);
//! let ev = Event { evt_type: Some("openat".into()), fd_name: Some("/etc/shadow".into()), ..Default::default() };
//! assert!(program.eval(&ev, &mut Scratch::default()));
//! assert_eq!(program.eval(&ev, &mut Scratch::default()), c.pred.eval(&ev));
//! ```

use lanner_contract::Event;
use lanner_contract::field::OpenFlags;

use crate::predicate::{Check, CmdlineCheck, FlagCheck, IntCheck, Pred, TextCheck};

/// Where a program ends when the condition holds.
const HOLDS: u32 = u32::MAX;
/// Where a program ends when it does not.
const FAILS: u32 = u32::MAX - 1;

/// A condition as a branching program (see the module documentation).
#[derive(Clone, Debug)]
pub struct Program {
    /// The leaves, the first one tried first.
    nodes: Box<[Node]>,
    /// The first leaf, or [`HOLDS`]/[`FAILS`] for a condition without any (an empty
    /// `and` holds, an empty `or` does not).
    entry: u32,
}

#[derive(Clone, Debug)]
struct Node {
    leaf: Leaf,
    on_true: u32,
    on_false: u32,
}

/// One test of the condition: the leaves of [`Pred`].
#[derive(Clone, Debug)]
enum Leaf {
    Text(Box<TextCheck>),
    Int(Box<IntCheck>),
    Flag(FlagCheck),
    Cmdline(Box<CmdlineCheck>),
    Check(Box<Check>),
}

/// What judging one event works out once and reuses across its rules; start a new one
/// (`Scratch::default()`) for every event.
#[derive(Debug, Default)]
pub struct Scratch {
    /// The event's `evt.is_open_*`, once read (`Some(None)`: the event has no type).
    open: Option<Option<OpenFlags>>,
}

impl Scratch {
    fn open_flag(&mut self, ev: &Event, check: &FlagCheck) -> bool {
        let flags = *self.open.get_or_insert_with(|| ev.open_flags());
        flags.and_then(|f| f.get(check.field)) == Some(check.holds_on)
    }
}

impl Program {
    /// Flattens `pred`.
    pub fn new(pred: &Pred) -> Program {
        let mut nodes = Vec::new();
        let entry = flatten(pred, HOLDS, FAILS, &mut nodes);
        // Built from the last leaf to the first: reversed, the leaves are in the order
        // they are tried, so a walk reads forward through memory.
        let last = nodes.len() as u32;
        let forward = |i: u32| if i >= FAILS { i } else { last - 1 - i };
        nodes.reverse();
        for n in &mut nodes {
            n.on_true = forward(n.on_true);
            n.on_false = forward(n.on_false);
        }
        Program {
            nodes: nodes.into_boxed_slice(),
            entry: forward(entry),
        }
    }

    /// Whether the condition holds on `ev`. `scratch` is the event's (see [`Scratch`]).
    #[inline(never)]
    pub fn eval(&self, ev: &Event, scratch: &mut Scratch) -> bool {
        let mut at = self.entry;
        // The two ends are past the last leaf.
        while let Some(node) = self.nodes.get(at as usize) {
            let holds = match &node.leaf {
                Leaf::Text(c) => c.eval(ev),
                Leaf::Int(c) => c.eval(ev),
                Leaf::Flag(c) => scratch.open_flag(ev, c),
                Leaf::Cmdline(c) => c.eval(ev),
                Leaf::Check(c) => c.eval(ev),
            };
            at = if holds { node.on_true } else { node.on_false };
        }
        at == HOLDS
    }

    /// The number of leaves (each leaf of the condition appears once).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the condition has no leaf (an empty `and` or `or`).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// Appends the leaves of `pred`, which goes on to `on_true` when it holds and to
/// `on_false` when not, and returns where it starts. Children are appended last first,
/// so each one's successors already have their index.
fn flatten(pred: &Pred, on_true: u32, on_false: u32, nodes: &mut Vec<Node>) -> u32 {
    let leaf = match pred {
        Pred::Text(c) => Leaf::Text(c.clone()),
        Pred::Int(c) => Leaf::Int(c.clone()),
        Pred::Flag(c) => Leaf::Flag((**c).clone()),
        Pred::Cmdline(c) => Leaf::Cmdline(c.clone()),
        Pred::Check(c) => Leaf::Check(c.clone()),
        Pred::Not(p) => return flatten(p, on_false, on_true, nodes),
        // Each child but the last goes on to the next when it holds; any failing ends
        // the `and`.
        Pred::And(children) => {
            return children
                .iter()
                .rev()
                .fold(on_true, |next, c| flatten(c, next, on_false, nodes));
        }
        // Each child but the last goes on to the next when it fails; any holding ends
        // the `or`.
        Pred::Or(children) => {
            return children
                .iter()
                .rev()
                .fold(on_false, |next, c| flatten(c, on_true, next, nodes));
        }
    };
    nodes.push(Node {
        leaf,
        on_true,
        on_false,
    });
    nodes.len() as u32 - 1
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::compile::{Scope, compile};
    use crate::condition::parse;

    fn compiled(cond: &str) -> Pred {
        let e = parse(cond).unwrap_or_else(|e| panic!("{cond}: {e}"));
        compile(&e, &Scope::default())
            .unwrap_or_else(|e| panic!("{cond}: {e}"))
            .pred
    }

    #[test]
    fn empty_and_or_and_nesting() {
        let and = Program::new(&Pred::And(Box::new([])));
        let or = Program::new(&Pred::Or(Box::new([])));
        let ev = Event::default();
        assert!(and.is_empty() && or.is_empty());
        assert!(and.eval(&ev, &mut Scratch::default()));
        assert!(!or.eval(&ev, &mut Scratch::default()));
        // Not of an empty `or`, inside an `and`.
        let p = Pred::And(Box::new([Pred::Not(Box::new(Pred::Or(Box::new([]))))]));
        assert!(Program::new(&p).eval(&ev, &mut Scratch::default()));
    }

    #[test]
    fn leaves_are_in_the_order_tried() {
        let p = Program::new(&compiled(
            "proc.name = a and (proc.pname = b or not proc.aname[2] = c) and fd.name = d",
        ));
        assert_eq!(p.len(), 4);
        assert_eq!(p.entry, 0);
        // Forward jumps only, each leaf reachable from the one before.
        for (i, n) in p.nodes.iter().enumerate() {
            for to in [n.on_true, n.on_false] {
                assert!(to > i as u32, "leaf {i} jumps back to {to}");
            }
        }
    }

    proptest::proptest! {
        /// The program gives the tree's result on random conditions over a few fields
        /// (every connective, nesting, `not`, the lean leaves and general checks) and
        /// random events.
        #[test]
        fn the_program_agrees_with_the_tree(
            cond in condition(),
            ty in proptest::option::of("openat|execve|connect"),
            name in proptest::option::of("a|b|sh"),
            anames in proptest::option::of(proptest::collection::vec("a|b|c", 0..3)),
            fd in proptest::option::of("/etc/a|/tmp/b|a"),
            flags in proptest::option::of("O_RDONLY|O_WRONLY|O_RDWR\\|O_CREAT"),
            pid in proptest::option::of(0u64..4),
        ) {
            let pred = compiled(&cond);
            let ev = Event {
                evt_type: ty.map(Into::into),
                proc_name: name.map(Into::into),
                proc_aname: anames.map(|v| v.into_iter().map(Into::into).collect::<Vec<_>>().into()),
                fd_name: fd.map(Into::into),
                evt_arg_flags: flags.map(Into::into),
                proc_pid: pid,
                ..Default::default()
            };
            let program = Program::new(&pred);
            let mut scratch = Scratch::default();
            proptest::prop_assert_eq!(program.eval(&ev, &mut scratch), pred.eval(&ev), "{}", cond);
            // The scratch kept from that evaluation gives the same again.
            proptest::prop_assert_eq!(program.eval(&ev, &mut scratch), pred.eval(&ev), "{}", cond);
        }
    }

    fn leaf() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::prop_oneof![
            "(proc\\.name|proc\\.pname|fd\\.name) (=|!=|startswith|contains) (a|b|/etc)",
            "(proc\\.name|fd\\.name) in \\((a|b), (sh|/tmp/b)\\)",
            "evt\\.type = (openat|execve)",
            "evt\\.is_open_(read|write) (=|!=) (true|false)",
            "proc\\.pid (=|<|>=) [0-3]",
            "proc\\.cmdline startswith (a|sh)",
            "(fd\\.name|proc\\.name) exists",
            "proc\\.aname\\[[1-2]\\] (=|!=) (a|b)",
            "proc\\.name = val\\(proc\\.pname\\)",
        ]
    }

    fn condition() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::strategy::Strategy;
        leaf().prop_recursive(4, 24, 4, |inner| {
            proptest::prop_oneof![
                proptest::collection::vec(inner.clone(), 1..4)
                    .prop_map(|v| format!("({})", v.join(" and "))),
                proptest::collection::vec(inner.clone(), 1..4)
                    .prop_map(|v| format!("({})", v.join(" or "))),
                inner.prop_map(|c| format!("not {c}")),
            ]
        })
    }
}
