//! After the claim, before an operation is recorded: send the claimed command (only the process
//! that wrote the claim and never sent for it), or find what the claim created on the claimed
//! device. Never a second command: a claim is released only when nothing was certainly created.

use std::time::Duration;

use super::*;
use crate::amapi::model::ResetPasswordFlag;

// --- issue ----------------------------------------------------------------------------------

#[test]
fn only_our_own_fresh_claim_issues() {
    let d = Case::new(claimed(with_passcode())).may_send().decide();
    assert_eq!(
        d.effect,
        Some(Effect::IssueCommand(CommandParams {
            device: DEVICE.into(),
            flags: vec![ResetPasswordFlag::LockNow],
            duration: FINGERPRINT.into(),
            with_passcode: true
        }))
    );
    assert!(d.status.is_none());
    let both = reset(
        json!({"device": DEVICE, "newPasscode": {"secretKeyRef": {"name": "s", "key": "k"}},
                             "lockNow": true, "requireEntry": true, "expiresAfter": "1h"}),
    );
    let Some(Effect::IssueCommand(p)) = Case::new(claimed(both)).may_send().decide().effect else {
        panic!()
    };
    assert_eq!(
        p.flags,
        [ResetPasswordFlag::RequireEntry, ResetPasswordFlag::LockNow]
    );
    assert_eq!(p.duration, "3600.000000042s");
    let Some(Effect::IssueCommand(p)) = Case::new(claimed(clearing())).may_send().decide().effect
    else {
        panic!()
    };
    assert_eq!((p.flags, p.with_passcode), (vec![], false));
}

#[test]
fn the_command_sent_is_the_claimed_one() {
    // Not this reconcile's nonce (drawn for a claim it might write), not the spec: the claim's.
    let mut case = Case::new(with_status(claimed(with_passcode()), |s| {
        s.claimed_command = Some(ClaimedCommand {
            duration: "600.000000007s".into(),
            ..claimed_command(&with_passcode().spec, NONCE)
        })
    }))
    .may_send();
    case.inputs.claim_nonce = 99;
    let Some(Effect::IssueCommand(p)) = case.decide().effect else {
        panic!()
    };
    assert_eq!(p.duration, "600.000000007s");
    assert_eq!(p.device, DEVICE);
}

#[test]
fn a_claim_found_after_a_restart_is_recovered_never_reissued() {
    let case = Case::new(claimed(with_passcode()));
    assert_eq!(
        case.decide().effect,
        Some(Effect::ListOperations(DEVICE.into()))
    );
    // An answer to issueCommand without may_send (cannot come from this process) changes nothing.
    let case = Case::new(claimed(with_passcode())).issued(Issued::NotCreated("429".into()));
    assert_eq!(
        case.decide().effect,
        Some(Effect::ListOperations(DEVICE.into()))
    );
}

#[test]
fn an_issued_command_is_recorded() {
    let d = Case::new(claimed(with_passcode()))
        .may_send()
        .issued(Issued::Created(Box::new(op(
            json!({"metadata": {"createTime": "2026-11-23T10:00:00Z", "duration": FINGERPRINT}}),
        ))))
        .decide();
    let s = d.status.unwrap();
    assert_eq!(s.reason, Some(Reason::AwaitingDevice));
    assert_eq!(s.operation.as_deref(), Some(OP));
    assert_eq!(
        s.expires_at,
        Some(Time("2026-11-23T10:10:00Z".parse().unwrap()))
    );
    assert!(s.claimed_command.is_some(), "the claim stays");
    assert!(d.effect.is_none());
    assert!(
        d.requeue.unwrap() <= Duration::from_secs(1),
        "polling starts fast"
    );
}

#[test]
fn a_command_certainly_not_created_releases_the_claim() {
    let d = Case::new(claimed(with_passcode()))
        .may_send()
        .issued(Issued::NotCreated("429".into()))
        .decide();
    assert_eq!(d.effect, Some(Effect::Release));
    assert!(d.requeue.is_some());
    let s = d.status.unwrap();
    assert_eq!(
        (s.phase, s.reason, s.claimed_at, s.claimed_command),
        (Some(Phase::Pending), Some(Reason::Retrying), None, None)
    );
    assert!(s.message.unwrap().contains("429"));
}

#[test]
fn a_refused_command_fails_with_the_matching_reason() {
    for (code, expected) in [
        (403, Reason::PermissionDenied),
        (401, Reason::PermissionDenied),
        (404, Reason::DeviceNotFound),
        (400, Reason::DeviceRejected),
    ] {
        let d = Case::new(claimed(with_passcode()))
            .may_send()
            .issued(Issued::Refused {
                status: code,
                message: "no".into(),
            })
            .decide();
        assert_eq!(reason(&d), Some(expected));
        assert_eq!(d.effect, None);
    }
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

// --- recovery by fingerprint ----------------------------------------------------------------

#[test]
fn an_ambiguous_issue_adopts_the_one_matching_command() {
    let case = Case::new(claimed(with_passcode()))
        .may_send()
        .issued(Issued::Ambiguous("timed out".into()));
    assert_eq!(
        case.decide().effect,
        Some(Effect::ListOperations(DEVICE.into()))
    );

    let case = case.listed(vec![
        // An earlier reset's command, days ago.
        command(
            "enterprises/LC01/devices/d1/operations/old",
            "600.000000007s",
        ),
        // A command sent without a fingerprint.
        command("enterprises/LC01/devices/d1/operations/plain", "600s"),
        mine(),
    ]);
    let d = case.decide();
    assert_eq!(adopted(&d), Some(MINE));
    assert_eq!(reason(&d), Some(Reason::AwaitingDevice));
    assert_eq!(d.effect, None);
}

#[test]
fn recovery_never_adopts_another_resets_command() {
    // Same type, flags and time as this claim's command, only its duration differs: another
    // claim's (or nobody's) command, never this one's.
    let look_alikes = vec![
        command(
            "enterprises/LC01/devices/d1/operations/next-nanosecond",
            "600.000000043s",
        ),
        command("enterprises/LC01/devices/d1/operations/whole", "600s"),
        command(
            "enterprises/LC01/devices/d1/operations/other-secs",
            "3600.000000042s",
        ),
        command(
            "enterprises/LC01/devices/d1/operations/no-unit",
            "600.000000042",
        ),
        reset_op(
            "enterprises/LC01/devices/d1/operations/no-duration",
            &claimed_at().to_string(),
            &["LOCK_NOW"],
        ),
        // The fingerprint, but not a passcode reset.
        op(
            json!({"name": "enterprises/LC01/devices/d1/operations/lock", "metadata": {"type": "LOCK", "createTime": claimed_at().to_string(), "duration": FINGERPRINT}}),
        ),
    ];
    let d = Case::new(claimed(with_passcode()))
        .listed(look_alikes.clone())
        .decide();
    assert_eq!(adopted(&d), None);
    assert_eq!((reason(&d), d.effect), (Some(Reason::Issuing), None));
    // After the window they still are not taken for it.
    let d = Case::new(claimed(with_passcode()))
        .listed(look_alikes.clone())
        .since_claim(180)
        .decide();
    assert_eq!(adopted(&d), None);
    assert_eq!(reason(&d), Some(Reason::OutcomeUnknown));
    // Among them, this claim's command is found.
    let mut all = look_alikes;
    all.insert(2, mine());
    assert_eq!(
        adopted(&Case::new(claimed(with_passcode())).listed(all).decide()),
        Some(MINE)
    );
}

#[test]
fn the_fingerprint_is_compared_as_nanoseconds() {
    // 420,000,000 ns: 600.42 s, however many decimals it is written or listed with.
    let claim = with_status(claimed(with_passcode()), |s| {
        s.claimed_command = Some(claimed_command(&with_passcode().spec, 420_000_000))
    });
    let written = &claim
        .status
        .as_ref()
        .unwrap()
        .claimed_command
        .as_ref()
        .unwrap()
        .duration;
    assert_eq!(fingerprint_nanos(written), Some(600_420_000_000));
    for listed in ["600.42s", "600.420s", "600.420000s", "600.420000000s"] {
        let d = Case::new(claim.clone())
            .listed(vec![command(MINE, listed)])
            .decide();
        assert_eq!(adopted(&d), Some(MINE), "{listed}");
    }
    for listed in ["600.420000001s", "600.4s", "600s", "600.42"] {
        let d = Case::new(claim.clone())
            .listed(vec![command(MINE, listed)])
            .decide();
        assert_eq!(adopted(&d), None, "{listed}");
    }
}

#[test]
fn a_command_found_by_its_fingerprint_is_adopted_whenever_it_was_created() {
    // Google's clock or a slow request: the fingerprint alone tells it.
    for created in ["2026-11-23T09:50:00Z", "2026-11-23T10:30:00Z"] {
        let mut found = mine();
        found.metadata.as_mut().unwrap().create_time = Some(created.into());
        let d = Case::new(claimed(with_passcode()))
            .listed(vec![found])
            .since_claim(3600)
            .decide();
        assert_eq!(adopted(&d), Some(MINE), "{created}");
        assert_eq!(
            d.status.unwrap().issued_at,
            Some(Time(created.parse().unwrap()))
        );
    }
}

#[test]
fn with_no_command_listed_the_claim_waits_for_its_window_then_ends_outcome_unknown() {
    let listed = |age: i64, ops: Vec<Operation>| {
        Case::new(claimed(with_passcode()))
            .listed(ops)
            .since_claim(age)
    };
    // 1 s after the claim: keep the claim, send nothing, look again.
    let d = listed(1, vec![]).decide();
    assert_eq!(d.effect, None);
    assert_eq!(reason(&d), Some(Reason::Issuing));
    let s = d.status.as_ref().unwrap();
    assert!(
        s.claimed_at.is_some() && s.claimed_command.is_some(),
        "the claim is kept"
    );
    assert!(message(&d).contains("for up to 179 s"), "{}", message(&d));
    assert_eq!(
        d.requeue,
        Some(Duration::from_secs(15)),
        "looks again often"
    );
    // Near the end of the window: looks again just after it closes.
    let d = listed(175, vec![]).decide();
    assert_eq!(reason(&d), Some(Reason::Issuing));
    assert_eq!(d.requeue, Some(Duration::from_millis(5_500)));
    // A command created late in the window is still adopted, also after it.
    let mut late = mine();
    late.metadata.as_mut().unwrap().create_time = Some("2026-11-23T10:02:58Z".into());
    assert_eq!(adopted(&listed(185, vec![late]).decide()), Some(MINE));
    // The whole window with nothing listed: it cannot be told that nothing was sent (Google may
    // still create it), so the reset ends; the claim is never released.
    let d = listed(180, vec![]).decide();
    assert_eq!(d.effect, None, "never a release");
    let s = d.status.as_ref().unwrap();
    assert_eq!(
        (s.phase, s.reason),
        (Some(Phase::Failed), Some(Reason::OutcomeUnknown))
    );
    assert!(s.claimed_at.is_some() && s.claimed_command.is_some());
    assert!(s.completed_at.is_some());
    assert!(message(&d).contains("3 min after it"), "{}", message(&d));
    assert!(message(&d).contains("will not send a second command"));
    // The age of the claim is the wall clock's: a restarted process does not start over.
    assert_eq!(
        reason(&listed(3600, vec![]).decide()),
        Some(Reason::OutcomeUnknown)
    );
    // The window is the operator's setting.
    let mut case = listed(3, vec![]);
    case.config.adoption_window = Duration::from_secs(3);
    assert_eq!(reason(&case.decide()), Some(Reason::OutcomeUnknown));
    case.config.adoption_window = Duration::from_secs(4);
    assert_eq!(reason(&case.decide()), Some(Reason::Issuing));
}

#[test]
fn after_the_window_no_listing_lets_the_claim_go() {
    // Whatever is (or is not) on the device, a claim whose command is not found ends
    // OutcomeUnknown: never released, never sent again. Legacy claims too.
    let unlike = reset_op(
        "enterprises/LC01/devices/d1/operations/unlike",
        "2026-11-23T09:58:00Z",
        &[],
    );
    let finished = reset_op(
        "enterprises/LC01/devices/d1/operations/finished",
        "2026-11-23T09:59:50Z",
        &["LOCK_NOW"],
    );
    let old = reset_op(
        "enterprises/LC01/devices/d1/operations/old",
        "2026-11-23T08:00:00Z",
        &["LOCK_NOW"],
    );
    for claim in [claimed(with_passcode()), legacy_claimed(with_passcode())] {
        for ops in [
            vec![unlike.clone()],
            vec![finished.clone()],
            vec![old.clone()],
            vec![],
        ] {
            let mut case = Case::new(claim.clone()).listed(ops).since_claim(180);
            case.inputs.settled_operations = vec![finished.name.clone()];
            let d = case.decide();
            assert_eq!(reason(&d), Some(Reason::OutcomeUnknown));
            assert_eq!(d.effect, None);
            assert!(message(&d).contains("will not send a second command"));
        }
    }
}

#[test]
fn a_finished_resets_command_is_never_adopted() {
    // Resets of a device run one after the other: the previous one's command may sit just before
    // this claim. Its fingerprint is another claim's.
    let previous = command(
        "enterprises/LC01/devices/d1/operations/previous",
        "600.000000007s",
    );
    let d = Case::new(claimed(with_passcode()))
        .listed(vec![previous.clone()])
        .decide();
    assert_eq!(reason(&d), Some(Reason::Issuing), "{}", message(&d));
    assert_eq!(adopted(&d), None);

    // A claim from before fingerprints goes by flags and time: it left the cache when it
    // finished, its operation is still known, and that is what keeps it out.
    let previous = reset_op(
        "enterprises/LC01/devices/d1/operations/previous",
        "2026-11-23T09:59:45Z",
        &["LOCK_NOW"],
    );
    let mut case = Case::new(legacy_claimed(with_passcode())).listed(vec![previous.clone()]);
    case.inputs.settled_operations = vec![previous.name.clone()];
    let d = case.decide();
    assert_eq!(reason(&d), Some(Reason::Issuing), "{}", message(&d));
    assert_eq!(adopted(&d), None);
    // Without that knowledge it would have been adopted: the guard is what matters.
    case.inputs.settled_operations.clear();
    assert_eq!(adopted(&case.decide()), Some(previous.name.as_str()));
}

#[test]
fn a_legacy_claim_matches_flags_around_the_claim() {
    let at = |offset: i64| (claimed_at() + secs(offset)).to_string();
    let legacy = |ops: Vec<Operation>| Case::new(legacy_claimed(with_passcode())).listed(ops);
    assert_eq!(
        legacy(vec![]).decide().effect,
        None,
        "listed: waits in its window"
    );
    assert_eq!(
        Case::new(legacy_claimed(with_passcode())).decide().effect,
        Some(Effect::ListOperations(DEVICE.into()))
    );
    for (offset, flags, adopts) in [
        (0, &["LOCK_NOW"][..], true),
        (-30, &["LOCK_NOW"][..], true),
        (-31, &["LOCK_NOW"][..], false),
        (180, &["LOCK_NOW"][..], true),
        (181, &["LOCK_NOW"][..], false),
        (0, &[][..], false),
        (0, &["LOCK_NOW", "REQUIRE_ENTRY"][..], false),
    ] {
        let d = legacy(vec![reset_op(MINE, &at(offset), flags)]).decide();
        assert_eq!(
            adopted(&d).is_some(),
            adopts,
            "{offset} s {flags:?}: {}",
            message(&d)
        );
    }
}

#[test]
fn when_the_command_cannot_be_told_the_outcome_is_unknown() {
    let twin = command("enterprises/LC01/devices/d1/operations/twin", FINGERPRINT);
    for ops in [
        Read::Found(vec![mine(), twin]),
        Read::Denied("UNIMPLEMENTED".into()),
        Read::NotFound,
    ] {
        let mut case = Case::new(claimed(with_passcode()));
        case.inputs.operations = Some(ops);
        let d = case.decide();
        assert_eq!(reason(&d), Some(Reason::OutcomeUnknown));
        assert_eq!(d.effect, None);
        assert!(message(&d).contains("will not send a second command"));
    }
    // A legacy claim: a command recorded by another reset is not ours, as if none were listed.
    let theirs = reset_op(MINE, "2026-11-23T10:00:00Z", &["LOCK_NOW"]);
    let mut case = Case::new(legacy_claimed(with_passcode())).listed(vec![theirs]);
    case.others = vec![other("taken", "2026-11-23T09:00:00Z", |s| {
        s.operation = Some(MINE.into())
    })];
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
    assert!(d.status.unwrap().claimed_at.is_some());
}

#[test]
fn a_listing_unavailable_long_past_the_window_is_outcome_unknown() {
    let unavailable = |age: i64| {
        let mut case = Case::new(claimed(with_passcode())).since_claim(age);
        case.inputs.operations = Some(Read::Unavailable("503".into()));
        case.decide()
    };
    // The window (3 min) and 15 min more: keeps looking.
    for age in [180, 1079] {
        let d = unavailable(age);
        assert_eq!(reason(&d), Some(Reason::Issuing), "{age}");
        assert_eq!(d.requeue, Some(Duration::from_secs(5)));
    }
    let d = unavailable(1080);
    assert_eq!(reason(&d), Some(Reason::OutcomeUnknown));
    assert_eq!(d.effect, None);
    assert!(message(&d).contains("18 min"), "{}", message(&d));
    assert!(message(&d).contains("503"));
}

// --- a spec edited after the claim ------------------------------------------------------------

#[test]
fn a_spec_edited_after_the_claim_follows_the_claimed_command_only() {
    // Claimed for device A (DEVICE), then edited to device B.
    let r = edited(claimed(with_passcode()), on_device_b());
    // Recovery searches the claimed device, not the spec's.
    let case = Case::new(r.clone());
    assert_eq!(
        case.decide().effect,
        Some(Effect::ListOperations(DEVICE.into()))
    );
    // And adopts A's command to follow it to its end.
    let d = case.listed(vec![mine()]).decide();
    assert_eq!(adopted(&d), Some(MINE));
    assert_eq!((reason(&d), d.effect), (Some(Reason::AwaitingDevice), None));
    // Which ends SpecChanged, naming A: nothing was sent to B.
    let following = Case::new(with_status(r.clone(), |s| {
        let after = d.status.clone().unwrap();
        *s = after;
    }));
    assert_eq!(
        following.decide().effect,
        Some(Effect::GetOperation(MINE.into()))
    );
    let d = following
        .polled(json!({"name": MINE, "done": true}))
        .decide();
    assert_eq!(reason(&d), Some(Reason::SpecChanged));
    let m = message(&d);
    assert!(m.contains(DEVICE) && !m.contains(DEVICE_B), "{m}");
    assert!(
        m.contains("The device set the new passcode and locked."),
        "{m}"
    );
    assert_eq!(d.status.unwrap().observed_generation, Some(2));
    // Nothing listed after the window: the outcome is unknown, reported as SpecChanged.
    let d = Case::new(r.clone())
        .listed(vec![])
        .since_claim(180)
        .decide();
    assert_eq!(reason(&d), Some(Reason::SpecChanged));
    assert!(message(&d).contains(DEVICE) && message(&d).contains("will not send a second command"));
    assert_eq!(d.effect, None);
    // The process that claimed, not having sent yet: ends without sending anything.
    let d = Case::new(r).may_send().decide();
    assert_eq!(d.effect, None, "never IssueCommand");
    assert_eq!(reason(&d), Some(Reason::SpecChanged));
    assert!(message(&d).contains("nothing was sent"), "{}", message(&d));
    let s = d.status.unwrap();
    assert!(s.claimed_at.is_some(), "the claim stays: not released");
}
