//! The passcode's Secret after the end: with `newPasscode.deleteSecretAfterFinished` the Secret is
//! deleted once the reset is final (Succeeded or Failed), or deleted after its command went out,
//! never earlier, so the passcode does not stay readable in the cluster. The Secret deleted is the
//! one the claim's command read (by name and uid), whatever the spec says since. Deleted at most
//! until `status.secretDeletedAt` records it (and always before the finalizer goes); a failure is
//! noted in the message and tried again with backoff.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{Decision, Effect, Observed, secret_backoff};
use crate::api::{PasscodeReset, PasscodeResetStatus};

/// Starts the note a failed deletion leaves in the message (removed once the Secret is gone).
const NOT_DELETED: &str = "The passcode's Secret could not be deleted yet";

/// The note for a claim of an earlier version, which did not record the Secret its command read.
const UNRECORDED: &str = "The passcode's Secret was not deleted: this reset was claimed by an earlier operator version, which did not record which Secret its command read; delete it yourself.";

/// The Secret (name, uid when known) a reset still has to delete, if it asks for that and it is
/// not done: the one its claim's command read, or the spec's for a reset that never claimed.
/// None for a claim that did not record it (an earlier version's).
pub fn secret_to_delete(reset: &PasscodeReset) -> Option<(&str, Option<&str>)> {
    let source = reset.spec.new_passcode.as_ref()?;
    let status = reset.status.as_ref();
    if !source.delete_secret_after_finished || status.is_some_and(|s| s.secret_deleted_at.is_some())
    {
        return None;
    }
    match status.filter(|s| s.claimed_at.is_some()) {
        None => Some((source.secret_key_ref.name.as_str(), None)),
        Some(s) => {
            let claimed = s.claimed_command.as_ref()?;
            Some((
                claimed.secret_name.as_deref()?,
                claimed.secret_uid.as_deref(),
            ))
        }
    }
}

/// Whether a claimed reset asks for its Secret to be deleted but its claim did not record which.
fn unrecorded(reset: &PasscodeReset) -> bool {
    let asks = reset
        .spec
        .new_passcode
        .as_ref()
        .is_some_and(|s| s.delete_secret_after_finished);
    asks && reset.status.as_ref().is_some_and(|s| {
        s.claimed_at.is_some()
            && s.secret_deleted_at.is_none()
            && s.claimed_command
                .as_ref()
                .is_none_or(|c| c.new_passcode && c.secret_name.is_none())
    })
}

/// Whether a final reset still has its Secret to delete, or the note on why it will not.
pub fn after_end_pending(reset: &PasscodeReset) -> bool {
    secret_to_delete(reset).is_some()
        || (unrecorded(reset)
            && !reset
                .status
                .as_ref()
                .and_then(|s| s.message.as_deref())
                .is_some_and(|m| m.contains(UNRECORDED)))
}

/// For a final reset (or one deleted after its command went out): delete its Secret, record that
/// it is gone, or note why it is not yet. None: nothing (more) to do.
pub(super) fn after_finished(o: &Observed, status: &PasscodeResetStatus) -> Option<Decision> {
    if !after_end_pending(o.reset) {
        return None;
    }
    let Some((name, uid)) = secret_to_delete(o.reset) else {
        let mut next = status.clone();
        let message = status.message.clone().unwrap_or_default();
        next.message = Some(format!("{message} {UNRECORDED}").trim().to_owned());
        return Some(Decision {
            status: Some(next),
            ..Default::default()
        });
    };
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
        None => Some(Decision::effect(Effect::DeleteSecret {
            name: name.to_owned(),
            uid: uid.map(str::to_owned),
        })),
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
                .or(o.reset.metadata.deletion_timestamp.as_ref())
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
