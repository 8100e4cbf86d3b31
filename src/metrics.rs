//! Prometheus metrics (prometheus-client). Labels are closed vocabularies (phases, reasons, AMAPI
//! methods, outcomes): never names, devices or anything a user typed, and never the passcode.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::amapi::Observer;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub resource: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    pub resource: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransitionLabels {
    pub phase: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub method: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub reconcile_duration: Family<ResourceLabels, Histogram>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub notifications: Family<OutcomeLabels, Counter>,
    pub reset_transitions: Family<TransitionLabels, Counter>,
    pub commands_in_flight: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub amapi_calls: Family<CallLabels, Counter>,
    pub amapi_latency: Family<MethodLabels, Histogram>,
    pub rate_limit_wait: Counter<f64, AtomicU64>,
    pub leader: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub resets_past_expiry: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub completion_pushed: Gauge<i64, std::sync::atomic::AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("passcode_operator");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by resource and result",
            reconciles.clone(),
        );
        let reconcile_duration = Family::<ResourceLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.5, 12))
        });
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile",
            reconcile_duration.clone(),
        );
        let reset_transitions = Family::<TransitionLabels, Counter>::default();
        registry.register(
            "reset_transitions",
            "PasscodeReset status transitions by phase and reason",
            reset_transitions.clone(),
        );
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by kind (conflict, kubernetes, invariant, unsettled)",
            reconcile_errors.clone(),
        );
        let notifications = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "notifications",
            "AMAPI COMMAND notifications pulled, by outcome (matched, pending, already_finished, unknown_operation, other_type, malformed, pull_error)",
            notifications.clone(),
        );
        let commands_in_flight = Gauge::default();
        registry.register(
            "commands_in_flight",
            "Reset commands issued and not yet finished",
            commands_in_flight.clone(),
        );
        let amapi_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "amapi_calls",
            "AMAPI calls by method and outcome",
            amapi_calls.clone(),
        );
        let amapi_latency = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 12))
        });
        registry.register(
            "amapi_call_duration_seconds",
            "AMAPI call latency, retries included",
            amapi_latency.clone(),
        );
        let rate_limit_wait = Counter::<f64, AtomicU64>::default();
        registry.register(
            "amapi_rate_limit_wait_seconds",
            "Time spent waiting for the client-side AMAPI rate limiter",
            rate_limit_wait.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader lease",
            leader.clone(),
        );
        let resets_past_expiry = Gauge::default();
        registry.register(
            "resets_past_expiry",
            "Resets not finished whose command's expiresAt has passed, as the cache shows them",
            resets_past_expiry.clone(),
        );
        let completion_pushed = Gauge::default();
        registry.register(
            "completion_pushed",
            "Enterprises whose COMMAND notifications are known to arrive (their pending commands are polled only as a safety net)",
            completion_pushed.clone(),
        );
        // Series alerted on exist from the start at 0, so their first increase is seen (a
        // series that appears at 1 has no increase to a query).
        reset_transitions
            .get_or_create(&TransitionLabels {
                phase: "Failed",
                reason: "OutcomeUnknown",
            })
            .inc_by(0);
        for kind in crate::reconcile::Error::LABELS {
            reconcile_errors
                .get_or_create(&ErrorLabels { kind })
                .inc_by(0);
        }
        Metrics {
            registry,
            reconciles,
            reconcile_duration,
            reconcile_errors,
            notifications,
            reset_transitions,
            commands_in_flight,
            amapi_calls,
            amapi_latency,
            rate_limit_wait,
            leader,
            resets_past_expiry,
            completion_pushed,
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }

    /// The notification outcomes alerted on, at 0 once a subscription is configured.
    pub fn notifications_configured(&self) {
        for outcome in ["pull_error", "malformed"] {
            self.notifications
                .get_or_create(&OutcomeLabels { outcome })
                .inc_by(0);
        }
    }

    pub fn notification(&self, outcome: &'static str) {
        self.notifications
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn reconcile_error(&self, kind: &'static str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels { kind })
            .inc();
    }

    pub fn reconciled(&self, resource: &'static str, ok: bool, took: Duration) {
        let result = if ok { "ok" } else { "error" };
        self.reconciles
            .get_or_create(&ReconcileLabels { resource, result })
            .inc();
        self.reconcile_duration
            .get_or_create(&ResourceLabels { resource })
            .observe(took.as_secs_f64());
    }
}

/// The AMAPI client reports into these metrics.
pub struct AmapiMetrics(pub Arc<Metrics>);

impl Observer for AmapiMetrics {
    fn call(&self, method: &'static str, outcome: &'static str, latency: Duration) {
        self.0
            .amapi_calls
            .get_or_create(&CallLabels { method, outcome })
            .inc();
        self.0
            .amapi_latency
            .get_or_create(&MethodLabels { method })
            .observe(latency.as_secs_f64());
    }

    fn rate_limited(&self, waited: Duration) {
        self.0.rate_limit_wait.inc_by(waited.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_family() {
        let m = Metrics::new();
        m.reconciled("passcodereset", true, Duration::from_millis(3));
        m.reconcile_error("invariant");
        m.notification("matched");
        AmapiMetrics(Arc::new(Metrics::new())).call("devices.get", "ok", Duration::from_millis(1));
        m.reset_transitions
            .get_or_create(&TransitionLabels {
                phase: "Succeeded",
                reason: "PasscodeReset",
            })
            .inc();
        let text = m.encode();
        for name in [
            "passcode_operator_reconciles_total{resource=\"passcodereset\",result=\"ok\"} 1",
            "passcode_operator_reconcile_duration_seconds_bucket",
            "passcode_operator_reset_transitions_total{phase=\"Succeeded\",reason=\"PasscodeReset\"} 1",
            "passcode_operator_commands_in_flight",
            "passcode_operator_reconcile_errors_total{kind=\"invariant\"} 1",
            "passcode_operator_notifications_total{outcome=\"matched\"} 1",
            "passcode_operator_amapi_rate_limit_wait_seconds_total",
            "passcode_operator_leader",
            "passcode_operator_resets_past_expiry 0",
            "passcode_operator_reset_transitions_total{phase=\"Failed\",reason=\"OutcomeUnknown\"} 0",
            "passcode_operator_reconcile_errors_total{kind=\"conflict\"} 0",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }
}
