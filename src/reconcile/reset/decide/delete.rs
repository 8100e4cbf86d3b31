//! A reset being deleted: cancel what its claim may have sent, then let it go.

use super::recover::{claimed_device, claims_command};
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
    let in_flight = claimed && !status.phase.unwrap_or(Phase::Pending).is_terminal();
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
            return Decision::effect(Effect::RemoveFinalizer);
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
                    _ => {}
                }
            }
            // Cannot be listed now: look again while it matters.
            Some(Read::Unavailable(_)) if searching => return again(),
            Some(_) => {}
        }
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
