//! `PasscodeResetScope`: what the resets created in some namespaces may touch. A platform team
//! gives each help-desk team a namespace and a scope: the enterprises (and optionally the AMAPI
//! policies) whose devices that team may reset, and whether a second person must approve.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::validation::{DURATION_PATTERN, POLICY_NAME_PATTERN};

/// What the PasscodeResets of some namespaces may touch. Cluster-scoped: only the platform team
/// (who may create cluster-scoped resources) writes scopes, never the help desks they bound.
// Each printcolumn(...) repeats `type_ = "string"`, which clippy mistakes for a duplicate.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "amapi.passcode-operator.io",
    version = "v1alpha1",
    kind = "PasscodeResetScope",
    plural = "passcoderesetscopes",
    singular = "passcoderesetscope",
    shortname = "pcrscope",
    category = "passcode",
    doc = "What the PasscodeResets of some namespaces may touch: enterprises, optionally AMAPI policies, and whether a second person must approve.",
    cel,
    printcolumn(
        name = "Enterprises",
        type_ = "string",
        json_path = ".spec.enterprises"
    ),
    printcolumn(
        name = "Approval",
        type_ = "boolean",
        json_path = ".spec.approval.required"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new("(has(self.namespaces) && size(self.namespaces) > 0) || has(self.namespaceSelector)").message("a scope names namespaces, or selects them by label, or both")
)]
#[serde(rename_all = "camelCase")]
pub struct PasscodeResetScopeSpec {
    /// Namespaces covered, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 63)))]
    pub namespaces: Vec<String>,

    /// Namespaces covered, by label (in addition to `namespaces`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,

    /// Enterprise ids (`LC01abc`) whose devices resets from these namespaces may reset.
    #[schemars(length(min = 1, max = 64), inner(length(min = 1, max = 64)))]
    pub enterprises: Vec<String>,

    /// When given, only devices on these AMAPI policies
    /// (`enterprises/{enterpriseId}/policies/{policyId}`) may be reset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(regex(pattern = POLICY_NAME_PATTERN), length(max = 200)))]
    pub amapi_policies: Vec<String>,

    /// Whether a second person must approve each reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

/// A second pair of eyes.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// Each reset waits (`AwaitingApproval`) until a person other than its requester, allowed the
    /// verb `approve` on `passcoderesets`, approves it.
    pub required: bool,
    /// How long a reset waits for a decision before it ends `ApprovalExpired`, counted from its
    /// creation, like `30m` or `24h`. Default 24h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 32))]
    pub expires_after: Option<String>,
}

/// The default [`Approval::expires_after`].
pub const DEFAULT_APPROVAL_SECS: u64 = 24 * 3600;
