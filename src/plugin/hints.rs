//! What to do about each reason: the "what to do" column of the README's table of reasons, word
//! for word (a test keeps the two the same), so the plugin tells the engineer on the phone what
//! the manual would.

use crate::api::Reason;

/// What to do about `reason`.
pub fn what_to_do(reason: Reason) -> &'static str {
    match reason {
        Reason::Validating => "Wait.",
        Reason::WaitingForSecret => {
            "Create the Secret (or let your sealed/external secret controller do it)."
        }
        Reason::WaitingForDevice => "Wait; it follows when the other ends.",
        Reason::Issuing => "Wait (at most the adoption window, 3 minutes).",
        Reason::AwaitingDevice => "Ask the user to bring the phone online.",
        Reason::Retrying => "Usually nothing; read the message.",
        Reason::PasscodeReset => "Give the user the new passcode through your usual channel.",
        Reason::PasscodeCleared => "The user sets a new one.",
        Reason::SpecInvalid => "Fix it in a new PasscodeReset.",
        Reason::EnterpriseNotAllowed => "Check the device name, or the operator's `--enterprises`.",
        Reason::DeviceNotFound => "Check the name in the EMM console.",
        Reason::DeviceNotActive => "Re-activate it first.",
        Reason::ManagementModeUnsupported => "Such devices cannot be reset this way.",
        Reason::ApiLevelUnsupported => "Update the device or re-enroll.",
        Reason::PasscodeRequired => {
            "Give a `newPasscode` (with `kubectl passcode reset`: leave out `--clear`)."
        }
        Reason::PasscodeInvalid => {
            "Choose one that meets them (try it with `kubectl passcode check` or `passcode-operator check`)."
        }
        Reason::SecretInvalid => "Fix the Secret and create a new reset.",
        Reason::SpecChanged => "Create a new PasscodeReset instead of editing.",
        Reason::Recreated => {
            "To reset again, create a reset with a new name. To run this name once more on purpose, delete the record the message names."
        }
        Reason::RecordFull => {
            "Create the reset with a new name, or delete the record ConfigMap the message names to start that name afresh."
        }
        Reason::CommandExpired => "Create a new reset when the device is online.",
        Reason::CommandCancelled => "Create a new reset if still needed.",
        Reason::DeviceRejected => {
            "Follow the message: have the user unlock the work profile once, or choose another passcode."
        }
        Reason::PermissionDenied => "Grant the service account access to the enterprise.",
        Reason::AwaitingApproval => {
            "A person other than the requester, with the `approve` verb, runs `kubectl annotate pcr NAME amapi.passcode-operator.io/decision=approve` (or `=deny`)."
        }
        Reason::RequesterUnknown => "Create the reset again while the webhook runs.",
        Reason::NoScope => "Ask the platform team for a scope covering the namespace.",
        Reason::EnterpriseOutOfScope => "Check the device name, or the scope's `enterprises`.",
        Reason::PolicyOutOfScope => {
            "The device belongs to another team; or add the policy to the scope's `amapiPolicies`."
        }
        Reason::Denied => "Talk to them; create a new reset if it should happen after all.",
        Reason::ApprovalExpired => "Create a new reset and ask for approval in time.",
        Reason::OutcomeUnknown => {
            "Check the device; if the passcode did not change, create a new PasscodeReset."
        }
    }
}

/// [`what_to_do`] for a reason as the status spells it; `None` for one this version does not
/// know (a newer operator may report more).
pub fn what_to_do_str(reason: &str) -> Option<&'static str> {
    Reason::ALL
        .iter()
        .find(|r| r.as_str() == reason)
        .map(|r| what_to_do(*r))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hints are the README's "what to do" column, so the manual and the plugin agree.
    #[test]
    fn hints_are_the_readmes_what_to_do_column() {
        let readme = include_str!("../../README.md");
        for reason in Reason::ALL {
            let prefix = format!("| {} | `{}` |", reason.phase().as_str(), reason.as_str());
            let row = readme
                .lines()
                .find(|l| l.starts_with(&prefix))
                .unwrap_or_else(|| panic!("README has no row {prefix}"));
            let last = row
                .trim_end_matches('|')
                .rsplit(" | ")
                .next()
                .unwrap()
                .trim();
            assert_eq!(last, what_to_do(*reason), "{reason:?}");
        }
        assert_eq!(
            what_to_do_str("DeviceRejected"),
            Some(what_to_do(Reason::DeviceRejected))
        );
        assert_eq!(what_to_do_str("SomethingNewer"), None);
    }
}
