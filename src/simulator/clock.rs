//! The simulated clock, and how the simulator writes times and durations.
//!
//! Devices, commands and their expiry live on simulated time: real time plus an offset that only
//! grows (the admin API advances it), so a test can let a command expire without waiting ten
//! minutes. OAuth tokens and the quota window stay on real time: they model the client's own
//! clock, which the simulator cannot move.

use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp, Unit};

/// Real time shifted by an offset that tests advance.
#[derive(Debug, Default)]
pub struct Clock {
    offset: Mutex<SignedDuration>,
}

impl Clock {
    /// Simulated now, rounded to microseconds as Google's timestamps are.
    pub fn now(&self) -> Timestamp {
        let offset = *self.offset.lock().expect("clock lock");
        (Timestamp::now() + offset)
            .round(Unit::Microsecond)
            .expect("a timestamp near now rounds")
    }

    /// Moves simulated time forward.
    pub fn advance(&self, by: Duration) {
        let by = SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX);
        let mut offset = self.offset.lock().expect("clock lock");
        *offset = offset.saturating_add(by);
    }

    /// How far simulated time is ahead of real time.
    pub fn offset(&self) -> SignedDuration {
        *self.offset.lock().expect("clock lock")
    }
}

/// A timestamp as Google writes it (RFC 3339, UTC, fractional seconds only when present).
pub fn rfc3339(t: Timestamp) -> String {
    t.to_string()
}

/// Adds a std duration to a timestamp, saturating at the end of time.
pub fn add(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// How long from `now` until `later` (zero when it has passed).
pub fn until(now: Timestamp, later: Timestamp) -> Duration {
    Duration::try_from(later.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// A google-duration (`"600s"`, `"1.5s"`), the format of `Command.duration`.
pub fn google_duration(d: Duration) -> String {
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        return crate::amapi::model::google_duration(d.as_secs());
    }
    let fraction = format!("{nanos:09}");
    format!("{}.{}s", d.as_secs(), fraction.trim_end_matches('0'))
}

/// Parses a google-duration exactly: digits, an optional fraction of up to 9 digits, then `s`.
pub fn parse_google_duration(text: &str) -> Option<Duration> {
    // The client's parser, so the simulator reads a duration exactly as the operator writes it.
    let nanos = crate::amapi::model::parse_google_duration_nanos(text)?;
    let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Parses a human duration from the fleet file or the admin API (`500ms`, `100s`, `2m`, `1h30m`,
/// and google-durations like `600s`). Negative durations are refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let parsed: SignedDuration = text
        .trim()
        .parse()
        .map_err(|e| format!("invalid duration {text:?} (try 500ms, 100s, 10m): {e}"))?;
    Duration::try_from(parsed).map_err(|_| format!("duration {text:?} must not be negative"))
}

/// Serde for a `Duration` written as text such as `500ms` (read) and `0.5s` (written).
pub mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::google_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_durations_round_trip() {
        assert_eq!(google_duration(Duration::from_secs(600)), "600s");
        assert_eq!(google_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(
            parse_google_duration("600s"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            parse_google_duration("0.25s"),
            Some(Duration::from_millis(250))
        );
        // Malformed text is the client parser's (tested there); too long for a Duration is ours.
        assert_eq!(parse_google_duration("10m"), None);
        assert_eq!(
            parse_google_duration("600.000000042s"),
            Some(Duration::new(600, 42))
        );
    }

    #[test]
    fn human_durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("100s"), Ok(Duration::from_secs(100)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("-1s").unwrap_err().contains("negative"));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn advancing_moves_now_forward() {
        let clock = Clock::default();
        let before = clock.now();
        clock.advance(Duration::from_secs(3600));
        assert!(clock.now().duration_since(before) >= SignedDuration::from_secs(3600));
        assert_eq!(clock.offset(), SignedDuration::from_secs(3600));
    }

    #[test]
    fn add_and_until() {
        let t = Timestamp::UNIX_EPOCH;
        let later = add(t, Duration::from_secs(5));
        assert_eq!(until(t, later), Duration::from_secs(5));
        assert_eq!(until(later, t), Duration::ZERO);
        assert_eq!(add(t, Duration::MAX), Timestamp::MAX);
    }
}
