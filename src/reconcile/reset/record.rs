//! The record of a reset name, kept in the operator's own namespace where it outlives the
//! PasscodeReset. GitOps self-heal (or a revert, or two applications fighting over one name)
//! re-creates a deleted reset as a new object with the same name; without a record that object
//! would run again and reset a passcode the user may since have changed. One ConfigMap per
//! `namespace/name` lists every run of that name: the uid and spec of each object that set out to
//! send a command. It is written before the claim; `create` and `replace` with a resourceVersion
//! are atomic, so one answer tells a first run from a re-created twin, also across replicas.
//!
//! This file is pure: what a record says and how it changes. The reads and writes are the
//! shell's (see `edges`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::ObjectMeta;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::admission::seal::{Admission, Approval, Requester};
use crate::api::{Decision, PasscodeReset, PasscodeResetStatus, Reason, UserInfo};

/// Marks the operator's records (`kubectl get configmaps -l amapi.passcode-operator.io/record`).
pub const RECORD_LABEL: &str = "amapi.passcode-operator.io/record";
/// The reset's namespace, for selecting the records of one namespace.
pub const NAMESPACE_LABEL: &str = "amapi.passcode-operator.io/reset-namespace";

/// Why a reconcile working from a stale view of its reset does not record it.
pub const STALE_VIEW: &str = "the reset changed since this view of it was read (its record lists a later spec); looking again";

/// Runs one record keeps. A name used for more different resets than this ends `RecordFull`
/// rather than forget an old run (which could then run twice).
pub const MAX_RUNS: usize = 32;

/// One object that set out to send a command under the record's name.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub uid: String,
    /// The spec as JSON; `None` when it could not be read (counts as any spec: not twice).
    pub spec: Option<serde_json::Value>,
    pub claimed_at: String,
    /// The object's `metadata.generation` the spec was read at: a reconcile working from an
    /// older view (a stale cache) must not put its older spec back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Who created it, as the admission webhook recorded (absent: unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<UserInfo>,
    /// Who approved it, when its scope required approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<UserInfo>,
}

/// The answer to recording a reset before its claim.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// The record lists this reset: just written, or by an earlier attempt of this object.
    Ours,
    /// An earlier object with this namespace, name and spec was recorded (so possibly acted on)
    /// and has since been deleted.
    Earlier {
        uid: String,
        claimed_at: String,
        /// `namespace/name` of the record, for the message that says how to allow a rerun.
        record: String,
    },
    /// The record already lists [`MAX_RUNS`] runs of this name, none with this spec.
    Full { record: String },
    /// The record could not be read or written; nothing may be claimed yet.
    Unavailable(String),
}

/// What an existing record means for a reset.
#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    /// Lists this reset with its spec.
    Ours,
    /// Lists this reset with an older spec (edited before its claim, possible without CEL): the
    /// run is updated, so a later twin of the edited spec is recognised.
    OursStale,
    /// Lists this reset with another spec of the same or a later generation than the one read:
    /// this view of the reset is stale (an old cache). Nothing is written; look again.
    Stale,
    /// Lists an earlier object with the same spec.
    Earlier { uid: String, claimed_at: String },
    /// Lists only other specs: this is a new reset reusing the name, and is added.
    New,
    /// New, but the record is full.
    Full,
    /// A ConfigMap with the record's name that the operator did not write.
    Foreign,
}

/// The record's ConfigMap name: a digest, since `namespace/name` may exceed a name's 253 bytes.
pub fn record_name(namespace: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{namespace}/{name}").as_bytes());
    let hex = format!("{digest:x}");
    format!("pcr-{}", &hex[..40])
}

/// The run `reset` adds, claimed at `claimed_at` (RFC 3339). Holds no passcode: the spec only
/// names the Secret.
pub fn run_of(reset: &PasscodeReset, claimed_at: &str, admission: &Admission) -> Run {
    Run {
        uid: reset.uid().unwrap_or_default(),
        spec: serde_json::to_value(&reset.spec).ok(),
        claimed_at: claimed_at.to_owned(),
        generation: reset.metadata.generation,
        requester: match &admission.requester {
            Requester::Verified(u) => Some(u.clone()),
            _ => None,
        },
        approver: match &admission.approval {
            Approval::Decided(d) if d.decision == Decision::Approved => Some(d.approver.clone()),
            _ => None,
        },
    }
}

/// The runs a record lists, or `None` for a ConfigMap that is not a record. A record written
/// before runs were kept (one `uid`, `spec`, `claimedAt`) reads as one run.
pub fn runs(cm: &ConfigMap) -> Option<Vec<Run>> {
    if !cm.labels().contains_key(RECORD_LABEL) {
        return None;
    }
    let data = cm.data.clone().unwrap_or_default();
    if let Some(text) = data.get("runs") {
        // Unreadable runs are one run of any spec by nobody: nothing matching runs again.
        return Some(serde_json::from_str(text).unwrap_or_else(|_| {
            vec![Run {
                uid: String::new(),
                spec: None,
                claimed_at: String::new(),
                generation: None,
                requester: None,
                approver: None,
            }]
        }));
    }
    let field = |k: &str| data.get(k).cloned().unwrap_or_default();
    Some(vec![Run {
        uid: field("uid"),
        spec: serde_json::from_str(&field("spec")).ok(),
        claimed_at: field("claimedAt"),
        generation: None,
        requester: None,
        approver: None,
    }])
}

/// Compares the runs of a record with `reset`.
pub fn matches(runs: &[Run], reset: &PasscodeReset) -> Match {
    let uid = reset.uid().unwrap_or_default();
    let spec = serde_json::to_value(&reset.spec).ok();
    let mine = runs.iter().find(|r| !uid.is_empty() && r.uid == uid);
    if mine.is_some_and(|m| m.spec == spec) {
        return Match::Ours;
    }
    // Another object's run of this spec (also when this object's spec was edited into it). A
    // spec that cannot be read is taken for the same one: when in doubt, do not run twice.
    if let Some(twin) = runs
        .iter()
        .find(|r| r.uid != uid && (r.spec.is_none() || r.spec == spec))
    {
        return Match::Earlier {
            uid: twin.uid.clone(),
            claimed_at: twin.claimed_at.clone(),
        };
    }
    if let Some(mine) = mine {
        let stale = mine
            .generation
            .zip(reset.metadata.generation)
            .is_some_and(|(recorded, seen)| recorded >= seen);
        return if stale {
            Match::Stale
        } else {
            Match::OursStale
        };
    }
    if runs.len() >= MAX_RUNS {
        Match::Full
    } else {
        Match::New
    }
}

/// `runs` with `run` in place of the run of the same uid, or added.
pub fn with_run(runs: &[Run], run: Run) -> Vec<Run> {
    let mut next: Vec<Run> = runs.iter().filter(|r| r.uid != run.uid).cloned().collect();
    next.push(run);
    next
}

/// `runs` without the run of `uid`.
pub fn without_run(runs: &[Run], uid: &str) -> Vec<Run> {
    runs.iter().filter(|r| r.uid != uid).cloned().collect()
}

/// The record of `reset`'s name listing `runs`.
pub fn record_for(reset: &PasscodeReset, operator_namespace: &str, runs: &[Run]) -> ConfigMap {
    let namespace = reset.namespace().unwrap_or_default();
    let name = reset.name_any();
    let data: BTreeMap<String, String> = [
        ("namespace".to_owned(), namespace.clone()),
        ("name".to_owned(), name.clone()),
        (
            "runs".to_owned(),
            serde_json::to_string(runs).expect("runs serialize"),
        ),
    ]
    .into();
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(record_name(&namespace, &name)),
            namespace: Some(operator_namespace.to_owned()),
            labels: Some(
                [
                    (RECORD_LABEL.to_owned(), "passcode-reset".to_owned()),
                    (NAMESPACE_LABEL.to_owned(), namespace),
                    (
                        "app.kubernetes.io/managed-by".to_owned(),
                        "passcode-operator".to_owned(),
                    ),
                ]
                .into(),
            ),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    }
}

/// Whether a write turned the status into a final one that proves no command was created for the
/// reset: it ended without an operation, and either without a claim (claims are released only
/// when certainly nothing was created) or with AMAPI refusing the command (any reason but
/// `OutcomeUnknown` and `SpecChanged`, which say it cannot be known).
pub fn nothing_sent(before: &PasscodeResetStatus, after: &PasscodeResetStatus) -> bool {
    let newly_final = !before.phase.is_some_and(|p| p.is_terminal());
    newly_final
        && after.operation.is_none()
        && after.phase.is_some_and(|p| p.is_terminal())
        && (after.claimed_at.is_none()
            || !matches!(
                after.reason,
                Some(Reason::OutcomeUnknown | Reason::SpecChanged)
            ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn reset(uid: &str, spec: serde_json::Value) -> PasscodeReset {
        serde_json::from_value(json!({
            "apiVersion": "amapi.passcode-operator.io/v1alpha1",
            "kind": "PasscodeReset",
            "metadata": {"name": "jdoe", "namespace": "helpdesk", "uid": uid},
            "spec": spec,
        }))
        .unwrap()
    }

    fn spec(lock: bool) -> serde_json::Value {
        json!({"device": "enterprises/LC01/devices/d1",
               "newPasscode": {"secretKeyRef": {"name": "s", "key": "passcode"}}, "lockNow": lock})
    }

    #[test]
    fn names_are_stable_valid_and_distinct() {
        let a = record_name("helpdesk", "jdoe");
        assert_eq!(a, record_name("helpdesk", "jdoe"));
        assert_eq!(a.len(), 44);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        // The separator keeps `a/bc` and `ab/c` apart.
        assert_ne!(record_name("a", "bc"), record_name("ab", "c"));
        assert_ne!(a, record_name("other", "jdoe"));
        let long = "x".repeat(253);
        assert_eq!(record_name(&"n".repeat(63), &long).len(), 44);
    }

    #[test]
    fn the_record_says_who_what_and_when_and_nothing_secret() {
        let r = reset("u-1", spec(true));
        let cm = record_for(
            &r,
            "passcode-operator-system",
            &[run_of(&r, "2026-11-23T10:00:00Z", &Default::default())],
        );
        assert_eq!(
            cm.metadata.namespace.as_deref(),
            Some("passcode-operator-system")
        );
        assert_eq!(cm.labels()[NAMESPACE_LABEL], "helpdesk");
        let listed = runs(&cm).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].uid, "u-1");
        assert_eq!(listed[0].claimed_at, "2026-11-23T10:00:00Z");
        assert_eq!(listed[0].spec, Some(serde_json::to_value(&r.spec).unwrap()));
    }

    #[test]
    fn a_record_of_one_run_written_by_an_earlier_version_is_read() {
        let r = reset("u-1", spec(true));
        let mut cm = record_for(&r, "op", &[]);
        cm.data = Some(
            [
                ("uid".to_owned(), "u-0".to_owned()),
                ("spec".to_owned(), serde_json::to_string(&r.spec).unwrap()),
                ("claimedAt".to_owned(), "2026-11-20T10:00:00Z".to_owned()),
            ]
            .into(),
        );
        assert_eq!(
            matches(&runs(&cm).unwrap(), &r),
            Match::Earlier {
                uid: "u-0".into(),
                claimed_at: "2026-11-20T10:00:00Z".into()
            }
        );
    }

    #[test]
    fn s1_s2_s1_does_not_run_s1_twice() {
        let s1 = reset("u-1", spec(true));
        let mut listed = vec![run_of(&s1, "t1", &Default::default())];
        let s2 = reset("u-2", spec(false));
        assert_eq!(matches(&listed, &s2), Match::New);
        listed = with_run(&listed, run_of(&s2, "t2", &Default::default()));
        let s1_again = reset("u-3", spec(true));
        assert_eq!(
            matches(&listed, &s1_again),
            Match::Earlier {
                uid: "u-1".into(),
                claimed_at: "t1".into()
            }
        );
        assert_eq!(matches(&listed, &s2), Match::Ours);
        // s2's object edited (no CEL) into s1's spec: s1 ran already, so not again.
        assert!(matches!(
            matches(&listed, &reset("u-2", spec(true))),
            Match::Earlier { .. }
        ));
        let mut other = spec(true);
        other["expiresAfter"] = json!("20m");
        assert_eq!(matches(&listed, &reset("u-2", other)), Match::OursStale);
    }

    #[test]
    fn unreadable_runs_or_specs_count_as_twins() {
        let r = reset("u-2", spec(true));
        let broken = Run {
            uid: "u-1".into(),
            spec: None,
            claimed_at: "t".into(),
            ..Default::default()
        };
        assert!(matches!(matches(&[broken], &r), Match::Earlier { .. }));
        let mut cm = record_for(&r, "op", &[]);
        cm.data.as_mut().unwrap().insert("runs".into(), "[{".into());
        assert!(matches!(
            matches(&runs(&cm).unwrap(), &r),
            Match::Earlier { .. }
        ));
        let mut foreign = cm.clone();
        foreign.metadata.labels = None;
        assert_eq!(runs(&foreign), None);
    }

    /// A reconcile reading an old cache must not put the spec of an earlier generation back into
    /// the run its object recorded since: a twin of the later spec would then run again.
    #[test]
    fn an_older_view_never_replaces_a_later_run() {
        let at = |lock: bool, generation: i64| {
            let mut r = reset("u-1", spec(lock));
            r.metadata.generation = Some(generation);
            r
        };
        let listed = vec![run_of(&at(true, 2), "t", &Default::default())];
        assert_eq!(matches(&listed, &at(true, 2)), Match::Ours);
        assert_eq!(matches(&listed, &at(false, 1)), Match::Stale);
        assert_eq!(matches(&listed, &at(false, 3)), Match::OursStale);
        // Runs written before generations were kept are replaced as before.
        let mut legacy = listed.clone();
        legacy[0].generation = None;
        assert_eq!(matches(&legacy, &at(false, 1)), Match::OursStale);
    }

    #[test]
    fn a_full_record_refuses_new_specs_but_not_its_own() {
        let listed: Vec<Run> = (0..MAX_RUNS)
            .map(|i| Run {
                uid: format!("u-{i}"),
                spec: Some(json!({"n": i})),
                claimed_at: "t".into(),
                ..Default::default()
            })
            .collect();
        assert_eq!(matches(&listed, &reset("new", spec(true))), Match::Full);
        let mut mine = listed.clone();
        mine[3].uid = "me".into();
        assert_eq!(matches(&mine, &reset("me", spec(true))), Match::OursStale);
    }

    #[test]
    fn a_record_is_forgotten_only_when_the_command_was_refused() {
        use crate::api::Phase;
        let t = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-11-23T10:00:00Z".parse().unwrap(),
        );
        let claimed = PasscodeResetStatus {
            claimed_at: Some(t.clone()),
            phase: Some(Phase::Pending),
            reason: Some(Reason::Issuing),
            ..Default::default()
        };
        let refused = PasscodeResetStatus {
            phase: Some(Phase::Failed),
            reason: Some(Reason::PermissionDenied),
            ..claimed.clone()
        };
        assert!(nothing_sent(&claimed, &refused));
        for reason in [Reason::OutcomeUnknown, Reason::SpecChanged] {
            let unknown = PasscodeResetStatus {
                phase: Some(Phase::Failed),
                reason: Some(reason),
                ..claimed.clone()
            };
            assert!(!nothing_sent(&claimed, &unknown));
        }
        let issued = PasscodeResetStatus {
            operation: Some("enterprises/E/devices/D/operations/1".into()),
            reason: Some(Reason::AwaitingDevice),
            ..claimed.clone()
        };
        let done = PasscodeResetStatus {
            phase: Some(Phase::Failed),
            reason: Some(Reason::DeviceRejected),
            ..issued.clone()
        };
        assert!(!nothing_sent(&issued, &done), "a command was sent");
        // Only on the write that made it final, not on later notes.
        assert!(!nothing_sent(&refused, &refused));
        // Ended before any claim (the device went away after the record was written).
        let unclaimed = PasscodeResetStatus {
            phase: Some(Phase::Failed),
            reason: Some(Reason::DeviceNotFound),
            ..Default::default()
        };
        assert!(nothing_sent(&PasscodeResetStatus::default(), &unclaimed));
    }

    proptest! {
        /// Whatever the order of runs, a spec once listed under another uid is never New.
        #[test]
        fn a_listed_spec_never_runs_again(specs in proptest::collection::vec(0u8..4, 1..12), probe in 0u8..4) {
            let mut listed = Vec::new();
            for (i, s) in specs.iter().enumerate() {
                let r = reset(&format!("u-{i}"), json!({"device": "enterprises/E/devices/d", "expiresAfter": format!("{}m", 10 + s)}));
                if matches(&listed, &r) == Match::New {
                    listed = with_run(&listed, run_of(&r, "t", &Default::default()));
                }
            }
            let twin = reset("fresh", json!({"device": "enterprises/E/devices/d", "expiresAfter": format!("{}m", 10 + probe)}));
            let m = matches(&listed, &twin);
            prop_assert_eq!(specs.contains(&probe), matches!(m, Match::Earlier { .. }));
        }
    }
}
