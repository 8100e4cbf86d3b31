//! Before the claim: the spec, the device, the requirements and the passcode, the device's turn,
//! the finalizer, the record; then the claim.

use std::time::Duration;

use super::*;
use crate::passcode::PasscodeError;

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
    assert_eq!(case.decide().effect, Some(Effect::GetDevice(DEVICE.into())));
}

// --- device ---------------------------------------------------------------------------------

#[test]
fn the_device_is_looked_at_first() {
    assert_eq!(
        Case::new(with_passcode()).decide().effect,
        Some(Effect::GetDevice(DEVICE.into()))
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
    // Through every gate: the finalizer is the first step after them.
    let case = Case::new(with_passcode())
        .device(device(json!({"managementMode": "DEVICE_OWNER"})))
        .secret(secret("830417"));
    assert_eq!(case.decide().effect, Some(Effect::AddFinalizer));
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
        Some(Effect::AddFinalizer)
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
    assert_eq!(d.effect, Some(Effect::AddFinalizer));
}

// --- one command per device ------------------------------------------------------------------

/// Finalized, recorded, through every gate: the next step is the claim.
fn ready() -> Case {
    Case::new(finalized(with_passcode()))
        .active()
        .secret(secret("830417"))
        .recorded(Recorded::Ours)
}

#[test]
fn one_command_per_device_oldest_first() {
    assert_eq!(ready().decide().effect, Some(Effect::Claim));

    let mut busy = ready();
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
        Some(Effect::Claim),
        "a reset waiting for its Secret does not block"
    );

    busy.others = vec![other("older-done", "2026-11-23T09:00:00Z", |s| {
        s.phase = Some(Phase::Succeeded);
        s.claimed_at = Some(Time(now()));
    })];
    assert_eq!(busy.decide().effect, Some(Effect::Claim));

    busy.others = vec![];
    busy.inputs.claimed_in_process = Some("ns/other".into());
    assert_eq!(reason(&busy.decide()), Some(Reason::WaitingForDevice));
}

#[test]
fn an_older_reset_stuck_retrying_does_not_block_younger_ones() {
    let mut case = ready();
    case.others = vec![other("older-retrying", "2026-11-23T09:00:00Z", |s| {
        s.phase = Some(Phase::Pending);
        s.reason = Some(Reason::Retrying);
        s.message = Some("Could not look at the device: HTTP 503".into());
    })];
    let d = case.decide();
    assert_eq!(d.effect, Some(Effect::Claim), "{}", message(&d));
    // Released after issueCommand certainly created nothing: retrying too, no claim left.
    case.others = vec![other("older-released", "2026-11-23T09:00:00Z", |s| {
        s.phase = Some(Phase::Pending);
        s.reason = Some(Reason::Retrying);
        s.message = Some("AMAPI did not take the command (429); trying again.".into());
    })];
    assert_eq!(case.decide().effect, Some(Effect::Claim));
    // Waiting for the device (its turn is coming) still blocks.
    case.others = vec![other("older-in-line", "2026-11-23T09:00:00Z", |s| {
        s.phase = Some(Phase::Pending);
        s.reason = Some(Reason::WaitingForDevice);
    })];
    assert_eq!(reason(&case.decide()), Some(Reason::WaitingForDevice));
    // And the retrying reset, ready again, waits for the younger one that claimed meanwhile.
    let mut older = Case::new(finalized(with_passcode()))
        .active()
        .secret(secret("830417"))
        .recorded(Recorded::Ours);
    older.reset.metadata.creation_timestamp = Some(Time("2026-11-23T09:00:00Z".parse().unwrap()));
    older.reset = with_status(older.reset, |s| s.reason = Some(Reason::Retrying));
    older.others = vec![other("younger-claimed", "2026-11-23T09:59:59Z", |s| {
        s.claimed_at = Some(Time(now()))
    })];
    let d = older.decide();
    assert_eq!(reason(&d), Some(Reason::WaitingForDevice));
    assert!(message(&d).contains("younger-claimed"));
}

/// A reset claimed for this device whose spec was then edited to another (no CEL): its command
/// to this device may still be pending, so this device is not free.
#[test]

fn a_reset_claimed_for_this_device_then_edited_away_keeps_its_turn() {
    let mut x = (*other("edited-away", "2026-11-23T09:59:59Z", |s| {
        s.phase = Some(Phase::Pending);
        s.reason = Some(Reason::AwaitingDevice);
        s.claimed_at = Some(Time(claimed_at()));
        s.claimed_command = Some(claimed_command(&with_passcode().spec, 7));
        s.operation = Some(OP.into());
        s.observed_generation = Some(1);
    }))
    .clone();
    x.spec.device = DEVICE_B.into();
    x.metadata.generation = Some(2);
    let mut case = ready();
    case.others = vec![Arc::new(x)];
    let d = case.decide();
    assert_eq!(reason(&d), Some(Reason::WaitingForDevice), "{:?}", d.effect);
}

#[test]
fn the_turn_comes_before_the_finalizer() {
    let mut case = Case::new(with_passcode()).active().secret(secret("830417"));
    case.others = vec![other("claimed", "2026-11-23T09:59:59Z", |s| {
        s.claimed_at = Some(Time(now()))
    })];
    let d = case.decide();
    assert_eq!(reason(&d), Some(Reason::WaitingForDevice));
    assert_eq!(d.effect, None, "no finalizer while waiting for the device");
    assert!(d.requeue.is_some());
}

// --- finalizer, record, claim ---------------------------------------------------------------

#[test]
fn the_finalizer_comes_before_the_record_and_the_claim() {
    let case = Case::new(with_passcode()).active().secret(secret("830417"));
    assert_eq!(case.decide().effect, Some(Effect::AddFinalizer));
    // Also with the record already written: nothing is recorded without the finalizer, so a
    // deletion always passes through `on_delete`, which takes the run out again.
    let case = Case::new(with_passcode())
        .active()
        .secret(secret("830417"))
        .recorded(Recorded::Ours);
    assert_eq!(case.decide().effect, Some(Effect::AddFinalizer));
    let case = Case::new(finalized(with_passcode()))
        .active()
        .secret(secret("830417"));
    assert_eq!(case.decide().effect, Some(Effect::Record));
    assert_eq!(ready().decide().effect, Some(Effect::Claim));
}

/// A record that ends the reset, at the record step.
fn recorded(r: Recorded) -> Decision {
    Case::new(finalized(with_passcode()))
        .active()
        .secret(secret("830417"))
        .recorded(r)
        .decide()
}

/// The reset failed at the record step for `reason`: nothing claimed, Stalled, and the message
/// names each of `needles`.
fn failed_at_the_record(d: &Decision, reason: Reason, needles: &[&str]) {
    assert_eq!(d.effect, None);
    let s = d.status.as_ref().unwrap();
    assert_eq!((s.phase, s.reason), (Some(Phase::Failed), Some(reason)));
    assert!(s.claimed_at.is_none() && s.claimed_command.is_none());
    assert!(s.completed_at.is_some());
    let m = message(d);
    for needle in needles {
        assert!(m.contains(needle), "{needle}: {m}");
    }
    assert!(
        s.conditions
            .iter()
            .any(|c| c.type_ == "Stalled" && c.status == "True")
    );
}

#[test]
fn a_recreated_twin_fails_without_a_claim() {
    let d = recorded(Recorded::Earlier {
        uid: "u-1".into(),
        claimed_at: "2026-11-20T08:00:00Z".into(),
        record: "passcode-operator-system/pcr-0123".into(),
    });
    failed_at_the_record(
        &d,
        Reason::Recreated,
        &[
            "ns/r",
            "u-1",
            "2026-11-20T08:00:00Z",
            "new name",
            "ConfigMap pcr-0123 in namespace passcode-operator-system",
        ],
    );
}

#[test]
fn a_full_record_fails_without_a_claim() {
    let d = recorded(Recorded::Full {
        record: "passcode-operator-system/pcr-0123".into(),
    });
    let runs = format!(
        "{} different resets",
        crate::reconcile::reset::record::MAX_RUNS
    );
    failed_at_the_record(
        &d,
        Reason::RecordFull,
        &[
            "ns/r",
            &runs,
            "new name",
            "ConfigMap pcr-0123 in namespace passcode-operator-system",
        ],
    );
}

#[test]
fn an_unwritable_record_is_retried_without_a_claim() {
    let d = recorded(Recorded::Unavailable("forbidden".into()));
    assert_eq!(d.effect, None);
    assert_eq!(reason(&d), Some(Reason::Retrying));
    assert!(message(&d).contains("forbidden"));
    assert!(d.requeue.is_some());
    assert!(d.status.unwrap().claimed_at.is_none());
}

#[test]
fn the_claim_is_written_before_anything_is_sent() {
    let d = ready().decide();
    assert_eq!(d.effect, Some(Effect::Claim));
    let s = d.status.unwrap();
    assert_eq!(
        (s.phase, s.reason),
        (Some(Phase::Pending), Some(Reason::Issuing))
    );
    assert_eq!(s.claimed_at, Some(Time(now())));
    assert_eq!(
        s.claimed_command,
        Some(ClaimedCommand {
            device: DEVICE.into(),
            new_passcode: true,
            lock_now: true,
            require_entry: false,
            duration: FINGERPRINT.into(),
            secret_name: Some("s".into()),
            secret_uid: None,
        })
    );
    assert_eq!(s.observed_generation, Some(1));
    assert!(s.operation.is_none());
    assert!(s.device.is_some() && !s.requirements.is_empty());
    assert!(
        s.conditions
            .iter()
            .any(|c| c.type_ == "Reconciling" && c.status == "True")
    );
    assert!(!serde_json::to_string(&s).unwrap().contains("830417"));
}

#[test]
fn the_claim_names_the_command_with_a_fingerprint_of_this_claim() {
    let both = reset(
        json!({"device": DEVICE, "newPasscode": {"secretKeyRef": {"name": "s", "key": "k"}},
               "requireEntry": true, "expiresAfter": "1h"}),
    );
    // The Secret read is recorded by name and uid: only it is deleted after the end.
    let read = SecretRead::Value(
        crate::passcode::Passcode::from_secret_data(b"830417".to_vec()).unwrap(),
        Some("secret-uid-1".into()),
    );
    let mut case = Case::new(finalized(both))
        .active()
        .secret(read)
        .recorded(Recorded::Ours);
    case.inputs.claim_nonce = 7;
    let claim = case.decide().status.unwrap().claimed_command.unwrap();
    assert_eq!(
        claim,
        ClaimedCommand {
            device: DEVICE.into(),
            new_passcode: true,
            lock_now: false,
            require_entry: true,
            duration: "3600.000000007s".into(),
            secret_name: Some("s".into()),
            secret_uid: Some("secret-uid-1".into()),
        }
    );
    // Another claim draws another nonce: another fingerprint, never a whole second.
    case.inputs.claim_nonce = 999_999_999;
    let claim = case.decide().status.unwrap().claimed_command.unwrap();
    assert_eq!(claim.duration, "3600.999999999s");
    case.inputs.claim_nonce = 0;
    let claim = case.decide().status.unwrap().claimed_command.unwrap();
    assert_eq!(claim.duration, "3600.000000001s");
    // Clearing: no passcode in the command.
    let claim = Case::new(finalized(clearing()))
        .active()
        .recorded(Recorded::Ours)
        .decide()
        .status
        .unwrap()
        .claimed_command
        .unwrap();
    assert!(!claim.new_passcode && !claim.lock_now && !claim.require_entry);
    assert_eq!(claim.duration, FINGERPRINT);
}

#[test]
fn the_claim_time_is_rounded_to_the_second() {
    for (after_ms, expected) in [(0, 0), (400, 0), (600, 1), (1_499, 1)] {
        let mut case = ready();
        case.now = now() + SignedDuration::from_millis(after_ms);
        let s = case.decide().status.unwrap();
        assert_eq!(
            s.claimed_at,
            Some(Time(now() + secs(expected))),
            "{after_ms} ms"
        );
    }
}
