//! The sensor's stop flag: set by SIGTERM/SIGINT, by `--max-events`, or when an output
//! fails; read by the ring reader thread and the publisher without any async machinery.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag many threads and tasks share.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A flag set when SIGTERM or SIGINT arrives (spawns a task on the current runtime).
    pub fn on_signals() -> Stop {
        let stop = Stop::default();
        let s = stop.clone();
        tokio::spawn(async move {
            lanner_contract::bus::shutdown::signal().await;
            tracing::info!("shutdown requested: draining the ring buffer and flushing");
            s.set();
        });
        stop
    }

    /// Sets the flag.
    pub fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
