//! Graceful shutdown: a future that resolves on SIGTERM or SIGINT.

use tokio::sync::watch;

/// Resolves when the process receives SIGTERM or SIGINT (Ctrl-C).
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A shutdown flag that many tasks can watch; set by [`signal`] or by hand (tests).
#[derive(Clone)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A flag that is not yet set.
    pub fn new() -> Self {
        Shutdown {
            tx: watch::channel(false).0,
        }
    }

    /// A flag set when SIGTERM or SIGINT arrives.
    pub fn on_signals() -> Self {
        let s = Self::new();
        let tx = s.tx.clone();
        tokio::spawn(async move {
            signal().await;
            tracing::info!("shutdown requested: finishing the batch in flight, flushing, acking");
            tx.send_replace(true);
        });
        s
    }

    /// Sets the flag.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once the flag is set.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_flag_sticks_even_with_nobody_waiting_yet() {
        let s = Shutdown::new();
        s.trigger();
        assert!(s.is_set());
        s.wait().await;
    }
}
