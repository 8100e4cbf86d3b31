//! What the watch cache keeps of resets. Finished resets pile up (they are the audit record), and
//! a settled one is never acted on again: deciding on it does nothing. So settled resets leave the
//! cache (a restart with many stored resets neither holds nor reconciles them), and the rest is
//! cached without the parts the operator never reads. Each watch event brings the whole object,
//! so a reset that stops being settled (its spec edited, being deleted) comes back into the cache
//! and is reconciled. The one thing other resets need from a settled one, the operation it
//! recorded (so recovery never takes that command for its own), is kept in [`SettledOperations`].

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::watcher::Event;

use crate::admission::seal::{APPROVAL_ANNOTATION, REQUESTER_ANNOTATION};
use crate::api::PasscodeReset;
use crate::reconcile::reset::decide::{FINALIZER, secret_to_delete};

/// Finished, any spec edit already noted, no in-flight finalizer, not being deleted, no Secret
/// left to delete: nothing more will be done with it (`decide` is tested to do nothing for such a reset).
pub fn settled(r: &PasscodeReset) -> bool {
    let Some(status) = &r.status else {
        return false;
    };
    status.phase.is_some_and(|p| p.is_terminal())
        && status.observed_generation == r.metadata.generation
        && r.metadata.deletion_timestamp.is_none()
        && !r.finalizers().iter().any(|f| f == FINALIZER)
        && secret_to_delete(r).is_none()
}

/// Per device, the operations recorded by its most recently issued settled resets. Recovery only
/// has to tell apart commands sent around one claim, and resets of a device run one after the
/// other, so the last few by issue time are enough (the initial list does not come in time order).
/// Those of resets deleted before the operator started are not known; see the README.
#[derive(Default)]
pub struct SettledOperations(Mutex<HashMap<String, Vec<Settled>>>);

/// An operation and when it was issued.
type Settled = (Option<Timestamp>, String);

/// Operations kept per device.
const KEPT_PER_DEVICE: usize = 8;

impl SettledOperations {
    fn note(&self, r: &PasscodeReset) {
        let Some(status) = &r.status else {
            return;
        };
        let Some(operation) = status.operation.clone() else {
            return;
        };
        let issued = status.issued_at.as_ref().map(|t| t.0);
        let mut map = self.0.lock().expect("settled operations");
        let kept = map.entry(r.spec.device.clone()).or_default();
        if kept.iter().any(|(_, op)| *op == operation) {
            return;
        }
        kept.push((issued, operation));
        if kept.len() > KEPT_PER_DEVICE {
            // None sorts first: an operation without an issue time goes before any with one.
            kept.sort();
            kept.remove(0);
        }
    }

    /// The operations of settled resets of `device`.
    pub fn of(&self, device: &str) -> Vec<String> {
        let map = self.0.lock().expect("settled operations");
        map.get(device)
            .map(|k| k.iter().map(|(_, op)| op.clone()).collect())
            .unwrap_or_default()
    }
}

/// A watch event as the cache should see it: a settled reset is removed from the cache (or, while
/// listing, never added) and its operation noted; other objects lose the fields never read here.
pub fn for_cache(
    event: Event<PasscodeReset>,
    operations: &SettledOperations,
) -> Option<Event<PasscodeReset>> {
    if let Event::Apply(r) | Event::InitApply(r) = &event
        && settled(r)
    {
        operations.note(r);
    }
    match event {
        Event::Apply(r) if settled(&r) => Some(Event::Delete(r)),
        Event::InitApply(r) if settled(&r) => None,
        Event::Apply(r) => Some(Event::Apply(slim(r))),
        Event::InitApply(r) => Some(Event::InitApply(slim(r))),
        other => Some(other),
    }
}

/// managedFields were most of a decoded object, and kubectl's last-applied-configuration
/// annotation repeats the whole spec; neither is read here. Only the admission records (who
/// asked, who decided) are kept of the annotations.
fn slim(mut r: PasscodeReset) -> PasscodeReset {
    r.metadata.managed_fields = None;
    if let Some(a) = r.metadata.annotations.as_mut() {
        a.retain(|k, _| k == REQUESTER_ANNOTATION || k == APPROVAL_ANNOTATION);
        if a.is_empty() {
            r.metadata.annotations = None;
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Phase, Reason};
    use serde_json::json;

    fn reset(status: serde_json::Value, finalizers: &[&str], deleting: bool) -> PasscodeReset {
        let mut r: PasscodeReset = serde_json::from_value(json!({
            "apiVersion": "amapi.passcode-operator.io/v1alpha1",
            "kind": "PasscodeReset",
            "metadata": {"name": "r", "namespace": "ns", "generation": 1,
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                         "managedFields": [{"manager": "kubectl"}]},
            "spec": {"device": "enterprises/LC01/devices/d1"},
            "status": status,
        }))
        .unwrap();
        r.metadata.finalizers = Some(finalizers.iter().map(|f| f.to_string()).collect());
        if deleting {
            r.metadata.deletion_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    "2026-11-23T10:00:00Z".parse().unwrap(),
                ));
        }
        r
    }

    fn finished(generation: i64) -> serde_json::Value {
        json!({"phase": "Succeeded", "reason": "PasscodeReset", "observedGeneration": generation})
    }

    #[test]
    fn settled_resets_leave_the_cache() {
        let ops = SettledOperations::default();
        let mut r = reset(finished(1), &[], false);
        r.status.as_mut().unwrap().operation =
            Some("enterprises/LC01/devices/d1/operations/1".into());
        assert!(settled(&r));
        assert!(matches!(
            for_cache(Event::Apply(r.clone()), &ops),
            Some(Event::Delete(_))
        ));
        assert!(for_cache(Event::InitApply(r.clone()), &ops).is_none());
        // Its operation is remembered once, for recovery of the device's other resets.
        assert_eq!(
            ops.of("enterprises/LC01/devices/d1"),
            ["enterprises/LC01/devices/d1/operations/1"]
        );
        // The latest by issue time are kept, whatever order the events come in (the initial list
        // is in name order).
        for i in (2..20).rev() {
            let status = r.status.as_mut().unwrap();
            status.operation = Some(format!("enterprises/LC01/devices/d1/operations/{i}"));
            status.issued_at = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                format!("2026-11-23T10:{i:02}:00Z").parse().unwrap(),
            ));
            for_cache(Event::Apply(r.clone()), &ops);
        }
        let kept = ops.of("enterprises/LC01/devices/d1");
        assert_eq!(kept.len(), KEPT_PER_DEVICE);
        assert!(kept.contains(&"enterprises/LC01/devices/d1/operations/19".to_owned()));
        assert!(!kept.contains(&"enterprises/LC01/devices/d1/operations/11".to_owned()));
        assert!(ops.of("enterprises/LC01/devices/other").is_empty());
    }

    #[test]
    fn resets_with_something_left_to_do_stay_whole() {
        let cases = [
            reset(
                json!({"phase": "Pending", "reason": "AwaitingDevice", "observedGeneration": 1}),
                &[],
                false,
            ),
            reset(json!({}), &[], false),
            // Finished, but the spec was edited since (noted by the next reconcile).
            reset(finished(0), &[], false),
            // Finished with the in-flight finalizer still to remove.
            reset(finished(1), &[FINALIZER], false),
            reset(finished(1), &[], true),
        ];
        for r in cases {
            assert!(!settled(&r), "{:?}", r.status);
            let ops = SettledOperations::default();
            let Some(Event::Apply(cached)) = for_cache(Event::Apply(r.clone()), &ops) else {
                panic!("{:?} left the cache", r.status)
            };
            assert_eq!(cached.status, r.status);
            assert_eq!(cached.spec, r.spec);
            assert!(cached.metadata.managed_fields.is_none());
            assert!(cached.metadata.annotations.is_none());
            assert!(matches!(
                for_cache(Event::InitApply(r), &ops),
                Some(Event::InitApply(_))
            ));
            assert!(ops.of("enterprises/LC01/devices/d1").is_empty());
        }
        // Another finalizer (someone else's) does not keep a finished reset in the cache.
        assert!(settled(&reset(finished(1), &["example.com/keep"], false)));
        let _ = (Phase::Succeeded, Reason::PasscodeReset);
    }
}
