//! A reset being deleted: cancel what its claim may have sent, or take a never-claimed run out of
//! the record; then let it go.

use super::*;

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
    let case = Case::new(deleting(claimed(with_passcode())));
    assert_eq!(
        case.decide().effect,
        Some(Effect::ListOperations(DEVICE.into()))
    );
    let case = case.listed(vec![mine()]);
    assert_eq!(
        case.decide().effect,
        Some(Effect::CancelOperation(MINE.into()))
    );
    // Nothing in flight: take the run out of the record, then let it go.
    let mut case = Case::new(deleting(finalized(with_passcode())));
    assert_eq!(case.decide().effect, Some(Effect::Forget));
    case.inputs.forgotten = true;
    assert_eq!(case.decide().effect, Some(Effect::RemoveFinalizer));
    assert!(
        Case::new(deleting(with_passcode()))
            .decide()
            .effect
            .is_none()
    );
}

#[test]
fn deleting_a_never_claimed_reset_forgets_its_run_then_lets_it_go() {
    for reason in [
        None,
        Some(Reason::Validating),
        Some(Reason::WaitingForSecret),
        Some(Reason::WaitingForDevice),
        // Released: issueCommand certainly created nothing.
        Some(Reason::Retrying),
    ] {
        let r = deleting(finalized(with_status(with_passcode(), |s| {
            s.phase = reason.map(|r| r.phase());
            s.reason = reason;
        })));
        let mut case = Case::new(r);
        let d = case.decide();
        assert_eq!(d.effect, Some(Effect::Forget), "{reason:?}");
        assert!(d.status.is_none());
        case.inputs.forgotten = true;
        assert_eq!(
            case.decide().effect,
            Some(Effect::RemoveFinalizer),
            "{reason:?}"
        );
    }
}

#[test]
fn a_claimed_or_ended_reset_is_not_forgotten() {
    // Claimed: its run stays in the record whatever became of the command.
    let case = Case::new(deleting(issued(with_passcode(), OP)));
    assert_eq!(
        case.decide().effect,
        Some(Effect::CancelOperation(OP.into()))
    );
    for reason in [Reason::PasscodeReset, Reason::OutcomeUnknown] {
        let ended = deleting(with_status(issued(with_passcode(), OP), |s| {
            s.phase = Some(reason.phase());
            s.reason = Some(reason);
        }));
        assert_eq!(
            Case::new(ended).decide().effect,
            Some(Effect::RemoveFinalizer),
            "{reason:?}"
        );
    }
    // Ended before any claim (a finalizer left over): just let it go.
    let ended = deleting(finalized(with_status(with_passcode(), |s| {
        s.phase = Some(Phase::Failed);
        s.reason = Some(Reason::Recreated);
    })));
    assert_eq!(
        Case::new(ended).decide().effect,
        Some(Effect::RemoveFinalizer)
    );
}

#[test]
fn deleting_finds_the_claimed_command_by_its_fingerprint() {
    // Edited to device B after the claim: the claimed device A is searched.
    let case = Case::new(deleting(edited(claimed(with_passcode()), on_device_b())));
    assert_eq!(
        case.decide().effect,
        Some(Effect::ListOperations(DEVICE.into()))
    );
    let look_alike = command(
        "enterprises/LC01/devices/d1/operations/look-alike",
        "600.000000043s",
    );
    // Another claim's pending command is never cancelled. Within the window the claim's own may
    // still be listed: the finalizer stays and it looks again; after it, it lets go.
    let d = case.listed(vec![look_alike.clone()]).decide();
    assert_eq!(d.effect, None);
    assert!(d.requeue.is_some(), "looks again: {d:?}");
    let d = Case::new(deleting(edited(claimed(with_passcode()), on_device_b())))
        .since_claim(181)
        .listed(vec![look_alike.clone()])
        .decide();
    assert_eq!(d.effect, Some(Effect::RemoveFinalizer));
    let case = Case::new(deleting(claimed(with_passcode())));
    let d = case.listed(vec![look_alike.clone(), mine()]).decide();
    assert_eq!(d.effect, Some(Effect::CancelOperation(MINE.into())));
    // Done already: nothing to cancel.
    let mut done = mine();
    done.done = true;
    let case = Case::new(deleting(claimed(with_passcode())));
    let d = case.listed(vec![look_alike, done]).decide();
    assert_eq!(d.effect, Some(Effect::RemoveFinalizer));
    // A cancel AMAPI did not take is tried again while the command can still run.
    let mut case = Case::new(deleting(claimed(with_passcode()))).listed(vec![mine()]);
    case.inputs.cancelled = true;
    case.inputs.cancel_failed = true;
    let d = case.decide();
    assert_eq!(d.effect, None);
    assert!(d.requeue.is_some());
    // Unlisted operations are looked for again within the window, then let go.
    let mut case = Case::new(deleting(claimed(with_passcode())));
    case.inputs.operations = Some(Read::Unavailable("503".into()));
    assert_eq!(case.decide().effect, None);
    let mut case = Case::new(deleting(claimed(with_passcode()))).since_claim(181);
    case.inputs.operations = Some(Read::Unavailable("503".into()));
    assert_eq!(case.decide().effect, Some(Effect::RemoveFinalizer));
    // The cancel is sent once.
    let mut case = Case::new(deleting(claimed(with_passcode()))).listed(vec![mine()]);
    case.inputs.cancelled = true;
    assert_eq!(case.decide().effect, Some(Effect::RemoveFinalizer));
}

/// REVIEW (issue14). A finished reset that asks for its Secret to be deleted, whose deletion has
/// not happened yet (the process stopped between the final status and the deletion, or the
/// deletion failed and is being retried), is deleted by the user or a GitOps prune while it still
/// carries the in-flight finalizer: `on_delete` removes the finalizer and the Secret is never
/// deleted, so the passcode stays readable for good.
#[test]
fn deleting_a_finished_reset_still_deletes_its_secret() {
    let mut r = deleting(finalized(with_status(issued(with_passcode(), OP), |s| {
        s.phase = Some(Phase::Succeeded);
        s.reason = Some(Reason::PasscodeReset);
        s.observed_generation = Some(1);
    })));
    r.spec
        .new_passcode
        .as_mut()
        .unwrap()
        .delete_secret_after_finished = true;
    assert_eq!(
        Case::new(r).decide().effect,
        Some(Effect::DeleteSecret {
            name: "s".into(),
            uid: None
        }),
        "the finalizer goes while the Secret the reset asked to delete is still there"
    );
}

/// REVIEW (issue14). A reset whose command went out is deleted (cancel, then let go): the
/// passcode was sent, and may have been set on the device, but the Secret asked to be deleted
/// after use stays readable (a deleted reset never becomes final).
#[test]
fn deleting_a_reset_whose_command_went_out_deletes_its_secret() {
    let mut r = deleting(issued(with_passcode(), OP));
    r.spec
        .new_passcode
        .as_mut()
        .unwrap()
        .delete_secret_after_finished = true;
    let mut case = Case::new(r);
    case.inputs.cancelled = true;
    assert_eq!(
        case.decide().effect,
        Some(Effect::DeleteSecret {
            name: "s".into(),
            uid: None
        }),
        "the reset goes and the Secret holding the sent passcode stays"
    );
}

/// Deleted while claimed, nothing found on the device once the window closed: no command of it
/// went out, so the Secret (maybe another reset's next) is left alone.
#[test]
fn deleting_a_claim_that_sent_nothing_leaves_its_secret() {
    let mut r = deleting(claimed(with_passcode()));
    r.spec
        .new_passcode
        .as_mut()
        .unwrap()
        .delete_secret_after_finished = true;
    let mut case = Case::new(r).since_claim(600);
    case.inputs.operations = Some(Read::Found(vec![]));
    assert_eq!(case.decide().effect, Some(Effect::RemoveFinalizer));
}

/// A deletion that fails keeps the finalizer (noted, tried again); once it goes through, the
/// reset is let go.
#[test]
fn a_deleted_reset_keeps_its_finalizer_until_its_secret_is_deleted() {
    let mut r = deleting(issued(with_passcode(), OP));
    r.spec
        .new_passcode
        .as_mut()
        .unwrap()
        .delete_secret_after_finished = true;
    let mut case = Case::new(r.clone());
    case.inputs.cancelled = true;
    case.inputs.secret_deleted = Some(Err("forbidden".into()));
    let d = case.decide();
    assert!(d.effect.is_none() && d.requeue.is_some(), "{d:?}");
    assert!(d.status.unwrap().message.unwrap().contains("forbidden"));
    let mut case = Case::new(r);
    case.inputs.cancelled = true;
    case.inputs.secret_deleted = Some(Ok(()));
    assert_eq!(case.decide().effect, Some(Effect::RemoveFinalizer));
}
