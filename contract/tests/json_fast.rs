//! The JSON-lines fast path builds exactly the event serde builds, and leaves
//! everything else to serde (differential tests against `parse_line_serde`).

use lanner_contract::jsonl::{parse_line, parse_line_serde, to_line};
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn edited_lines_parse_as_serde_parses_them(
        seed in 0u64..1000,
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..14, any::<bool>()), 1..4),
    ) {
        let ev = Synth::new(seed, "node-a").nth((seed % 7) as usize).expect("event");
        let mut line = to_line(&ev);
        // Replacements chosen to hit the grammar's corners.
        const PIECES: [&str; 14] = ["-0", "1.0", "1e3", "null", "\\u0041", "\\n", "\\\"", " ", "01", "[]", "{}", "\"x\"", "18446744073709551616", "-9223372036854775808"];
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
        same(&line)?;
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
