//! The policy decision, case by case, and its rules as properties.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::events::EventType;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::decide::*;
use super::entry::{corrected, desired_entry};
use crate::amapi::model::{PasswordRequirements, PasswordScope, Policy};
use crate::api::conditions::{READY, SYNCED};
use crate::api::{WorkProfilePasscodePolicy, WorkProfilePasscodePolicyStatus};

const WP: &str = "enterprises/LC01/policies/wp";
const SHARED: &str = "enterprises/LC01/policies/shared";
const FOREIGN: &str = "enterprises/ELSEWHERE/policies/wp";
const RESYNC: Duration = Duration::from_secs(300);

fn now() -> Timestamp {
    "2026-11-23T10:00:00Z".parse().unwrap()
}

fn later(secs: i64) -> Timestamp {
    now() + SignedDuration::from_secs(secs)
}

fn wppp(
    name: &str,
    amapi: &[&str],
    enforcement: &str,
    requirements: Value,
) -> WorkProfilePasscodePolicy {
    serde_json::from_value(json!({
        "apiVersion": "amapi.passcode-operator.io/v1alpha1",
        "kind": "WorkProfilePasscodePolicy",
        "metadata": {"name": name, "generation": 1, "resourceVersion": "7"},
        "spec": {"amapiPolicies": amapi, "enforcement": enforcement, "requirements": requirements},
    }))
    .unwrap()
}

fn corp(enforcement: &str) -> WorkProfilePasscodePolicy {
    wppp(
        "corp",
        &[WP],
        enforcement,
        json!({"quality": "NUMERIC_COMPLEX", "minimumLength": 6, "historyLength": 3}),
    )
}

fn entry(scope: &str, quality: &str, length: Option<i32>) -> PasswordRequirements {
    PasswordRequirements {
        password_scope: Some(PasswordScope::from(scope)),
        password_quality: Some(quality.into()),
        password_minimum_length: length,
        ..Default::default()
    }
}

fn device_scope() -> PasswordRequirements {
    entry("SCOPE_DEVICE", "SOMETHING", None)
}

fn desired(p: &WorkProfilePasscodePolicy) -> PasswordRequirements {
    desired_entry(&p.spec.requirements)
}

fn amapi(name: &str, version: i64, password_policies: Vec<PasswordRequirements>) -> Policy {
    Policy {
        name: name.into(),
        version: Some(version),
        password_policies,
    }
}

fn read(p: Policy) -> Answer {
    Answer {
        name: p.name.clone(),
        get: Ok(p),
        patch: None,
    }
}

/// What the simulator does with a patch: the next version, carrying what was sent.
fn accept(version: i64) -> impl Fn(&PolicyPatch) -> Result<Policy, String> {
    move |p| Ok(amapi(&p.name, version, p.policy.password_policies.clone()))
}

struct Case {
    policy: WorkProfilePasscodePolicy,
    others: Vec<WorkProfilePasscodePolicy>,
    answers: Vec<Answer>,
    now: Timestamp,
}

impl Case {
    fn new(policy: WorkProfilePasscodePolicy) -> Self {
        Case {
            policy,
            others: vec![],
            answers: vec![],
            now: now(),
        }
    }
    fn answer(mut self, a: Answer) -> Self {
        self.answers.push(a);
        self
    }
    fn other(mut self, p: WorkProfilePasscodePolicy) -> Self {
        self.others.push(p);
        self
    }
    fn status(mut self, s: Option<WorkProfilePasscodePolicyStatus>) -> Self {
        self.policy.status = s;
        self
    }
    fn at(mut self, now: Timestamp) -> Self {
        self.now = now;
        self
    }
    fn decide(&self) -> Decision {
        // The cache holds the policy itself too.
        let mut all = vec![Arc::new(self.policy.clone())];
        all.extend(self.others.iter().cloned().map(Arc::new));
        decide(&Observed {
            policy: &self.policy,
            all: &all,
            answers: &self.answers,
            now: self.now,
            resync: RESYNC,
        })
    }
    /// What the shell does: decide, make the patches asked for, decide again.
    fn settle(
        &mut self,
        amapi: impl Fn(&PolicyPatch) -> Result<Policy, String>,
    ) -> (Vec<PolicyPatch>, Decision) {
        let first = self.decide();
        if first.patches.is_empty() {
            return (vec![], first);
        }
        for p in &first.patches {
            let a = self.answers.iter_mut().find(|a| a.name == p.name).unwrap();
            a.patch = Some(amapi(p));
        }
        (first.patches, self.decide())
    }
}

fn condition<'a>(s: &'a WorkProfilePasscodePolicyStatus, type_: &str) -> (&'a str, &'a str) {
    let c = s.conditions.iter().find(|c| c.type_ == type_).unwrap();
    (c.status.as_str(), c.reason.as_str())
}

#[test]
fn nothing_in_scope_is_left_alone() {
    let p = wppp(
        "corp",
        &[FOREIGN, "not/a/policy"],
        "Enforce",
        json!({"quality": "NUMERIC"}),
    );
    assert!(amapi_policies(&p, |e| e == "LC01").is_empty());
    assert_eq!(
        Case::new(p).decide(),
        Decision::default(),
        "no status, no requeue"
    );
}

#[test]
fn only_policies_of_allowed_enterprises_in_spec_order() {
    let p = wppp(
        "corp",
        &[SHARED, FOREIGN, WP],
        "Enforce",
        json!({"quality": "NUMERIC"}),
    );
    assert_eq!(amapi_policies(&p, |e| e == "LC01"), [SHARED, WP]);
    assert_eq!(amapi_policies(&p, |_| true), [SHARED, FOREIGN, WP]);
}

#[test]
fn policy_names() {
    assert_eq!(policy_enterprise(WP), Some("LC01"));
    for bad in [
        "",
        "enterprises/LC01/policies/",
        "enterprises//policies/p",
        "enterprises/E/devices/d",
        "enterprises/E/policies/p/x",
    ] {
        assert_eq!(policy_enterprise(bad), None, "{bad}");
    }
}

#[test]
fn conflicts_name_the_other_claimants() {
    let mk = |name: &str, amapi: &[&str]| {
        Arc::new(wppp(name, amapi, "Enforce", json!({"quality": "NUMERIC"})))
    };
    let all = vec![
        mk("a", &["enterprises/E/policies/p"]),
        mk(
            "b",
            &["enterprises/E/policies/p", "enterprises/E/policies/q"],
        ),
        mk("c", &["enterprises/E/policies/q"]),
    ];
    assert_eq!(conflicts(&all[0], &all, "enterprises/E/policies/p"), ["b"]);
    assert_eq!(conflicts(&all[1], &all, "enterprises/E/policies/q"), ["c"]);
    assert!(conflicts(&all[2], &all, "enterprises/E/policies/x").is_empty());
    // A claimant being deleted no longer counts.
    let mut leaving = wppp(
        "b",
        &["enterprises/E/policies/p"],
        "Enforce",
        json!({"quality": "NUMERIC"}),
    );
    leaving.metadata.deletion_timestamp = Some(Time(now()));
    let all = vec![all[0].clone(), Arc::new(leaving)];
    assert!(conflicts(&all[0], &all, "enterprises/E/policies/p").is_empty());
}

#[test]
fn enforce_writes_the_profile_entry_and_keeps_other_scopes() {
    let p = corp("Enforce");
    let want = desired(&p);
    let mut case = Case::new(p).answer(read(amapi(
        WP,
        1,
        vec![entry("SCOPE_PROFILE", "NUMERIC", Some(4)), device_scope()],
    )));
    let first = case.decide();
    assert_eq!(
        first,
        Decision {
            patches: vec![PolicyPatch {
                name: WP.into(),
                policy: Policy {
                    password_policies: vec![want.clone(), device_scope()],
                    ..Default::default()
                },
                update_mask: &["passwordPolicies"],
            }],
            ..Default::default()
        },
        "the writes come first, alone"
    );
    let (_, d) = case.settle(accept(2));
    assert!(d.patches.is_empty());
    let s = d.status.expect("first sync is written");
    assert_eq!(s.observed_generation, Some(1));
    assert_eq!(s.amapi_policies.len(), 1);
    let e = &s.amapi_policies[0];
    assert!(e.synced && e.message.is_none() && e.conflicts_with.is_empty());
    assert_eq!(
        (e.version, e.last_sync_time.clone()),
        (Some(2), Some(Time(now())))
    );
    assert_eq!(condition(&s, SYNCED), ("True", "UpToDate"));
    assert_eq!(condition(&s, READY), ("True", "Ready"));
    assert_eq!(
        d.events,
        [PolicyEvent {
            type_: EventType::Normal,
            reason: "Synced",
            action: "WriteAmapiPolicy",
            note: format!("Wrote the work-profile password policy of {WP} (version 2)."),
        }]
    );
    assert_eq!(d.requeue, Some(RESYNC));
}

#[test]
fn in_sync_is_not_written_and_a_resync_changes_nothing() {
    let p = corp("Enforce");
    let synced = amapi(WP, 2, vec![desired(&p), device_scope()]);
    let d = Case::new(p.clone()).answer(read(synced.clone())).decide();
    assert!(d.patches.is_empty() && d.events.is_empty());
    let s = d.status.expect("first sync is written");
    assert!(s.amapi_policies[0].synced);
    assert_eq!(condition(&s, READY), ("True", "Ready"));
    // Five minutes later: only the sync time would change, so nothing is written.
    let again = Case::new(p)
        .status(Some(s))
        .answer(read(synced))
        .at(later(300))
        .decide();
    assert_eq!(
        again,
        Decision {
            requeue: Some(RESYNC),
            ..Default::default()
        }
    );
}

#[test]
fn drift_is_corrected_on_resync() {
    let p = corp("Enforce");
    let mut first = Case::new(p.clone()).answer(read(amapi(WP, 1, vec![])));
    let (_, d) = first.settle(accept(2));
    let s = d.status.unwrap();
    // Someone weakens it in the EMM console.
    let mut case = Case::new(p)
        .status(Some(s))
        .answer(read(amapi(
            WP,
            3,
            vec![entry("SCOPE_PROFILE", "SOMETHING", None), device_scope()],
        )))
        .at(later(300));
    let (patches, d) = case.settle(accept(4));
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].policy.password_policies[1], device_scope());
    let s = d.status.expect("the version moved");
    assert_eq!(s.amapi_policies[0].version, Some(4));
    assert_eq!(condition(&s, READY), ("True", "Ready"));
    assert_eq!(d.events.len(), 1);
}

#[test]
fn a_failed_write_is_reported_with_the_version_read() {
    let mut case = Case::new(corp("Enforce")).answer(read(amapi(WP, 5, vec![])));
    let (patches, d) = case.settle(|_| Err("AMAPI answered 503".into()));
    assert_eq!(patches.len(), 1);
    assert!(d.patches.is_empty(), "not retried in the same reconcile");
    let s = d.status.unwrap();
    let e = &s.amapi_policies[0];
    assert!(!e.synced);
    assert_eq!(e.version, Some(5));
    assert_eq!(
        e.message.as_deref(),
        Some("Could not write the AMAPI policy: AMAPI answered 503")
    );
    assert_eq!(condition(&s, SYNCED), ("False", "UpdateFailed"));
    assert_eq!(condition(&s, READY), ("False", "UpdateFailed"));
    assert!(d.events.is_empty());
    assert_eq!(d.requeue, Some(RESYNC));
}

#[test]
fn an_unreadable_policy_keeps_the_last_known_version() {
    let previous = WorkProfilePasscodePolicyStatus {
        amapi_policies: vec![crate::api::AmapiPolicyStatus {
            name: WP.into(),
            version: Some(7),
            synced: true,
            ..Default::default()
        }],
        ..Default::default()
    };
    let d = Case::new(corp("Enforce"))
        .status(Some(previous))
        .answer(Answer {
            name: WP.into(),
            get: Err("timed out".into()),
            patch: None,
        })
        .decide();
    assert!(d.patches.is_empty());
    let s = d.status.unwrap();
    let e = &s.amapi_policies[0];
    assert_eq!((e.version, e.synced), (Some(7), false));
    assert_eq!(
        e.message.as_deref(),
        Some("Could not read the AMAPI policy: timed out")
    );
    assert_eq!(condition(&s, READY), ("False", "UpdateFailed"));
}

#[test]
fn observe_never_writes() {
    let p = corp("Observe");
    let d = Case::new(p.clone())
        .answer(read(amapi(WP, 1, vec![device_scope()])))
        .decide();
    assert!(d.patches.is_empty() && d.events.is_empty());
    let s = d.status.unwrap();
    assert!(!s.amapi_policies[0].synced);
    assert_eq!(
        s.amapi_policies[0].message.as_deref(),
        Some(
            "Observe: the AMAPI policy's work-profile password policy differs from these requirements; not written."
        )
    );
    assert_eq!(condition(&s, SYNCED), ("False", "Observing"));
    assert_eq!(condition(&s, READY), ("True", "Ready"));
    assert!(
        s.conditions[0]
            .message
            .contains("AMAPI policies are not written")
    );

    let s = Case::new(p.clone())
        .answer(read(amapi(WP, 1, vec![desired(&p)])))
        .decide()
        .status
        .unwrap();
    assert_eq!(condition(&s, SYNCED), ("True", "Observing"));
    assert_eq!(
        s.conditions[0].message,
        "Observe: every AMAPI policy already carries these requirements."
    );
}

#[test]
fn conflicts_are_reported_on_both_sides_and_never_written() {
    let a = wppp(
        "a",
        &[SHARED],
        "Enforce",
        json!({"quality": "NUMERIC", "minimumLength": 6}),
    );
    let b = wppp(
        "b",
        &[SHARED],
        "Enforce",
        json!({"quality": "ALPHANUMERIC"}),
    );
    for (me, other) in [(&a, &b), (&b, &a)] {
        let d = Case::new(me.clone())
            .other(other.clone())
            .answer(read(amapi(SHARED, 1, vec![])))
            .decide();
        assert!(d.patches.is_empty(), "neither writes");
        let s = d.status.unwrap();
        let e = &s.amapi_policies[0];
        assert_eq!(e.conflicts_with, [other.metadata.name.clone().unwrap()]);
        assert_eq!(
            e.message
                .as_deref()
                .map(|m| m.starts_with("Not written: WorkProfilePasscodePolicy ")),
            Some(true)
        );
        assert_eq!(condition(&s, SYNCED), ("False", "Conflict"));
        assert_eq!(condition(&s, READY), ("False", "Conflict"));
        assert_eq!(d.events.len(), 1);
        assert_eq!(
            (d.events[0].type_, d.events[0].reason),
            (EventType::Warning, "Conflict")
        );
        // Announced once: the next resync sees the conflict already reported.
        let again = Case::new(me.clone())
            .other(other.clone())
            .status(Some(s))
            .answer(read(amapi(SHARED, 1, vec![])))
            .at(later(300))
            .decide();
        assert!(again.events.is_empty() && again.status.is_none());
    }
}

#[test]
fn a_claimant_in_sync_is_still_in_conflict() {
    let a = corp("Enforce");
    let b = wppp("b", &[WP], "Observe", json!({"quality": "NUMERIC"}));
    let s = Case::new(a.clone())
        .other(b)
        .answer(read(amapi(WP, 1, vec![desired(&a)])))
        .decide()
        .status
        .unwrap();
    assert!(s.amapi_policies[0].synced);
    assert_eq!(condition(&s, SYNCED), ("True", "Conflict"));
    assert_eq!(condition(&s, READY), ("False", "Conflict"));
}

#[test]
fn only_drifted_policies_are_written_and_entries_keep_spec_order() {
    let p = wppp(
        "corp",
        &[WP, SHARED],
        "Enforce",
        json!({"quality": "NUMERIC"}),
    );
    let want = desired(&p);
    let mut case = Case::new(p)
        .answer(read(amapi(WP, 1, vec![want])))
        .answer(read(amapi(SHARED, 1, vec![])));
    let (patches, d) = case.settle(accept(2));
    assert_eq!(
        patches.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        [SHARED]
    );
    let s = d.status.unwrap();
    let names: Vec<_> = s.amapi_policies.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, [WP, SHARED]);
    assert_eq!(
        s.amapi_policies
            .iter()
            .map(|e| e.version)
            .collect::<Vec<_>>(),
        [Some(1), Some(2)]
    );
}

#[test]
fn a_new_generation_is_written_and_transitions_keep_their_time() {
    let p = corp("Enforce");
    let synced = amapi(WP, 2, vec![desired(&p)]);
    let s = Case::new(p.clone())
        .answer(read(synced.clone()))
        .decide()
        .status
        .unwrap();
    let mut p2 = p.clone();
    p2.metadata.generation = Some(2);
    let s2 = Case::new(p2.clone())
        .status(Some(s.clone()))
        .answer(read(synced))
        .at(later(60))
        .decide()
        .status
        .expect("observedGeneration moved");
    assert_eq!(s2.observed_generation, Some(2));
    assert!(
        s2.conditions
            .iter()
            .all(|c| c.observed_generation == Some(2))
    );
    assert!(
        s2.conditions
            .iter()
            .all(|c| c.last_transition_time == Time(now())),
        "no flip, no new transition time"
    );
    // Ready flips when a read fails: its transition time moves.
    let s3 = Case::new(p2)
        .status(Some(s2))
        .answer(Answer {
            name: WP.into(),
            get: Err("gone".into()),
            patch: None,
        })
        .at(later(120))
        .decide()
        .status
        .unwrap();
    let ready = s3.conditions.iter().find(|c| c.type_ == READY).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.last_transition_time.clone()),
        ("False", Time(later(120)))
    );
}

// Properties, over policies with up to four AMAPI policies in any state.

/// One AMAPI policy as the property sees it.
#[derive(Debug, Clone)]
struct Amapi {
    /// `None`: it cannot be read.
    entries: Option<Vec<PasswordRequirements>>,
    claimed_by_other: bool,
    write_ok: bool,
}

fn any_entries() -> impl Strategy<Value = Vec<PasswordRequirements>> {
    let pool = vec![
        desired(&corp("Enforce")),
        entry("SCOPE_PROFILE", "NUMERIC", Some(4)),
        entry("SCOPE_PROFILE", "NUMERIC_COMPLEX", Some(0)),
        device_scope(),
        entry("SCOPE_UNSPECIFIED", "SOMETHING", None),
    ];
    prop::collection::vec(prop::sample::select(pool), 0..4)
}

fn any_amapi() -> impl Strategy<Value = Amapi> {
    (
        prop::option::weighted(0.85, any_entries()),
        any::<bool>(),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(entries, claimed_by_other, write_ok)| Amapi {
            entries,
            claimed_by_other,
            write_ok,
        })
}

fn name(i: usize) -> String {
    format!("enterprises/LC01/policies/p{i}")
}

/// How the fake AMAPI answers a patch.
type FakeAmapi = Box<dyn Fn(&PolicyPatch) -> Result<Policy, String>>;

/// A case from the generated AMAPI policies, and the fake AMAPI's answer to a patch.
fn world(enforce: bool, amapi_policies: &[Amapi]) -> (Case, FakeAmapi) {
    let names: Vec<String> = (0..amapi_policies.len()).map(name).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let requirements =
        json!({"quality": "NUMERIC_COMPLEX", "minimumLength": 6, "historyLength": 3});
    let me = wppp(
        "corp",
        &refs,
        if enforce { "Enforce" } else { "Observe" },
        requirements.clone(),
    );
    let contested: Vec<&str> = refs
        .iter()
        .zip(amapi_policies)
        .filter(|(_, a)| a.claimed_by_other)
        .map(|(n, _)| *n)
        .collect();
    let mut case = Case::new(me);
    if !contested.is_empty() {
        case = case.other(wppp("other", &contested, "Enforce", requirements));
    }
    for (n, a) in names.iter().zip(amapi_policies) {
        case = case.answer(Answer {
            name: n.clone(),
            get: a
                .entries
                .clone()
                .map(|e| amapi(n, 10, e))
                .ok_or_else(|| "unavailable".to_owned()),
            patch: None,
        });
    }
    let outcomes: Vec<(String, bool)> = names
        .iter()
        .cloned()
        .zip(amapi_policies.iter().map(|a| a.write_ok))
        .collect();
    let amapi = move |p: &PolicyPatch| {
        let ok = outcomes.iter().any(|(n, ok)| *n == p.name && *ok);
        if ok {
            accept(11)(p)
        } else {
            Err("refused".into())
        }
    };
    (case, Box::new(amapi))
}

fn without_times(mut s: WorkProfilePasscodePolicyStatus) -> WorkProfilePasscodePolicyStatus {
    for p in &mut s.amapi_policies {
        p.last_sync_time = None;
    }
    for c in &mut s.conditions {
        c.last_transition_time = Time(Timestamp::UNIX_EPOCH);
    }
    s
}

proptest! {
    /// Patches only where Enforce, uncontested, readable and drifted; each keeps the other scopes,
    /// carries exactly the desired SCOPE_PROFILE entry, and uses the mask. One round of writes.
    #[test]
    fn writes_only_what_enforce_may_and_must(
        enforce in any::<bool>(),
        amapi_policies in prop::collection::vec(any_amapi(), 1..5),
    ) {
        let (mut case, fake) = world(enforce, &amapi_policies);
        let want = desired(&case.policy);
        let (patches, settled) = case.settle(fake);
        prop_assert!(settled.patches.is_empty(), "a second round never writes again");
        for (i, a) in amapi_policies.iter().enumerate() {
            let current = a.entries.clone().map(|e| amapi(&name(i), 10, e));
            let must = enforce
                && !a.claimed_by_other
                && current.as_ref().is_some_and(|c| corrected(c, &want).is_some());
            let patch = patches.iter().find(|p| p.name == name(i));
            prop_assert_eq!(patch.is_some(), must, "p{}", i);
            if let (Some(patch), Some(current)) = (patch, current) {
                prop_assert_eq!(patch.update_mask, UPDATE_MASK);
                let written = Policy { password_policies: patch.policy.password_policies.clone(), ..Default::default() };
                prop_assert_eq!(corrected(&written, &want), None);
                let others = |l: &[PasswordRequirements]| -> Vec<PasswordRequirements> {
                    l.iter().filter(|e| e.password_scope != Some(PasswordScope::Profile)).cloned().collect()
                };
                prop_assert_eq!(others(&written.password_policies), others(&current.password_policies));
            }
        }
    }

    /// The status reports every AMAPI policy in order; synced means AMAPI carries the
    /// requirements now; Ready means no conflict and, under Enforce, all synced. One Normal Event
    /// per successful write, a Warning only when a conflict appears.
    #[test]
    fn the_status_tells_how_each_stands(
        enforce in any::<bool>(),
        amapi_policies in prop::collection::vec(any_amapi(), 1..5),
    ) {
        let (mut case, fake) = world(enforce, &amapi_policies);
        let want = desired(&case.policy);
        let (patches, d) = case.settle(&fake);
        let s = d.status.expect("a first sync is always written");
        prop_assert_eq!(s.amapi_policies.len(), amapi_policies.len());
        let mut writes = 0;
        for (i, (e, a)) in s.amapi_policies.iter().zip(&amapi_policies).enumerate() {
            prop_assert_eq!(&e.name, &name(i));
            prop_assert_eq!(e.conflicts_with.is_empty(), !a.claimed_by_other);
            let in_sync = a.entries.clone().is_some_and(|l| corrected(&amapi(&name(i), 10, l), &want).is_none());
            let written = patches.iter().any(|p| p.name == name(i)) && a.write_ok;
            writes += usize::from(written);
            prop_assert_eq!(e.synced, in_sync || written, "p{}", i);
            prop_assert_eq!(e.message.is_none(), e.synced);
            prop_assert_eq!(e.version, a.entries.as_ref().map(|_| if written { 11 } else { 10 }));
        }
        let conflict = amapi_policies.iter().any(|a| a.claimed_by_other);
        let all_synced = s.amapi_policies.iter().all(|e| e.synced);
        let ready = !conflict && (!enforce || all_synced);
        prop_assert_eq!(condition(&s, READY).0, if ready { "True" } else { "False" });
        prop_assert_eq!(condition(&s, SYNCED).0, if all_synced { "True" } else { "False" });
        let normal = d.events.iter().filter(|e| e.type_ == EventType::Normal).count();
        let warnings = d.events.iter().filter(|e| e.type_ == EventType::Warning).count();
        prop_assert_eq!(normal, writes);
        prop_assert_eq!(warnings, usize::from(conflict));
        prop_assert_eq!(d.requeue, Some(RESYNC));
    }

    /// After a reconcile whose writes all succeeded, a resync (AMAPI unchanged since) writes
    /// nothing, to AMAPI or to the status, and says nothing.
    #[test]
    fn a_steady_state_is_quiet(
        enforce in any::<bool>(),
        amapi_policies in prop::collection::vec(any_amapi(), 1..5),
        after in 1i64..100_000,
    ) {
        let amapi_policies: Vec<Amapi> = amapi_policies.into_iter().map(|a| Amapi { write_ok: true, ..a }).collect();
        let (mut case, fake) = world(enforce, &amapi_policies);
        let (patches, d) = case.settle(&fake);
        let mut next = Case { answers: vec![], ..case };
        next.policy.status = d.status;
        for (i, a) in amapi_policies.iter().enumerate() {
            let get = match patches.iter().find(|p| p.name == name(i)) {
                Some(p) => accept(11)(p),
                None => a.entries.clone().map(|e| amapi(&name(i), 10, e)).ok_or_else(|| "unavailable".to_owned()),
            };
            next.answers.push(Answer { name: name(i), get, patch: None });
        }
        let again = next.at(later(after)).decide();
        prop_assert_eq!(again, Decision { requeue: Some(RESYNC), ..Default::default() });
    }

    /// The clock only moves the sync and transition times.
    #[test]
    fn now_only_moves_times(
        enforce in any::<bool>(),
        amapi_policies in prop::collection::vec(any_amapi(), 1..5),
        after in 1i64..100_000,
    ) {
        let (mut early, fake) = world(enforce, &amapi_policies);
        let (mut late, _) = world(enforce, &amapi_policies);
        late.now = later(after);
        let (p1, d1) = early.settle(&fake);
        let (p2, d2) = late.settle(&fake);
        prop_assert_eq!(p1, p2);
        prop_assert_eq!(d1.events, d2.events);
        prop_assert_eq!(d1.status.map(without_times), d2.status.map(without_times));
    }
}
