//! `lanner-query`: answers SQL over the Parquet archive.
//!
//! Not built yet (issue #7): this binary only says so, so the workspace has one
//! binary per stage from the start.

fn main() {
    eprintln!(
        "lanner-query is not built yet (issue #7): stage role: answers SQL over the Parquet archive."
    );
    std::process::exit(2);
}
