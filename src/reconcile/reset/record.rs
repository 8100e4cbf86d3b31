//! The record of a reset about to be acted on, kept in the operator's own namespace where it
//! outlives the PasscodeReset. GitOps self-heal re-creates a deleted reset as a new object with
//! the same name and spec; without a record that object would run again and reset a passcode the
//! user may since have changed. One ConfigMap per reset, named after its namespace and name, is
//! written before the claim: `create` is atomic, so one call tells a first run from a re-created
//! twin, also across replicas.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};
use sha2::{Digest, Sha256};

use crate::api::{PasscodeReset, PasscodeResetStatus, Reason};

/// Marks the operator's records (`kubectl get configmaps -l amapi.passcode-operator.io/record`).
pub const RECORD_LABEL: &str = "amapi.passcode-operator.io/record";
/// The reset's namespace, for selecting the records of one namespace.
pub const NAMESPACE_LABEL: &str = "amapi.passcode-operator.io/reset-namespace";

/// The answer to recording a reset before its claim.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// The record is this reset's: just written, or written by an earlier attempt of this object.
    Ours,
    /// An earlier object with this namespace, name and spec was recorded (so possibly acted on)
    /// and has since been deleted.
    Earlier {
        uid: String,
        claimed_at: String,
        /// `namespace/name` of the record, for the message that says how to allow a rerun.
        record: String,
    },
    /// The record could not be read or written; nothing may be claimed yet.
    Unavailable(String),
}

/// What an existing record means for `reset`. Pure.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Ours,
    /// This reset's record, written before its spec was edited (possible without CEL): updated, so
    /// a later twin of the edited spec is recognised.
    OursStale,
    Earlier {
        uid: String,
        claimed_at: String,
    },
    /// A record of an earlier object with a different spec: a new reset that reuses a name. It
    /// takes the record over.
    Replace,
    /// A ConfigMap with the record's name that the operator did not write.
    Foreign,
}

/// The record's ConfigMap name: a digest, since `namespace/name` may exceed a name's 253 bytes.
pub fn record_name(namespace: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{namespace}/{name}").as_bytes());
    let hex = format!("{digest:x}");
    format!("pcr-{}", &hex[..40])
}

/// The record of `reset`, claimed at `claimed_at` (RFC 3339). Holds no passcode: the spec only
/// names the Secret.
pub fn record_for(reset: &PasscodeReset, operator_namespace: &str, claimed_at: &str) -> ConfigMap {
    let namespace = reset.namespace().unwrap_or_default();
    let name = reset.name_any();
    let spec = serde_json::to_string(&reset.spec).expect("a spec serializes");
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(record_name(&namespace, &name)),
            namespace: Some(operator_namespace.to_owned()),
            labels: Some(
                [
                    (RECORD_LABEL.to_owned(), "passcode-reset".to_owned()),
                    (NAMESPACE_LABEL.to_owned(), namespace.clone()),
                    (
                        "app.kubernetes.io/managed-by".to_owned(),
                        "passcode-operator".to_owned(),
                    ),
                ]
                .into(),
            ),
            ..Default::default()
        },
        data: Some(
            [
                ("namespace".to_owned(), namespace),
                ("name".to_owned(), name),
                ("uid".to_owned(), reset.uid().unwrap_or_default()),
                ("device".to_owned(), reset.spec.device.clone()),
                ("spec".to_owned(), spec),
                ("claimedAt".to_owned(), claimed_at.to_owned()),
            ]
            .into(),
        ),
        ..Default::default()
    }
}

/// Compares an existing record with `reset`.
pub fn verdict(existing: &ConfigMap, reset: &PasscodeReset) -> Verdict {
    if !existing.labels().contains_key(RECORD_LABEL) {
        return Verdict::Foreign;
    }
    let data = existing.data.clone().unwrap_or_default();
    let field = |k: &str| data.get(k).cloned().unwrap_or_default();
    let recorded: Option<serde_json::Value> = serde_json::from_str(&field("spec")).ok();
    if reset.uid().is_some_and(|uid| uid == field("uid")) {
        return if recorded == serde_json::to_value(&reset.spec).ok() {
            Verdict::Ours
        } else {
            Verdict::OursStale
        };
    }
    // A spec that cannot be read is taken for the same one: when in doubt, do not run twice.
    match recorded {
        Some(r) if serde_json::to_value(&reset.spec).ok().as_ref() != Some(&r) => Verdict::Replace,
        _ => Verdict::Earlier {
            uid: field("uid"),
            claimed_at: field("claimedAt"),
        },
    }
}

/// Writes the record of `reset`, or finds the one already there.
pub async fn record(
    client: &Client,
    operator_namespace: &str,
    reset: &PasscodeReset,
    claimed_at: &str,
) -> Recorded {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), operator_namespace);
    let mine = record_for(reset, operator_namespace, claimed_at);
    let name = mine.name_any();
    let unavailable = |e: kube::Error| {
        Recorded::Unavailable(format!(
            "could not write the reset's record, ConfigMap {operator_namespace}/{name}: {}",
            describe(&e)
        ))
    };
    // A record deleted or replaced between two calls sends us round again; a few rounds settle it.
    for _ in 0..3 {
        match api.create(&PostParams::default(), &mine).await {
            Ok(_) => return Recorded::Ours,
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return unavailable(e),
        }
        let existing = match api.get_opt(&name).await {
            Ok(Some(cm)) => cm,
            Ok(None) => continue,
            Err(e) => return unavailable(e),
        };
        match verdict(&existing, reset) {
            Verdict::Ours => return Recorded::Ours,
            Verdict::Earlier { uid, claimed_at } => {
                return Recorded::Earlier {
                    uid,
                    claimed_at,
                    record: format!("{operator_namespace}/{name}"),
                };
            }
            Verdict::Foreign => {
                return Recorded::Unavailable(format!(
                    "ConfigMap {operator_namespace}/{name} exists but is not a record of this operator (no label {RECORD_LABEL}); remove or rename it"
                ));
            }
            Verdict::Replace | Verdict::OursStale => {
                let mut next = mine.clone();
                next.metadata.resource_version = existing.metadata.resource_version.clone();
                match api.replace(&name, &PostParams::default(), &next).await {
                    Ok(_) => return Recorded::Ours,
                    Err(kube::Error::Api(s)) if s.code == 409 => continue,
                    Err(e) => return unavailable(e),
                }
            }
        }
    }
    Recorded::Unavailable(format!(
        "ConfigMap {operator_namespace}/{name} kept changing while the reset was being recorded"
    ))
}

/// Removes the record of `reset` once it has ended with AMAPI refusing its command: certainly
/// nothing was created, and a final reset is never claimed again, so no other attempt can race
/// with the removal. A re-created twin is then not refused for nothing. Best effort: a record left
/// behind only makes a re-created twin end `Recreated`. (A released claim keeps its record: the
/// reset will claim again, possibly from another replica, and a removal could not be ordered
/// safely before that new claim.)
pub async fn forget(client: &Client, operator_namespace: &str, reset: &PasscodeReset) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), operator_namespace);
    let name = record_name(&reset.namespace().unwrap_or_default(), &reset.name_any());
    match api.get_opt(&name).await {
        Ok(Some(cm)) if matches!(verdict(&cm, reset), Verdict::Ours | Verdict::OursStale) => {
            let params = kube::api::DeleteParams {
                preconditions: Some(kube::api::Preconditions {
                    resource_version: cm.metadata.resource_version.clone(),
                    uid: cm.metadata.uid.clone(),
                }),
                ..Default::default()
            };
            if let Err(e) = api.delete(&name, &params).await {
                tracing::warn!(record = %name, error = %describe(&e), "could not remove a reset record");
            }
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(record = %name, error = %describe(&e), "could not read a reset record")
        }
    }
}

/// Whether a write turned the status into a final one that proves no command was created for its
/// claim: it ended with the claim made but no operation, for a reason other than `OutcomeUnknown`
/// (AMAPI refused the command).
pub fn nothing_sent(before: &PasscodeResetStatus, after: &PasscodeResetStatus) -> bool {
    let newly_final = !before.phase.is_some_and(|p| p.is_terminal());
    newly_final
        && after.claimed_at.is_some()
        && after.operation.is_none()
        && after.phase.is_some_and(|p| p.is_terminal())
        && after.reason != Some(Reason::OutcomeUnknown)
}

fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.is_forbidden() => format!(
            "{} (the operator needs get, create, update and delete on configmaps in its own namespace)",
            s.message
        ),
        kube::Error::Api(s) if s.is_not_found() => format!(
            "{} (does the operator's namespace exist? Set --operator-namespace)",
            s.message
        ),
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reset(uid: &str, spec: serde_json::Value) -> PasscodeReset {
        serde_json::from_value(json!({
            "apiVersion": "amapi.passcode-operator.io/v1alpha1",
            "kind": "PasscodeReset",
            "metadata": {"name": "jdoe", "namespace": "helpdesk", "uid": uid},
            "spec": spec,
        }))
        .unwrap()
    }

    fn spec() -> serde_json::Value {
        json!({"device": "enterprises/LC01/devices/d1",
               "newPasscode": {"secretKeyRef": {"name": "s", "key": "passcode"}}, "lockNow": true})
    }

    #[test]
    fn names_are_stable_valid_and_distinct() {
        let a = record_name("helpdesk", "jdoe");
        assert_eq!(a, record_name("helpdesk", "jdoe"));
        assert_eq!(a.len(), 44);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        // The separator keeps `a/bc` and `ab/c` apart.
        assert_ne!(record_name("a", "bc"), record_name("ab", "c"));
        assert_ne!(a, record_name("other", "jdoe"));
        let long = "x".repeat(253);
        assert_eq!(record_name(&"n".repeat(63), &long).len(), 44);
    }

    #[test]
    fn the_record_says_who_what_and_when_and_nothing_secret() {
        let r = reset("u-1", spec());
        let cm = record_for(&r, "passcode-operator-system", "2026-11-23T10:00:00Z");
        assert_eq!(
            cm.metadata.namespace.as_deref(),
            Some("passcode-operator-system")
        );
        assert_eq!(cm.labels()[NAMESPACE_LABEL], "helpdesk");
        let data = cm.data.unwrap();
        assert_eq!(data["uid"], "u-1");
        assert_eq!(data["name"], "jdoe");
        assert_eq!(data["claimedAt"], "2026-11-23T10:00:00Z");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&data["spec"]).unwrap(),
            serde_json::to_value(&r.spec).unwrap()
        );
    }

    #[test]
    fn a_record_is_forgotten_only_when_the_command_was_refused() {
        use crate::api::Phase;
        let t = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-11-23T10:00:00Z".parse().unwrap(),
        );
        let claimed = PasscodeResetStatus {
            claimed_at: Some(t.clone()),
            phase: Some(Phase::Pending),
            reason: Some(Reason::Issuing),
            ..Default::default()
        };
        let refused = PasscodeResetStatus {
            phase: Some(Phase::Failed),
            reason: Some(Reason::PermissionDenied),
            ..claimed.clone()
        };
        assert!(nothing_sent(&claimed, &refused));
        // Released: the record stays (the next claim may come from another replica).
        let released = PasscodeResetStatus {
            claimed_at: None,
            reason: Some(Reason::Retrying),
            ..claimed.clone()
        };
        assert!(!nothing_sent(&claimed, &released));
        let unknown = PasscodeResetStatus {
            phase: Some(Phase::Failed),
            reason: Some(Reason::OutcomeUnknown),
            ..claimed.clone()
        };
        assert!(!nothing_sent(&claimed, &unknown));
        let issued = PasscodeResetStatus {
            operation: Some("enterprises/E/devices/D/operations/1".into()),
            reason: Some(Reason::AwaitingDevice),
            ..claimed.clone()
        };
        let done = PasscodeResetStatus {
            phase: Some(Phase::Failed),
            reason: Some(Reason::DeviceRejected),
            ..issued.clone()
        };
        assert!(!nothing_sent(&issued, &done), "a command was sent");
        // Only on the write that made it final, not on later notes.
        assert!(!nothing_sent(&refused, &refused));
        let before = PasscodeResetStatus::default();
        assert!(!nothing_sent(&before, &before));
    }

    #[test]
    fn verdicts() {
        let first = reset("u-1", spec());
        let cm = record_for(&first, "op", "2026-11-23T10:00:00Z");
        // The same object, after a crash or a retry.
        assert_eq!(verdict(&cm, &first), Verdict::Ours);
        // Deleted and re-created from git: same name and spec, new uid.
        assert_eq!(
            verdict(&cm, &reset("u-2", spec())),
            Verdict::Earlier {
                uid: "u-1".into(),
                claimed_at: "2026-11-23T10:00:00Z".into()
            }
        );
        // The name reused for a different reset.
        let mut other = spec();
        other["lockNow"] = json!(false);
        assert_eq!(verdict(&cm, &reset("u-3", other)), Verdict::Replace);
        // A record whose spec cannot be read is taken for a twin: when in doubt, not twice.
        let mut broken = cm.clone();
        broken
            .data
            .as_mut()
            .unwrap()
            .insert("spec".into(), "{".into());
        assert!(matches!(
            verdict(&broken, &reset("u-2", spec())),
            Verdict::Earlier { .. }
        ));
        // Its own record, written before an edit of the spec: brought up to date.
        let mut edited = spec();
        edited["lockNow"] = json!(false);
        assert_eq!(verdict(&cm, &reset("u-1", edited)), Verdict::OursStale);
        // Somebody else's ConfigMap is left alone.
        let mut foreign = cm.clone();
        foreign.metadata.labels = None;
        assert_eq!(verdict(&foreign, &first), Verdict::Foreign);
    }
}
