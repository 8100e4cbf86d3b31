//! After the command is recorded: poll it until the device acts, it fails, or it expires.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::recover::issue_or_recover;
use super::{
    Decision, EXPIRY_GRACE, Effect, Observed, Read, finish, poll_interval, poll_interval_with,
    spec_changed, transition,
};
use crate::amapi::model::{CommandErrorCode, OperationOutcome, rpc_code};
use crate::api::{PasscodeResetStatus, Reason};
use crate::reconcile::govern::governed;

/// An operation that cannot be read for this long past its expiry ends `OutcomeUnknown`.
const READ_GIVE_UP: Duration = Duration::from_secs(10 * 60);

/// After the claim: issue or recover without an operation, else follow the operation.
pub(super) fn follow(o: &Observed, status: &PasscodeResetStatus) -> Decision {
    let changed = spec_changed(o, status);
    let Some(operation_name) = status.operation.clone() else {
        return issue_or_recover(o, status);
    };
    let claimed = status.claimed_command.clone().unwrap_or_else(|| {
        // A claim written before claims carried their command: the spec it was acted on.
        crate::api::ClaimedCommand {
            device: o.reset.spec.device.clone(),
            new_passcode: o.reset.spec.new_passcode.is_some(),
            lock_now: o.reset.spec.lock_now,
            require_entry: o.reset.spec.require_entry,
            duration: String::new(),
            secret_name: None,
            secret_uid: None,
        }
    });

    let Some(read) = &o.inputs.operation else {
        if o.inputs.poll_deferred {
            // Not now: fresh work has the AMAPI rate, or the follow-up budget is spent. Look
            // again a little later, spread out so deferred polls do not come back together.
            let mut d = Decision::default();
            let spread = Duration::from_millis(u64::from(o.inputs.claim_nonce % 5000));
            d.requeue = Some(Duration::from_secs(5) + spread);
            return d;
        }
        return Decision::effect(Effect::GetOperation(operation_name));
    };
    let operation = match read {
        Read::Found(op) => op,
        Read::NotFound => {
            return finish(
                o,
                status,
                Reason::OutcomeUnknown,
                format!(
                    "AMAPI no longer knows operation {operation_name}, so whether the device acted cannot be told. Check the device before creating a new PasscodeReset."
                ),
                changed,
            );
        }
        Read::Denied(m) => {
            return finish(
                o,
                status,
                Reason::PermissionDenied,
                format!("AMAPI refused to show the operation: {m}"),
                changed,
            );
        }
        Read::Unavailable(m) if past(o.now, status, EXPIRY_GRACE + READ_GIVE_UP) => {
            return finish(
                o,
                status,
                Reason::OutcomeUnknown,
                format!(
                    "The command expired and could not be read since ({m}), so whether the device acted cannot be told. Check the device before creating a new PasscodeReset."
                ),
                changed,
            );
        }
        Read::Unavailable(m) => {
            let mut d = transition(
                o,
                status,
                Reason::AwaitingDevice,
                format!("Command issued; could not check on it just now ({m}); looking again."),
                None,
            );
            // On the polling schedule even when completion is pushed: a failed read at a
            // safety-net poll must not cost another 40 minutes. Past expiry, every 30 s until
            // it reads or gives up (not every 2 s for ten minutes).
            d.requeue = Some(if past(o.now, status, EXPIRY_GRACE) {
                Duration::from_secs(30)
            } else {
                poll_interval(o.now, status).max(Duration::from_secs(2))
            });
            return d;
        }
    };
    match operation.outcome() {
        OperationOutcome::Pending => {
            if past(o.now, status, EXPIRY_GRACE) {
                if o.inputs.cancelled {
                    // Read again after the cancel: still pending, so not confirmed.
                    return finish(
                        o,
                        status,
                        Reason::CommandExpired,
                        expired_message(status, Expiry::StillPending),
                        changed,
                    );
                }
                return Decision::effect(Effect::CancelOperation(operation_name));
            }
            let mut d = transition(
                o,
                status,
                Reason::AwaitingDevice,
                "Command issued; waiting for the device to sync and carry it out.".into(),
                None,
            );
            d.requeue = Some(poll_interval_with(o.now, status, o.config.notifications));
            d
        }
        OperationOutcome::Succeeded => {
            let (reason, message) = if claimed.new_passcode {
                let lock = if claimed.lock_now { " and locked" } else { "" };
                (
                    Reason::PasscodeReset,
                    format!("The device set the new passcode{lock}."),
                )
            } else {
                (
                    Reason::PasscodeCleared,
                    "The device cleared its passcode.".to_owned(),
                )
            };
            finish(o, status, reason, message, changed)
        }
        OperationOutcome::CommandError(code) => {
            // The device's state explains a refusal (reset token, history): look at it first.
            if o.inputs.device.is_none() {
                return Decision::effect(Effect::GetDevice(claimed.device));
            }
            let (reason, message) = command_error(&code, o);
            finish(o, status, reason, message, changed)
        }
        // Cancelled by the operator because it expired (in this reconcile, or in one whose
        // re-read failed).
        OperationOutcome::Cancelled if o.inputs.cancelled || past(o.now, status, EXPIRY_GRACE) => {
            finish(
                o,
                status,
                Reason::CommandExpired,
                expired_message(status, Expiry::Cancelled),
                changed,
            )
        }
        OperationOutcome::Cancelled => finish(
            o,
            status,
            Reason::CommandCancelled,
            "The command was cancelled before the device acted; the passcode was not changed."
                .into(),
            changed,
        ),
        OperationOutcome::Failed { code, .. } if code == rpc_code::DEADLINE_EXCEEDED => finish(
            o,
            status,
            Reason::CommandExpired,
            expired_message(status, Expiry::ByAmapi),
            changed,
        ),
        OperationOutcome::Failed { code, message } => finish(
            o,
            status,
            Reason::DeviceRejected,
            format!("The command failed (code {code}): {message}"),
            changed,
        ),
    }
}

fn command_error(code: &CommandErrorCode, o: &Observed) -> (Reason, String) {
    let history = o
        .inputs
        .device
        .as_ref()
        .and_then(|d| match d {
            Read::Found(d) => Some(governed(d, o.policies).history_length),
            _ => None,
        })
        .flatten();
    let token_unconfirmed = match &o.inputs.device {
        Some(Read::Found(d)) => d.non_compliance_details.iter().any(|n| {
            n.specific_non_compliance_reason.as_deref()
                == Some("PASSWORD_POLICIES_USER_CREDENTIALS_CONFIRMATION_REQUIRED")
        }),
        _ => false,
    };
    match code {
        CommandErrorCode::ApiLevel => (
            Reason::ApiLevelUnsupported,
            "The device refused: its Android version cannot reset this passcode (API level).".into(),
        ),
        CommandErrorCode::ManagementMode => (
            Reason::ManagementModeUnsupported,
            "The device refused: its management mode does not allow this reset.".into(),
        ),
        CommandErrorCode::InvalidValue => {
            let mut m = String::from("The device refused the new passcode as not meeting its password requirements");
            if let Some(h) = history {
                m.push_str(&format!(", or it matches one of the last {h} passcodes (the policy keeps a history the operator cannot check)"));
            }
            m.push_str(". Choose another passcode and create a new PasscodeReset.");
            (Reason::DeviceRejected, m)
        }
        _ if token_unconfirmed => (
            Reason::DeviceRejected,
            "The device could not use its reset token: the user has not confirmed their current lock since enrollment. Ask them to unlock the work profile once with their current passcode, or re-enroll.".into(),
        ),
        other => (
            Reason::DeviceRejected,
            format!("The device could not carry out the command ({}). A common cause on work profiles: the reset token was never activated because the user has not confirmed their lock since enrollment.", other.as_str()),
        ),
    }
}

/// How an expiry was seen.
enum Expiry {
    /// The operator cancelled it and read it back cancelled.
    Cancelled,
    /// The operator cancelled it, and AMAPI still showed it pending afterwards.
    StillPending,
    /// AMAPI ended it as expired (DEADLINE_EXCEEDED).
    ByAmapi,
}

fn expired_message(status: &PasscodeResetStatus, how: Expiry) -> String {
    let at = status
        .expires_at
        .as_ref()
        .map(|t| t.0.to_string())
        .unwrap_or_else(|| "its deadline".into());
    let missed = format!(
        "The device did not carry out the command before it expired at {at} (it was probably offline)"
    );
    match how {
        Expiry::Cancelled => format!(
            "{missed}; it was cancelled. Create a new PasscodeReset when the device is online."
        ),
        Expiry::ByAmapi => format!(
            "{missed}; AMAPI ended it. Create a new PasscodeReset when the device is online."
        ),
        Expiry::StillPending => format!(
            "{missed}. It was cancelled, but AMAPI still showed it pending afterwards; if the device syncs now it should refuse it as expired. Check the device before creating a new PasscodeReset."
        ),
    }
}

/// Whether `after` has passed since the command's expiry.
fn past(now: Timestamp, status: &PasscodeResetStatus, after: Duration) -> bool {
    status
        .expires_at
        .as_ref()
        .is_some_and(|t| now > t.0 + SignedDuration::try_from(after).unwrap_or_default())
}
