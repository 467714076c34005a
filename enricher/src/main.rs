//! `lanner-enricher`: adds container and Kubernetes context to raw events and carries out response actions.
//!
//! Not built yet (issue #4): this binary only says so, so the workspace has one
//! binary per stage from the start.

fn main() {
    eprintln!(
        "lanner-enricher is not built yet (issue #4): stage role: adds container and Kubernetes context to raw events and carries out response actions."
    );
    std::process::exit(2);
}
