//! Judging in a loop, for profilers (`valgrind --tool=callgrind`, `perf`), and a
//! per-rule cost breakdown on the benchmark mix.
//!
//! ```text
//! cargo run --release -p lanner-engine --example judge_loop -- loop 1000   # 1000 x 1000 events
//! cargo run --release -p lanner-engine --example judge_loop -- rules       # ns per rule
//! cargo run --release -p lanner-engine --example judge_loop -- tree NAME   # compiled condition
//! ```
//!
//! With `CALIBRATE=1` set, the rules are first calibrated on the mix.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Instant;

use lanner_engine::DEFAULT_APPEND_OUTPUT;
use lanner_engine::program::Scratch;
use lanner_engine::rules::{Matching, load_files};

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "loop".into());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let rules =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/falco-rules/falco_rules.yaml");
    let (mut rs, _) = load_files(&[rules], DEFAULT_APPEND_OUTPUT).expect("stable rules load");
    let events = lanner_engine::mix::realistic_mix(1000);
    if std::env::var_os("CALIBRATE").is_some() {
        rs.calibrate(&events);
    }
    match mode.as_str() {
        "loop" => {
            let hits = judge_loop(&rs, &events, n);
            println!("{} events judged, {hits} hits", n * events.len());
        }
        "rules" => {
            // Time each rule alone over the events whose type makes it a candidate.
            let mut rows = Vec::new();
            for (i, rule) in rs.rules().iter().enumerate() {
                let cands: Vec<_> = events
                    .iter()
                    .filter(|e| rs.candidates(e.evt_type.as_deref()).contains(&(i as u32)))
                    .collect();
                let t = Instant::now();
                let mut h = 0usize;
                for _ in 0..n {
                    for e in &cands {
                        h += usize::from(rule.program.eval(e, &mut Scratch::default()));
                    }
                }
                let ns = t.elapsed().as_nanos() as f64 / (n * events.len()) as f64;
                rows.push((ns, cands.len(), h / n.max(1), rule.name.clone()));
            }
            rows.sort_by(|a, b| b.0.total_cmp(&a.0));
            let total: f64 = rows.iter().map(|r| r.0).sum();
            println!("{total:8.1} ns per mix event in all rules");
            for (ns, c, h, name) in rows {
                println!("{ns:8.1} ns/event  {c:4} candidates/1000  {h:3} hits  {name}");
            }
        }
        "alerts" => {
            // Judging and serialising every alert, as the detector does.
            let builder = lanner_engine::alert::AlertBuilder::new(Matching::First);
            let mut json = 0usize;
            for _ in 0..n {
                builder.judge_all(&rs, &events, &mut json);
            }
            println!(
                "{} events judged, {json} alerts serialised",
                n * events.len()
            );
        }
        "one" => {
            // One rule alone over its candidates, for a profiler.
            let want = args.next().unwrap_or_default();
            let (i, rule) = rs
                .rules()
                .iter()
                .enumerate()
                .find(|(_, r)| r.name.contains(&want))
                .expect("a rule by that name");
            let cands: Vec<_> = events
                .iter()
                .filter(|e| rs.candidates(e.evt_type.as_deref()).contains(&(i as u32)))
                .collect();
            let mut h = 0usize;
            for _ in 0..n {
                for e in &cands {
                    h += usize::from(rule.program.eval(e, &mut Scratch::default()));
                }
            }
            println!("{} evaluations, {h} hits", n * cands.len());
        }
        "tree" => {
            let want = args.next().unwrap_or_default();
            for rule in rs.rules().iter().filter(|r| r.name.contains(&want)) {
                println!("{}:", rule.name);
                print_pred(&rule.pred, 1);
            }
        }
        other => eprintln!("unknown mode {other}: loop|rules|tree"),
    }
}

/// The measured loop, kept out of line so that a profiler can count it alone
/// (`valgrind --tool=callgrind --toggle-collect=judge_loop::judge_loop`).
#[inline(never)]
fn judge_loop(
    rs: &lanner_engine::rules::Ruleset,
    events: &[lanner_contract::Event],
    n: usize,
) -> usize {
    let mut hits = 0usize;
    for _ in 0..n {
        for e in events {
            hits += rs.judge(e, Matching::First, |_| {});
        }
    }
    hits
}

fn print_pred(p: &lanner_engine::predicate::Pred, depth: usize) {
    use lanner_engine::predicate::{Pred, Test};
    let pad = "  ".repeat(depth);
    match p {
        Pred::And(v) | Pred::Or(v) => {
            println!(
                "{pad}{} (cost {:.1})",
                if matches!(p, Pred::And(_)) {
                    "and"
                } else {
                    "or"
                },
                p.cost()
            );
            v.iter().for_each(|c| print_pred(c, depth + 1));
        }
        Pred::Not(c) => {
            println!("{pad}not");
            print_pred(c, depth + 1);
        }
        Pred::Text(c) => println!("{pad}{:?} {:?}  [cost {:.1}]", c.field, c.test, p.cost()),
        Pred::Flag(c) => println!(
            "{pad}{:?} holds on {}  [cost {:.1}]",
            c.field,
            c.holds_on,
            p.cost()
        ),
        Pred::Cmdline(c) => println!("{pad}proc.cmdline {c:?}  [cost {:.1}]", p.cost()),
        Pred::Int(c) => println!(
            "{pad}{:?} {} {}  [cost {:.1}]",
            c.field,
            c.op.as_str(),
            c.k,
            p.cost()
        ),
        Pred::Check(c) => {
            let test = match &c.test {
                Test::Exists => "exists".to_owned(),
                Test::Cmp(op, k) => format!("{} {}", op.as_str(), k.text),
                Test::In(s) => format!("in ({} items)", s.strs.len()),
                Test::PMatch(v) => format!("pmatch ({} items)", v.len()),
                Test::Field(op, g) => format!("{} {g:?}", op.as_str()),
            };
            println!("{pad}{:?} {test}  [cost {:.1}]", c.lhs, p.cost());
        }
    }
}
