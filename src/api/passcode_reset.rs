//! `PasscodeReset`: one request to reset (or clear) the passcode of one device, executed at most
//! once. Modelled on one-shot Kubernetes objects (Job, cert-manager CertificateRequest): the spec is
//! immutable and the status is the audit record.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::validation::{
    DEVICE_NAME_PATTERN, DURATION_PATTERN, SECRET_KEY_PATTERN, SECRET_NAME_PATTERN,
};

/// A request to reset the passcode of one Android device through the Android Management API.
/// The spec cannot change once created; create a new PasscodeReset for another attempt.
// Each printcolumn(...) repeats `type_ = "string"`, which clippy mistakes for a duplicate.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "amapi.passcode-operator.io",
    version = "v1alpha1",
    kind = "PasscodeReset",
    plural = "passcoderesets",
    singular = "passcodereset",
    namespaced,
    status = "PasscodeResetStatus",
    shortname = "pcr",
    category = "passcode",
    doc = "A request to reset (or clear) the passcode of one Android device through the Android Management API, carried out at most once.",
    cel,
    printcolumn(name = "Device", type_ = "string", json_path = ".spec.device"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.reason"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new("self == oldSelf").message("spec is immutable: create a new PasscodeReset to try again"),
    validation = Rule::new("!self.requireEntry || has(self.newPasscode)").message("requireEntry needs a newPasscode: there is nothing to enter after clearing the passcode")
)]
#[serde(rename_all = "camelCase")]
pub struct PasscodeResetSpec {
    /// The AMAPI device resource name, `enterprises/{enterpriseId}/devices/{deviceId}`, as shown
    /// by the EMM console or `devices.list`.
    #[schemars(regex(pattern = DEVICE_NAME_PATTERN), length(max = 140))]
    pub device: String,

    /// Where to read the new passcode: a key of a Secret in this namespace. Omit it to clear the
    /// passcode (only possible when no passcode policy requires one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_passcode: Option<SecretSource>,

    /// Lock the work profile (or, on a fully managed device, the device) right after the reset
    /// (AMAPI flag LOCK_NOW).
    #[serde(default)]
    pub lock_now: bool,

    /// Until the user has entered the new passcode, no other admin may reset it (AMAPI flag
    /// REQUIRE_ENTRY). Needs newPasscode.
    #[serde(default)]
    pub require_entry: bool,

    /// How long the device has to carry out the command before it expires (AMAPI
    /// Command.duration), as hours, minutes and seconds such as `10m` or `1h30m`; 1m to 168h.
    /// Default 10m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 32), extend("format" = "duration"))]
    #[x_kube(validation = Rule::new("self >= duration('60s') && self <= duration('168h')").message("expiresAfter must be between 1m and 168h"))]
    pub expires_after: Option<String>,
}

/// A reference to the passcode: never put the passcode itself in a spec.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretSource {
    /// The Secret (in the PasscodeReset's namespace) and the key that holds the passcode. The
    /// Secret may be created after the PasscodeReset (the reset waits for it).
    pub secret_key_ref: SecretKeySelector,
    /// Delete the whole Secret once the reset has ended (Succeeded or Failed), so the passcode
    /// does not stay readable in the cluster; `status.secretDeletedAt` records it. Needs `delete`
    /// on secrets for the operator (manifests/rbac.yaml grants it). Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete_secret_after_finished: bool,
}

/// Selects a key of a Secret in the same namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct SecretKeySelector {
    /// Name of the Secret.
    #[schemars(regex(pattern = SECRET_NAME_PATTERN), length(min = 1, max = 253))]
    pub name: String,
    /// Key in the Secret's data whose value is the passcode (4 to 16 printable ASCII characters).
    #[schemars(regex(pattern = SECRET_KEY_PATTERN), length(min = 1, max = 253))]
    pub key: String,
}

/// Where the reset stands; Succeeded and Failed are final.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    /// Being checked, waiting for its Secret or its turn, or waiting for the device to act.
    Pending,
    /// The device carried out the command.
    Succeeded,
    /// The reset did not happen and will not be retried; `reason` says why.
    Failed,
}

impl Phase {
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
        }
    }
}

/// Declares every reason once: its doc (the `kubectl explain` text), its name and its phase.
macro_rules! reasons {
    ($($(#[$doc:meta])* $name:ident => $phase:ident,)*) => {
        /// Why the reset is in its phase. Each reason belongs to exactly one phase.
        #[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
        pub enum Reason {
            $($(#[$doc])* $name,)*
        }

        impl Reason {
            /// Every reason, in documentation order.
            pub const ALL: &[Reason] = &[$(Reason::$name),*];

            /// The phase this reason belongs to.
            pub fn phase(self) -> Phase {
                match self { $(Reason::$name => Phase::$phase),* }
            }

            pub fn as_str(self) -> &'static str {
                match self { $(Reason::$name => stringify!($name)),* }
            }
        }
    };
}

reasons! {
    /// Checking the spec, the device and the passcode.
    Validating => Pending,
    /// The reset's PasscodeResetScope requires a second person's approval; waiting for it.
    AwaitingApproval => Pending,
    /// The referenced Secret or key does not exist yet; looking again with backoff.
    WaitingForSecret => Pending,
    /// An older reset of the same device is in flight; this one runs after it.
    WaitingForDevice => Pending,
    /// Claimed: the command is being issued.
    Issuing => Pending,
    /// The command was issued; waiting for the device to sync and carry it out.
    AwaitingDevice => Pending,
    /// A transient error (AMAPI or Kubernetes); trying again with backoff.
    Retrying => Pending,
    /// The device set the new passcode.
    PasscodeReset => Succeeded,
    /// The device cleared its passcode.
    PasscodeCleared => Succeeded,
    /// The spec is malformed (only reachable on API servers that do not enforce the schema).
    SpecInvalid => Failed,
    /// The device's enterprise is not one this operator is configured to act on.
    EnterpriseNotAllowed => Failed,
    /// No recorded requester (created without the admission webhook, or its record is not
    /// sealed by this operator), and the operator is configured to refuse such resets.
    RequesterUnknown => Failed,
    /// No PasscodeResetScope covers the reset's namespace, and scopes are in use.
    NoScope => Failed,
    /// The PasscodeResetScopes covering the namespace do not allow the device's enterprise.
    EnterpriseOutOfScope => Failed,
    /// The PasscodeResetScopes covering the namespace do not allow the device's AMAPI policy.
    PolicyOutOfScope => Failed,
    /// A person with the approve right denied the reset.
    Denied => Failed,
    /// Nobody approved the reset within its scope's approval time.
    ApprovalExpired => Failed,
    /// AMAPI has no such device.
    DeviceNotFound => Failed,
    /// The device is not ACTIVE (disabled, lost, provisioning, deleted).
    DeviceNotActive => Failed,
    /// The device is neither a work profile (PROFILE_OWNER) nor fully managed (DEVICE_OWNER).
    ManagementModeUnsupported => Failed,
    /// The device runs Android older than 8.0 (API level 26).
    ApiLevelUnsupported => Failed,
    /// A passcode policy applies, so the passcode cannot be cleared: give a newPasscode.
    PasscodeRequired => Failed,
    /// The new passcode does not meet the requirements; see status.requirements.
    PasscodeInvalid => Failed,
    /// The Secret's value cannot be a passcode (empty, not UTF-8).
    SecretInvalid => Failed,
    /// The spec changed after the reset was acted on; the change was ignored.
    SpecChanged => Failed,
    /// A reset with this name and spec was acted on, deleted and created again (as GitOps
    /// self-heal does); it does not run twice.
    Recreated => Failed,
    /// The name has been used for as many different resets as its record keeps (32); none of
    /// them may run twice, so it is not used for another.
    RecordFull => Failed,
    /// The device did not carry out the command before it expired.
    CommandExpired => Failed,
    /// The command was cancelled before the device acted.
    CommandCancelled => Failed,
    /// The device refused the command (for example its reset token is not active, or it judged
    /// the passcode invalid).
    DeviceRejected => Failed,
    /// AMAPI refused the operator's credentials access to the enterprise or device.
    PermissionDenied => Failed,
    /// A command may or may not have reached the device and it cannot be told which; not retried
    /// so the device never gets two.
    OutcomeUnknown => Failed,
}

/// One line of the passcode checklist. Never contains the passcode or any part of it.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct RequirementCheck {
    /// Stable rule id, e.g. `minimumLength`.
    #[schemars(length(max = 64))]
    pub rule: String,
    /// What the rule asks, for people.
    #[schemars(length(max = 256))]
    pub description: String,
    /// Whether the new passcode meets it.
    pub met: bool,
}

/// What the operator saw of the device when it checked it.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceSnapshot {
    /// PROFILE_OWNER (work profile) or DEVICE_OWNER (fully managed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_mode: Option<String>,
    /// ACTIVE, DISABLED, LOST, PROVISIONING, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Android API level (26 = Android 8.0, 34 = Android 14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_level: Option<i32>,
    /// The AMAPI policy the device is assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_name: Option<String>,
    /// The version of that policy the device last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_policy_version: Option<i64>,
}

/// The audit record of a reset. Written only by the operator.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasscodeResetStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pending, Succeeded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Why it is in this phase (CamelCase); see the README for what to do about each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// What happened, for a help-desk engineer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Ready, Reconciling and Stalled, as kstatus and `kubectl wait` expect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub conditions: Vec<Condition>,
    /// The passcode checklist: each requirement that applied and whether it was met.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub requirements: Vec<RequirementCheck>,
    /// The WorkProfilePasscodePolicy (or policies, comma-separated) that governed the passcode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The device as the operator saw it before issuing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceSnapshot>,
    /// The AMAPI operation of the issued command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// When the operator claimed the reset, just before issuing the command. A claim without an
    /// operation means a command may have been sent: the operator never issues a second one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<Time>,
    /// The command the claim stands for, fixed at claim time: recovery and cancellation follow
    /// this, never a spec edited later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_command: Option<ClaimedCommand>,
    /// When the command was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<Time>,
    /// When the command stops being valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    /// When the reset reached Succeeded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// When the operator deleted the passcode's Secret (or found it gone) after the end, as
    /// `newPasscode.deleteSecretAfterFinished` asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_deleted_at: Option<Time>,
    /// Who created the reset, as the API server authenticated them (recorded by the operator's
    /// admission webhook at creation; absent when unknown). Written by the operator only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<UserInfo>,
    /// The PasscodeResetScope(s) that allowed the reset, comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub scope: Option<String>,
    /// The second person's decision, when the scope requires approval. Written by the operator
    /// only, from the decision the admission webhook recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRecord>,
}

/// An identity as the API server authenticated it (authentication.k8s.io UserInfo).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    /// The user name, such as `alice@example.com` or
    /// `system:serviceaccount:argocd:argocd-application-controller`.
    #[schemars(length(max = 256))]
    pub username: String,
    /// The user's unique id, when the authenticator gives one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 256))]
    pub uid: String,
    /// The groups the user was authenticated with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 256)))]
    pub groups: Vec<String>,
}

/// Approved or Denied.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Decision {
    Approved,
    Denied,
}

/// A second person's decision on a reset.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRecord {
    /// Approved or Denied.
    pub decision: Decision,
    /// Who decided, as the API server authenticated them.
    pub approver: UserInfo,
    /// When.
    pub decided_at: Time,
}

/// What a claim sets out to send: the device and the command's parameters (never the passcode).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimedCommand {
    /// The device the command goes to.
    #[schemars(length(max = 140))]
    pub device: String,
    /// Whether the command carries a new passcode (false: it clears the passcode).
    pub new_passcode: bool,
    /// AMAPI flag LOCK_NOW.
    pub lock_now: bool,
    /// AMAPI flag REQUIRE_ENTRY.
    pub require_entry: bool,
    /// The exact Command.duration sent, such as `600.000123456s`. Its nanoseconds are drawn per
    /// claim, so the command this claim created can be told from any other on the device.
    #[schemars(length(max = 32))]
    pub duration: String,
    /// The Secret the command's passcode was read from (for `deleteSecretAfterFinished`, which
    /// deletes this one, whatever the spec says later). Absent in claims of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub secret_name: Option<String>,
    /// That Secret's uid when it was read, so a Secret re-created under the same name is left
    /// alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub secret_uid: Option<String>,
}

impl PasscodeReset {
    /// The status phase, treating a missing status as Pending.
    pub fn phase(&self) -> Phase {
        self.status
            .as_ref()
            .and_then(|s| s.phase)
            .unwrap_or(Phase::Pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's table is the help desk's guide: every reason has a row.
    #[test]
    fn the_readme_explains_every_reason() {
        let readme = include_str!("../../README.md");
        for reason in Reason::ALL {
            let row = format!("| {} | `{}` |", reason.phase().as_str(), reason.as_str());
            assert!(readme.contains(&row), "README has no row {row}");
        }
    }
}
