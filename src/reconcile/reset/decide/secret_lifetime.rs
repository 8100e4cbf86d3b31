//! The passcode's Secret after the end: with `newPasscode.deleteSecretAfterFinished` the Secret is
//! deleted once the reset is final (Succeeded or Failed), never earlier, so the passcode does not
//! stay readable in the cluster. Deleted at most until `status.secretDeletedAt` records it; a
//! failure is noted in the message and tried again with backoff.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{Decision, Effect, Observed, secret_backoff};
use crate::api::{PasscodeReset, PasscodeResetStatus};

/// Starts the note a failed deletion leaves in the message (removed once the Secret is gone).
const NOT_DELETED: &str = "The passcode's Secret could not be deleted yet";

/// The Secret a finished reset still has to delete, if it asks for that and it is not done.
pub fn secret_to_delete(reset: &PasscodeReset) -> Option<&str> {
    let source = reset.spec.new_passcode.as_ref()?;
    let done = reset
        .status
        .as_ref()
        .is_some_and(|s| s.secret_deleted_at.is_some());
    (source.delete_secret_after_finished && !done).then_some(source.secret_key_ref.name.as_str())
}

/// For a final reset: delete its Secret, record that it is gone, or note why it is not yet.
pub(super) fn after_finished(o: &Observed, status: &PasscodeResetStatus) -> Option<Decision> {
    let name = secret_to_delete(o.reset)?;
    let base = status
        .message
        .as_deref()
        .unwrap_or_default()
        .split(NOT_DELETED)
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_owned();
    let mut next = status.clone();
    match &o.inputs.secret_deleted {
        None => Some(Decision::effect(Effect::DeleteSecret(name.to_owned()))),
        // Deleted, or already gone: either way the passcode is no longer readable here.
        Some(Ok(())) => {
            next.secret_deleted_at = Some(Time(o.now));
            next.message = Some(base);
            Some(Decision {
                status: Some(next),
                ..Default::default()
            })
        }
        Some(Err(error)) => {
            let note = format!("{NOT_DELETED} ({name}: {error}); trying again.");
            next.message = Some(format!("{base} {note}").trim().to_owned());
            let since = status
                .completed_at
                .as_ref()
                .map(|t| o.now.duration_since(t.0).as_secs().max(0) as u64)
                .unwrap_or_default();
            Some(Decision {
                status: (next != *status).then_some(next),
                effect: None,
                requeue: Some(
                    secret_backoff(Duration::from_secs(since)).max(Duration::from_secs(2)),
                ),
            })
        }
    }
}
