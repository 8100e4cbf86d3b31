//! After the command is recorded: poll it until the device acts, it fails, or it expires (then
//! cancel it and read it again).

use std::time::Duration;

use super::*;
use crate::amapi::model::NonComplianceDetail;

#[test]
fn an_issued_command_is_polled() {
    let case = Case::new(issued(with_passcode(), OP));
    assert_eq!(case.decide().effect, Some(Effect::GetOperation(OP.into())));
    let d = Case::new(issued(with_passcode(), OP))
        .polled(json!({"done": false}))
        .decide();
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
        let d = Case::new(issued(with_passcode(), OP))
            .active()
            .polled(operation.clone())
            .decide();
        assert_eq!(reason(&d), Some(expected), "{operation}");
        assert!(d.status.unwrap().completed_at.is_some());
    }
    let clear = Case::new(issued(clearing(), OP)).polled(json!({"done": true}));
    assert_eq!(reason(&clear.decide()), Some(Reason::PasscodeCleared));
}

#[test]
fn a_device_refusal_looks_at_the_device_to_explain_it() {
    let case = Case::new(issued(with_passcode(), OP))
        .polled(json!({"done": true, "metadata": {"errorCode": "UNKNOWN"}}));
    assert_eq!(case.decide().effect, Some(Effect::GetDevice(DEVICE.into())));
    let mut d = device(json!({}));
    d.non_compliance_details = vec![NonComplianceDetail {
        specific_non_compliance_reason: Some(
            "PASSWORD_POLICIES_USER_CREDENTIALS_CONFIRMATION_REQUIRED".into(),
        ),
        ..Default::default()
    }];
    let case = case.device(d);
    assert!(message(&case.decide()).contains("has not confirmed their current lock"));

    let mut case = Case::new(issued(with_passcode(), OP))
        .active()
        .polled(json!({"done": true, "metadata": {"errorCode": "INVALID_VALUE"}}));
    case.policies = vec![policy(json!({"quality": "NUMERIC", "historyLength": 5}))];
    assert!(message(&case.decide()).contains("last 5 passcodes"));

    // The device looked at is the claimed one, also after the spec was edited.
    let case = Case::new(edited(issued(with_passcode(), OP), on_device_b()))
        .polled(json!({"done": true, "metadata": {"errorCode": "UNKNOWN"}}));
    assert_eq!(case.decide().effect, Some(Effect::GetDevice(DEVICE.into())));
}

#[test]
fn a_vanished_operation_is_outcome_unknown() {
    let mut case = Case::new(issued(with_passcode(), OP));
    case.inputs.operation = Some(Read::NotFound);
    let d = case.decide();
    assert_eq!(reason(&d), Some(Reason::OutcomeUnknown));
    assert!(message(&d).contains(OP));
}

#[test]
fn an_unreadable_operation_is_read_again_until_well_past_expiry() {
    // issued() expires 595 s after now(); then 30 s grace and 10 min.
    let unavailable = |after: i64| {
        let mut case = Case::new(issued(with_passcode(), OP));
        case.now = now() + secs(after);
        case.inputs.operation = Some(Read::Unavailable("HTTP 503".into()));
        case.decide()
    };
    for after in [0, 700, 595 + 30 + 600] {
        let d = unavailable(after);
        assert_eq!(reason(&d), Some(Reason::AwaitingDevice), "{after}");
        assert_eq!(d.effect, None);
        assert!(d.requeue.unwrap() >= Duration::from_secs(2));
        assert!(message(&d).contains("HTTP 503"));
    }
    // Past expiry and grace: every 30 s, not every 2 s, until it gives up.
    assert_eq!(unavailable(700).requeue, Some(Duration::from_secs(30)));
    let d = unavailable(595 + 30 + 601);
    assert_eq!(reason(&d), Some(Reason::OutcomeUnknown));
    assert!(message(&d).contains("HTTP 503"));
    // A failed read at a safety-net poll while completion is pushed: back on the polling
    // schedule (5 s at this age), not another 40 minutes.
    let mut case = Case::new(issued(with_passcode(), OP));
    case.config.notifications = true;
    case.now = now() + secs(40);
    case.inputs.operation = Some(Read::Unavailable("HTTP 503".into()));
    assert_eq!(case.decide().requeue, Some(Duration::from_secs(5)));
    let mut case = Case::new(issued(with_passcode(), OP));
    case.inputs.operation = Some(Read::Denied("forbidden".into()));
    assert_eq!(reason(&case.decide()), Some(Reason::PermissionDenied));
}

#[test]
fn an_expired_command_is_cancelled_then_failed() {
    let mut case = Case::new(issued(with_passcode(), OP)).polled(json!({"done": false}));
    // Within the grace after expiry: still waiting.
    case.now = now() + secs(595 + 30);
    assert_eq!(reason(&case.decide()), Some(Reason::AwaitingDevice));
    case.now = now() + secs(700);
    assert_eq!(
        case.decide().effect,
        Some(Effect::CancelOperation(OP.into()))
    );
    // The shell cancels, drops what it read and reads it again.
    case.inputs.cancelled = true;
    case.inputs.operation = None;
    assert_eq!(case.decide().effect, Some(Effect::GetOperation(OP.into())));
    // Still pending after the cancel: expired, though not confirmed.
    let case = case.polled(json!({"done": false}));
    let d = case.decide();
    assert_eq!(reason(&d), Some(Reason::CommandExpired));
    assert!(d.effect.is_none());
    assert!(
        message(&d).contains("AMAPI still showed it pending"),
        "{}",
        message(&d)
    );
}

#[test]
fn a_cancel_is_read_again_and_the_device_may_win_the_race() {
    let after_cancel = |v: serde_json::Value| {
        let mut case = Case::new(issued(with_passcode(), OP)).polled(v);
        case.now = now() + secs(700);
        case.inputs.cancelled = true;
        case
    };
    // The device acted just before the cancel.
    let d = after_cancel(json!({"done": true})).decide();
    assert_eq!(reason(&d), Some(Reason::PasscodeReset));
    // Cancelled by us: expired, confirmed.
    let d =
        after_cancel(json!({"done": true, "error": {"code": 1, "message": "cancelled"}})).decide();
    assert_eq!(reason(&d), Some(Reason::CommandExpired));
    let m = message(&d);
    assert!(
        m.contains("it was cancelled") && !m.contains("still showed"),
        "{m}"
    );
    // Expired at Google's end.
    let d =
        after_cancel(json!({"done": true, "error": {"code": 4, "message": "expired"}})).decide();
    assert_eq!(reason(&d), Some(Reason::CommandExpired));
    // Refused by the device meanwhile: explained as any refusal.
    let case = after_cancel(json!({"done": true, "metadata": {"errorCode": "INVALID_VALUE"}}));
    assert_eq!(case.decide().effect, Some(Effect::GetDevice(DEVICE.into())));
    assert_eq!(
        reason(&case.active().decide()),
        Some(Reason::DeviceRejected)
    );
}

#[test]
fn a_spec_changed_in_flight_is_followed_then_refused() {
    let mut r = issued(with_passcode(), OP);
    r.metadata.generation = Some(2);
    let case = Case::new(r);
    assert_eq!(case.decide().effect, Some(Effect::GetOperation(OP.into())));
    let d = case.polled(json!({"done": true})).decide();
    assert_eq!(reason(&d), Some(Reason::SpecChanged));
    assert!(message(&d).contains("The device set the new passcode"));
    assert!(message(&d).contains(DEVICE));
    // The outcome is the claimed command's: the claim set a passcode, though the spec now clears.
    let d = Case::new(edited(
        issued(with_passcode(), OP),
        json!({"device": DEVICE}),
    ))
    .polled(json!({"done": true}))
    .decide();
    assert_eq!(reason(&d), Some(Reason::SpecChanged));
    assert!(
        message(&d).contains("The device set the new passcode and locked."),
        "{}",
        message(&d)
    );
    // Expired and cancelled, edited to another device: SpecChanged, naming the claimed device.
    let mut case = Case::new(edited(issued(with_passcode(), OP), on_device_b()))
        .polled(json!({"done": false}));
    case.now = now() + secs(700);
    assert_eq!(
        case.decide().effect,
        Some(Effect::CancelOperation(OP.into()))
    );
    case.inputs.cancelled = true;
    let d = case.decide();
    assert_eq!(reason(&d), Some(Reason::SpecChanged));
    let m = message(&d);
    assert!(
        m.contains(DEVICE) && !m.contains(DEVICE_B) && m.contains("expired"),
        "{m}"
    );
}

#[test]
fn poll_interval_starts_fast_slows_down_and_stops_at_expiry() {
    let r = issued(with_passcode(), OP);
    let s = r.status.unwrap();
    // Seconds after issuing (the fixture issued it 5 s before `now()`).
    let at = |secs: i64| poll_interval(now() + SignedDuration::from_secs(secs - 5), &s);
    assert!(at(0) <= Duration::from_secs(1));
    assert!(at(120) > at(0) && at(400) >= at(120));
    // The first 10 s: from every 0.5 s, half the time since issuing; about 8 polls in all.
    let mut t = 0u64;
    let mut polls = 0;
    let issued_at = s.issued_at.as_ref().unwrap().0;
    while t < 10_000 {
        let when = issued_at + SignedDuration::from_millis(t as i64);
        t += poll_interval(when, &s).as_millis() as u64;
        polls += 1;
    }
    assert!((6..=10).contains(&polls), "{polls} polls in the first 10 s");
    // 5 s before expiry + grace: never sleeps past it (plus a 100 ms margin).
    assert!(
        at(625) <= Duration::from_millis(5_100),
        "never sleeps past expiry + grace"
    );
}

/// The operator cancelled the expired command in an earlier reconcile whose re-read failed; this
/// one reads it cancelled. It expired: not a cancellation by someone else.
#[test]

fn a_cancel_read_back_in_a_later_reconcile_is_still_an_expiry() {
    let mut case = Case::new(issued(with_passcode(), OP))
        .polled(json!({"done": true, "error": {"code": 1, "message": "cancelled"}}));
    case.now = now() + secs(700);
    assert_eq!(reason(&case.decide()), Some(Reason::CommandExpired));
}

#[test]
fn a_deferred_follow_up_poll_changes_nothing_and_comes_back_spread_out() {
    let mut case = Case::new(issued(with_passcode(), OP));
    case.inputs.poll_deferred = true;
    let d = case.decide();
    assert!(d.status.is_none() && d.effect.is_none(), "{d:?}");
    let first = d.requeue.unwrap();
    assert!((Duration::from_secs(5)..Duration::from_secs(10)).contains(&first));
    case.inputs.claim_nonce += 1234;
    assert_ne!(case.decide().requeue, Some(first), "spread by the nonce");
}

#[test]
fn long_pending_commands_are_polled_within_the_hourly_budget() {
    let issued_at = now();
    let pending = PasscodeResetStatus {
        issued_at: Some(Time(issued_at)),
        expires_at: Some(Time(issued_at + SignedDuration::from_hours(168))),
        ..Default::default()
    };
    let status = |_: i64| pending.clone();
    let at = |minutes: i64| issued_at + SignedDuration::from_mins(minutes);
    assert!(!is_followup(at(0), &status(0)));
    assert!(is_followup(at(1), &status(1)));
    assert!(is_followup(
        issued_at + SignedDuration::from_secs(10),
        &pending
    ));
    // The poll after expiry and grace decides the end: never deferred for a budget.
    let expired = issued_at + SignedDuration::from_hours(168) + SignedDuration::from_secs(31);
    assert!(!is_followup(expired, &pending));
    assert!(is_followup(
        expired - SignedDuration::from_secs(2),
        &pending
    ));
    // After ten minutes: 12 polls an hour, or 1.5 when completion is pushed.
    assert_eq!(
        poll_interval_with(at(30), &status(30), false),
        Duration::from_secs(300)
    );
    assert_eq!(
        poll_interval_with(at(30), &status(30), true),
        Duration::from_secs(2400)
    );
    // Fast at first when polling.
    assert_eq!(
        poll_interval_with(at(0), &status(0), false),
        Duration::from_millis(500)
    );
}

/// Pushed: a poll at 30 s (a lost notification of a device that acted at once), then the safety
/// net; over a week's expiry that is under 2 calls an hour, first minutes included, where polling
/// alone makes 12.
#[test]
fn pushed_completion_is_polled_only_as_a_safety_net() {
    let issued_at = now();
    let pending = PasscodeResetStatus {
        issued_at: Some(Time(issued_at)),
        expires_at: Some(Time(issued_at + SignedDuration::from_hours(168))),
        ..Default::default()
    };
    let polls_in = |pushed: bool, hours: i64| {
        let end = issued_at + SignedDuration::from_hours(hours);
        let (mut t, mut polls, mut times) = (issued_at, 0u64, Vec::new());
        loop {
            t += SignedDuration::try_from(poll_interval_with(t, &pending, pushed)).unwrap();
            if t >= end {
                break;
            }
            polls += 1;
            times.push(t.duration_since(issued_at).as_secs());
        }
        (polls, times)
    };
    let (first_hour, times) = polls_in(true, 1);
    assert_eq!(&times[..2], [30, 30 + 2400], "{times:?}");
    assert_eq!(first_hour, 2, "{times:?}");
    let (week, _) = polls_in(true, 168);
    assert!((week as f64 / 168.0) < 2.0, "{week} polls in a week");
    let (week_polled, _) = polls_in(false, 168);
    assert!(
        (week_polled as f64 / 168.0) <= 12.5,
        "{week_polled} polls in a week"
    );
    assert!(
        week * 6 < week_polled,
        "{week} pushed vs {week_polled} polled"
    );
    // A poll never lands past expiry + grace.
    let late = issued_at + SignedDuration::from_hours(168) - SignedDuration::from_secs(5);
    assert!(
        poll_interval_with(late, &pending, true) <= EXPIRY_GRACE + Duration::from_millis(5_100)
    );
}

#[test]
fn a_new_reset_is_accepted_with_where_it_stands() {
    let r = with_passcode();
    let idle = accepted(&r, now(), 0);
    assert_eq!(idle.phase, Some(Phase::Pending));
    assert_eq!(idle.reason, Some(Reason::Validating));
    assert!(idle.conditions.iter().any(|c| c.type_ == "Reconciling"));
    let busy = accepted(&r, now(), 37);
    assert!(busy.message.unwrap().contains("37 calls ahead"));
}
