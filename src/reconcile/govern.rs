//! Which passcode requirements govern a device: the WorkProfilePasscodePolicies naming its AMAPI
//! policy (work-profile scope) plus what the device itself reports as applied for the scope being
//! reset. Strictest wins. Pure.

use std::sync::Arc;

use crate::amapi::model::{Device, ManagementMode, PasswordScope};
use crate::api::WorkProfilePasscodePolicy;
use crate::passcode::{Governing, Requirements};

/// The requirements in force and the policies they came from.
#[derive(Debug)]
pub struct Governed {
    pub governing: Governing,
    /// Names of the WorkProfilePasscodePolicies that applied.
    pub policies: Vec<String>,
    /// Whether the device reported applied password policies of its own.
    pub device_reported: bool,
    /// The largest passcode history any of them asks for (only the device can check it).
    pub history_length: Option<u32>,
}

/// Works out the requirements for resetting `device`'s passcode (work profile for a
/// PROFILE_OWNER, device for a DEVICE_OWNER).
pub fn governed(device: &Device, policies: &[Arc<WorkProfilePasscodePolicy>]) -> Governed {
    let profile = device.management_mode == Some(ManagementMode::ProfileOwner);
    let mut requirements = Vec::new();
    let mut names = Vec::new();
    // A WorkProfilePasscodePolicy speaks for the work profile only.
    if profile && let Some(assigned) = device.policy_name.as_deref() {
        for policy in policies {
            if policy.spec.amapi_policies.iter().any(|p| p == assigned) {
                requirements.push(Requirements::from(&policy.spec.requirements));
                names.push(policy.metadata.name.clone().unwrap_or_default());
            }
        }
    }
    let mut device_reported = false;
    for applied in &device.applied_password_policies {
        let scope = applied
            .password_scope
            .clone()
            .unwrap_or(PasswordScope::Unspecified);
        let applies = match scope {
            PasswordScope::Unspecified => true,
            PasswordScope::Profile => profile,
            PasswordScope::Device => !profile,
            PasswordScope::Other(_) => true, // unknown scope: assume it applies (stricter)
        };
        if applies {
            requirements.push(Requirements::from_amapi(applied));
            device_reported = true;
        }
    }
    names.sort();
    names.dedup();
    let history_length = requirements
        .iter()
        .filter_map(|r| r.history_length)
        .filter(|h| *h > 0)
        .max();
    Governed {
        governing: Governing::from_requirements(&requirements),
        policies: names,
        device_reported,
        history_length,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amapi::model::PasswordRequirements;
    use crate::api::{PolicyRequirements, WorkProfilePasscodePolicySpec};
    use crate::passcode::PasswordQuality;

    fn policy(
        name: &str,
        amapi: &str,
        quality: PasswordQuality,
        min: Option<u32>,
    ) -> Arc<WorkProfilePasscodePolicy> {
        Arc::new(WorkProfilePasscodePolicy::new(
            name,
            WorkProfilePasscodePolicySpec {
                amapi_policies: vec![amapi.into()],
                enforcement: Default::default(),
                requirements: PolicyRequirements {
                    quality,
                    minimum_length: min,
                    ..Default::default()
                },
            },
        ))
    }

    fn device(mode: ManagementMode, applied: Vec<PasswordRequirements>) -> Device {
        Device {
            name: "enterprises/E/devices/D".into(),
            management_mode: Some(mode),
            policy_name: Some("enterprises/E/policies/wp".into()),
            applied_password_policies: applied,
            ..Default::default()
        }
    }

    fn applied(scope: &str, quality: &str, min: i32) -> PasswordRequirements {
        PasswordRequirements {
            password_scope: Some(PasswordScope::from(scope)),
            password_quality: Some(quality.into()),
            password_minimum_length: Some(min),
            ..Default::default()
        }
    }

    #[test]
    fn no_requirements_allow_clearing() {
        let g = governed(&device(ManagementMode::ProfileOwner, vec![]), &[]);
        assert!(!g.governing.requires_passcode());
        assert!(g.policies.is_empty());
    }

    #[test]
    fn policy_for_the_devices_amapi_policy_governs_work_profiles() {
        let p = [
            policy(
                "corp",
                "enterprises/E/policies/wp",
                PasswordQuality::Numeric,
                Some(6),
            ),
            policy(
                "other",
                "enterprises/E/policies/other",
                PasswordQuality::Complex,
                Some(12),
            ),
        ];
        let g = governed(&device(ManagementMode::ProfileOwner, vec![]), &p);
        assert_eq!(g.policies, ["corp"]);
        assert!(g.governing.requires_passcode());
        let v = crate::passcode::judge(Some(b"13579"), &g.governing, Some(30));
        assert!(!v.passes, "5 digits < 6");
        // A fully managed device is not governed by a work-profile policy.
        let g = governed(&device(ManagementMode::DeviceOwner, vec![]), &p);
        assert!(g.policies.is_empty() && !g.governing.requires_passcode());
    }

    #[test]
    fn applied_policies_count_for_the_matching_scope_and_strictest_wins() {
        let p = [policy(
            "corp",
            "enterprises/E/policies/wp",
            PasswordQuality::Numeric,
            Some(6),
        )];
        let dev = device(
            ManagementMode::ProfileOwner,
            vec![
                applied("SCOPE_PROFILE", "NUMERIC", 8),
                applied("SCOPE_DEVICE", "NUMERIC", 12),
            ],
        );
        let g = governed(&dev, &p);
        assert!(g.device_reported);
        assert!(
            !crate::passcode::judge(Some(b"1357924"), &g.governing, Some(30)).passes,
            "7 < 8"
        );
        assert!(
            crate::passcode::judge(Some(b"13579246"), &g.governing, Some(30)).passes,
            "device scope ignored"
        );
        let owner = device(
            ManagementMode::DeviceOwner,
            vec![applied("SCOPE_DEVICE", "NUMERIC", 12)],
        );
        assert!(
            !crate::passcode::judge(Some(b"13579246"), &governed(&owner, &p).governing, Some(30))
                .passes
        );
    }

    #[test]
    fn unknown_quality_still_requires_a_passcode() {
        let dev = device(
            ManagementMode::ProfileOwner,
            vec![applied("SCOPE_UNSPECIFIED", "QUANTUM_RESISTANT", 4)],
        );
        let g = governed(&dev, &[]);
        assert!(g.device_reported);
        assert!(g.governing.requires_passcode(), "clearing is refused");
    }
}
