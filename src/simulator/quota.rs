//! AMAPI's per-project request quota: at most `requests` calls in any `window` (1,000 per 100 s
//! by default). A sliding window, so a burst of 1,000 in one second blocks the next 99 seconds,
//! as Google's documentation describes. Rejected calls do not use quota.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::clock::duration_text;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuotaSettings {
    /// Calls allowed in one window.
    pub requests: u32,
    /// The window, like `100s`.
    #[serde(with = "duration_text")]
    pub window: Duration,
}

impl Default for QuotaSettings {
    fn default() -> Self {
        QuotaSettings {
            requests: 1000,
            window: Duration::from_secs(100),
        }
    }
}

impl QuotaSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.requests == 0 {
            return Err("quota.requests must be at least 1".into());
        }
        if self.window.is_zero() {
            return Err("quota.window must be longer than zero".into());
        }
        Ok(())
    }
}

/// The calls admitted within the current window, oldest first.
#[derive(Debug)]
pub struct Quota {
    settings: QuotaSettings,
    admitted: VecDeque<Instant>,
}

impl Quota {
    pub fn new(settings: QuotaSettings) -> Self {
        Quota {
            settings,
            admitted: VecDeque::new(),
        }
    }

    pub fn settings(&self) -> QuotaSettings {
        self.settings
    }

    /// New settings start a fresh window.
    pub fn reset(&mut self, settings: QuotaSettings) {
        *self = Quota::new(settings);
    }

    /// Admits a call made at `now`, or says how long until one would be admitted (whole
    /// seconds, at least one, as `Retry-After` carries).
    pub fn admit(&mut self, now: Instant) -> Result<(), u64> {
        while let Some(&oldest) = self.admitted.front() {
            if now.saturating_duration_since(oldest) >= self.settings.window {
                self.admitted.pop_front();
            } else {
                break;
            }
        }
        if self.admitted.len() < self.settings.requests as usize {
            self.admitted.push_back(now);
            return Ok(());
        }
        let oldest = *self.admitted.front().expect("a full window is not empty");
        let frees_at = oldest + self.settings.window;
        let wait = frees_at.saturating_duration_since(now);
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Err(secs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(requests: u32, window_secs: u64) -> Quota {
        Quota::new(QuotaSettings {
            requests,
            window: Duration::from_secs(window_secs),
        })
    }

    #[test]
    fn a_burst_blocks_until_the_window_slides() {
        let t0 = Instant::now();
        let mut q = quota(3, 100);
        for _ in 0..3 {
            assert_eq!(q.admit(t0), Ok(()));
        }
        assert_eq!(q.admit(t0), Err(100));
        assert_eq!(q.admit(t0 + Duration::from_millis(1500)), Err(99));
        assert_eq!(q.admit(t0 + Duration::from_secs(100)), Ok(()));
    }

    #[test]
    fn rejected_calls_do_not_use_quota() {
        let t0 = Instant::now();
        let mut q = quota(1, 10);
        assert_eq!(q.admit(t0), Ok(()));
        for s in 1..10 {
            assert!(q.admit(t0 + Duration::from_secs(s)).is_err());
        }
        assert_eq!(q.admit(t0 + Duration::from_secs(10)), Ok(()));
    }

    #[test]
    fn calls_spread_over_the_window() {
        let t0 = Instant::now();
        let mut q = quota(2, 10);
        assert_eq!(q.admit(t0), Ok(()));
        assert_eq!(q.admit(t0 + Duration::from_secs(6)), Ok(()));
        assert_eq!(q.admit(t0 + Duration::from_secs(8)), Err(2));
        assert_eq!(q.admit(t0 + Duration::from_secs(10)), Ok(()));
        assert_eq!(q.admit(t0 + Duration::from_secs(11)), Err(5));
    }

    #[test]
    fn retry_after_is_at_least_one_second() {
        let t0 = Instant::now();
        let mut q = quota(1, 1);
        assert_eq!(q.admit(t0), Ok(()));
        assert_eq!(q.admit(t0 + Duration::from_millis(999)), Err(1));
    }

    #[test]
    fn reset_starts_a_fresh_window() {
        let t0 = Instant::now();
        let mut q = quota(1, 100);
        assert_eq!(q.admit(t0), Ok(()));
        q.reset(QuotaSettings {
            requests: 2,
            window: Duration::from_secs(5),
        });
        assert_eq!(q.admit(t0), Ok(()));
        assert_eq!(q.admit(t0), Ok(()));
        assert_eq!(q.admit(t0), Err(5));
        assert!(
            QuotaSettings {
                requests: 0,
                window: Duration::from_secs(1)
            }
            .validate()
            .is_err()
        );
    }
}
