//! Exponential backoff with full jitter, honouring `Retry-After`: the schedule for calls that are
//! safe to repeat.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based), given a server's `Retry-After` and a
    /// uniform random number in [0, 1). Full jitter spreads retries of many callers; a
    /// `Retry-After` is a floor, since asking earlier is refused again.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, random: f64) -> Duration {
        let exponent = retry.saturating_sub(1).min(20);
        let ceiling = self
            .base
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let jittered = ceiling.mul_f64(random.clamp(0.0, 1.0));
        match retry_after {
            Some(floor) => floor.max(jittered).min(self.max_delay.max(floor)),
            None => jittered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_up_to_the_cap() {
        let p = RetryPolicy::default();
        let top = |n| p.delay(n, None, 0.999_999);
        assert!(top(1) <= Duration::from_millis(100));
        assert!(top(2) > top(1) && top(3) > top(2));
        assert!(top(30) <= p.max_delay);
        assert_eq!(
            p.delay(5, None, 0.0),
            Duration::ZERO,
            "full jitter starts at zero"
        );
    }

    #[test]
    fn retry_after_is_a_floor() {
        let p = RetryPolicy::default();
        let d = p.delay(1, Some(Duration::from_secs(3)), 0.5);
        assert_eq!(d, Duration::from_secs(3));
        // A Retry-After longer than the usual cap is still honoured.
        let d = p.delay(1, Some(Duration::from_secs(60)), 0.5);
        assert_eq!(d, Duration::from_secs(60));
    }

    #[test]
    fn out_of_range_random_is_clamped() {
        let p = RetryPolicy::default();
        assert!(p.delay(3, None, 7.0) <= p.base * 4);
        assert_eq!(p.delay(3, None, -1.0), Duration::ZERO);
    }
}
