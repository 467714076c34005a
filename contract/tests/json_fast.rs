//! The JSON-lines fast path builds exactly the event serde builds, and leaves
//! everything else to serde (differential tests against `parse_line_serde`), also when
//! one sharing parser reads many lines (what it remembers never changes a result).

use lanner_contract::Event;
use lanner_contract::jsonl::{LineParser, parse_line, parse_line_serde, to_line};
use lanner_contract::synth::Synth;
use proptest::prelude::*;

#[test]
fn synthetic_lines_take_the_fast_path_and_agree() {
    for ev in Synth::new(3, "node-a").take(2000) {
        let line = to_line(&ev);
        assert!(lanner_contract::jsonl::parses_fast(&line), "{line}");
        assert_eq!(parse_line(&line).expect("parses"), ev);
    }
}

fn same(line: &str) -> Result<(), TestCaseError> {
    match (parse_line(line), parse_line_serde(line)) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "{}", line),
        (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
        (a, b) => prop_assert!(false, "{line}: fast {a:?} serde {b:?}"),
    }
    Ok(())
}

/// Replacements chosen to hit the grammar's corners (and the sharing parser's caches:
/// a list or object whose text holds its closing bracket early).
const PIECES: [&str; 18] = [
    "-0",
    "1.0",
    "1e3",
    "null",
    "\\u0041",
    "\\n",
    "\\\"",
    " ",
    "01",
    "[]",
    "{}",
    "\"x\"",
    "18446744073709551616",
    "-9223372036854775808",
    "]",
    "}",
    "\"a]\",",
    "\"b}\":\"}\",",
];

type Edits = Vec<(prop::sample::Index, usize, bool)>;

fn edits() -> impl Strategy<Value = Edits> {
    prop::collection::vec(
        (any::<prop::sample::Index>(), 0..PIECES.len(), any::<bool>()),
        1..4,
    )
}

/// A synthetic event's line with `edits` applied.
fn edited_line(seed: u64, edits: Edits) -> String {
    let ev = Synth::new(seed, "node-a")
        .nth((seed % 7) as usize)
        .expect("event");
    let mut line = to_line(&ev);
    for (at, piece, replace) in edits {
        let mut i = at.index(line.len() + 1);
        while !line.is_char_boundary(i) {
            i -= 1;
        }
        if replace {
            let mut end = (i + PIECES[piece].len()).min(line.len());
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.replace_range(i..end, PIECES[piece]);
        } else {
            line.insert_str(i, PIECES[piece]);
        }
    }
    line
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn edited_lines_parse_as_serde_parses_them(seed in 0u64..1000, edits in edits()) {
        same(&edited_line(seed, edits))?;
    }

    #[test]
    fn a_sharing_parser_reading_many_lines_agrees_with_serde_on_each(
        lines in prop::collection::vec((0u64..40, prop::option::weighted(0.3, edits()), prop::bool::weighted(0.05)), 1..60),
    ) {
        let mut parser = LineParser::sharing();
        for (seed, edits, clear) in lines {
            let line = match edits {
                Some(edits) => edited_line(seed, edits),
                None => to_line(&Synth::new(seed, "node-a").nth((seed % 7) as usize).expect("event")),
            };
            if clear {
                parser.clear();
            }
            let mut ev = Event::default();
            match (parser.parse_into(&line, &mut ev), parse_line_serde(&line)) {
                (Ok(()), Ok(b)) => prop_assert_eq!(ev, b, "{}", line),
                (Err(a), Err(b)) => {
                    prop_assert_eq!(a.to_string(), b.to_string());
                    prop_assert_eq!(ev, Event::default());
                }
                (a, b) => prop_assert!(false, "{line}: sharing {a:?} serde {b:?}"),
            }
        }
    }

    #[test]
    fn arbitrary_text_parses_as_serde_parses_it(line in "\\PC{0,64}") {
        same(&line)?;
    }
}

#[test]
fn values_at_the_edges() {
    for line in [
        r#"{"evt.rawres":-9223372036854775808}"#,
        r#"{"evt.rawres":-0}"#,
        r#"{"evt.rawres":9223372036854775808}"#,
        r#"{"evt.num":18446744073709551615}"#,
        r#"{"evt.num":18446744073709551616}"#,
        r#"{"evt.num":1.0}"#,
        r#"{"evt.time":-1}"#,
        r#"{"evt.time":"1970-01-01T00:00:00.000000000Z"}"#,
        r#"{"proc.name":"a\"b\\c\/d\n\t"}"#,
        r#"{"proc.name":"\u00e9"}"#,
        r#"{"proc.name":"é","proc.name":null}"#,
        r#"{"proc.aname":[],"proc.apid":[1,2],"container.labels":{"a":"b","a":"c"}}"#,
        r#" { } "#,
        r#"{"fd.sip":"::1"}"#,
        r#"{"fd.sip":"1.2.3"}"#,
        r#"{"nope":1}"#,
        "{\"proc.name\":\"a\u{1}\"}",
        r#"{"proc.name":"a"}x"#,
        r#"{"proc.name":"a",}"#,
    ] {
        same(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
}

#[test]
fn a_sharing_parser_shares_texts_lists_and_labels_between_events() {
    let lines: Vec<String> = Synth::new(5, "node-a")
        .take(200)
        .map(|ev| to_line(&ev))
        .collect();
    let mut parser = LineParser::sharing();
    let events: Vec<Event> = lines
        .iter()
        .map(|line| {
            let mut ev = Event::default();
            parser.parse_into(line, &mut ev).expect("parses");
            ev
        })
        .collect();
    let mut shared = [0usize; 3];
    for (i, a) in events.iter().enumerate() {
        for b in &events[..i] {
            if let (Some(x), Some(y)) = (&a.proc_exepath, &b.proc_exepath)
                && x == y
                && x.len() > 23
            {
                assert_eq!(x.as_ptr(), y.as_ptr(), "{x}");
                shared[0] += 1;
            }
            if let (Some(x), Some(y)) = (&a.proc_aname, &b.proc_aname)
                && x == y
            {
                assert!(std::sync::Arc::ptr_eq(x, y), "{x:?}");
                shared[1] += 1;
            }
            if let (Some(x), Some(y)) = (&a.container_labels, &b.container_labels)
                && x == y
            {
                assert!(std::sync::Arc::ptr_eq(x, y), "{x:?}");
                shared[2] += 1;
            }
        }
    }
    assert!(shared.iter().all(|&n| n > 0), "{shared:?}");
    // Values remembered before a clear are equal, not shared, after it.
    parser.clear();
    let mut again = Event::default();
    parser.parse_into(&lines[0], &mut again).expect("parses");
    assert_eq!(again, events[0]);
    if let (Some(x), Some(y)) = (&again.proc_aname, &events[0].proc_aname) {
        assert!(!std::sync::Arc::ptr_eq(x, y));
    }
}

#[test]
fn brackets_inside_strings_do_not_confuse_the_sharing_parser() {
    let mut parser = LineParser::sharing();
    for line in [
        r#"{"proc.aname":["x"],"container.labels":{"a":"b"}}"#,
        r#"{"proc.aname":["x]","y"],"container.labels":{"a}":"b"}}"#,
        r#"{"proc.aname":["x"],"container.labels":{"a":"b"}}"#,
        r#"{"proc.aname":["x]","z"],"container.labels":{"a}":"c"}}"#,
        r#"{"proc.aname":["x"]],"container.labels":{"a":"b"}}"#,
        r#"{"proc.aname":["x"] ,"container.labels":{"a":"b"} }"#,
        // Text up to the first bracket equal to an earlier list's: not that list.
        r#"{"proc.aname":["x],"proc.name":"a"}"#,
        r#"{"container.labels":{"a}":"c","b":"d"}}"#,
        r#"{"container.labels":{"a},"proc.name":"a"}"#,
    ] {
        let mut ev = Event::default();
        let got = parser.parse_into(line, &mut ev).map(|()| ev);
        match (got, parse_line_serde(line)) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{line}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            (a, b) => panic!("{line}: sharing {a:?} serde {b:?}"),
        }
    }
}
