//! The decision, case by case, and the exactly-once invariants as properties.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use proptest::prelude::*;
use serde_json::json;

use super::decide::*;
use super::record::Recorded;
use crate::amapi::model::{Device, NonComplianceDetail, Operation, ResetPasswordFlag};
use crate::api::{PasscodeReset, PasscodeResetStatus, Phase, Reason, WorkProfilePasscodePolicy};
use crate::passcode::{Passcode, PasscodeError};

const DEVICE: &str = "enterprises/LC01/devices/d1";
const CANARY: &str = "Kq7!canary#Zx";

fn now() -> Timestamp {
    "2026-11-23T10:00:00Z".parse().unwrap()
}

fn reset(spec: serde_json::Value) -> PasscodeReset {
    serde_json::from_value(json!({
        "apiVersion": "amapi.passcode-operator.io/v1alpha1",
        "kind": "PasscodeReset",
        "metadata": {"name": "r", "namespace": "ns", "generation": 1,
                     "creationTimestamp": "2026-11-23T09:59:58Z", "resourceVersion": "7"},
        "spec": spec,
    }))
    .unwrap()
}

fn with_passcode() -> PasscodeReset {
    reset(
        json!({"device": DEVICE, "newPasscode": {"secretKeyRef": {"name": "s", "key": "k"}}, "lockNow": true}),
    )
}

fn clearing() -> PasscodeReset {
    reset(json!({"device": DEVICE}))
}

fn with_status(mut r: PasscodeReset, f: impl FnOnce(&mut PasscodeResetStatus)) -> PasscodeReset {
    let mut s = r.status.clone().unwrap_or_default();
    f(&mut s);
    r.status = Some(s);
    r
}

fn finalized(mut r: PasscodeReset) -> PasscodeReset {
    r.metadata.finalizers = Some(vec![FINALIZER.into()]);
    r
}

fn claimed(r: PasscodeReset) -> PasscodeReset {
    finalized(with_status(r, |s| {
        s.phase = Some(Phase::Pending);
        s.reason = Some(Reason::Issuing);
        s.claimed_at = Some(Time(now() - SignedDuration::from_secs(1)));
        s.observed_generation = Some(1);
    }))
}

fn issued(r: PasscodeReset, op: &str) -> PasscodeReset {
    with_status(claimed(r), |s| {
        s.reason = Some(Reason::AwaitingDevice);
        s.operation = Some(op.into());
        s.issued_at = Some(Time(now() - SignedDuration::from_secs(5)));
        s.expires_at = Some(Time(now() + SignedDuration::from_secs(595)));
    })
}

fn device(v: serde_json::Value) -> Device {
    let mut base = json!({"name": DEVICE, "managementMode": "PROFILE_OWNER", "state": "ACTIVE",
                          "apiLevel": 34, "policyName": "enterprises/LC01/policies/wp"});
    for (k, val) in v.as_object().unwrap() {
        base[k] = val.clone();
    }
    serde_json::from_value(base).unwrap()
}

fn policy(requirements: serde_json::Value) -> Arc<WorkProfilePasscodePolicy> {
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "amapi.passcode-operator.io/v1alpha1",
            "kind": "WorkProfilePasscodePolicy",
            "metadata": {"name": "corp"},
            "spec": {"amapiPolicies": ["enterprises/LC01/policies/wp"], "requirements": requirements},
        }))
        .unwrap(),
    )
}

fn op(v: serde_json::Value) -> Operation {
    let mut base = json!({"name": "enterprises/LC01/devices/d1/operations/1"});
    for (k, val) in v.as_object().unwrap() {
        base[k] = val.clone();
    }
    serde_json::from_value(base).unwrap()
}

fn secret(p: &str) -> SecretRead {
    SecretRead::Value(Passcode::from_secret_data(p.as_bytes().to_vec()).unwrap())
}

struct Case {
    reset: PasscodeReset,
    config: Config,
    policies: Vec<Arc<WorkProfilePasscodePolicy>>,
    others: Vec<Arc<PasscodeReset>>,
    inputs: Inputs,
    now: Timestamp,
}

impl Case {
    fn new(reset: PasscodeReset) -> Self {
        Case {
            reset,
            config: Config::default(),
            policies: vec![],
            others: vec![],
            inputs: Inputs::default(),
            now: now(),
        }
    }
    fn device(mut self, d: Device) -> Self {
        self.inputs.device = Some(Read::Found(d));
        self
    }
    fn active(self) -> Self {
        self.device(device(json!({})))
    }
    fn secret(mut self, s: SecretRead) -> Self {
        self.inputs.secret = Some(s);
        self
    }
    fn recorded(mut self, r: Recorded) -> Self {
        self.inputs.record = Some(r);
        self
    }
    fn decide(&self) -> Decision {
        decide(&Observed {
            reset: &self.reset,
            now: self.now,
            config: &self.config,
            policies: &self.policies,
            others: &self.others,
            inputs: &self.inputs,
        })
    }
}

fn reason(d: &Decision) -> Option<Reason> {
    d.status.as_ref().and_then(|s| s.reason)
}

fn message(d: &Decision) -> String {
    d.status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_default()
}

// --- terminal -------------------------------------------------------------------------------

#[test]
fn terminal_resets_are_final() {
    for r in [
        Reason::PasscodeReset,
        Reason::DeviceRejected,
        Reason::OutcomeUnknown,
    ] {
        let reset = with_status(with_passcode(), |s| {
            s.phase = Some(r.phase());
            s.reason = Some(r);
            s.observed_generation = Some(1);
        });
        let d = Case::new(reset).decide();
        assert!(
            d.effect.is_none() && d.status.is_none() && d.requeue.is_none(),
            "{r:?}: {d:?}"
        );
    }
}

#[test]
fn terminal_resets_drop_their_finalizer() {
    let reset = finalized(with_status(with_passcode(), |s| {
        s.phase = Some(Phase::Succeeded);
        s.reason = Some(Reason::PasscodeReset);
        s.observed_generation = Some(1);
    }));
    assert_eq!(
        Case::new(reset).decide().effect,
        Some(Effect::RemoveFinalizer)
    );
}

#[test]
fn spec_edits_after_the_end_are_noted_not_acted_on() {
    let mut reset = with_status(with_passcode(), |s| {
        s.phase = Some(Phase::Succeeded);
        s.reason = Some(Reason::PasscodeReset);
        s.message = Some("done.".into());
        s.observed_generation = Some(1);
    });
    reset.metadata.generation = Some(2);
    let d = Case::new(reset).decide();
    let s = d.status.unwrap();
    assert_eq!(
        (s.phase, s.reason, s.observed_generation),
        (Some(Phase::Succeeded), Some(Reason::PasscodeReset), Some(2))
    );
    assert!(s.message.unwrap().contains("change was ignored"));
    assert!(d.effect.is_none());
}

// --- spec -----------------------------------------------------------------------------------

#[test]
fn malformed_specs_fail_with_spec_invalid() {
    for spec in [
        json!({"device": "not-a-device"}),
        json!({"device": DEVICE, "expiresAfter": "10 minutes"}),
        json!({"device": DEVICE, "expiresAfter": "30s"}),
        json!({"device": DEVICE, "expiresAfter": "200h"}),
        json!({"device": DEVICE, "requireEntry": true}),
    ] {
        let d = Case::new(reset(spec.clone())).decide();
        assert_eq!(reason(&d), Some(Reason::SpecInvalid), "{spec}");
        assert!(d.effect.is_none(), "no AMAPI call for a bad spec");
    }
}

#[test]
fn other_enterprises_are_refused() {
    let mut case = Case::new(clearing());
    case.config.enterprises = vec!["LC99".into()];
    let d = case.decide();
    assert_eq!(reason(&d), Some(Reason::EnterpriseNotAllowed));
    assert!(message(&d).contains("LC01") && message(&d).contains("LC99"));
    case.config.enterprises = vec!["LC99".into(), "LC01".into()];
    assert_eq!(case.decide().effect, Some(Effect::GetDevice));
}

// --- device ---------------------------------------------------------------------------------

#[test]
fn the_device_is_looked_at_first() {
    assert_eq!(
        Case::new(with_passcode()).decide().effect,
        Some(Effect::GetDevice)
    );
}

#[test]
fn device_problems_have_their_own_reasons() {
    let cases = [
        (Read::NotFound, Reason::DeviceNotFound),
        (Read::Denied("no access".into()), Reason::PermissionDenied),
        (
            Read::Found(device(json!({"state": "DISABLED"}))),
            Reason::DeviceNotActive,
        ),
        (
            Read::Found(device(json!({"state": "LOST"}))),
            Reason::DeviceNotActive,
        ),
        (
            Read::Found(device(
                json!({"managementMode": "MANAGEMENT_MODE_UNSPECIFIED"}),
            )),
            Reason::ManagementModeUnsupported,
        ),
        (
            Read::Found(device(json!({"managementMode": "SOMETHING_NEW"}))),
            Reason::ManagementModeUnsupported,
        ),
        (
            Read::Found(device(json!({"apiLevel": 25}))),
            Reason::ApiLevelUnsupported,
        ),
    ];
    for (read, expected) in cases {
        let mut case = Case::new(with_passcode());
        case.inputs.device = Some(read);
        let d = case.decide();
        assert_eq!(reason(&d), Some(expected));
        assert_eq!(d.status.unwrap().phase, Some(Phase::Failed));
    }
}

#[test]
fn an_unavailable_device_is_retried() {
    let mut case = Case::new(with_passcode());
    case.inputs.device = Some(Read::Unavailable("HTTP 503".into()));
    let d = case.decide();
    assert_eq!(reason(&d), Some(Reason::Retrying));
    assert!(d.requeue.is_some());
}

#[test]
fn fully_managed_devices_are_served_too() {
    let case = Case::new(with_passcode())
        .device(device(json!({"managementMode": "DEVICE_OWNER"})))
        .secret(secret("830417"));
    assert_eq!(case.decide().effect, Some(Effect::Record));
}

// --- requirements and the passcode ------------------------------------------------------------

#[test]
fn a_governed_device_needs_a_new_passcode() {
    let mut case = Case::new(clearing()).active();
    case.policies = vec![policy(json!({"quality": "NUMERIC", "minimumLength": 6}))];
    let d = case.decide();
    assert_eq!(reason(&d), Some(Reason::PasscodeRequired));
    let s = d.status.unwrap();
    assert_eq!(s.policy.as_deref(), Some("corp"));
    assert!(
        s.requirements
            .iter()
            .any(|c| c.rule == "passcodeRequired" && !c.met)
    );
}

#[test]
fn applied_device_policies_govern_too() {
    let d = device(
        json!({"appliedPasswordPolicies": [{"passwordScope": "SCOPE_PROFILE", "passwordQuality": "SOMETHING"}]}),
    );
    assert_eq!(
        reason(&Case::new(clearing()).device(d).decide()),
        Some(Reason::PasscodeRequired)
    );
}

#[test]
fn clearing_an_ungoverned_device_needs_no_secret() {
    assert_eq!(
        Case::new(clearing()).active().decide().effect,
        Some(Effect::Record)
    );
}

#[test]
fn the_secret_is_read_by_name() {
    let d = Case::new(with_passcode()).active().decide();
    assert_eq!(
        d.effect,
        Some(Effect::ReadSecret {
            name: "s".into(),
            key: "k".into()
        })
    );
}

#[test]
fn a_missing_secret_is_waited_for_with_backoff() {
    for read in [SecretRead::Missing, SecretRead::KeyMissing] {
        let d = Case::new(with_passcode()).active().secret(read).decide();
        assert_eq!(reason(&d), Some(Reason::WaitingForSecret));
        assert_eq!(d.status.as_ref().unwrap().phase, Some(Phase::Pending));
        assert!(
            d.requeue.unwrap() <= Duration::from_secs(5),
            "GitOps order: look again soon"
        );
    }
    assert!(secret_backoff(Duration::from_secs(3600)) > secret_backoff(Duration::from_secs(1)));
}

#[test]
fn an_unreadable_secret_is_retried_or_refused() {
    let d = Case::new(with_passcode())
        .active()
        .secret(SecretRead::Denied("forbidden".into()))
        .decide();
    assert_eq!(reason(&d), Some(Reason::Retrying));
    assert!(message(&d).contains("RBAC"));
    for e in [PasscodeError::Empty, PasscodeError::NotUtf8] {
        let d = Case::new(with_passcode())
            .active()
            .secret(SecretRead::Invalid(e))
            .decide();
        assert_eq!(reason(&d), Some(Reason::SecretInvalid));
    }
}

#[test]
fn an_invalid_passcode_fails_with_the_checklist_and_never_shows_it() {
    let mut case = Case::new(with_passcode()).active().secret(secret("98765"));
    case.policies = vec![policy(
        json!({"quality": "NUMERIC_COMPLEX", "minimumLength": 6}),
    )];
    let d = case.decide();
    assert_eq!(reason(&d), Some(Reason::PasscodeInvalid));
    let s = d.status.unwrap();
    assert!(
        s.requirements
            .iter()
            .any(|c| c.rule == "minimumLength" && !c.met)
    );
    assert!(
        s.requirements
            .iter()
            .any(|c| c.rule == "noSequence" && !c.met)
    );
    assert!(!serde_json::to_string(&s).unwrap().contains("98765"));
    let canary = Case::new(with_passcode())
        .active()
        .secret(secret(&format!("{CANARY}\u{7f}\u{1}")))
        .decide();
    assert!(!format!("{canary:?}").contains("canary"));
}

#[test]
fn android_14_rule_applies_from_api_level_34() {
    let d = Case::new(with_passcode())
        .active()
        .secret(secret("2580"))
        .decide();
    assert_eq!(reason(&d), Some(Reason::PasscodeInvalid));
    let d = Case::new(with_passcode())
        .device(device(json!({"apiLevel": 33})))
        .secret(secret("2580"))
        .decide();
    assert_eq!(d.effect, Some(Effect::Record));
}

// --- one command per device ------------------------------------------------------------------

fn other(
    name: &str,
    created: &str,
    f: impl FnOnce(&mut PasscodeResetStatus),
) -> Arc<PasscodeReset> {
    let mut r = with_status(with_passcode(), f);
    r.metadata.name = Some(name.into());
    r.metadata.creation_timestamp = Some(Time(created.parse().unwrap()));
    Arc::new(r)
}

#[test]
fn one_command_per_device_oldest_first() {
    let ready = Case::new(finalized(with_passcode()))
        .active()
        .secret(secret("830417"))
        .recorded(Recorded::Ours);
    assert_eq!(ready.decide().effect, Some(Effect::WriteStatus));

    let mut busy = Case::new(finalized(with_passcode()))
        .active()
        .secret(secret("830417"))
        .recorded(Recorded::Ours);
    busy.others = vec![other("younger-but-claimed", "2026-11-23T09:59:59Z", |s| {
        s.claimed_at = Some(Time(now()))
    })];
    let d = busy.decide();
    assert_eq!(reason(&d), Some(Reason::WaitingForDevice));
    assert!(message(&d).contains("younger-but-claimed"));

    busy.others = vec![other("older", "2026-11-23T09:00:00Z", |s| {
        s.reason = Some(Reason::Validating)
    })];
    assert_eq!(reason(&busy.decide()), Some(Reason::WaitingForDevice));

    busy.others = vec![other("older-waiting", "2026-11-23T09:00:00Z", |s| {
        s.reason = Some(Reason::WaitingForSecret)
    })];
    assert_eq!(
        busy.decide().effect,
        Some(Effect::WriteStatus),
        "a reset waiting for its Secret does not block"
    );

    busy.others = vec![other("older-done", "2026-11-23T09:00:00Z", |s| {
        s.phase = Some(Phase::Succeeded);
        s.claimed_at = Some(Time(now()));
    })];
    assert_eq!(busy.decide().effect, Some(Effect::WriteStatus));

    busy.others = vec![];
    busy.inputs.claimed_in_process = Some("ns/other".into());
    assert_eq!(reason(&busy.decide()), Some(Reason::WaitingForDevice));
}

// --- claim and issue ------------------------------------------------------------------------

#[test]
fn the_record_comes_before_the_finalizer_and_the_claim() {
    let case = Case::new(with_passcode()).active().secret(secret("830417"));
    assert_eq!(case.decide().effect, Some(Effect::Record));
    // Also with the finalizer already there (a restart after it was added).
    let case = Case::new(finalized(with_passcode()))
        .active()
        .secret(secret("830417"));
    assert_eq!(case.decide().effect, Some(Effect::Record));
    let d = Case::new(with_passcode())
        .active()
        .secret(secret("830417"))
        .recorded(Recorded::Ours)
        .decide();
    assert_eq!(d.effect, Some(Effect::AddFinalizer));
}

#[test]
fn a_recreated_twin_fails_without_a_claim() {
    let d = Case::new(with_passcode())
        .active()
        .secret(secret("830417"))
        .recorded(Recorded::Earlier {
            uid: "u-1".into(),
            claimed_at: "2026-11-20T08:00:00Z".into(),
            record: "passcode-operator-system/pcr-0123".into(),
        })
        .decide();
    assert_eq!(d.effect, None);
    let s = d.status.as_ref().unwrap();
    assert_eq!(
        (s.phase, s.reason),
        (Some(Phase::Failed), Some(Reason::Recreated))
    );
    assert!(s.claimed_at.is_none());
    let m = message(&d);
    for needle in [
        "ns/r",
        "u-1",
        "2026-11-20T08:00:00Z",
        "new name",
        "ConfigMap pcr-0123 in namespace passcode-operator-system",
    ] {
        assert!(m.contains(needle), "{needle}: {m}");
    }
    assert!(
        s.conditions
            .iter()
            .any(|c| c.type_ == "Stalled" && c.status == "True")
    );
}

#[test]
fn an_unwritable_record_is_retried_without_a_claim() {
    let d = Case::new(with_passcode())
        .active()
        .secret(secret("830417"))
        .recorded(Recorded::Unavailable("forbidden".into()))
        .decide();
    assert_eq!(d.effect, None);
    assert_eq!(reason(&d), Some(Reason::Retrying));
    assert!(message(&d).contains("forbidden"));
    assert!(d.requeue.is_some());
}

#[test]
fn the_claim_is_written_before_anything_is_sent() {
    let d = Case::new(finalized(with_passcode()))
        .active()
        .secret(secret("830417"))
        .recorded(Recorded::Ours)
        .decide();
    assert_eq!(d.effect, Some(Effect::WriteStatus));
    let s = d.status.unwrap();
    assert_eq!(
        (s.phase, s.reason),
        (Some(Phase::Pending), Some(Reason::Issuing))
    );
    assert_eq!(s.claimed_at, Some(Time(now())));
    assert!(s.operation.is_none());
    assert!(s.device.is_some() && !s.requirements.is_empty());
    assert!(
        s.conditions
            .iter()
            .any(|c| c.type_ == "Reconciling" && c.status == "True")
    );
}

#[test]
fn only_our_own_fresh_claim_issues() {
    let mut case = Case::new(claimed(with_passcode()));
    case.inputs.claimed_here = true;
    let d = case.decide();
    assert_eq!(
        d.effect,
        Some(Effect::IssueCommand(CommandParams {
            flags: vec![ResetPasswordFlag::LockNow],
            duration_secs: 600,
            with_passcode: true
        }))
    );
    let both = reset(
        json!({"device": DEVICE, "newPasscode": {"secretKeyRef": {"name": "s", "key": "k"}},
                             "lockNow": true, "requireEntry": true, "expiresAfter": "1h"}),
    );
    let mut case = Case::new(claimed(both));
    case.inputs.claimed_here = true;
    let Some(Effect::IssueCommand(p)) = case.decide().effect else {
        panic!()
    };
    assert_eq!(
        p.flags,
        [ResetPasswordFlag::RequireEntry, ResetPasswordFlag::LockNow]
    );
    assert_eq!(p.duration_secs, 3600);
}

#[test]
fn a_claim_found_after_a_restart_is_recovered_never_reissued() {
    let case = Case::new(claimed(with_passcode()));
    assert_eq!(case.decide().effect, Some(Effect::ListOperations));
}

#[test]
fn an_issued_command_is_recorded() {
    let mut case = Case::new(claimed(with_passcode()));
    case.inputs.claimed_here = true;
    case.inputs.issued = Some(Issued::Created(Box::new(op(
        json!({"metadata": {"createTime": "2026-11-23T10:00:00Z", "duration": "600s"}}),
    ))));
    let d = case.decide();
    let s = d.status.unwrap();
    assert_eq!(s.reason, Some(Reason::AwaitingDevice));
    assert_eq!(
        s.operation.as_deref(),
        Some("enterprises/LC01/devices/d1/operations/1")
    );
    assert_eq!(
        s.expires_at,
        Some(Time("2026-11-23T10:10:00Z".parse().unwrap()))
    );
    assert!(d.effect.is_none());
    assert!(
        d.requeue.unwrap() <= Duration::from_secs(1),
        "polling starts fast"
    );
}

#[test]
fn a_command_certainly_not_created_releases_the_claim() {
    let mut case = Case::new(claimed(with_passcode()));
    case.inputs.claimed_here = true;
    case.inputs.issued = Some(Issued::NotCreated("429".into()));
    let d = case.decide();
    assert_eq!(d.effect, Some(Effect::WriteStatus));
    let s = d.status.unwrap();
    assert_eq!((s.reason, s.claimed_at), (Some(Reason::Retrying), None));
}

#[test]
fn a_refused_command_fails_with_the_matching_reason() {
    for (code, expected) in [
        (403, Reason::PermissionDenied),
        (404, Reason::DeviceNotFound),
        (400, Reason::DeviceRejected),
    ] {
        let mut case = Case::new(claimed(with_passcode()));
        case.inputs.claimed_here = true;
        case.inputs.issued = Some(Issued::Refused {
            status: code,
            message: "no".into(),
        });
        assert_eq!(reason(&case.decide()), Some(expected));
    }
}

fn reset_op(name: &str, created: &str, flags: &[&str]) -> Operation {
    op(
        json!({"name": name, "metadata": {"type": "RESET_PASSWORD", "createTime": created, "resetPasswordFlags": flags}}),
    )
}

#[test]
fn an_ambiguous_issue_adopts_the_one_matching_command() {
    let mut case = Case::new(claimed(with_passcode()));
    case.inputs.claimed_here = true;
    case.inputs.issued = Some(Issued::Ambiguous("timed out".into()));
    assert_eq!(case.decide().effect, Some(Effect::ListOperations));

    case.inputs.operations = Some(Read::Found(vec![
        reset_op(
            "enterprises/LC01/devices/d1/operations/old",
            "2026-11-20T10:00:00Z",
            &["LOCK_NOW"],
        ),
        reset_op(
            "enterprises/LC01/devices/d1/operations/other-flags",
            "2026-11-23T10:00:00Z",
            &[],
        ),
        reset_op(
            "enterprises/LC01/devices/d1/operations/mine",
            "2026-11-23T10:00:00Z",
            &["LOCK_NOW"],
        ),
    ]));
    let s = case.decide().status.unwrap();
    assert_eq!(
        s.operation.as_deref(),
        Some("enterprises/LC01/devices/d1/operations/mine")
    );
    assert_eq!(s.reason, Some(Reason::AwaitingDevice));
}

#[test]
fn with_no_command_listed_the_claim_waits_for_its_window_then_goes_again() {
    // claimed() claims one second before now(); the default window is 180 s.
    let claimed_at = now() - SignedDuration::from_secs(1);
    let listed = |age: u64, ops: Vec<Operation>| {
        let mut case = Case::new(claimed(with_passcode()));
        case.inputs.operations = Some(Read::Found(ops));
        case.inputs.claim_age_at_listing = Some(Duration::from_secs(age));
        case
    };
    // Known for 1 s: keep the claim, send nothing, look again when the window closes.
    let d = listed(1, vec![]).decide();
    assert_eq!(d.effect, None);
    assert_eq!(reason(&d), Some(Reason::Issuing));
    assert!(
        d.status.as_ref().unwrap().claimed_at.is_some(),
        "the claim is kept"
    );
    assert!(message(&d).contains("in 179 s"), "{}", message(&d));
    let wait = d.requeue.unwrap();
    assert!(
        wait >= Duration::from_secs(179) && wait <= Duration::from_secs(180),
        "{wait:?}"
    );
    // A command created late in the window is still adopted.
    let late = reset_op(
        "enterprises/LC01/devices/d1/operations/late",
        "2026-11-23T10:02:58Z",
        &["LOCK_NOW"],
    );
    let mut case = listed(185, vec![late]);
    case.now = claimed_at + SignedDuration::from_secs(185);
    assert_eq!(
        case.decide().status.unwrap().operation.as_deref(),
        Some("enterprises/LC01/devices/d1/operations/late")
    );
    // Known for the whole window with nothing on the device: nothing was created. Release the
    // claim (a status write with the resourceVersion), so a new claim issues again.
    let d = listed(180, vec![]).decide();
    assert_eq!(d.effect, Some(Effect::WriteStatus));
    assert_eq!(reason(&d), Some(Reason::Retrying));
    assert!(d.status.as_ref().unwrap().claimed_at.is_none());
    assert!(
        message(&d).contains("in the 3 min since"),
        "{}",
        message(&d)
    );
    // The wall clock does not count: only how long this process has known the claim (a
    // restarted or second process, or a clock stepped forward, starts its own window).
    let mut case = listed(10, vec![]);
    case.now = claimed_at + SignedDuration::from_secs(3600);
    assert_eq!(reason(&case.decide()), Some(Reason::Issuing));
    // The window is the operator's setting.
    let mut case = listed(3, vec![]);
    case.config.adoption_window = Duration::from_secs(3);
    assert_eq!(case.decide().effect, Some(Effect::WriteStatus));
}

#[test]
fn any_other_reset_command_near_the_claim_forbids_sending_again() {
    let claimed_at = now() - SignedDuration::from_secs(1);
    let listed = |ops: Vec<Operation>| {
        let mut case = Case::new(claimed(with_passcode()));
        case.inputs.operations = Some(Read::Found(ops));
        case.inputs.claim_age_at_listing = Some(Duration::from_secs(180));
        case
    };
    // Without LOCK_NOW it does not match this reset, yet it could be this reset's command seen
    // through a skewed clock, or another's: it cannot be told that nothing was sent.
    let unlike = reset_op(
        "enterprises/LC01/devices/d1/operations/unlike",
        "2026-11-23T09:58:00Z",
        &[],
    );
    let d = listed(vec![unlike]).decide();
    assert_eq!(reason(&d), Some(Reason::OutcomeUnknown));
    assert!(message(&d).contains("will not send a second command"));
    // Recorded by a finished reset of the device (no longer cached): not adopted, and not taken
    // for proof that nothing was sent either.
    let finished = reset_op(
        "enterprises/LC01/devices/d1/operations/finished",
        "2026-11-23T09:59:50Z",
        &["LOCK_NOW"],
    );
    let mut case = listed(vec![finished.clone()]);
    case.inputs.settled_operations = vec![finished.name.clone()];
    assert_eq!(reason(&case.decide()), Some(Reason::OutcomeUnknown));
    // Commands from long before the reset was created do not count.
    let old = reset_op(
        "enterprises/LC01/devices/d1/operations/old",
        "2026-11-23T08:00:00Z",
        &["LOCK_NOW"],
    );
    assert_eq!(listed(vec![old]).decide().effect, Some(Effect::WriteStatus));
    let _ = claimed_at;
}

#[test]
fn a_finished_resets_command_is_never_adopted() {
    // Resets of a device run one after the other: the previous one's command may sit just before
    // this claim. It left the cache when it finished; its operation is still known.
    let previous = reset_op(
        "enterprises/LC01/devices/d1/operations/previous",
        "2026-11-23T09:59:45Z",
        &["LOCK_NOW"],
    );
    let mut case = Case::new(claimed(with_passcode()));
    case.inputs.operations = Some(Read::Found(vec![previous.clone()]));
    case.inputs.claim_age_at_listing = Some(Duration::from_secs(1));
    case.inputs.settled_operations = vec![previous.name.clone()];
    let d = case.decide();
    assert_eq!(reason(&d), Some(Reason::Issuing), "{}", message(&d));
    assert!(d.status.unwrap().operation.is_none());
    // Without that knowledge it would have been adopted: the guard is what matters.
    case.inputs.settled_operations.clear();
    assert_eq!(
        case.decide().status.unwrap().operation.as_deref(),
        Some(previous.name.as_str())
    );
}

#[test]
fn sending_is_limited_to_the_first_third_of_the_window() {
    let config = Config::default();
    let (start_within, attempt) = config.send_limits();
    assert_eq!(start_within, Duration::from_secs(60));
    assert_eq!(attempt, Duration::from_secs(60));
    // Last start + longest attempt leaves a third of the window for Google to finish.
    assert!(start_within + attempt + config.adoption_window / 3 <= config.adoption_window);
}

#[test]
fn when_the_command_cannot_be_told_the_outcome_is_unknown() {
    let mine = reset_op(
        "enterprises/LC01/devices/d1/operations/mine",
        "2026-11-23T10:00:00Z",
        &["LOCK_NOW"],
    );
    let twin = reset_op(
        "enterprises/LC01/devices/d1/operations/twin",
        "2026-11-23T10:00:01Z",
        &["LOCK_NOW"],
    );
    for ops in [
        Read::Found(vec![mine.clone(), twin]),
        Read::Denied("UNIMPLEMENTED".into()),
        Read::NotFound,
    ] {
        let mut case = Case::new(claimed(with_passcode()));
        case.inputs.operations = Some(ops);
        let d = case.decide();
        assert_eq!(reason(&d), Some(Reason::OutcomeUnknown));
        assert!(message(&d).contains("will not send a second command"));
    }
    // A command recorded by another reset is not ours: as if none were listed.
    let mut case = Case::new(claimed(with_passcode()));
    case.others = vec![other("taken", "2026-11-23T09:00:00Z", |s| {
        s.operation = Some(mine.name.clone())
    })];
    case.inputs.operations = Some(Read::Found(vec![mine]));
    case.inputs.claim_age_at_listing = Some(Duration::from_secs(1));
    let d = case.decide();
    assert_eq!((reason(&d), d.effect), (Some(Reason::Issuing), None));
    // Listing failed for now: keep the claim and look again.
    let mut case = Case::new(claimed(with_passcode()));
    case.inputs.operations = Some(Read::Unavailable("503".into()));
    let d = case.decide();
    assert_eq!(
        (reason(&d), d.effect.clone()),
        (Some(Reason::Issuing), None)
    );
    assert!(d.requeue.is_some());
}

// --- following the command ------------------------------------------------------------------

const OP: &str = "enterprises/LC01/devices/d1/operations/1";

#[test]
fn an_issued_command_is_polled() {
    let case = Case::new(issued(with_passcode(), OP));
    assert_eq!(case.decide().effect, Some(Effect::GetOperation(OP.into())));
    let mut case = Case::new(issued(with_passcode(), OP));
    case.inputs.operation = Some(Read::Found(op(json!({"done": false}))));
    let d = case.decide();
    assert_eq!(reason(&d), Some(Reason::AwaitingDevice));
    assert!(d.requeue.is_some() && d.effect.is_none());
}

#[test]
fn outcomes_map_to_reasons() {
    let cases = [
        (json!({"done": true}), Reason::PasscodeReset),
        (
            json!({"done": true, "error": {"code": 1, "message": "cancelled"}}),
            Reason::CommandCancelled,
        ),
        (
            json!({"done": true, "error": {"code": 4, "message": "expired"}}),
            Reason::CommandExpired,
        ),
        (
            json!({"done": true, "error": {"code": 13, "message": "internal"}}),
            Reason::DeviceRejected,
        ),
        (
            json!({"done": true, "metadata": {"errorCode": "API_LEVEL"}}),
            Reason::ApiLevelUnsupported,
        ),
        (
            json!({"done": true, "metadata": {"errorCode": "MANAGEMENT_MODE"}}),
            Reason::ManagementModeUnsupported,
        ),
        (
            json!({"done": true, "metadata": {"errorCode": "INVALID_VALUE"}}),
            Reason::DeviceRejected,
        ),
        (
            json!({"done": true, "metadata": {"errorCode": "UNKNOWN"}}),
            Reason::DeviceRejected,
        ),
    ];
    for (operation, expected) in cases {
        let mut case = Case::new(issued(with_passcode(), OP)).active();
        case.inputs.operation = Some(Read::Found(op(operation.clone())));
        let d = case.decide();
        assert_eq!(reason(&d), Some(expected), "{operation}");
        assert!(d.status.unwrap().completed_at.is_some());
    }
    let mut clear = Case::new(issued(clearing(), OP));
    clear.inputs.operation = Some(Read::Found(op(json!({"done": true}))));
    assert_eq!(reason(&clear.decide()), Some(Reason::PasscodeCleared));
}

#[test]
fn a_device_refusal_looks_at_the_device_to_explain_it() {
    let mut case = Case::new(issued(with_passcode(), OP));
    case.inputs.operation = Some(Read::Found(op(
        json!({"done": true, "metadata": {"errorCode": "UNKNOWN"}}),
    )));
    assert_eq!(case.decide().effect, Some(Effect::GetDevice));
    let mut d = device(json!({}));
    d.non_compliance_details = vec![NonComplianceDetail {
        specific_non_compliance_reason: Some(
            "PASSWORD_POLICIES_USER_CREDENTIALS_CONFIRMATION_REQUIRED".into(),
        ),
        ..Default::default()
    }];
    let case = case.device(d);
    assert!(message(&case.decide()).contains("has not confirmed their current lock"));

    let mut case = Case::new(issued(with_passcode(), OP)).active();
    case.policies = vec![policy(json!({"quality": "NUMERIC", "historyLength": 5}))];
    case.inputs.operation = Some(Read::Found(op(
        json!({"done": true, "metadata": {"errorCode": "INVALID_VALUE"}}),
    )));
    assert!(message(&case.decide()).contains("last 5 passcodes"));
}

#[test]
fn a_vanished_operation_is_outcome_unknown() {
    let mut case = Case::new(issued(with_passcode(), OP));
    case.inputs.operation = Some(Read::NotFound);
    assert_eq!(reason(&case.decide()), Some(Reason::OutcomeUnknown));
}

#[test]
fn an_expired_command_is_cancelled_then_failed() {
    let mut case = Case::new(issued(with_passcode(), OP));
    case.now = now() + SignedDuration::from_secs(700);
    case.inputs.operation = Some(Read::Found(op(json!({"done": false}))));
    assert_eq!(
        case.decide().effect,
        Some(Effect::CancelOperation(OP.into()))
    );
    case.inputs.cancelled = true;
    let d = case.decide();
    assert_eq!(reason(&d), Some(Reason::CommandExpired));
    assert!(d.effect.is_none());
}

#[test]
fn a_spec_changed_in_flight_is_followed_then_refused() {
    let mut r = issued(with_passcode(), OP);
    r.metadata.generation = Some(2);
    let mut case = Case::new(r);
    case.inputs.operation = Some(Read::Found(op(json!({"done": true}))));
    let d = case.decide();
    assert_eq!(reason(&d), Some(Reason::SpecChanged));
    assert!(message(&d).contains("The device set the new passcode"));
}

#[test]
fn poll_interval_starts_fast_slows_down_and_stops_at_expiry() {
    let r = issued(with_passcode(), OP);
    let s = r.status.unwrap();
    let at = |secs: i64| poll_interval(now() + SignedDuration::from_secs(secs), &s);
    assert!(at(0) <= Duration::from_secs(1));
    assert!(at(120) > at(0) && at(400) >= at(120));
    // 5 s before expiry + grace: never sleeps past it (plus a 100 ms margin).
    assert!(
        at(620) <= Duration::from_millis(5_100),
        "never sleeps past expiry + grace"
    );
}

// --- deletion -------------------------------------------------------------------------------

fn deleting(mut r: PasscodeReset) -> PasscodeReset {
    r.metadata.deletion_timestamp = Some(Time(now()));
    r
}

#[test]
fn deleting_an_in_flight_reset_cancels_its_command() {
    let mut case = Case::new(deleting(issued(with_passcode(), OP)));
    assert_eq!(
        case.decide().effect,
        Some(Effect::CancelOperation(OP.into()))
    );
    case.inputs.cancelled = true;
    assert_eq!(case.decide().effect, Some(Effect::RemoveFinalizer));
    // Claimed, operation not recorded: find it to cancel it.
    let mut case = Case::new(deleting(claimed(with_passcode())));
    assert_eq!(case.decide().effect, Some(Effect::ListOperations));
    case.inputs.operations = Some(Read::Found(vec![reset_op(
        "enterprises/LC01/devices/d1/operations/mine",
        "2026-11-23T10:00:00Z",
        &["LOCK_NOW"],
    )]));
    assert_eq!(
        case.decide().effect,
        Some(Effect::CancelOperation(
            "enterprises/LC01/devices/d1/operations/mine".into()
        ))
    );
    // Nothing in flight: just let it go.
    assert_eq!(
        Case::new(deleting(finalized(with_passcode())))
            .decide()
            .effect,
        Some(Effect::RemoveFinalizer)
    );
    assert!(
        Case::new(deleting(with_passcode()))
            .decide()
            .effect
            .is_none()
    );
}

// --- invariants -----------------------------------------------------------------------------

fn arb_reason() -> impl Strategy<Value = Reason> {
    proptest::sample::select(Reason::ALL.to_vec())
}

fn arb_read<T: Clone + std::fmt::Debug + 'static>(v: T) -> impl Strategy<Value = Option<Read<T>>> {
    prop_oneof![
        Just(None),
        Just(Some(Read::NotFound)),
        Just(Some(Read::Denied("d".into()))),
        Just(Some(Read::Unavailable("u".into()))),
        Just(Some(Read::Found(v))),
    ]
    .prop_map(|r| r)
}

proptest! {
    /// Settled resets leave the cache (see `cached`); that is safe because deciding on one does
    /// nothing at all.
    #[test]
    fn settled_resets_need_nothing(
        reason in proptest::option::of(arb_reason()),
        generation in 1i64..3,
        finalizer in any::<bool>(),
        deleted in any::<bool>(),
        claimed_here in any::<bool>(),
        with_secret in any::<bool>(),
    ) {
        let mut r = with_status(issued(with_passcode(), OP), |s| {
            s.phase = reason.map(|r| r.phase());
            s.reason = reason;
        });
        r.metadata.generation = Some(generation);
        if !finalizer { r.metadata.finalizers = None; }
        if deleted { r = deleting(r); }
        let mut case = Case::new(r.clone());
        case.inputs.claimed_here = claimed_here;
        if with_secret { case.inputs.secret = Some(secret("830417")); }
        let d = case.decide();
        if super::cached::settled(&r) {
            prop_assert!(d.status.is_none() && d.effect.is_none() && d.requeue.is_none(), "{:?}", d);
        } else {
            prop_assert!(!reason.is_some_and(|r| r.phase().is_terminal()) || generation != 1 || finalizer || deleted);
        }
    }

    /// IssueCommand only right after this reconcile's own claim and before any answer; terminal
    /// resets never call AMAPI.
    #[test]
    fn exactly_once(
        reason in proptest::option::of(arb_reason()),
        claimed_at in any::<bool>(),
        operation in any::<bool>(),
        finalizer in any::<bool>(),
        deleted in any::<bool>(),
        generation in 1i64..3,
        claimed_here in any::<bool>(),
        issued in 0u8..5,
        dev in arb_read(device(json!({}))),
        ops in arb_read(vec![reset_op("enterprises/LC01/devices/d1/operations/1", "2026-11-23T10:00:00Z", &["LOCK_NOW"])]),
        oper in arb_read(op(json!({"done": false}))),
        cancelled in any::<bool>(),
        with_secret in any::<bool>(),
        record in 0u8..4,
    ) {
        let mut r = with_status(with_passcode(), |s| {
            s.phase = reason.map(|r| r.phase());
            s.reason = reason;
            s.observed_generation = Some(1);
            s.claimed_at = claimed_at.then(|| Time(now()));
            s.operation = operation.then(|| OP.to_owned());
        });
        r.metadata.generation = Some(generation);
        if finalizer { r = finalized(r); }
        if deleted { r = deleting(r); }
        let mut case = Case::new(r.clone());
        case.inputs.device = dev;
        case.inputs.operations = ops;
        case.inputs.operation = oper;
        case.inputs.cancelled = cancelled;
        case.inputs.claimed_here = claimed_here;
        case.inputs.issued = match issued {
            0 => None,
            1 => Some(Issued::Created(Box::new(op(json!({}))))),
            2 => Some(Issued::NotCreated("n".into())),
            3 => Some(Issued::Refused { status: 400, message: "m".into() }),
            _ => Some(Issued::Ambiguous("a".into())),
        };
        if with_secret { case.inputs.secret = Some(secret("830417")); }
        case.inputs.record = match record {
            0 => None,
            1 => Some(Recorded::Ours),
            2 => Some(Recorded::Earlier { uid: "u".into(), claimed_at: "t".into(), record: "n/c".into() }),
            _ => Some(Recorded::Unavailable("u".into())),
        };
        let d = case.decide();
        // A claim is only ever written over this reset's own record.
        if d.effect == Some(Effect::WriteStatus) && !claimed_at
            && d.status.as_ref().is_some_and(|s| s.claimed_at.is_some())
        {
            prop_assert_eq!(record, 1);
        }
        if let Some(Effect::IssueCommand(_)) = d.effect {
            prop_assert!(claimed_at && claimed_here && !operation && case.inputs.issued.is_none() && !deleted);
            prop_assert!(reason.is_none_or(|r| !r.phase().is_terminal()));
        }
        let terminal = reason.is_some_and(|r| r.phase().is_terminal());
        if terminal && !deleted {
            prop_assert!(matches!(d.effect, None | Some(Effect::RemoveFinalizer)), "{:?}", d.effect);
        }
        // Whatever happens, the status never contains the passcode.
        if let Some(s) = &d.status {
            prop_assert!(!serde_json::to_string(s).unwrap().contains("830417"));
        }
    }
}
