//! A reset being deleted: cancel what its claim may have sent, then let it go.

use super::recover::{claimed_device, claims_command};
use super::{Decision, Effect, Observed, Read};
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
    if in_flight && !o.inputs.cancelled {
        if let Some(op) = &status.operation {
            return Decision::effect(Effect::CancelOperation(op.clone()));
        }
        // Claimed without a recorded operation: find its command to cancel it.
        match &o.inputs.operations {
            None => return Decision::effect(Effect::ListOperations(claimed_device(o, status))),
            Some(Read::Found(ops)) => {
                let found: Vec<_> = ops
                    .iter()
                    .filter(|op| !op.done && claims_command(o, status, op))
                    .collect();
                if let [op] = found.as_slice() {
                    return Decision::effect(Effect::CancelOperation(op.name.clone()));
                }
            }
            Some(_) => {}
        }
    }
    Decision::effect(Effect::RemoveFinalizer)
}
