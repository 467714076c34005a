//! `rules/falco_rules.yaml` is the upstream stable rule file, unchanged.

use std::path::Path;

#[test]
fn vendored_rules_are_the_upstream_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let upstream = root.join("../shared/falco-rules/falco_rules.yaml");
    let vendored = root.join("rules/falco_rules.yaml");
    let upstream = std::fs::read(&upstream).unwrap_or_else(|e| {
        panic!(
            "the upstream rules must sit beside the clone at {}: {e}",
            upstream.display()
        )
    });
    let vendored = std::fs::read(&vendored).expect("rules/falco_rules.yaml");
    assert!(
        vendored == upstream,
        "rules/falco_rules.yaml differs from ../shared/falco-rules/falco_rules.yaml"
    );
}
