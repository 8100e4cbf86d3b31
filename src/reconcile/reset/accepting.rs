//! Who writes a new reset's first status (`Pending/Validating`): the acceptor (which gives every
//! reset waiting in the queue a status within a moment) or the reset's own reconcile, when it gets
//! there first; never both at once, and what one wrote the other takes instead of its stale view.
//! Two writers of one resourceVersion cost the loser a conflict (and a reconcile a fresh GET and
//! a second pass: a burst of 1,000 lost 452 such races).
//!
//! Both writes are conditional on the resourceVersion, so this is about cost, not safety: a race
//! it misses (another replica's, or a reconcile starting while the acceptor's write is in flight)
//! is still only a conflict.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::api::PasscodeReset;

#[derive(Default)]
pub struct Accepting(Mutex<Inner>);

#[derive(Default)]
struct Inner {
    /// uids whose first status is being written.
    writing: HashSet<String>,
    /// uid → the resourceVersion a first-status write was made over, and the reset as the write
    /// left it; until the cache shows a status.
    landed: HashMap<String, (String, Arc<PasscodeReset>)>,
}

/// What a reconcile does about its view's missing first status.
pub enum FirstStatus<'a> {
    /// One landed over exactly this view: go on from the reset as it left it.
    Landed(Arc<PasscodeReset>),
    /// Write it (the guard says it is being written).
    Write(Writing<'a>),
    /// The acceptor is writing it now: go on without (the next write may conflict).
    Busy,
}

impl Accepting {
    /// For a reconcile whose view of `uid` at `version` has no status.
    pub fn first_status(&self, uid: &str, version: &str) -> FirstStatus<'_> {
        let mut inner = self.lock();
        if let Some(landed) = inner.landed_over(uid, version) {
            return FirstStatus::Landed(landed);
        }
        if !inner.writing.insert(uid.to_owned()) {
            return FirstStatus::Busy;
        }
        FirstStatus::Write(self.writing(uid, version))
    }

    /// The acceptor takes `uid`'s first status over `version`; None while a reconcile writes it
    /// or once one landed over that version (the cache is behind).
    pub fn acceptor_begins(&self, uid: &str, version: &str) -> Option<Writing<'_>> {
        let mut inner = self.lock();
        if inner.landed_over(uid, version).is_some() || !inner.writing.insert(uid.to_owned()) {
            return None;
        }
        Some(self.writing(uid, version))
    }

    /// Whether a first status landed over `uid` at `version`.
    pub fn landed(&self, uid: &str, version: &str) -> bool {
        self.lock().landed_over(uid, version).is_some()
    }

    /// Forgets the resets `keep` no longer wants (the cache shows their status, or they are gone).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.lock().landed.retain(|uid, _| keep(uid));
    }

    fn writing(&self, uid: &str, version: &str) -> Writing<'_> {
        Writing {
            accepting: self,
            uid: uid.to_owned(),
            over: version.to_owned(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    /// Only over exactly that version: a view at any other (a status cleared since, say) is not
    /// the one the write superseded.
    fn landed_over(&self, uid: &str, version: &str) -> Option<Arc<PasscodeReset>> {
        self.landed
            .get(uid)
            .filter(|(over, _)| over == version)
            .map(|(_, r)| r.clone())
    }
}

/// One first-status write in progress; ends when dropped (also when its future is).
pub struct Writing<'a> {
    accepting: &'a Accepting,
    uid: String,
    /// The resourceVersion written over.
    over: String,
}

impl Writing<'_> {
    /// The write landed: this is the reset as it left it.
    pub fn landed(self, reset: &PasscodeReset) {
        let landed = (self.over.clone(), Arc::new(reset.clone()));
        self.accepting
            .lock()
            .landed
            .insert(self.uid.clone(), landed);
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.accepting.lock().writing.remove(&self.uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reset(rv: &str) -> PasscodeReset {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "amapi.passcode-operator.io/v1alpha1",
            "kind": "PasscodeReset",
            "metadata": {"name": "r", "resourceVersion": rv},
            "spec": {"device": "enterprises/E1/devices/d1"},
        }))
        .expect("a reset")
    }

    fn write(a: &Accepting, uid: &str, version: &str) -> bool {
        matches!(a.first_status(uid, version), FirstStatus::Write(_))
    }

    #[test]
    fn one_writer_at_a_time() {
        let a = Accepting::default();
        let FirstStatus::Write(w) = a.first_status("u1", "1") else {
            panic!("free")
        };
        assert!(a.acceptor_begins("u1", "1").is_none());
        assert!(matches!(a.first_status("u1", "1"), FirstStatus::Busy));
        assert!(
            a.acceptor_begins("u2", "1").is_some(),
            "another reset is free"
        );
        drop(w);
        assert!(
            a.acceptor_begins("u1", "1").is_some(),
            "free again: the write failed"
        );
    }

    #[test]
    fn what_landed_over_the_view_is_taken_instead_of_written_again() {
        let a = Accepting::default();
        a.acceptor_begins("u1", "1")
            .expect("free")
            .landed(&reset("2"));
        let FirstStatus::Landed(r) = a.first_status("u1", "1") else {
            panic!("landed over version 1")
        };
        assert_eq!(r.metadata.resource_version.as_deref(), Some("2"));
        assert!(
            a.acceptor_begins("u1", "1").is_none(),
            "the cache is behind"
        );
        a.retain(|_| false);
        assert!(!a.landed("u1", "1"));
    }

    #[test]
    fn a_view_newer_than_what_landed_is_written_again() {
        // The first status landed at 2, then a user cleared it (3): the landed reset is older
        // than the view, so neither side may use it.
        let a = Accepting::default();
        a.acceptor_begins("u1", "1")
            .expect("free")
            .landed(&reset("2"));
        assert!(write(&a, "u1", "3"));
        assert!(a.acceptor_begins("u1", "3").is_some());
    }

    #[test]
    fn a_failed_acceptor_write_is_retried_while_its_reconcile_waits() {
        // The reconcile left the first status to an acceptor write that then failed: nothing
        // holds the reset, so the acceptor's retry goes ahead.
        let a = Accepting::default();
        let first = a.acceptor_begins("u1", "1").expect("free");
        assert!(matches!(a.first_status("u1", "1"), FirstStatus::Busy));
        drop(first);
        assert!(a.acceptor_begins("u1", "1").is_some());
    }
}
