//! A reset that ended: nothing more, except dropping the finalizer and noting a late spec edit.

use super::*;

#[test]
fn terminal_resets_are_final() {
    for r in [
        Reason::PasscodeReset,
        Reason::DeviceRejected,
        Reason::OutcomeUnknown,
        Reason::RecordFull,
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
