//! One token bucket for every AMAPI call the process makes: AMAPI's quota is per Google Cloud
//! project, so concurrency inside the operator must not turn into a burst of 429s.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota};

#[derive(Clone)]
pub struct RateLimiter {
    bucket: Arc<DefaultDirectRateLimiter>,
    /// Follow-up polls of long-pending commands draw from this budget too (a share of the rate),
    /// and only when no call that moves a reset forward is waiting.
    followups: Arc<DefaultDirectRateLimiter>,
    /// Calls waiting for a token now.
    waiting: Arc<AtomicUsize>,
}

impl RateLimiter {
    /// `per_second` requests per second on average, bursts of up to `burst`; follow-up polls get
    /// at most `followup_share` of the rate (0 to 1).
    pub fn new(per_second: f64, burst: u32, followup_share: f64) -> RateLimiter {
        let per_second = if per_second.is_finite() && per_second > 0.0 {
            per_second
        } else {
            8.0
        };
        let share = if followup_share.is_finite() {
            followup_share.clamp(0.01, 1.0)
        } else {
            0.25
        };
        RateLimiter {
            bucket: Arc::new(bucket(per_second, burst)),
            // No burst: follow-ups are spread out evenly.
            followups: Arc::new(bucket(per_second * share, 1)),
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Waits for a token; returns how long it waited.
    pub async fn acquire(&self) -> Duration {
        let start = Instant::now();
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _done = Waited(&self.waiting);
        self.bucket.until_ready().await;
        start.elapsed()
    }

    /// Whether a follow-up poll may go now: nothing else is waiting for the rate limit and the
    /// follow-up budget has a token (taken). When not, the caller polls later instead of waiting.
    pub fn followup_allowed(&self) -> bool {
        self.waiting() == 0 && self.followups.check().is_ok()
    }

    /// Calls waiting for a token.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

fn bucket(per_second: f64, burst: u32) -> DefaultDirectRateLimiter {
    let period = Duration::from_secs_f64(1.0 / per_second).max(Duration::from_micros(1));
    let quota = Quota::with_period(period)
        .expect("non-zero period")
        .allow_burst(NonZeroU32::new(burst.max(1)).expect("non-zero burst"));
    DefaultDirectRateLimiter::direct(quota)
}

/// Counts a waiter out when its wait ends or is dropped.
struct Waited<'a>(&'a AtomicUsize);

impl Drop for Waited<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bursts_then_paces() {
        let limiter = RateLimiter::new(50.0, 3, 0.25);
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
            let _ = RateLimiter::new(rate, 0, rate);
        }
    }

    #[tokio::test]
    async fn follow_ups_yield_to_waiting_calls_and_keep_to_their_share() {
        let limiter = RateLimiter::new(100.0, 1, 0.1);
        // Idle: one follow-up, then the budget (10/s, no burst) says later.
        assert!(limiter.followup_allowed());
        assert!(!limiter.followup_allowed());
        tokio::time::sleep(Duration::from_millis(120)).await;
        // A call waiting for the rate limit goes first.
        limiter.acquire().await;
        let waiter = {
            let l = limiter.clone();
            tokio::spawn(async move { l.acquire().await })
        };
        while limiter.waiting() == 0 && !waiter.is_finished() {
            tokio::task::yield_now().await;
        }
        if limiter.waiting() > 0 {
            assert!(
                !limiter.followup_allowed(),
                "fresh work waits: no follow-up"
            );
        }
        waiter.await.unwrap();
        assert_eq!(limiter.waiting(), 0);
        assert!(limiter.followup_allowed(), "idle again, with a token");
    }
}
