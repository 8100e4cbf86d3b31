//! Where completion is pushed: the enterprises whose COMMAND notifications are known to reach this
//! operator (one arrived about a command a reset follows, and none has been missed since). Their
//! pending commands are polled only as a safety net; every other enterprise's on the polling
//! schedule. Evidence, not configuration: a subscription that pulls fine but carries none of an
//! enterprise's commands (its `pubsubTopic` unset, `COMMAND` not enabled, or another operator
//! acknowledging them first) never slows that enterprise's polls.
//!
//! Delivery is lost for an enterprise when a safety-net poll finds a finished command that no
//! notification brought, and for all when a pull fails; the resets then following commands there
//! are looked at again at once (`on_lost`), back on the polling schedule. A notification that
//! arrives later makes the enterprise pushed again.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::AtomicI64;

use prometheus_client::metrics::gauge::Gauge;

/// Told which enterprises (`enterprises/E`) lost delivery.
pub type OnLost = Box<dyn Fn(&[String]) + Send + Sync>;

pub struct Delivery {
    pushed: Mutex<HashSet<String>>,
    /// The number of pushed enterprises (`passcode_operator_completion_pushed`).
    gauge: Gauge<i64, AtomicI64>,
    on_lost: OnLost,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery::new(Gauge::default(), Box::new(|_| {}))
    }
}

impl Delivery {
    pub fn new(gauge: Gauge<i64, AtomicI64>, on_lost: OnLost) -> Self {
        gauge.set(0);
        Delivery {
            pushed: Mutex::default(),
            gauge,
            on_lost,
        }
    }

    /// The enterprise (`enterprises/E`) of an AMAPI name under it (a device, an operation).
    pub fn enterprise(name: &str) -> Option<&str> {
        let rest = name.strip_prefix("enterprises/")?;
        let id = rest.split('/').next().filter(|id| !id.is_empty())?;
        Some(&name[.."enterprises/".len() + id.len()])
    }

    /// Whether completion is pushed for the enterprise of `name`.
    pub fn is_pushed(&self, name: &str) -> bool {
        Self::enterprise(name).is_some_and(|e| self.lock().contains(e))
    }

    /// A COMMAND notification about `operation`, which a reset follows, arrived.
    pub fn arrived(&self, operation: &str) {
        if let Some(e) = Self::enterprise(operation) {
            let mut pushed = self.lock();
            pushed.insert(e.to_owned());
            self.gauge.set(pushed.len() as i64);
        }
    }

    /// A safety-net poll found `operation` finished with no notification about it.
    pub fn missed(&self, operation: &str) {
        let Some(e) = Self::enterprise(operation) else {
            return;
        };
        let removed = {
            let mut pushed = self.lock();
            let removed = pushed.remove(e);
            self.gauge.set(pushed.len() as i64);
            removed
        };
        if removed {
            (self.on_lost)(&[e.to_owned()]);
        }
    }

    /// Pulling failed: nothing is known to arrive any more.
    pub fn lost_all(&self) {
        let lost: Vec<String> = {
            let mut pushed = self.lock();
            let lost = pushed.drain().collect();
            self.gauge.set(0);
            lost
        };
        if !lost.is_empty() {
            (self.on_lost)(&lost);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.pushed.lock().expect("delivery")
    }
}

impl Drop for Delivery {
    /// A replica that stops leading pulls nothing: its gauge says so.
    fn drop(&mut self) {
        self.gauge.set(0);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const A1: &str = "enterprises/A/devices/d1/operations/1";
    const A2: &str = "enterprises/A/devices/d2/operations/2";
    const B1: &str = "enterprises/B/devices/d1/operations/1";

    type Lost = Arc<Mutex<Vec<Vec<String>>>>;

    fn delivery() -> (Delivery, Lost, Gauge<i64, AtomicI64>) {
        let lost = Arc::new(Mutex::new(Vec::new()));
        let gauge = Gauge::default();
        let seen = lost.clone();
        let d = Delivery::new(
            gauge.clone(),
            Box::new(move |e| seen.lock().unwrap().push(e.to_vec())),
        );
        (d, lost, gauge)
    }

    #[test]
    fn enterprises_are_read_from_names() {
        assert_eq!(Delivery::enterprise(A1), Some("enterprises/A"));
        assert_eq!(
            Delivery::enterprise("enterprises/LC01/devices/x"),
            Some("enterprises/LC01")
        );
        assert_eq!(
            Delivery::enterprise("enterprises/LC01"),
            Some("enterprises/LC01")
        );
        for bad in ["", "enterprises/", "enterprises//devices/x", "devices/x"] {
            assert_eq!(Delivery::enterprise(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn pushed_per_enterprise_on_evidence_only() {
        let (d, lost, gauge) = delivery();
        assert!(!d.is_pushed(A1), "nothing is pushed before a notification");
        d.arrived(A1);
        assert!(d.is_pushed(A2), "the enterprise, not the operation");
        assert!(!d.is_pushed(B1), "another enterprise publishes nothing yet");
        assert_eq!(gauge.get(), 1);
        d.arrived(B1);
        assert_eq!(gauge.get(), 2);
        d.missed(A2);
        assert!(!d.is_pushed(A1) && d.is_pushed(B1));
        assert_eq!(gauge.get(), 1);
        assert_eq!(
            *lost.lock().unwrap(),
            vec![vec!["enterprises/A".to_owned()]]
        );
        d.missed(A2);
        assert_eq!(lost.lock().unwrap().len(), 1, "lost once");
        d.arrived(A1);
        d.lost_all();
        assert!(!d.is_pushed(A1) && !d.is_pushed(B1));
        assert_eq!(gauge.get(), 0);
        let mut last = lost.lock().unwrap().last().unwrap().clone();
        last.sort();
        assert_eq!(last, ["enterprises/A", "enterprises/B"]);
        d.lost_all();
        assert_eq!(lost.lock().unwrap().len(), 2, "nothing left to lose");
    }

    #[test]
    fn a_dropped_delivery_leaves_the_gauge_at_zero() {
        let (d, _, gauge) = delivery();
        d.arrived(A1);
        assert_eq!(gauge.get(), 1);
        drop(d);
        assert_eq!(gauge.get(), 0);
    }
}
