//! Bad input never panics: random conditions, rule files and outputs give errors, not
//! crashes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lanner_engine::condition;
use lanner_engine::output::OutputFormat;
use lanner_engine::rules::Loader;
use proptest::prelude::*;

const PIECES: &[&str] = &[
    "proc.name",
    "fd.name",
    "proc.aname[2]",
    "evt.type",
    " ",
    "=",
    "!=",
    "<=",
    "in",
    "(",
    ")",
    ",",
    "and",
    "or",
    "not",
    "contains",
    "'",
    "\"",
    "\\",
    "bash",
    "/etc/",
    "exists",
    "tolower(",
    "val(",
    "glob",
    "regex",
    "[",
    "]",
    "pmatch",
    "0x1f",
    "-1",
    "shell_procs",
    "\n",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_arbitrary_text(s in "\\PC{0,80}") {
        let _ = condition::parse(&s);
    }

    #[test]
    fn parser_never_panics_on_token_soup(idx in proptest::collection::vec(0..PIECES.len(), 0..40)) {
        let s: String = idx.iter().map(|&i| PIECES[i]).collect();
        if let Err(e) = condition::parse(&s) {
            prop_assert!(e.line >= 1 && e.col >= 1 && e.at <= s.len());
        }
    }

    #[test]
    fn loader_never_panics(idx in proptest::collection::vec(0..PIECES.len(), 0..30), prio in "\\PC{0,10}") {
        let cond: String = idx.iter().map(|&i| PIECES[i]).collect();
        let text = format!("- rule: R\n  desc: d\n  condition: {cond:?}\n  output: o %proc.name\n  priority: {prio:?}\n");
        let mut l = Loader::new();
        l.add_str("p.yaml", &text);
        let _ = l.finish();
    }

    #[test]
    fn output_formats_never_panic(s in "[%a-z.\\[\\]0-9 ]{0,60}") {
        let (f, _) = OutputFormat::parse(&s);
        let _ = f.render(&lanner_contract::Event::default());
    }

    #[test]
    fn yaml_never_panics(s in "[-:\\[\\]{}a-z '\"\n]{0,120}") {
        let mut l = Loader::new();
        l.add_str("y.yaml", &s);
        let _ = l.finish();
    }
}
