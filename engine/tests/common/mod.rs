//! Helpers shared by the engine's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use lanner_contract::Event;

/// The upstream Falco rules directory: `../shared/falco-rules` beside the repository.
pub fn rules_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/falco-rules");
    assert!(
        dir.join("falco_rules.yaml").is_file(),
        "the upstream Falco rules are missing: expected {}/falco_rules.yaml (the shared/ directory must sit beside the repository clone)",
        dir.display()
    );
    dir
}

/// Builds an event from a JSON object keyed by Falco field names, patched with
/// `patch` (a `null` in the patch removes the key).
pub fn event(base: &serde_json::Value, patch: &serde_json::Value) -> Event {
    let mut obj = base.as_object().expect("base is an object").clone();
    for (k, v) in patch.as_object().expect("patch is an object") {
        if v.is_null() {
            obj.remove(k);
        } else {
            obj.insert(k.clone(), v.clone());
        }
    }
    let line = serde_json::Value::Object(obj).to_string();
    lanner_contract::jsonl::parse_line(&line)
        .unwrap_or_else(|e| panic!("bad test event {line}: {e}"))
}
