//! The claims this process has written (or tried to) and what it did with them. Two things only
//! this process can know, and only until it stops:
//!
//! - a claim write whose answer was lost may or may not have landed: until a fresh read tells, the
//!   device's turn stays with that reset, so no other reset of the device claims meanwhile;
//! - a claim it wrote but never sent a command for can be sent (or released) safely: nobody else
//!   sends for a claim they did not write.
//!
//! Everything else about the device's turn comes from the cluster (the watch cache): an entry is
//! dropped as soon as the cache has moved past the write it stands for, so nothing here can block
//! a device for longer than the cache takes to catch up.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::api::PasscodeReset;

/// What became of a claim write.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    /// Sent to the API server, no answer yet.
    InFlight,
    /// The API server took it: the reset's resourceVersion after the write.
    Landed(String),
    /// No answer (or an error that does not say it failed): it may have landed.
    Unknown,
}

#[derive(Debug, Clone)]
struct Claim {
    /// `namespace/name`.
    key: String,
    device: String,
    /// The claim's fingerprint (`claimedCommand.duration`): tells this claim from any other.
    fingerprint: String,
    written: Written,
    /// issueCommand was (or may have been) sent for it.
    sent: bool,
}

/// What this process knows of a reset's claim, for the reset's own reconcile.
#[derive(Debug, Clone, PartialEq)]
pub enum Known {
    /// Nothing: no claim written here, or it was sent.
    Nothing,
    /// Written here with this fingerprint and never sent: if it landed, this process may send.
    Unsent { fingerprint: String },
    /// Written here with this fingerprint and sent for.
    Sent { fingerprint: String },
}

/// This process's claims, by reset uid.
#[derive(Default)]
pub struct Claims(Mutex<HashMap<String, Claim>>);

impl Claims {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Claim>> {
        self.0.lock().expect("claims")
    }

    /// Registers a claim about to be written. False when another reset of the device holds the
    /// turn here (its claim write may have landed).
    pub fn begin(
        &self,
        reset: &PasscodeReset,
        fingerprint: &str,
        cached: impl Fn(&str, &str) -> Option<std::sync::Arc<PasscodeReset>>,
    ) -> bool {
        // Checked and registered under one lock: two resets of a device reconciled at once
        // cannot both pass.
        let mut map = self.map();
        // This reset's own earlier claim, which the cache this reconcile read may not show.
        if map.contains_key(&uid(reset)) {
            return false;
        }
        if holder_in(&mut map, reset, cached).is_some() {
            return false;
        }
        map.insert(
            uid(reset),
            Claim {
                key: key(reset),
                device: reset.spec.device.clone(),
                fingerprint: fingerprint.to_owned(),
                written: Written::InFlight,
                sent: false,
            },
        );
        true
    }

    /// The answer to the claim write.
    pub fn written(&self, reset: &PasscodeReset, written: Written) {
        if let Some(c) = self.map().get_mut(&uid(reset)) {
            c.written = written;
        }
    }

    /// issueCommand is about to be sent for the reset's claim.
    pub fn sending(&self, reset: &PasscodeReset) {
        if let Some(c) = self.map().get_mut(&uid(reset)) {
            c.sent = true;
        }
    }

    /// The reset's claim is settled (released, recorded, ended): forget it.
    pub fn end(&self, reset: &PasscodeReset) {
        self.map().remove(&uid(reset));
    }

    /// What this process knows of `reset`'s claim: `Unsent` for a claim written here and never
    /// sent for, `Sent` for one it sent for, `Nothing` otherwise.
    pub fn known(&self, reset: &PasscodeReset) -> Known {
        match self.map().get(&uid(reset)) {
            Some(c) if c.written == Written::InFlight => Known::Nothing,
            Some(c) if !c.sent => Known::Unsent {
                fingerprint: c.fingerprint.clone(),
            },
            Some(c) => Known::Sent {
                fingerprint: c.fingerprint.clone(),
            },
            None => Known::Nothing,
        }
    }

    /// issueCommand answered that it certainly created nothing: the claim is unsent again.
    pub fn not_sent(&self, reset: &PasscodeReset) {
        if let Some(c) = self.map().get_mut(&uid(reset)) {
            c.sent = false;
        }
    }

    /// Whether a fresh read is needed to tell whether `reset`'s claim write landed.
    pub fn in_doubt(&self, reset: &PasscodeReset) -> bool {
        self.map()
            .get(&uid(reset))
            .is_some_and(|c| c.written == Written::Unknown)
    }

    /// Another reset of `reset`'s device with a claim written (or being written) here. A version
    /// in the cache says little (the claim may be newer than it), so a claim holds the turn until
    /// the cache shows its reset finished or gone; those entries are dropped.
    pub fn holder(
        &self,
        reset: &PasscodeReset,
        cached: impl Fn(&str, &str) -> Option<std::sync::Arc<PasscodeReset>>,
    ) -> Option<String> {
        holder_in(&mut self.map(), reset, cached)
    }

    /// Claims this process holds, for the `commands_in_flight` gauge.
    pub fn count(&self) -> usize {
        self.map().len()
    }
}

/// [`Claims::holder`] on the locked map.
fn holder_in(
    map: &mut HashMap<String, Claim>,
    reset: &PasscodeReset,
    cached: impl Fn(&str, &str) -> Option<std::sync::Arc<PasscodeReset>>,
) -> Option<String> {
    let me = uid(reset);
    let mut holders = Vec::new();
    map.retain(|u, c| {
        if *u == me || c.device != reset.spec.device {
            return true;
        }
        if c.written == Written::InFlight {
            holders.push(c.key.clone());
            return true;
        }
        // Held until the reset ends (its own reconcile ends a claim it finds refuted or
        // released); a reset the cache no longer holds, or shows finished, holds nothing.
        let (namespace, name) = c.key.split_once('/').unwrap_or(("", &c.key));
        match cached(namespace, name) {
            Some(r) if uid(&r) == *u && !r.phase().is_terminal() => {
                holders.push(c.key.clone());
                true
            }
            _ => false,
        }
    });
    holders.into_iter().min()
}

fn uid(r: &PasscodeReset) -> String {
    r.metadata.uid.clone().unwrap_or_else(|| key(r))
}

fn key(r: &PasscodeReset) -> String {
    format!(
        "{}/{}",
        r.metadata.namespace.as_deref().unwrap_or(""),
        r.metadata.name.as_deref().unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn reset(name: &str, uid: &str, rv: &str) -> PasscodeReset {
        serde_json::from_value(json!({
            "apiVersion": "amapi.passcode-operator.io/v1alpha1",
            "kind": "PasscodeReset",
            "metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": rv},
            "spec": {"device": "enterprises/E/devices/d"},
        }))
        .unwrap()
    }

    fn finished(name: &str, uid: &str) -> PasscodeReset {
        let mut r = reset(name, uid, "9");
        r.status = Some(crate::api::PasscodeResetStatus {
            phase: Some(crate::api::Phase::Succeeded),
            ..Default::default()
        });
        r
    }

    #[test]
    fn a_claim_holds_the_turn_until_its_reset_ends_or_goes() {
        let claims = Claims::default();
        let r = reset("r", "u1", "5");
        let other = reset("o", "u2", "9");
        // The cache may show any version of r (the claim can be newer than it): r holds.
        let cached = |_: &str, n: &str| (n == "r").then(|| Arc::new(reset("r", "u1", "3")));
        assert!(claims.begin(&r, "600.1s", cached));
        assert_eq!(claims.holder(&other, cached), Some("ns/r".into()));
        claims.written(&r, Written::Unknown);
        assert!(claims.in_doubt(&r));
        assert_eq!(claims.holder(&other, cached), Some("ns/r".into()));
        assert!(!claims.begin(&other, "600.2s", cached));
        claims.written(&r, Written::Landed("6".into()));
        assert_eq!(claims.holder(&other, cached), Some("ns/r".into()));
        // Finished in the cache: no longer held, and forgotten.
        let done = |_: &str, n: &str| (n == "r").then(|| Arc::new(finished("r", "u1")));
        assert_eq!(claims.holder(&other, done), None);
        assert_eq!(claims.count(), 0);
        // Gone from the cache (deleted), or re-created under another uid: nothing held.
        assert!(claims.begin(&r, "600.3s", |_: &str, _: &str| None));
        // While the write is in flight it holds whatever the cache shows.
        assert_eq!(
            claims.holder(&other, |_: &str, _: &str| None),
            Some("ns/r".into())
        );
        claims.written(&r, Written::Landed("7".into()));
        assert_eq!(claims.holder(&other, |_: &str, _: &str| None), None);
        assert!(claims.begin(&r, "600.4s", |_: &str, _: &str| None));
        claims.written(&r, Written::Unknown);
        let twin = |_: &str, n: &str| (n == "r").then(|| Arc::new(reset("r", "u9", "1")));
        assert_eq!(claims.holder(&other, twin), None);
    }

    #[test]
    fn a_reset_does_not_claim_over_its_own_earlier_claim() {
        let claims = Claims::default();
        let r = reset("r", "u1", "5");
        assert!(claims.begin(&r, "600.1s", |_: &str, _: &str| None));
        claims.written(&r, Written::Landed("6".into()));
        assert_eq!(
            claims.known(&r),
            Known::Unsent {
                fingerprint: "600.1s".into()
            }
        );
        // A reconcile from a stale cache (no claim shown yet) is refused.
        assert!(!claims.begin(&r, "600.2s", |_: &str, _: &str| None));
        claims.end(&r);
        assert!(claims.begin(&r, "600.2s", |_: &str, _: &str| None));
    }

    #[test]
    fn a_sent_claim_is_never_sent_again() {
        let claims = Claims::default();
        let r = reset("r", "u1", "5");
        assert!(claims.begin(&r, "f", |_: &str, _: &str| None));
        claims.written(&r, Written::Landed("6".into()));
        claims.sending(&r);
        assert_eq!(
            claims.known(&r),
            Known::Sent {
                fingerprint: "f".into()
            }
        );
        claims.not_sent(&r);
        assert!(matches!(claims.known(&r), Known::Unsent { .. }));
        claims.end(&r);
        assert_eq!(claims.count(), 0);
    }
}
