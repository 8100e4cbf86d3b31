//! Hooks through which the client reports what it did, for metrics. The client knows nothing of
//! Prometheus; the operator plugs its registry in here.

use std::time::Duration;

pub trait Observer: Send + Sync {
    /// One finished call: the AMAPI method (e.g. `devices.get`), its outcome (`ok`, `transient`,
    /// `terminal`, `ambiguous`, `auth`) and how long it took, retries included.
    fn call(&self, method: &'static str, outcome: &'static str, latency: Duration);
    /// Time spent waiting for the client-side rate limiter.
    fn rate_limited(&self, waited: Duration);
}

/// Reports nothing.
pub struct NoopObserver;

impl Observer for NoopObserver {
    fn call(&self, _: &'static str, _: &'static str, _: Duration) {}
    fn rate_limited(&self, _: Duration) {}
}
