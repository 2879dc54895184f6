//! The circuit breaker: a plugin that fails N times in a row is cut off for
//! a while, then tried again; one more failure cuts it off again.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::PluginError;

pub(crate) struct Breaker {
    threshold: u32,
    cool_off: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    consecutive: u32,
    until: Option<(Instant, SystemTime)>,
}

impl Breaker {
    pub fn new(threshold: u32, cool_off: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            cool_off,
            state: Mutex::new(State::default()),
        }
    }

    /// `Err(CutOff)` while the plugin is cut off.
    pub fn check(&self, plugin: &str) -> Result<(), PluginError> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match state.until {
            Some((until, wall)) if Instant::now() < until => Err(PluginError::CutOff {
                plugin: plugin.to_owned(),
                until: wall,
            }),
            _ => Ok(()),
        }
    }

    pub fn cut_off_until(&self) -> Option<SystemTime> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .until
            .filter(|(until, _)| Instant::now() < *until)
            .map(|(_, wall)| wall)
    }

    pub fn success(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.consecutive != 0 || state.until.is_some() {
            *state = State::default();
        }
    }

    /// Counts a failure; returns true when it cut the plugin off.
    pub fn failure(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.consecutive = state.consecutive.saturating_add(1);
        if state.consecutive >= self.threshold {
            state.until = Some((
                Instant::now() + self.cool_off,
                SystemTime::now() + self.cool_off,
            ));
            true
        } else {
            false
        }
    }
}
