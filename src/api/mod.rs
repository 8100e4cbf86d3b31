//! The two custom resources and their status vocabulary. No I/O here: these types are the
//! contract with `kubectl`, GitOps tools and the API server's validation.

pub mod conditions;
pub mod passcode_reset;
pub mod policy;
pub mod scope;
pub mod validation;

#[cfg(test)]
mod cel_tests;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use passcode_reset::{
    ApprovalRecord, ClaimedCommand, Decision, DeviceSnapshot, PasscodeReset, PasscodeResetSpec,
    PasscodeResetStatus, Phase, Reason, RequirementCheck, SecretKeySelector, SecretSource,
    UserInfo,
};
pub use policy::{
    AmapiPolicyStatus, Enforcement, PolicyRequirements, RequirePasswordUnlock, UnifiedLockSettings,
    WorkProfilePasscodePolicy, WorkProfilePasscodePolicySpec, WorkProfilePasscodePolicyStatus,
};

pub use scope::{Approval, PasscodeResetScope, PasscodeResetScopeSpec};

/// API group of every kind.
pub const GROUP: &str = "amapi.passcode-operator.io";
/// API version of both kinds.
pub const VERSION: &str = "v1alpha1";

/// Both CustomResourceDefinitions, as the API server receives them.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        PasscodeReset::crd(),
        WorkProfilePasscodePolicy::crd(),
        PasscodeResetScope::crd(),
    ]
}

/// Both CRDs as one multi-document YAML stream (what `passcode-operator crds` prints and `crds/`
/// holds).
pub fn crds_yaml() -> String {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd).expect("a CRD always serializes"));
    }
    out
}

#[cfg(test)]
mod tests {
    /// `crds/crds.yaml` is what the code generates: regenerate it with `make crds`.
    #[test]
    fn crds_directory_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/crds.yaml");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == super::crds_yaml(),
            "crds/crds.yaml differs from the code: run `make crds`"
        );
    }
}
