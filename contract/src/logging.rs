//! Logging for every lanner binary: `tracing` to stderr, filtered by `LANNER_LOG` (or
//! `RUST_LOG` when that is unset; default `info`), as text or, with
//! `LANNER_LOG_FORMAT=json`, one JSON object per line for log collectors.
//!
//! ```text
//! LANNER_LOG=debug,async_nats=warn lanner-detector run --rules rules/
//! LANNER_LOG_FORMAT=json lanner-archiver
//! ```

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init() {
    let filter = EnvFilter::try_from_env("LANNER_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let json = std::env::var("LANNER_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // `try_init`: a second call (tests that run a main twice) keeps the first subscriber.
    let _ = if json {
        fmt.json().try_init()
    } else {
        fmt.try_init()
    };
}
