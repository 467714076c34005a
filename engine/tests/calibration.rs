//! Calibrating a ruleset (reordering its conditions by what a sample of events shows)
//! never changes which rules match which events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use lanner_contract::Event;
use lanner_engine::cases::stable_rule_cases;
use lanner_engine::rules::{Loader, Ruleset};
use proptest::prelude::*;

fn stable() -> Ruleset {
    let mut l = Loader::new();
    l.add_file(&common::rules_dir().join("falco_rules.yaml"));
    let (rs, report) = l.finish();
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    rs.expect("ruleset")
}

/// Every event of the upstream cases: one that fires each stable rule, and its near
/// miss.
fn case_events() -> Vec<Event> {
    stable_rule_cases()
        .into_iter()
        .flat_map(|c| [c.fires, c.misses])
        .collect()
}

/// The events' fields as JSON objects, to recombine.
fn as_objects(events: &[Event]) -> Vec<serde_json::Map<String, serde_json::Value>> {
    events
        .iter()
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(&lanner_contract::jsonl::to_line(e))
                .expect("json")
                .as_object()
                .expect("object")
                .clone()
        })
        .collect()
}

/// An event made of `base` with some fields taken from other events (or removed): many
/// conditions then hold in part, which is where evaluation order could matter.
fn recombined(
    objects: &[serde_json::Map<String, serde_json::Value>],
    base: usize,
    grafts: &[(usize, usize)],
) -> Event {
    let mut obj = objects[base % objects.len()].clone();
    for &(donor, pick) in grafts {
        let donor = &objects[donor % objects.len()];
        if let Some((k, v)) = donor.iter().nth(pick % donor.len().max(1)) {
            if pick % 7 == 0 {
                obj.remove(k);
            } else {
                obj.insert(k.clone(), v.clone());
            }
        }
    }
    lanner_contract::jsonl::parse_line(&serde_json::Value::Object(obj).to_string())
        .expect("recombined event parses")
}

fn matches(rs: &Ruleset, events: &[Event]) -> Vec<Vec<String>> {
    events
        .iter()
        .map(|e| {
            rs.matching_rules(e)
                .into_iter()
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

#[test]
fn calibrating_on_the_mix_keeps_every_case_result() {
    let plain = stable();
    let mut calibrated = plain.clone();
    calibrated.calibrate(&lanner_engine::mix::realistic_mix(2000));
    let mut events = case_events();
    events.extend(lanner_engine::mix::realistic_mix(300));
    assert_eq!(matches(&plain, &events), matches(&calibrated, &events));
    // The cases still fire: calibration did run on something that matters.
    assert!(matches(&calibrated, &events).iter().any(|m| !m.is_empty()));
}

#[test]
fn calibrating_on_the_cases_themselves_keeps_every_result() {
    let plain = stable();
    let events = case_events();
    let mut calibrated = plain.clone();
    calibrated.calibrate(&events);
    assert_eq!(matches(&plain, &events), matches(&calibrated, &events));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Calibrated on one random sample of recombined events, judged on another: the
    /// same rules match as without calibration.
    #[test]
    fn calibration_never_changes_matches(
        sample in proptest::collection::vec((0usize..1000, proptest::collection::vec((0usize..1000, 0usize..100), 0..6)), 1..40),
        judged in proptest::collection::vec((0usize..1000, proptest::collection::vec((0usize..1000, 0usize..100), 0..6)), 1..40),
    ) {
        let plain = stable();
        let objects = as_objects(&case_events());
        let build = |v: &[(usize, Vec<(usize, usize)>)]| -> Vec<Event> {
            v.iter().map(|(b, g)| recombined(&objects, *b, g)).collect()
        };
        let mut calibrated = plain.clone();
        calibrated.calibrate(&build(&sample));
        let judged = build(&judged);
        prop_assert_eq!(matches(&plain, &judged), matches(&calibrated, &judged));
    }
}

#[test]
fn recombined_events_match_some_rules_and_calibration_reorders() {
    let plain = stable();
    let objects = as_objects(&case_events());
    let mut seed = 7usize;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    let events: Vec<Event> = (0..300)
        .map(|_| {
            let grafts: Vec<(usize, usize)> = (0..next() % 5).map(|_| (next(), next())).collect();
            recombined(&objects, next(), &grafts)
        })
        .collect();
    let m = matches(&plain, &events);
    let hits = m.iter().filter(|r| !r.is_empty()).count();
    assert!(
        hits > 10 && hits < 290,
        "{hits} of 300 recombined events match"
    );
    let mut calibrated = plain.clone();
    calibrated.calibrate(&events);
    assert_eq!(m, matches(&calibrated, &events));
    let changed = plain
        .rules()
        .iter()
        .zip(calibrated.rules())
        .filter(|(a, b)| format!("{:?}", a.pred) != format!("{:?}", b.pred))
        .count();
    assert!(changed > 0, "calibration reordered no condition");
}
