//! After the claim, before an operation is recorded: send the claimed command (only the process
//! that wrote the claim, and only once), or find what the claim created among the claimed
//! device's operations. A claim is released only when nothing was certainly created.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{
    CommandParams, Decision, Effect, Issued, Observed, Read, finish, humanize, poll_interval_with,
    spec_changed, transition,
};
use crate::amapi::model::{
    CommandType, Operation, ResetPasswordFlag, google_duration_nanos, parse_google_duration,
    parse_google_duration_nanos,
};
use crate::api::validation::{DEFAULT_EXPIRES_AFTER_SECS, parse_duration_secs};
use crate::api::{ClaimedCommand, PasscodeResetSpec, PasscodeResetStatus, Reason};

/// With no list of the device's operations for this long after the adoption window, the search
/// gives up: the reset ends `OutcomeUnknown`.
const LIST_GIVE_UP: Duration = Duration::from_secs(15 * 60);

/// A claim written before claims carried their command may match a command created this long
/// before it (clock skew between the operator and Google).
const LEGACY_WINDOW_BEFORE: Duration = Duration::from_secs(30);

/// The `Command.duration` of a claim: the spec's validity plus `nonce` nanoseconds (1 to
/// 999,999,999), which tells this claim's command from any other on the device. Compared as
/// nanoseconds ([`fingerprint_nanos`]): Google writes them with 3, 6 or 9 decimals.
pub fn claim_fingerprint(duration_secs: u64, nonce: u32) -> String {
    google_duration_nanos(duration_secs, nonce.clamp(1, 999_999_999))
}

/// A google-duration in nanoseconds, exactly.
pub fn fingerprint_nanos(text: &str) -> Option<u128> {
    parse_google_duration_nanos(text)
}

/// What a new claim sets out to send, from the spec.
pub fn claimed_command(spec: &PasscodeResetSpec, nonce: u32) -> ClaimedCommand {
    let duration_secs = spec
        .expires_after
        .as_deref()
        .and_then(parse_duration_secs)
        .unwrap_or(DEFAULT_EXPIRES_AFTER_SECS);
    ClaimedCommand {
        device: spec.device.clone(),
        new_passcode: spec.new_passcode.is_some(),
        lock_now: spec.lock_now,
        require_entry: spec.require_entry,
        duration: claim_fingerprint(duration_secs, nonce),
        secret_name: spec
            .new_passcode
            .as_ref()
            .map(|s| s.secret_key_ref.name.clone()),
        secret_uid: None,
    }
}

/// The device the claim is for (the spec's, for a claim written before claims said).
pub(super) fn claimed_device(o: &Observed, status: &PasscodeResetStatus) -> String {
    status
        .claimed_command
        .as_ref()
        .map_or_else(|| o.reset.spec.device.clone(), |c| c.device.clone())
}

/// Whether `op` is the command the reset's claim created.
pub(super) fn claims_command(o: &Observed, status: &PasscodeResetStatus, op: &Operation) -> bool {
    let Some(meta) = &op.metadata else {
        return false;
    };
    if meta.type_ != Some(CommandType::ResetPassword) {
        return false;
    }
    match &status.claimed_command {
        Some(claimed) => {
            let want = fingerprint_nanos(&claimed.duration);
            want.is_some() && meta.duration.as_deref().and_then(fingerprint_nanos) == want
        }
        None => legacy_match(o, status, op),
    }
}

/// A claim written before claims carried a fingerprint: a command of the spec's flags created
/// around the claim, not recorded by another reset.
fn legacy_match(o: &Observed, status: &PasscodeResetStatus, op: &Operation) -> bool {
    let taken = o
        .others
        .iter()
        .filter_map(|r| r.status.as_ref()?.operation.as_deref())
        .chain(o.inputs.settled_operations.iter().map(String::as_str))
        .any(|name| name == op.name);
    let Some(meta) = &op.metadata else {
        return false;
    };
    let (Some(claimed_at), Some(created)) = (
        status.claimed_at.as_ref().map(|t| t.0),
        meta.create_time
            .as_deref()
            .and_then(|t| t.parse::<Timestamp>().ok()),
    ) else {
        return false;
    };
    let from = claimed_at - SignedDuration::try_from(LEGACY_WINDOW_BEFORE).unwrap_or_default();
    let to = claimed_at + SignedDuration::try_from(o.config.adoption_window).unwrap_or_default();
    let spec = &o.reset.spec;
    let flags_match = meta
        .reset_password_flags
        .contains(&ResetPasswordFlag::LockNow)
        == spec.lock_now
        && meta
            .reset_password_flags
            .contains(&ResetPasswordFlag::RequireEntry)
            == spec.require_entry;
    !taken && (from..=to).contains(&created) && flags_match
}

/// Claimed, no operation recorded.
pub(super) fn issue_or_recover(o: &Observed, status: &PasscodeResetStatus) -> Decision {
    if o.inputs.may_send {
        match &o.inputs.issued {
            None if spec_changed(o, status) => {
                return transition(
                    o,
                    status,
                    Reason::SpecChanged,
                    "The spec changed after the reset was claimed and before its command was sent; nothing was sent. Create a new PasscodeReset for the new spec.".into(),
                    None,
                );
            }
            None => return Decision::effect(Effect::IssueCommand(params(o, status))),
            Some(Issued::Created(op)) => {
                return adopt(
                    o,
                    status,
                    op,
                    "Command issued; waiting for the device to sync and carry it out.",
                    Found::JustCreated,
                );
            }
            Some(Issued::NotCreated(m)) => {
                // Certain that nothing was sent: release the claim and try again later.
                let mut d = transition(
                    o,
                    status,
                    Reason::Retrying,
                    format!("AMAPI did not take the command ({m}); trying again."),
                    None,
                );
                if let Some(s) = d.status.as_mut() {
                    s.claimed_at = None;
                    s.claimed_command = None;
                }
                d.effect = Some(Effect::Release);
                d.requeue = Some(Duration::from_secs(5));
                return d;
            }
            Some(Issued::Refused {
                status: code,
                message,
            }) => {
                let reason = match code {
                    403 | 401 => Reason::PermissionDenied,
                    404 => Reason::DeviceNotFound,
                    _ => Reason::DeviceRejected,
                };
                return finish(
                    o,
                    status,
                    reason,
                    format!("AMAPI refused the command (HTTP {code}): {message}"),
                    false,
                );
            }
            Some(Issued::Ambiguous(_)) => {} // it may exist: search for it
        }
    }
    search(o, status)
}

/// The command as claimed.
fn params(o: &Observed, status: &PasscodeResetStatus) -> CommandParams {
    let claimed = status
        .claimed_command
        .clone()
        .unwrap_or_else(|| claimed_command(&o.reset.spec, o.inputs.claim_nonce));
    let mut flags = Vec::new();
    if claimed.require_entry {
        flags.push(ResetPasswordFlag::RequireEntry);
    }
    if claimed.lock_now {
        flags.push(ResetPasswordFlag::LockNow);
    }
    CommandParams {
        device: claimed.device,
        flags,
        duration: claimed.duration,
        with_passcode: claimed.new_passcode,
    }
}

/// A command may exist: look for the claim's among the claimed device's operations.
fn search(o: &Observed, status: &PasscodeResetStatus) -> Decision {
    let changed = spec_changed(o, status);
    let device = claimed_device(o, status);
    let unknown = |detail: String| {
        finish(
            o,
            status,
            Reason::OutcomeUnknown,
            format!(
                "{detail} The operator will not send a second command. Check the device; if its passcode was not changed, create a new PasscodeReset."
            ),
            changed,
        )
    };
    let claimed_at = status.claimed_at.as_ref().map_or(o.now, |t| t.0);
    let age = Duration::try_from(o.now.duration_since(claimed_at)).unwrap_or(Duration::ZERO);
    let window = o.config.adoption_window;
    let Some(read) = &o.inputs.operations else {
        return Decision::effect(Effect::ListOperations(device));
    };
    let operations = match read {
        Read::Found(ops) => ops,
        Read::Unavailable(m) if age < window + LIST_GIVE_UP => {
            let mut d = transition(
                o,
                status,
                Reason::Issuing,
                format!(
                    "Checking whether the command reached AMAPI; could not list the device's operations ({m})."
                ),
                None,
            );
            d.requeue = Some(Duration::from_secs(5));
            return d;
        }
        Read::Unavailable(m) => {
            return unknown(format!(
                "The command may have been sent, and the device's operations could not be listed for {} ({m}).",
                humanize(age)
            ));
        }
        Read::NotFound | Read::Denied(_) => {
            return unknown(
                "The command may have been sent, and the device's operations cannot be listed to tell."
                    .into(),
            );
        }
    };
    let found: Vec<&Operation> = operations
        .iter()
        .filter(|op| claims_command(o, status, op))
        .collect();
    match found.as_slice() {
        // Followed to its end; a changed spec is reported then (see `follow`).
        [op] => adopt(
            o,
            status,
            op,
            "Found the command this reset's claim created; following it.",
            Found::BySearch,
        ),
        [] if age < window => {
            let left = window - age;
            let mut d = transition(
                o,
                status,
                Reason::Issuing,
                format!(
                    "It is not known yet whether AMAPI created the command: none from this claim is listed on the device so far. Looking again for up to {}.",
                    humanize(left)
                ),
                None,
            );
            d.requeue = Some((left + Duration::from_millis(500)).min(Duration::from_secs(15)));
            d
        }
        [] => unknown(format!(
            "The answer to issueCommand was lost (or the operator stopped while sending), and no command from this claim is listed on the device {} after it; it may still be created later, so it cannot be told that none was sent.",
            humanize(window)
        )),
        many => unknown(format!(
            "{} commands on the device could be this reset's, so it cannot be told which.",
            many.len()
        )),
    }
}

/// How the command to follow was found.
enum Found {
    /// In issueCommand's answer: its notification, if pushed, is still to come.
    JustCreated,
    /// Among the device's operations, after an unclear answer: its notification may have come
    /// and gone before the reset followed it, so it is polled on schedule.
    BySearch,
}

/// Records an operation as this reset's command.
fn adopt(
    o: &Observed,
    status: &PasscodeResetStatus,
    op: &Operation,
    message: &str,
    found: Found,
) -> Decision {
    let issued = op
        .metadata
        .as_ref()
        .and_then(|m| m.create_time.as_deref())
        .and_then(|t| t.parse::<Timestamp>().ok())
        .unwrap_or(o.now);
    let duration = op
        .metadata
        .as_ref()
        .and_then(|m| m.duration.as_deref())
        .and_then(parse_google_duration)
        .unwrap_or(DEFAULT_EXPIRES_AFTER_SECS);
    let mut d = transition(o, status, Reason::AwaitingDevice, message.to_owned(), None);
    if let Some(s) = d.status.as_mut() {
        s.operation = Some(op.name.clone());
        s.issued_at = Some(Time(issued));
        s.expires_at = Some(Time(issued + SignedDuration::from_secs(duration as i64)));
        let pushed = o.config.notifications && matches!(found, Found::JustCreated);
        d.requeue = Some(if op.done {
            // Finished already: read its end at once.
            Duration::ZERO
        } else {
            poll_interval_with(o.now, s, pushed)
        });
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_compare_exactly_in_any_normal_form() {
        let f = claim_fingerprint(600, 123_000);
        assert_eq!(f, "600.000123s");
        assert_eq!(claim_fingerprint(600, 123_456_789), "600.123456789s");
        assert_eq!(fingerprint_nanos(&f), fingerprint_nanos("600.000123s"));
        assert_ne!(fingerprint_nanos(&f), fingerprint_nanos("600.000124s"));
        assert_ne!(fingerprint_nanos(&f), fingerprint_nanos("600s"));
        assert_eq!(fingerprint_nanos("600s"), Some(600_000_000_000));
        assert_eq!(fingerprint_nanos("1.5s"), Some(1_500_000_000));
        assert_eq!(fingerprint_nanos("1.0000000001s"), None);
        assert_eq!(fingerprint_nanos("600"), None);
        assert_eq!(fingerprint_nanos("x.5s"), None);
        // Never a whole number of seconds, so never mistaken for a command sent without one.
        assert_eq!(claim_fingerprint(60, 0), "60.000000001s");
        assert_eq!(
            fingerprint_nanos(&claim_fingerprint(60, 0)),
            Some(60_000_000_001)
        );
    }
}
