//! RFC 3339 times: the direct parser of the canonical form agrees with chrono.

use lanner_contract::Timestamp;
use proptest::prelude::*;

fn chrono_parse(s: &str) -> Option<Timestamp> {
    let dt = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    dt.timestamp_nanos_opt().map(Timestamp)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn written_times_read_back(t in any::<i64>()) {
        let text = Timestamp(t).to_rfc3339();
        prop_assert_eq!(Timestamp::parse_rfc3339(&text), Some(Timestamp(t)), "{}", text);
    }

    #[test]
    fn canonical_looking_text_parses_as_chrono_does(
        y in 0u32..10000, mo in 0u32..14, d in 0u32..33, h in 0u32..26, mi in 0u32..62,
        s in 0u32..62, n in 0u32..1_000_000_000,
    ) {
        let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{n:09}Z");
        prop_assert_eq!(Timestamp::parse_rfc3339(&text), chrono_parse(&text), "{}", text);
    }
}

#[test]
fn other_forms_still_parse() {
    for text in [
        "2026-01-02T03:04:05Z",
        "2026-01-02T03:04:05.5+02:00",
        "2026-01-02t03:04:05.123456789z",
        "2016-12-31T23:59:60.000000000Z",
    ] {
        assert_eq!(Timestamp::parse_rfc3339(text), chrono_parse(text), "{text}");
        assert!(Timestamp::parse_rfc3339(text).is_some(), "{text}");
    }
    for text in [
        "2026-13-02T03:04:05.000000000Z",
        "2026-02-30T03:04:05.000000000Z",
        "2026-01-02T03:04:05.00000000xZ",
        "",
    ] {
        assert_eq!(Timestamp::parse_rfc3339(text), None, "{text}");
    }
}
