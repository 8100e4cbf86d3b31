//! A reset being deleted: cancel what its claim may have sent, delete its Secret when it asks and
//! its command went out (or it is final), then let it go.

use super::recover::{claimed_device, claims_command};
use super::secret_lifetime::{after_finished, secret_to_delete};
use std::time::Duration;

use super::{Decision, EXPIRY_GRACE, Effect, Observed, Read};
use crate::api::{PasscodeResetStatus, Phase};

pub(super) fn on_delete(
    o: &Observed,
    status: &PasscodeResetStatus,
    has_finalizer: bool,
) -> Decision {
    if !has_finalizer {
        return Decision::default();
    }
    let claimed = status.claimed_at.is_some();
    // Never claimed, so nothing was sent: its run leaves the record, or a re-created twin would
    // end `Recreated` for nothing.
    if !claimed && !status.phase.unwrap_or(Phase::Pending).is_terminal() && !o.inputs.forgotten {
        return Decision::effect(Effect::Forget);
    }
    let finished = status.phase.unwrap_or(Phase::Pending).is_terminal();
    let in_flight = claimed && !finished;
    // The claim's command was found on the device: it went out.
    let mut adopted = false;
    if in_flight {
        // Let go only once the command is cancelled, or certainly cannot run any more: the
        // reset keeps its device's turn until then.
        if let Some(op) = &status.operation {
            if !o.inputs.cancelled {
                return Decision::effect(Effect::CancelOperation(op.clone()));
            }
            if o.inputs.cancel_failed && !expired(o, status) {
                return again();
            }
            return let_go(o, status, true);
        }
        // Claimed without a recorded operation: find its command to cancel it.
        let claimed_at = status.claimed_at.as_ref().map_or(o.now, |t| t.0);
        let age = Duration::try_from(o.now.duration_since(claimed_at)).unwrap_or(Duration::ZERO);
        let searching = age < o.config.adoption_window;
        match &o.inputs.operations {
            None => return Decision::effect(Effect::ListOperations(claimed_device(o, status))),
            Some(Read::Found(ops)) => {
                let found: Vec<_> = ops
                    .iter()
                    .filter(|op| claims_command(o, status, op))
                    .collect();
                match found.as_slice() {
                    [op] if !op.done && !o.inputs.cancelled => {
                        return Decision::effect(Effect::CancelOperation(op.name.clone()));
                    }
                    [op] if !op.done && o.inputs.cancel_failed => return again(),
                    // Not listed yet: it may still appear within the window.
                    [] if searching => return again(),
                    [_] => adopted = true,
                    _ => {}
                }
            }
            // Cannot be listed now: look again while it matters.
            Some(Read::Unavailable(_)) if searching => return again(),
            Some(_) => {}
        }
    }
    let_go(o, status, finished || adopted)
}

/// Remove the finalizer; first, once the command went out (its outcome no longer needs the
/// Secret), delete the Secret the reset asks to delete: nothing would once the reset is gone.
fn let_go(o: &Observed, status: &PasscodeResetStatus, went_out: bool) -> Decision {
    match &o.inputs.secret_deleted {
        None if went_out => {
            if let Some((name, uid)) = secret_to_delete(o.reset) {
                return Decision::effect(Effect::DeleteSecret {
                    name: name.to_owned(),
                    uid: uid.map(str::to_owned),
                });
            }
        }
        // Noted and tried again; the finalizer stays meanwhile (removing it by hand gives up).
        Some(Err(_)) => {
            if let Some(d) = after_finished(o, status) {
                return d;
            }
        }
        _ => {}
    }
    Decision::effect(Effect::RemoveFinalizer)
}

/// Look again in a few seconds, keeping the finalizer.
fn again() -> Decision {
    Decision {
        requeue: Some(Duration::from_secs(5)),
        ..Default::default()
    }
}

/// Past the command's expiry (and its grace): nothing left to cancel.
fn expired(o: &Observed, status: &PasscodeResetStatus) -> bool {
    status.expires_at.as_ref().is_some_and(|t| {
        o.now > t.0 + jiff::SignedDuration::try_from(EXPIRY_GRACE).unwrap_or_default()
    })
}
