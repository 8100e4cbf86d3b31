//! Injected faults, so clients can be tested against a flaky Google: server errors and throttling
//! before a call is processed, added latency, and connections dropped after it was processed
//! (the ambiguous case: did the command get created?). They apply to AMAPI calls only, never to
//! the token endpoint or the admin API.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::clock::duration_text;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSettings {
    /// Fraction of calls answered 503 UNAVAILABLE or 500 INTERNAL without being processed.
    #[serde(default)]
    pub error_rate: f64,
    /// Fraction of calls answered 429 RESOURCE_EXHAUSTED with `Retry-After: 1`, not processed.
    #[serde(default)]
    pub throttle_rate: f64,
    /// Added to every AMAPI response.
    #[serde(default, with = "duration_text")]
    pub latency: Duration,
    /// Fraction of processed calls whose response is cut off mid-body.
    #[serde(default)]
    pub drop_rate: f64,
    /// Fraction of processed calls answered 200 with an HTML page instead of JSON (a broken proxy).
    #[serde(default)]
    pub garbage_rate: f64,
    /// The AMAPI methods faults apply to (such as `devices.issueCommand`); empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
}

/// What happens to a call before it is processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreFault {
    Unavailable,
    Internal,
    Throttled,
}

impl FaultSettings {
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("errorRate", self.error_rate),
            ("throttleRate", self.throttle_rate),
            ("dropRate", self.drop_rate),
            ("garbageRate", self.garbage_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("faults.{name} must be between 0 and 1, not {rate}"));
            }
        }
        Ok(())
    }

    /// Whether faults apply to calls of `method`.
    pub fn applies_to(&self, method: &str) -> bool {
        self.methods.is_empty() || self.methods.iter().any(|m| m == method)
    }

    /// Draws the fault, if any, for a call about to be processed. `draw` yields uniform numbers
    /// in `[0, 1)`.
    pub fn before(&self, mut draw: impl FnMut() -> f64) -> Option<PreFault> {
        if self.error_rate > 0.0 && draw() < self.error_rate {
            return Some(if draw() < 0.5 {
                PreFault::Unavailable
            } else {
                PreFault::Internal
            });
        }
        if self.throttle_rate > 0.0 && draw() < self.throttle_rate {
            return Some(PreFault::Throttled);
        }
        None
    }

    /// Whether the response to a processed call is replaced by garbage.
    pub fn garbles(&self, mut draw: impl FnMut() -> f64) -> bool {
        self.garbage_rate > 0.0 && draw() < self.garbage_rate
    }

    /// Whether the response to a processed call is dropped.
    pub fn drops(&self, mut draw: impl FnMut() -> f64) -> bool {
        self.drop_rate > 0.0 && draw() < self.drop_rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_of_zero_and_one_are_certain() {
        let none = FaultSettings::default();
        assert_eq!(none.before(fastrand::f64), None);
        assert!(!none.drops(fastrand::f64));
        let all = FaultSettings {
            error_rate: 1.0,
            throttle_rate: 1.0,
            drop_rate: 1.0,
            garbage_rate: 1.0,
            latency: Duration::ZERO,
            ..Default::default()
        };
        assert!(all.garbles(fastrand::f64) && !none.garbles(fastrand::f64));
        for _ in 0..100 {
            assert!(matches!(
                all.before(fastrand::f64),
                Some(PreFault::Unavailable | PreFault::Internal)
            ));
            assert!(all.drops(fastrand::f64));
        }
        let throttle = FaultSettings {
            throttle_rate: 1.0,
            ..FaultSettings::default()
        };
        assert_eq!(throttle.before(fastrand::f64), Some(PreFault::Throttled));
    }

    #[test]
    fn both_server_errors_occur() {
        let all = FaultSettings {
            error_rate: 1.0,
            ..FaultSettings::default()
        };
        let mut draws = [0.0, 0.2, 0.0, 0.7].into_iter();
        assert_eq!(
            all.before(|| draws.next().unwrap()),
            Some(PreFault::Unavailable)
        );
        assert_eq!(
            all.before(|| draws.next().unwrap()),
            Some(PreFault::Internal)
        );
    }

    #[test]
    fn rates_outside_zero_to_one_are_refused() {
        let bad = FaultSettings {
            drop_rate: 1.5,
            ..FaultSettings::default()
        };
        assert!(bad.validate().unwrap_err().contains("dropRate"));
        let parsed: FaultSettings =
            serde_json::from_value(serde_json::json!({"latency": "50ms", "errorRate": 0.5}))
                .unwrap();
        assert_eq!(parsed.latency, Duration::from_millis(50));
        assert_eq!(parsed.error_rate, 0.5);
    }
}
