//! The tamper-proof records the admission webhook writes into a reset: who created it (on
//! CREATE, from the API server's `userInfo`) and who decided on it (on the approval edit, after
//! an access review). Each is an annotation holding JSON and a seal: an HMAC-SHA256 over the
//! record and the object it belongs to, under a key only the operator holds (in its webhook
//! Secret). The reconcile believes only sealed records, so a value someone wrote while the webhook
//! was not in the way (not yet registered, or removed) is never taken for the truth. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use ring::hmac;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::{ApprovalRecord, Decision, PasscodeReset, PasscodeResetSpec, UserInfo};

/// Who created the reset: written by the webhook on CREATE, never changed.
pub const REQUESTER_ANNOTATION: &str = "amapi.passcode-operator.io/requester";
/// Who approved or denied the reset: written by the webhook on the decision edit.
pub const APPROVAL_ANNOTATION: &str = "amapi.passcode-operator.io/approval";
/// What a person sets to decide (`approve` or `deny`); the webhook replaces it with the sealed
/// [`APPROVAL_ANNOTATION`].
pub const DECISION_ANNOTATION: &str = "amapi.passcode-operator.io/decision";

/// The HMAC key. Never printed.
#[derive(Clone)]
pub struct SealKey(hmac::Key);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    pub fn new(bytes: &[u8]) -> SealKey {
        SealKey(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    fn seal(&self, message: &serde_json::Value) -> String {
        let tag = hmac::sign(&self.0, message.to_string().as_bytes());
        hex(tag.as_ref())
    }

    fn verify(&self, message: &serde_json::Value, seal: &str) -> bool {
        let Some(tag) = unhex(seal) else {
            return false;
        };
        hmac::verify(&self.0, message.to_string().as_bytes(), &tag).is_ok()
    }
}

/// The digest an approval is bound to: the spec as the operator reads it (defaults applied the
/// same way by the webhook and the reconcile).
pub fn spec_digest(spec: &PasscodeResetSpec) -> String {
    let bytes = serde_json::to_vec(spec).unwrap_or_default();
    hex(&Sha256::digest(&bytes))
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
struct RequesterStamp {
    #[serde(flatten)]
    user: UserInfo,
    seal: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
struct ApprovalStamp {
    decision: Decision,
    #[serde(flatten)]
    approver: UserInfo,
    decided_at: Time,
    spec_digest: String,
    seal: String,
}

/// A requester record is bound to the namespace and name (the uid does not exist yet when the
/// webhook sees a CREATE).
fn requester_message(namespace: &str, name: &str, user: &UserInfo) -> serde_json::Value {
    serde_json::json!([
        "requester",
        namespace,
        name,
        user.username,
        user.uid,
        user.groups
    ])
}

/// An approval is bound to the object (uid) and the exact spec it approved.
fn approval_message(
    namespace: &str,
    name: &str,
    uid: &str,
    digest: &str,
    decision: Decision,
    approver: &UserInfo,
    at: &Time,
) -> serde_json::Value {
    serde_json::json!([
        "approval",
        namespace,
        name,
        uid,
        digest,
        decision,
        approver.username,
        approver.uid,
        approver.groups,
        at
    ])
}

/// The requester annotation's value for a reset being created.
pub fn stamp_requester(key: &SealKey, namespace: &str, name: &str, user: &UserInfo) -> String {
    let seal = key.seal(&requester_message(namespace, name, user));
    serde_json::to_string(&RequesterStamp {
        user: user.clone(),
        seal,
    })
    .unwrap_or_default()
}

/// The approval annotation's value for a decision on the reset `(namespace, name, uid)` with
/// spec digest `digest`.
pub fn stamp_approval(
    key: &SealKey,
    (namespace, name, uid): (&str, &str, &str),
    digest: &str,
    decision: Decision,
    approver: &UserInfo,
    at: Time,
) -> String {
    let seal = key.seal(&approval_message(
        namespace, name, uid, digest, decision, approver, &at,
    ));
    serde_json::to_string(&ApprovalStamp {
        decision,
        approver: approver.clone(),
        decided_at: at,
        spec_digest: digest.to_owned(),
        seal,
    })
    .unwrap_or_default()
}

/// Who created a reset, as far as the operator can tell.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Requester {
    /// The webhook is not in use here: no requester can be known.
    #[default]
    NotRecorded,
    /// No requester annotation: created before the webhook was registered, or while it was
    /// removed.
    Missing,
    /// An annotation the operator did not seal (forged, edited, or copied from another reset).
    Unsealed,
    Verified(UserInfo),
}

/// The recorded decision on a reset, as far as the operator can tell.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Approval {
    #[default]
    None,
    /// A sealed decision on the current spec.
    Decided(ApprovalRecord),
    /// A sealed decision on an earlier spec (edited since): it does not count.
    Stale(ApprovalRecord),
    /// An annotation the operator did not seal.
    Unsealed,
}

/// What the admission records of a reset say.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Admission {
    pub requester: Requester,
    pub approval: Approval,
}

fn annotation<'a>(reset: &'a PasscodeReset, key: &str) -> Option<&'a String> {
    reset.metadata.annotations.as_ref().and_then(|a| a.get(key))
}

/// Reads and checks the seals of a reset's records.
pub fn read(key: &SealKey, reset: &PasscodeReset) -> Admission {
    let namespace = reset.metadata.namespace.as_deref().unwrap_or_default();
    let name = reset.metadata.name.as_deref().unwrap_or_default();
    Admission {
        requester: requester(
            key,
            namespace,
            name,
            annotation(reset, REQUESTER_ANNOTATION),
        ),
        approval: approval(key, reset),
    }
}

/// Checks a requester annotation value.
pub fn requester(key: &SealKey, namespace: &str, name: &str, value: Option<&String>) -> Requester {
    let Some(value) = value else {
        return Requester::Missing;
    };
    match serde_json::from_str::<RequesterStamp>(value) {
        Ok(s) if key.verify(&requester_message(namespace, name, &s.user), &s.seal) => {
            Requester::Verified(s.user)
        }
        _ => Requester::Unsealed,
    }
}

fn approval(key: &SealKey, reset: &PasscodeReset) -> Approval {
    let m = &reset.metadata;
    approval_of(
        key,
        (
            m.namespace.as_deref().unwrap_or_default(),
            m.name.as_deref().unwrap_or_default(),
            m.uid.as_deref().unwrap_or_default(),
        ),
        &spec_digest(&reset.spec),
        annotation(reset, APPROVAL_ANNOTATION),
    )
}

/// Checks an approval annotation value against the object `(namespace, name, uid)` whose spec
/// digest is now `digest`.
pub fn approval_of(
    key: &SealKey,
    (namespace, name, uid): (&str, &str, &str),
    digest: &str,
    value: Option<&String>,
) -> Approval {
    let Some(value) = value else {
        return Approval::None;
    };
    let Ok(s) = serde_json::from_str::<ApprovalStamp>(value) else {
        return Approval::Unsealed;
    };
    let message = approval_message(
        namespace,
        name,
        uid,
        &s.spec_digest,
        s.decision,
        &s.approver,
        &s.decided_at,
    );
    if !key.verify(&message, &s.seal) {
        return Approval::Unsealed;
    }
    let record = ApprovalRecord {
        decision: s.decision,
        approver: s.approver,
        decided_at: s.decided_at,
    };
    if s.spec_digest == digest {
        Approval::Decided(record)
    } else {
        Approval::Stale(record)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn user(name: &str) -> UserInfo {
        UserInfo {
            username: name.into(),
            uid: format!("{name}-uid"),
            groups: vec!["helpdesk".into()],
        }
    }

    fn reset(annotations: &[(&str, String)]) -> PasscodeReset {
        let mut r = PasscodeReset::new(
            "r",
            serde_json::from_value(serde_json::json!({"device": "enterprises/E/devices/d"}))
                .unwrap(),
        );
        r.metadata.namespace = Some("ns".into());
        r.metadata.uid = Some("uid-1".into());
        r.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        );
        r
    }

    fn at() -> Time {
        Time(Timestamp::from_second(1_700_000_000).unwrap())
    }

    #[test]
    fn a_sealed_requester_reads_back() {
        let key = SealKey::new(b"k");
        let stamp = stamp_requester(&key, "ns", "r", &user("alice"));
        let r = reset(&[(REQUESTER_ANNOTATION, stamp)]);
        assert_eq!(read(&key, &r).requester, Requester::Verified(user("alice")));
    }

    #[test]
    fn forged_edited_or_copied_requesters_are_not_believed() {
        let key = SealKey::new(b"k");
        // Forged: the right shape, sealed with another key.
        let forged = stamp_requester(&SealKey::new(b"guess"), "ns", "r", &user("alice"));
        assert_eq!(
            read(&key, &reset(&[(REQUESTER_ANNOTATION, forged)])).requester,
            Requester::Unsealed
        );
        // Edited: a sealed record with the name changed.
        let sealed = stamp_requester(&key, "ns", "r", &user("mallory"));
        let edited = sealed.replace("mallory", "alice");
        assert_eq!(
            read(&key, &reset(&[(REQUESTER_ANNOTATION, edited)])).requester,
            Requester::Unsealed
        );
        // Copied from a reset of another name.
        let other = stamp_requester(&key, "ns", "other", &user("alice"));
        assert_eq!(
            read(&key, &reset(&[(REQUESTER_ANNOTATION, other)])).requester,
            Requester::Unsealed
        );
        assert_eq!(read(&key, &reset(&[])).requester, Requester::Missing);
        assert_eq!(
            read(&key, &reset(&[(REQUESTER_ANNOTATION, "{}".into())])).requester,
            Requester::Unsealed
        );
    }

    #[test]
    fn an_approval_is_bound_to_the_object_and_its_spec() {
        let key = SealKey::new(b"k");
        let r = reset(&[]);
        let digest = spec_digest(&r.spec);
        let stamp = stamp_approval(
            &key,
            ("ns", "r", "uid-1"),
            &digest,
            Decision::Approved,
            &user("bob"),
            at(),
        );
        let approved = reset(&[(APPROVAL_ANNOTATION, stamp.clone())]);
        let record = ApprovalRecord {
            decision: Decision::Approved,
            approver: user("bob"),
            decided_at: at(),
        };
        assert_eq!(
            read(&key, &approved).approval,
            Approval::Decided(record.clone())
        );
        // The spec changed since: the approval does not carry over.
        let mut edited = approved.clone();
        edited.spec.lock_now = true;
        assert_eq!(read(&key, &edited).approval, Approval::Stale(record));
        // Copied onto another object (another uid).
        let mut twin = approved.clone();
        twin.metadata.uid = Some("uid-2".into());
        assert_eq!(read(&key, &twin).approval, Approval::Unsealed);
        // A decision flipped in the text.
        let flipped = reset(&[(APPROVAL_ANNOTATION, stamp.replace("Approved", "Denied"))]);
        assert_eq!(read(&key, &flipped).approval, Approval::Unsealed);
    }

    #[test]
    fn the_key_never_prints() {
        assert_eq!(format!("{:?}", SealKey::new(b"secret")), "SealKey(..)");
    }
}
