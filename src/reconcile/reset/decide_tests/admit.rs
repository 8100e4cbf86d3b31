//! Who asked, who may, who approved: the gates before the device, the Secret and the claim.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::admission::seal::{Admission, Approval, Requester};
use crate::api::{
    Approval as ScopeApproval, ApprovalRecord, Decision as Verdict, PasscodeResetScope,
    PasscodeResetScopeSpec, UserInfo,
};
use crate::reconcile::UnknownRequester;

fn user(name: &str) -> UserInfo {
    UserInfo {
        username: name.into(),
        uid: format!("{name}-uid"),
        groups: vec![],
    }
}

fn scope(policies: &[&str], approval: Option<&str>) -> Arc<PasscodeResetScope> {
    Arc::new(PasscodeResetScope::new(
        "team-a",
        PasscodeResetScopeSpec {
            namespaces: vec!["ns".into()],
            namespace_selector: None,
            enterprises: vec!["LC01".into()],
            amapi_policies: policies.iter().map(|p| p.to_string()).collect(),
            approval: approval.map(|a| ScopeApproval {
                required: true,
                expires_after: Some(a.into()),
            }),
        },
    ))
}

fn decided(by: &str, decision: Verdict) -> Approval {
    Approval::Decided(ApprovalRecord {
        decision,
        approver: user(by),
        decided_at: Time(now()),
    })
}

fn by_alice(mut case: Case) -> Case {
    case.inputs.admission.requester = Requester::Verified(user("alice"));
    case
}

#[test]
fn a_reset_without_a_recorded_requester_is_refused_or_run_as_configured() {
    for requester in [
        Requester::NotRecorded,
        Requester::Missing,
        Requester::Unsealed,
    ] {
        let mut case = Case::new(clearing());
        case.inputs.admission = Admission {
            requester: requester.clone(),
            approval: Approval::None,
        };
        assert_eq!(
            case.decide().effect,
            Some(Effect::GetDevice(DEVICE.into())),
            "run: {requester:?}"
        );
        case.config.unknown_requester = UnknownRequester::Refuse;
        let d = case.decide();
        assert_eq!(reason(&d), Some(Reason::RequesterUnknown), "{requester:?}");
        assert!(d.effect.is_none() && message(&d).contains("Nothing was sent"));
        assert!(d.status.unwrap().requester.is_none());
    }
}

#[test]
fn the_verified_requester_is_in_every_status() {
    let d = by_alice(Case::new(clearing())).active().decide();
    assert_eq!(d.effect, Some(Effect::AddFinalizer));
    let d = by_alice(Case::new(clearing()))
        .device(device(json!({"state": "DISABLED"})))
        .decide();
    assert_eq!(d.status.unwrap().requester, Some(user("alice")));
}

#[test]
fn scopes_refuse_before_the_device_or_after_reading_its_policy() {
    let mut case = Case::new(clearing());
    case.config.require_scopes = true;
    let d = case.decide();
    assert_eq!(reason(&d), Some(Reason::NoScope));
    assert!(d.effect.is_none());

    let mut case = Case::new(reset(json!({"device": "enterprises/LC02/devices/x"})));
    case.inputs.scopes = vec![scope(&[], None)];
    let d = case.decide();
    assert_eq!(reason(&d), Some(Reason::EnterpriseOutOfScope));
    assert!(message(&d).contains("team-a") && message(&d).contains("LC02"));

    // Policies restricted: the device is read (a read), then judged by its policy.
    let mut case = Case::new(clearing());
    case.inputs.scopes = vec![scope(&["enterprises/LC01/policies/a"], None)];
    assert_eq!(case.decide().effect, Some(Effect::GetDevice(DEVICE.into())));
    let d = case
        .device(device(json!({"policyName": "enterprises/LC01/policies/b"})))
        .decide();
    assert_eq!(reason(&d), Some(Reason::PolicyOutOfScope));
    assert!(d.effect.is_none() && message(&d).contains("policies/b"));
    let mut case =
        Case::new(clearing()).device(device(json!({"policyName": "enterprises/LC01/policies/a"})));
    case.inputs.scopes = vec![scope(&["enterprises/LC01/policies/a"], None)];
    assert_eq!(case.decide().effect, Some(Effect::AddFinalizer));
}

#[test]
fn selectors_need_the_namespace_labels() {
    let mut s = (*scope(&[], None)).clone();
    s.spec.namespaces.clear();
    s.spec.namespace_selector = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
            match_labels: Some([("team".to_string(), "a".to_string())].into()),
            ..Default::default()
        },
    );
    let mut case = Case::new(clearing());
    case.inputs.scopes = vec![Arc::new(s)];
    assert_eq!(
        case.decide().effect,
        Some(Effect::ReadNamespace("ns".into()))
    );
    case.inputs.namespace_labels =
        Some(Read::Found([("team".to_string(), "b".to_string())].into()));
    assert_eq!(reason(&case.decide()), Some(Reason::NoScope));
    case.inputs.namespace_labels =
        Some(Read::Found([("team".to_string(), "a".to_string())].into()));
    assert_eq!(case.decide().effect, Some(Effect::GetDevice(DEVICE.into())));
    case.inputs.namespace_labels = Some(Read::Denied("forbidden".into()));
    assert_eq!(reason(&case.decide()), Some(Reason::Retrying));
}

#[test]
fn approval_waits_then_passes_or_ends() {
    let waiting = || {
        let mut case = by_alice(Case::new(clearing())).active();
        case.inputs.scopes = vec![scope(&[], Some("1h"))];
        case
    };
    let d = waiting().decide();
    assert_eq!(reason(&d), Some(Reason::AwaitingApproval));
    assert!(d.effect.is_none(), "nothing moves while unapproved");
    assert!(message(&d).contains("other than alice") && message(&d).contains("decision=approve"));
    assert!(d.requeue.is_some_and(|r| r <= Duration::from_secs(30)));

    let mut approved = waiting();
    approved.inputs.admission.approval = decided("bob", Verdict::Approved);
    let d = approved.decide();
    assert_eq!(d.effect, Some(Effect::AddFinalizer));

    let mut denied = waiting();
    denied.inputs.admission.approval = decided("bob", Verdict::Denied);
    let d = denied.decide();
    assert_eq!(reason(&d), Some(Reason::Denied));
    assert_eq!(d.status.unwrap().approval.unwrap().approver.username, "bob");

    // The requester's own approval (never recorded by the webhook, but) never counts.
    let mut own = waiting();
    own.inputs.admission.approval = decided("alice", Verdict::Approved);
    assert_eq!(reason(&own.decide()), Some(Reason::AwaitingApproval));

    let mut stale = waiting();
    stale.inputs.admission.approval = match decided("bob", Verdict::Approved) {
        Approval::Decided(d) => Approval::Stale(d),
        _ => unreachable!(),
    };
    let d = stale.decide();
    assert_eq!(reason(&d), Some(Reason::AwaitingApproval));
    assert!(message(&d).contains("earlier spec"));
    assert!(d.status.unwrap().approval.is_none());

    let mut late = waiting();
    late.now = now() + secs(3600);
    let d = late.decide();
    assert_eq!(reason(&d), Some(Reason::ApprovalExpired));
    assert!(d.effect.is_none());
    // An approval recorded after the deadline does not count.
    late.inputs.admission.approval = Approval::Decided(ApprovalRecord {
        decision: Verdict::Approved,
        approver: user("bob"),
        decided_at: Time(now() + secs(3599)),
    });
    let d = late.decide();
    assert_eq!(reason(&d), Some(Reason::ApprovalExpired));
    assert!(message(&d).contains("after the deadline"));

    // Approval required, requester unknown: nobody can be told apart from the requester.
    let mut unknown = waiting();
    unknown.inputs.admission.requester = Requester::Missing;
    assert_eq!(reason(&unknown.decide()), Some(Reason::RequesterUnknown));
}

/// Review finding: a denial of an earlier spec still ends the reset (it is not a request to
/// decide again); today a stale denial reads as "no decision" and the reset waits for a new
/// approval, which a second approver may give.
#[test]
fn review_a_stale_denial_still_ends_the_reset() {
    let mut case = by_alice(Case::new(clearing())).active();
    case.inputs.scopes = vec![scope(&[], Some("1h"))];
    case.inputs.admission.approval = match decided("bob", Verdict::Denied) {
        Approval::Decided(d) => Approval::Stale(d),
        _ => unreachable!(),
    };
    assert_eq!(reason(&case.decide()), Some(Reason::Denied));
}

#[test]
fn a_reset_awaiting_approval_takes_no_turn() {
    let waiting = other("ns/older", "2026-11-23T09:00:00Z", |s| {
        s.reason = Some(Reason::AwaitingApproval);
        s.phase = Some(Phase::Pending);
    });
    let mut case = Case::new(clearing()).active();
    case.others = vec![waiting];
    assert_eq!(case.decide().effect, Some(Effect::AddFinalizer));
}

proptest! {
    /// Whatever the admission records and scopes say, a reset is claimed only when its requester
    /// is known (or allowed unknown), a scope allows it (or none is in use), and, when approval
    /// is required, a person other than the requester approved this spec in time.
    #[test]
    fn nothing_is_claimed_without_every_gate(
        requester in prop_oneof![Just(0u8), Just(1), Just(2), Just(3)],
        refuse in any::<bool>(),
        approval in prop_oneof![Just(0u8), Just(1), Just(2), Just(3), Just(4)],
        scoped in prop_oneof![Just(0u8), Just(1), Just(2)],
        minutes in 0i64..120,
    ) {
        let mut case = Case::new(clearing()).active().recorded(Recorded::Ours);
        case.reset = finalized(case.reset);
        case.config.unknown_requester = if refuse { UnknownRequester::Refuse } else { UnknownRequester::Run };
        case.inputs.admission.requester = match requester {
            0 => Requester::NotRecorded,
            1 => Requester::Missing,
            2 => Requester::Unsealed,
            _ => Requester::Verified(user("alice")),
        };
        case.inputs.admission.approval = match approval {
            0 => Approval::None,
            1 => decided("bob", Verdict::Approved),
            2 => decided("bob", Verdict::Denied),
            3 => decided("alice", Verdict::Approved),
            _ => Approval::Unsealed,
        };
        case.inputs.scopes = match scoped {
            0 => vec![],
            1 => vec![scope(&[], None)],
            _ => vec![scope(&[], Some("1h"))],
        };
        case.now = now() + secs(minutes * 60);
        let d = case.decide();
        if d.effect == Some(Effect::Claim) {
            let known = requester == 3;
            prop_assert!(known || !refuse);
            if scoped == 2 {
                // bob's approval is decided at `now()`, within the hour.
                prop_assert!(known && approval == 1);
            }
            prop_assert_eq!(d.status.as_ref().unwrap().requester.is_some(), known);
        }
    }
}
