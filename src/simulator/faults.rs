//! Injected faults, so clients can be tested against a flaky Google: server errors and throttling
//! before a call is processed, added latency, and connections dropped after it was processed
//! (the ambiguous case: did the command get created?), and commands created late: the caller is
//! answered 504 while its request is still on its way, and the command appears only later (a
//! command created after the client gave up). They apply to AMAPI calls only, never to the token
//! endpoint or the admin API. [`PubsubFaults`] are the Pub/Sub subscription's own: messages
//! dropped, duplicated, delayed or reordered, calls failed or refused.

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
    /// Fraction of `devices.issueCommand` calls answered 504 DEADLINE_EXCEEDED whose command is
    /// created anyway, `late_creation_delay` later. Other methods ignore it.
    #[serde(default)]
    pub late_creation_rate: f64,
    /// How long after such a call its command is created, on the simulated clock (so advancing
    /// the clock brings it on).
    #[serde(default, with = "duration_text")]
    pub late_creation_delay: Duration,
    /// The AMAPI methods faults apply to (such as `devices.issueCommand`); empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
}

/// The only method the late-creation fault applies to: the one whose effect can outlive its
/// answer.
pub const LATE_CREATION_METHOD: &str = "devices.issueCommand";

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
            ("lateCreationRate", self.late_creation_rate),
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

    /// How much later the command of an admitted `devices.issueCommand` call is created, if
    /// this call gets the late-creation fault.
    pub fn creates_late(&self, method: &str, mut draw: impl FnMut() -> f64) -> Option<Duration> {
        (method == LATE_CREATION_METHOD
            && self.late_creation_rate > 0.0
            && draw() < self.late_creation_rate)
            .then_some(self.late_creation_delay)
    }
}

/// Faults of the simulated Pub/Sub subscription (AMAPI notifications). Drop, duplicate and delay
/// are drawn once per published message; `errorRate` once per Pub/Sub call.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PubsubFaults {
    /// Fraction of published messages never delivered.
    #[serde(default)]
    pub drop_rate: f64,
    /// Fraction of published messages delivered twice: two copies with the same `messageId`,
    /// each with its own ack IDs (acking one does not settle the other).
    #[serde(default)]
    pub duplicate_rate: f64,
    /// Fraction of published messages held back `delay` before they can be pulled.
    #[serde(default)]
    pub delay_rate: f64,
    /// How long a delayed message is held back, on the simulated clock.
    #[serde(default, with = "duration_text")]
    pub delay: Duration,
    /// Pull hands out what is available in random order instead of oldest first.
    #[serde(default)]
    pub reorder: bool,
    /// Fraction of Pub/Sub calls answered 503 UNAVAILABLE without being processed.
    #[serde(default)]
    pub error_rate: f64,
    /// The caller lacks `pubsub.subscriptions.consume`: every call on the subscription is
    /// answered 403 PERMISSION_DENIED.
    #[serde(default)]
    pub permission_denied: bool,
}

/// What a published message's faults do to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageFate {
    pub dropped: bool,
    pub duplicated: bool,
    pub delay: Option<Duration>,
}

impl PubsubFaults {
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("dropRate", self.drop_rate),
            ("duplicateRate", self.duplicate_rate),
            ("delayRate", self.delay_rate),
            ("errorRate", self.error_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!(
                    "pubsub.faults.{name} must be between 0 and 1, not {rate}"
                ));
            }
        }
        Ok(())
    }

    /// Draws the fate of one published message. `draw` yields uniform numbers in `[0, 1)`.
    pub fn fate(&self, mut draw: impl FnMut() -> f64) -> MessageFate {
        if self.drop_rate > 0.0 && draw() < self.drop_rate {
            return MessageFate {
                dropped: true,
                ..MessageFate::default()
            };
        }
        MessageFate {
            dropped: false,
            duplicated: self.duplicate_rate > 0.0 && draw() < self.duplicate_rate,
            delay: (self.delay_rate > 0.0 && draw() < self.delay_rate).then_some(self.delay),
        }
    }

    /// Whether a Pub/Sub call is answered 503 before it is processed.
    pub fn fails(&self, mut draw: impl FnMut() -> f64) -> bool {
        self.error_rate > 0.0 && draw() < self.error_rate
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
    fn late_creation_applies_to_issue_command_only() {
        let late: FaultSettings = serde_json::from_value(
            serde_json::json!({"lateCreationRate": 1.0, "lateCreationDelay": "300s"}),
        )
        .unwrap();
        assert_eq!(
            late.creates_late("devices.issueCommand", fastrand::f64),
            Some(Duration::from_secs(300))
        );
        assert_eq!(late.creates_late("devices.get", fastrand::f64), None);
        assert_eq!(
            FaultSettings::default().creates_late("devices.issueCommand", fastrand::f64),
            None
        );
        let half = FaultSettings {
            late_creation_rate: 0.5,
            ..late.clone()
        };
        assert!(half.creates_late("devices.issueCommand", || 0.4).is_some());
        assert!(half.creates_late("devices.issueCommand", || 0.6).is_none());
        let written = serde_json::to_value(&late).unwrap();
        assert_eq!(written["lateCreationDelay"], "300s");
        let bad = FaultSettings {
            late_creation_rate: -0.1,
            ..FaultSettings::default()
        };
        assert!(bad.validate().unwrap_err().contains("lateCreationRate"));
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

    #[test]
    fn pubsub_faults_decide_each_message() {
        let none = PubsubFaults::default();
        assert_eq!(none.fate(fastrand::f64), MessageFate::default());
        assert!(!none.fails(fastrand::f64));
        let all: PubsubFaults = serde_json::from_value(serde_json::json!({
            "duplicateRate": 1.0, "delayRate": 1.0, "delay": "30s", "errorRate": 1.0
        }))
        .unwrap();
        let fate = all.fate(fastrand::f64);
        assert!(fate.duplicated && !fate.dropped);
        assert_eq!(fate.delay, Some(Duration::from_secs(30)));
        assert!(all.fails(fastrand::f64));
        let drop = PubsubFaults {
            drop_rate: 1.0,
            duplicate_rate: 1.0,
            ..PubsubFaults::default()
        };
        assert_eq!(
            drop.fate(fastrand::f64),
            MessageFate {
                dropped: true,
                ..MessageFate::default()
            },
            "a dropped message is not also duplicated"
        );
        let bad = PubsubFaults {
            duplicate_rate: 1.5,
            ..PubsubFaults::default()
        };
        assert!(bad.validate().unwrap_err().contains("duplicateRate"));
    }
}
