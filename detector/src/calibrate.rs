//! Calibrating the rules in force on live traffic.
//!
//! A replica keeps a copy of the first events it judges under a ruleset; once it has
//! enough, it reorders the `and`/`or` children of every rule by how often they held
//! on those events ([`Ruleset::calibrate`](lanner_engine::rules::Ruleset::calibrate))
//! and puts the calibrated copy in force, unless a reload replaced the ruleset
//! meanwhile. Reordering never changes which rules match which events, only how soon
//! a rule gives up on an event it does not match. A reload starts a new sample.

use std::sync::{Arc, RwLock};

use lanner_contract::Event;

use crate::service::Loaded;

/// Events sampled by default before calibrating.
pub const DEFAULT_SAMPLE: usize = 4096;

/// The sample being gathered for the ruleset in force.
#[derive(Debug)]
pub struct Calibration {
    want: usize,
    sampling: Option<(Arc<Loaded>, Vec<Event>)>,
}

impl Calibration {
    /// Calibrates after `want` events; `0` never calibrates.
    pub fn new(want: usize) -> Self {
        Calibration {
            want,
            sampling: None,
        }
    }

    /// Notes events judged under `loaded`; calibrates and swaps the ruleset in
    /// `state` once the sample is full.
    pub fn observe(&mut self, state: &RwLock<Arc<Loaded>>, loaded: &Arc<Loaded>, events: &[Event]) {
        if self.want == 0 || loaded.calibrated {
            return;
        }
        let (of, sample) = self
            .sampling
            .get_or_insert_with(|| (loaded.clone(), Vec::new()));
        if !Arc::ptr_eq(of, loaded) {
            *of = loaded.clone();
            sample.clear();
        }
        let room = self.want.saturating_sub(sample.len());
        sample.extend(events.iter().take(room).cloned());
        if sample.len() < self.want {
            return;
        }
        let Some((of, sample)) = self.sampling.take() else {
            return;
        };
        let started = std::time::Instant::now();
        let calibrated = Arc::new(of.calibrated_on(&sample));
        let mut current = match state.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if Arc::ptr_eq(&current, &of) {
            *current = calibrated;
            tracing::info!(
                events = sample.len(),
                took_ms = started.elapsed().as_millis() as u64,
                "rules calibrated on the events judged so far"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lanner_engine::rules::Loader;

    fn loaded() -> Arc<Loaded> {
        let mut l = Loader::new();
        l.add_str(
            "t.yaml",
            "- rule: Shadow\n  desc: d\n  condition: evt.type = openat and fd.name = /etc/shadow and proc.name != sshd\n  output: x\n  priority: WARNING\n",
        );
        let (rs, report) = l.finish();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        Arc::new(Loaded::new(rs.expect("rules"), None))
    }

    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|_| Event {
                evt_type: Some("openat".into()),
                fd_name: Some("/lib/libc.so".into()),
                proc_name: Some("java".into()),
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn swaps_in_calibrated_rules_once_the_sample_is_full() {
        let first = loaded();
        let state = RwLock::new(first.clone());
        let mut c = Calibration::new(10);
        c.observe(&state, &first, &events(6));
        assert!(Arc::ptr_eq(&state.read().expect("lock"), &first));
        c.observe(&state, &first, &events(6));
        let now = state.read().expect("lock").clone();
        assert!(now.calibrated);
        // Calibrated rules are not sampled again.
        c.observe(&state, &now, &events(20));
        assert!(Arc::ptr_eq(&state.read().expect("lock"), &now));
    }

    #[test]
    fn a_reload_meanwhile_wins() {
        let first = loaded();
        let reloaded = loaded();
        let state = RwLock::new(reloaded.clone());
        let mut c = Calibration::new(4);
        c.observe(&state, &first, &events(10));
        assert!(Arc::ptr_eq(&state.read().expect("lock"), &reloaded));
        assert!(!state.read().expect("lock").calibrated);
    }

    #[test]
    fn zero_never_calibrates() {
        let first = loaded();
        let state = RwLock::new(first.clone());
        let mut c = Calibration::new(0);
        c.observe(&state, &first, &events(100));
        assert!(Arc::ptr_eq(&state.read().expect("lock"), &first));
    }
}
