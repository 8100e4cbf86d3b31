//! The requirements that govern a device, as far as the cluster knows them: the operator reports
//! each device's AMAPI policy and API level in the status of its resets (`status.device`), and a
//! WorkProfilePasscodePolicy names the AMAPI policies it governs. A requirements file given with
//! `--requirements` is merged in (strictest wins, as the operator merges). The operator judges
//! again with what the device itself reports, so this is a preview, never a weaker check.

use serde_json::Value;

use crate::api::WorkProfilePasscodePolicy;
use crate::passcode::{Governing, Requirements};

/// What the operator last reported about a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    /// The reset whose status said so.
    pub reset: String,
    pub policy: Option<String>,
    pub api_level: Option<u32>,
}

/// The requirements the checklist and `--generate` use.
#[derive(Debug, Clone)]
pub struct Known {
    pub governing: Governing,
    pub api_level: Option<u32>,
    /// Where they came from, for the checklist's header.
    pub sources: Vec<String>,
}

impl Known {
    /// One line saying what the checklist is based on.
    pub fn header(&self) -> String {
        let level = self
            .api_level
            .map_or("API level unknown".to_owned(), |l| format!("API level {l}"));
        if self.sources.is_empty() {
            format!(
                "Requirements: none known, only Android's own ({level}); the operator checks again"
            )
        } else {
            format!("Requirements: {} ({level})", self.sources.join(", "))
        }
    }
}

/// The newest reset of `device` whose status reports the device (resets as JSON objects).
pub fn reported(device: &str, resets: &[Value]) -> Option<Reported> {
    resets
        .iter()
        .filter(|r| r.pointer("/spec/device").and_then(Value::as_str) == Some(device))
        .filter(|r| r.pointer("/status/device").is_some_and(Value::is_object))
        .max_by_key(|r| {
            r.pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        })
        .map(|r| Reported {
            reset: r
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            policy: r
                .pointer("/status/device/policyName")
                .and_then(Value::as_str)
                .map(str::to_owned),
            api_level: r
                .pointer("/status/device/apiLevel")
                .and_then(Value::as_u64)
                .and_then(|l| u32::try_from(l).ok()),
        })
}

/// Merges the policies that name the reported AMAPI policy with the file's requirements.
pub fn known(
    reported: Option<&Reported>,
    policies: &[WorkProfilePasscodePolicy],
    file: Option<(&str, &Requirements)>,
    api_level: Option<u32>,
) -> Known {
    let mut requirements = Vec::new();
    let mut sources = Vec::new();
    if let Some(policy) = reported.and_then(|r| r.policy.as_deref()) {
        for p in policies {
            if p.spec.amapi_policies.iter().any(|name| name == policy) {
                requirements.push(Requirements::from(&p.spec.requirements));
                sources.push(format!(
                    "WorkProfilePasscodePolicy {} (the device is on {policy})",
                    p.metadata.name.as_deref().unwrap_or_default()
                ));
            }
        }
    }
    if let Some((path, r)) = file {
        requirements.push(r.clone());
        sources.push(path.to_owned());
    }
    Known {
        governing: Governing::from_requirements(&requirements),
        api_level: api_level.or(reported.and_then(|r| r.api_level)),
        sources,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passcode::{PasswordQuality, judge};
    use serde_json::json;

    fn reset(name: &str, created: &str, device: &str, status: Value) -> Value {
        json!({"metadata": {"name": name, "creationTimestamp": created},
               "spec": {"device": device}, "status": status})
    }

    fn policy(name: &str, amapi: &str, quality: &str, length: u32) -> WorkProfilePasscodePolicy {
        serde_json::from_value(json!({
            "apiVersion": "amapi.passcode-operator.io/v1alpha1", "kind": "WorkProfilePasscodePolicy",
            "metadata": {"name": name},
            "spec": {"amapiPolicies": [amapi], "requirements": {"quality": quality, "minimumLength": length}},
        }))
        .unwrap()
    }

    #[test]
    fn the_newest_report_of_the_device_names_its_policy() {
        let d = "enterprises/E/devices/d1";
        let resets = [
            reset(
                "old",
                "2026-11-20T10:00:00Z",
                d,
                json!({"device": {"policyName": "enterprises/E/policies/old", "apiLevel": 33}}),
            ),
            reset(
                "new",
                "2026-11-23T10:00:00Z",
                d,
                json!({"device": {"policyName": "enterprises/E/policies/wp", "apiLevel": 34}}),
            ),
            reset(
                "newest-unreported",
                "2026-11-24T10:00:00Z",
                d,
                json!({"phase": "Pending"}),
            ),
            reset(
                "other",
                "2026-11-25T10:00:00Z",
                "enterprises/E/devices/d2",
                json!({"device": {"policyName": "x"}}),
            ),
        ];
        let r = reported(d, &resets).unwrap();
        assert_eq!(r.reset, "new");
        assert_eq!(r.policy.as_deref(), Some("enterprises/E/policies/wp"));
        assert_eq!(r.api_level, Some(34));
        assert!(reported("enterprises/E/devices/none", &resets).is_none());
    }

    #[test]
    fn policies_naming_the_device_policy_and_the_file_are_merged() {
        let r = Reported {
            reset: "r".into(),
            policy: Some("enterprises/E/policies/wp".into()),
            api_level: Some(34),
        };
        let policies = [
            policy("corp", "enterprises/E/policies/wp", "NUMERIC_COMPLEX", 6),
            policy("unrelated", "enterprises/E/policies/kiosk", "NUMERIC", 12),
        ];
        let file = Requirements {
            quality: PasswordQuality::Numeric,
            minimum_length: Some(8),
            ..Requirements::default()
        };
        let k = known(Some(&r), &policies, Some(("req.yaml", &file)), None);
        assert_eq!(k.api_level, Some(34));
        assert_eq!(k.sources.len(), 2, "{:?}", k.sources);
        assert!(k.header().contains("WorkProfilePasscodePolicy corp"));
        // Strictest of both: 8 digits (file) and no sequence (policy).
        assert!(!judge(Some(b"8304172"), &k.governing, k.api_level).passes);
        assert!(!judge(Some(b"12345678"), &k.governing, k.api_level).passes);
        assert!(judge(Some(b"83041729"), &k.governing, k.api_level).passes);
        let none = known(None, &policies, None, None);
        assert!(none.sources.is_empty() && none.header().contains("none known"));
    }
}
