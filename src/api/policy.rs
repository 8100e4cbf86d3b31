//! `WorkProfilePasscodePolicy`: the passcode requirements a platform team declares for the devices
//! on some AMAPI policies. `Observe` only judges resets; `Enforce` also writes the requirements into
//! those AMAPI policies (as their SCOPE_PROFILE password policy) and keeps them there.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::validation::{DURATION_PATTERN, POLICY_NAME_PATTERN};
use crate::passcode::{PasswordQuality, Requirements};

/// Passcode requirements for the work profiles (and fully managed devices) on some AMAPI policies.
// Each printcolumn(...) repeats `type_ = "string"`, which clippy mistakes for a duplicate.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "amapi.passcode-operator.io",
    version = "v1alpha1",
    kind = "WorkProfilePasscodePolicy",
    plural = "workprofilepasscodepolicies",
    singular = "workprofilepasscodepolicy",
    status = "WorkProfilePasscodePolicyStatus",
    shortname = "wppp",
    category = "passcode",
    doc = "Passcode requirements for the work profiles (and fully managed devices) on some AMAPI policies.",
    cel,
    printcolumn(
        name = "Enforcement",
        type_ = "string",
        json_path = ".spec.enforcement"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct WorkProfilePasscodePolicySpec {
    /// The AMAPI policies (`enterprises/{enterpriseId}/policies/{policyId}`) whose devices these
    /// requirements govern.
    #[schemars(length(min = 1, max = 64), inner(regex(pattern = POLICY_NAME_PATTERN), length(max = 200)))]
    #[x_kube(validation = Rule::new("self.all(p, self.exists_one(q, q == p))").message("amapiPolicies must not repeat a policy"))]
    pub amapi_policies: Vec<String>,

    /// Observe (default): only judge new passcodes of resets against these requirements.
    /// Enforce: also write them into each listed AMAPI policy as its work-profile
    /// (SCOPE_PROFILE) password policy, and correct drift.
    #[serde(default)]
    pub enforcement: Enforcement,

    /// The requirements, in AMAPI's PasswordRequirements vocabulary.
    pub requirements: PolicyRequirements,
}

/// What the operator does with a policy.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum Enforcement {
    /// Judge the new passcode of each reset; never write to AMAPI.
    #[default]
    Observe,
    /// Also write the requirements into the listed AMAPI policies and correct drift.
    Enforce,
}

/// AMAPI's PasswordRequirements, without the scope (always the work profile, SCOPE_PROFILE).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[x_kube(
    validation = Rule::new("!(has(self.minimumLetters) || has(self.minimumLowerCase) || has(self.minimumUpperCase) || has(self.minimumNonLetter) || has(self.minimumNumeric) || has(self.minimumSymbols)) || self.quality == 'COMPLEX'").message("the minimumLetters/LowerCase/UpperCase/NonLetter/Numeric/Symbols counters only take effect with quality COMPLEX; Android ignores them otherwise"),
    validation = Rule::new("!has(self.minimumLength) || self.quality in ['NUMERIC', 'NUMERIC_COMPLEX', 'ALPHABETIC', 'ALPHANUMERIC', 'COMPLEX']").message("minimumLength only takes effect with quality NUMERIC, NUMERIC_COMPLEX, ALPHABETIC, ALPHANUMERIC or COMPLEX; Android ignores it otherwise"),
    validation = Rule::new("(has(self.minimumLowerCase) ? self.minimumLowerCase : 0) + (has(self.minimumUpperCase) ? self.minimumUpperCase : 0) + (has(self.minimumNumeric) ? self.minimumNumeric : 0) + (has(self.minimumSymbols) ? self.minimumSymbols : 0) <= 16").message("the counters together ask for more than 16 characters, Android's maximum passcode length")
)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRequirements {
    /// The kind of passcode required (AMAPI passwordQuality).
    pub quality: PasswordQuality,
    /// Minimum length (0-16). Only with NUMERIC, NUMERIC_COMPLEX, ALPHABETIC, ALPHANUMERIC, COMPLEX.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 16))]
    pub minimum_length: Option<u32>,
    /// Minimum number of letters (COMPLEX only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 16))]
    pub minimum_letters: Option<u32>,
    /// Minimum number of lower-case letters (COMPLEX only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 16))]
    pub minimum_lower_case: Option<u32>,
    /// Minimum number of upper-case letters (COMPLEX only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 16))]
    pub minimum_upper_case: Option<u32>,
    /// Minimum number of digits and symbols together (COMPLEX only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 16))]
    pub minimum_non_letter: Option<u32>,
    /// Minimum number of digits (COMPLEX only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 16))]
    pub minimum_numeric: Option<u32>,
    /// Minimum number of symbols (COMPLEX only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 16))]
    pub minimum_symbols: Option<u32>,
    /// How many previous passcodes the device refuses to reuse (0 = none). Only the device knows
    /// the history, so a reset can still be refused for reuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub history_length: Option<u32>,
    /// Wrong passcodes before the work profile (or device) is wiped (0 = never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub maximum_failed_passwords_for_wipe: Option<u32>,
    /// How long a passcode stays valid, such as `2160h` (90 days); absent = never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 32), extend("format" = "duration"))]
    pub expiration_timeout: Option<String>,
    /// How often the strong passcode must be entered instead of a biometric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_password_unlock: Option<RequirePasswordUnlock>,
    /// Whether the work profile may share the device's lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unified_lock_settings: Option<UnifiedLockSettings>,
}

/// AMAPI RequirePasswordUnlock.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RequirePasswordUnlock {
    /// The device's own timeout (usually 72 hours).
    UseDefaultDeviceTimeout,
    /// Every 24 hours.
    RequireEveryDay,
}

/// AMAPI UnifiedLockSettings.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UnifiedLockSettings {
    /// The user may use one lock for the device and the work profile.
    AllowUnifiedWorkAndPersonalLock,
    /// The work profile needs its own lock.
    RequireSeparateWorkLock,
}

impl From<&PolicyRequirements> for Requirements {
    fn from(r: &PolicyRequirements) -> Self {
        Requirements {
            quality: r.quality,
            minimum_length: r.minimum_length,
            minimum_letters: r.minimum_letters,
            minimum_lower_case: r.minimum_lower_case,
            minimum_upper_case: r.minimum_upper_case,
            minimum_non_letter: r.minimum_non_letter,
            minimum_numeric: r.minimum_numeric,
            minimum_symbols: r.minimum_symbols,
            history_length: r.history_length,
        }
    }
}

/// How one AMAPI policy stands.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AmapiPolicyStatus {
    /// The AMAPI policy name.
    #[schemars(length(max = 200))]
    pub name: String,
    /// The AMAPI policy version last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Whether its SCOPE_PROFILE password policy matches the requirements (Enforce only).
    #[serde(default)]
    pub synced: bool,
    /// When the operator last compared or wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// Other WorkProfilePasscodePolicies that also claim this AMAPI policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub conflicts_with: Vec<String>,
    /// Why it is not synced, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How the policy stands.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkProfilePasscodePolicyStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready and Synced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub conditions: Vec<Condition>,
    /// One entry per listed AMAPI policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub amapi_policies: Vec<AmapiPolicyStatus>,
}
