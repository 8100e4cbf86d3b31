//! One token bucket for every AMAPI call the process makes: AMAPI's quota is per Google Cloud
//! project, so concurrency inside the operator must not turn into a burst of 429s.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota};

#[derive(Clone)]
pub struct RateLimiter {
    bucket: Arc<DefaultDirectRateLimiter>,
}

impl RateLimiter {
    /// `per_second` requests per second on average, bursts of up to `burst`.
    pub fn new(per_second: f64, burst: u32) -> RateLimiter {
        let per_second = if per_second.is_finite() && per_second > 0.0 {
            per_second
        } else {
            8.0
        };
        let period = Duration::from_secs_f64(1.0 / per_second).max(Duration::from_micros(1));
        let quota = Quota::with_period(period)
            .expect("non-zero period")
            .allow_burst(NonZeroU32::new(burst.max(1)).expect("non-zero burst"));
        RateLimiter {
            bucket: Arc::new(DefaultDirectRateLimiter::direct(quota)),
        }
    }

    /// Waits for a token; returns how long it waited.
    pub async fn acquire(&self) -> Duration {
        let start = Instant::now();
        self.bucket.until_ready().await;
        start.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bursts_then_paces() {
        let limiter = RateLimiter::new(50.0, 3);
        for _ in 0..3 {
            assert!(
                limiter.acquire().await < Duration::from_millis(5),
                "burst is immediate"
            );
        }
        // The fourth waits for a token: about 20 ms at 50/s.
        assert!(limiter.acquire().await >= Duration::from_millis(10));
    }

    #[test]
    fn nonsense_rates_fall_back_to_the_default() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let _ = RateLimiter::new(rate, 0);
        }
    }
}
