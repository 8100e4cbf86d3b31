//! What the admission webhook answers for one request on a PasscodeReset. Pure: the server
//! (`server.rs`) decodes the AdmissionReview, asks the API server the one question this cannot
//! answer (may this user approve?, a SubjectAccessReview) and sends the answer back.
//!
//! Mutating (`/mutate`, CREATE and UPDATE of `passcoderesets`): on CREATE it records the
//! requester; on an edit that sets the decision annotation it checks the decider and records the
//! decision in its place. Validating (`/validate`, also `passcoderesets/status`): the records are
//! as the mutating step left them, never edited afterwards, and the status fields that repeat
//! them are written by the operator only.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

use super::seal::{
    self, APPROVAL_ANNOTATION, Approval, DECISION_ANNOTATION, REQUESTER_ANNOTATION, Requester,
    SealKey,
};
use crate::api::{Decision, PasscodeResetSpec, UserInfo};

/// The verb a person needs on `passcoderesets` to approve or deny.
pub const APPROVE_VERB: &str = "approve";

/// One admission request, as far as the answer depends on it.
pub struct Review<'a> {
    pub operation: Operation,
    /// The request's namespace (the object may not carry it yet on CREATE).
    pub namespace: &'a str,
    /// `status` for the status subresource.
    pub subresource: Option<&'a str>,
    pub user: &'a UserInfo,
    pub object: &'a Value,
    pub old: Option<&'a Value>,
    pub now: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Other,
}

/// The answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Allow,
    Deny(String),
    /// Allow with these JSON Patch operations.
    Patch(Vec<Value>),
    /// Ask the API server whether the user may `approve` this reset, then review again with the
    /// answer.
    CheckApprove,
}

fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["annotations"][key].as_str()
}

fn field<'a>(object: &'a Value, key: &str) -> &'a str {
    object["metadata"][key].as_str().unwrap_or_default()
}

fn spec(object: &Value) -> Option<PasscodeResetSpec> {
    serde_json::from_value(object["spec"].clone()).ok()
}

/// A JSON Pointer to an annotation (`/` in the key is escaped as `~1`).
fn annotation_path(key: &str) -> String {
    format!(
        "/metadata/annotations/{}",
        key.replace('~', "~0").replace('/', "~1")
    )
}

/// Sets an annotation, creating the map when the object has none.
fn set_annotation(object: &Value, key: &str, value: String) -> Value {
    if object["metadata"]["annotations"].is_object() {
        json!({"op": "add", "path": annotation_path(key), "value": value})
    } else {
        json!({"op": "add", "path": "/metadata/annotations", "value": {key: value}})
    }
}

/// Whether two identities are the same person.
pub fn same_person(a: &UserInfo, b: &UserInfo) -> bool {
    a.username == b.username || (!a.uid.is_empty() && a.uid == b.uid)
}

/// The mutating answer. `may_approve` is the access review's answer, once asked.
pub fn mutate(key: &SealKey, r: &Review, may_approve: Option<bool>) -> Answer {
    if r.subresource.is_some() {
        return Answer::Allow;
    }
    let (namespace, name) = (r.namespace, field(r.object, "name"));
    match r.operation {
        Operation::Create => {
            for k in [
                REQUESTER_ANNOTATION,
                APPROVAL_ANNOTATION,
                DECISION_ANNOTATION,
            ] {
                if annotation(r.object, k).is_some() {
                    return Answer::Deny(format!(
                        "metadata.annotations[{k}] is recorded by passcode-operator's admission webhook from who the API server says you are; it cannot be set by the creator. Remove it and create the PasscodeReset again."
                    ));
                }
            }
            if name.is_empty() {
                return Answer::Deny(
                    "a PasscodeReset needs a name (metadata.generateName is not supported)".into(),
                );
            }
            let stamp = seal::stamp_requester(key, namespace, name, r.user);
            Answer::Patch(vec![set_annotation(r.object, REQUESTER_ANNOTATION, stamp)])
        }
        Operation::Update => decide(key, r, may_approve),
        Operation::Other => Answer::Allow,
    }
}

/// An edit that sets the decision annotation: check the decider, then record the decision.
fn decide(key: &SealKey, r: &Review, may_approve: Option<bool>) -> Answer {
    let Some(value) = annotation(r.object, DECISION_ANNOTATION) else {
        return Answer::Allow;
    };
    let (namespace, name) = (r.namespace, field(r.object, "name"));
    let uid = field(r.object, "uid");
    let who = &r.user.username;
    let decision = match value {
        "approve" => Decision::Approved,
        "deny" => Decision::Denied,
        other => {
            return Answer::Deny(format!(
                "metadata.annotations[{DECISION_ANNOTATION}] must be approve or deny, not {other:?}"
            ));
        }
    };
    let old = r.old.unwrap_or(r.object);
    let requester = seal::requester(
        key,
        namespace,
        name,
        annotation(old, REQUESTER_ANNOTATION)
            .map(str::to_owned)
            .as_ref(),
    );
    let Requester::Verified(requester) = requester else {
        return Answer::Deny(format!(
            "PasscodeReset {namespace}/{name} has no requester recorded by the admission webhook, so nobody can tell a second person from the first; it cannot be approved or denied. Create it again while the webhook runs."
        ));
    };
    if decision == Decision::Approved && same_person(&requester, r.user) {
        return Answer::Deny(format!(
            "{who} created PasscodeReset {namespace}/{name} and cannot approve it: a person other than the requester must approve"
        ));
    }
    let Some(spec) = spec(r.object) else {
        return Answer::Deny(
            "the PasscodeReset's spec cannot be read, so it cannot be approved".into(),
        );
    };
    let digest = seal::spec_digest(&spec);
    let recorded = seal::approval_of(
        key,
        (namespace, name, uid),
        &digest,
        annotation(old, APPROVAL_ANNOTATION)
            .map(str::to_owned)
            .as_ref(),
    );
    // A denial is final whatever the spec; an approval only for the spec it was given on.
    let final_ = match recorded {
        Approval::Decided(d) => Some(d),
        Approval::Stale(d) if d.decision == Decision::Denied => Some(d),
        _ => None,
    };
    if let Some(d) = final_ {
        return Answer::Deny(format!(
            "PasscodeReset {namespace}/{name} was already {} by {} at {}; a decision is final",
            decision_word(d.decision),
            d.approver.username,
            d.decided_at.0
        ));
    }
    match may_approve {
        None => Answer::CheckApprove,
        Some(false) => Answer::Deny(format!(
            "{who} may not approve or deny PasscodeResets in namespace {namespace}: that needs the verb {APPROVE_VERB} on passcoderesets.amapi.passcode-operator.io (a Role or ClusterRole rule with verbs: [{APPROVE_VERB}])"
        )),
        Some(true) => {
            // To the second, as the API server would store a time.
            let at = Time(r.now.round(jiff::Unit::Second).unwrap_or(r.now));
            let stamp =
                seal::stamp_approval(key, (namespace, name, uid), &digest, decision, r.user, at);
            Answer::Patch(vec![
                json!({"op": "remove", "path": annotation_path(DECISION_ANNOTATION)}),
                set_annotation(r.object, APPROVAL_ANNOTATION, stamp),
            ])
        }
    }
}

fn decision_word(d: Decision) -> &'static str {
    match d {
        Decision::Approved => "approved",
        Decision::Denied => "denied",
    }
}

/// How long after it was recorded a new decision may reach the validating step (the two steps
/// belong to one request, so this only bounds clock differences between replicas).
const DECISION_FRESH_SECS: i64 = 300;

/// The validating answer. `operator` is the operator's own username, the one identity that may
/// write the status fields that repeat the records.
pub fn validate(key: &SealKey, r: &Review, operator: &str) -> Result<(), String> {
    let (namespace, name) = (r.namespace, field(r.object, "name"));
    match (r.operation, r.subresource, r.old) {
        (Operation::Create, None, _) => {
            let recorded = seal::requester(
                key,
                namespace,
                name,
                annotation(r.object, REQUESTER_ANNOTATION)
                    .map(str::to_owned)
                    .as_ref(),
            );
            match recorded {
                Requester::Verified(u) if u == *r.user => {}
                _ => {
                    return Err(format!(
                        "metadata.annotations[{REQUESTER_ANNOTATION}] must be the one passcode-operator's admission webhook records from who created the PasscodeReset; it was changed after the webhook recorded it"
                    ));
                }
            }
            for k in [APPROVAL_ANNOTATION, DECISION_ANNOTATION] {
                if annotation(r.object, k).is_some() {
                    return Err(format!(
                        "metadata.annotations[{k}] cannot be set when a PasscodeReset is created"
                    ));
                }
            }
            Ok(())
        }
        (Operation::Update, None, Some(old)) => {
            // An approver approves the spec they saw: it must not change under them.
            if r.object["spec"] != old["spec"] {
                return Err(
                    "the spec of a PasscodeReset cannot be changed; create a new one".into(),
                );
            }
            if annotation(r.object, REQUESTER_ANNOTATION) != annotation(old, REQUESTER_ANNOTATION) {
                return Err(format!(
                    "metadata.annotations[{REQUESTER_ANNOTATION}] records who created this PasscodeReset; nobody can change or remove it"
                ));
            }
            if annotation(r.object, DECISION_ANNOTATION).is_some() {
                return Err(format!(
                    "metadata.annotations[{DECISION_ANNOTATION}] was not recorded by the admission webhook; set it on its own (kubectl annotate) to approve or deny"
                ));
            }
            let new = annotation(r.object, APPROVAL_ANNOTATION);
            if new == annotation(old, APPROVAL_ANNOTATION) {
                return Ok(());
            }
            let refused = || {
                Err(format!(
                    "metadata.annotations[{APPROVAL_ANNOTATION}] records a decision and cannot be written or removed directly; set metadata.annotations[{DECISION_ANNOTATION}] to approve or deny instead"
                ))
            };
            let Some(spec) = spec(r.object) else {
                return refused();
            };
            let recorded = seal::approval_of(
                key,
                (namespace, name, field(r.object, "uid")),
                &seal::spec_digest(&spec),
                new.map(str::to_owned).as_ref(),
            );
            // A new decision, recorded in this very request by the mutating step.
            match recorded {
                Approval::Decided(d)
                    if d.approver == *r.user
                        && (r.now.as_second() - d.decided_at.0.as_second()).abs()
                            <= DECISION_FRESH_SECS =>
                {
                    Ok(())
                }
                _ => refused(),
            }
        }
        (Operation::Update, Some("status"), Some(old)) => {
            // The status is the operator's record of what it sent: rewritten by anyone else,
            // it could read as a run not yet made and be made twice.
            if r.user.username == operator || r.object["status"] == old["status"] {
                return Ok(());
            }
            Err(format!(
                "the status of a PasscodeReset is written by passcode-operator only; {} may not change it",
                r.user.username
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ApprovalRecord, PasscodeReset};

    const OPERATOR: &str = "system:serviceaccount:passcode-operator-system:passcode-operator";

    fn user(name: &str) -> UserInfo {
        UserInfo {
            username: name.into(),
            uid: format!("{name}-uid"),
            groups: vec!["helpdesk".into()],
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_700_000_000).unwrap()
    }

    fn object(annotations: Value) -> Value {
        json!({
            "apiVersion": "amapi.passcode-operator.io/v1alpha1",
            "kind": "PasscodeReset",
            "metadata": {"name": "r", "namespace": "ns", "uid": "u1", "annotations": annotations},
            "spec": {"device": "enterprises/E/devices/d"},
        })
    }

    fn apply(object: &Value, ops: &[Value]) -> Value {
        let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops.to_vec())).unwrap();
        let mut doc = object.clone();
        json_patch::patch(&mut doc, &patch).unwrap();
        doc
    }

    fn review<'a>(
        operation: Operation,
        user: &'a UserInfo,
        object: &'a Value,
        old: Option<&'a Value>,
    ) -> Review<'a> {
        Review {
            operation,
            namespace: "ns",
            subresource: None,
            user,
            object,
            old,
            now: now(),
        }
    }

    /// A reset created by alice through both steps.
    fn created(key: &SealKey) -> Value {
        let alice = user("alice");
        let mut fresh = object(json!({"x": "y"}));
        fresh["metadata"].as_object_mut().unwrap().remove("uid");
        let Answer::Patch(ops) =
            mutate(key, &review(Operation::Create, &alice, &fresh, None), None)
        else {
            panic!("a create is stamped")
        };
        let mut stamped = apply(&fresh, &ops);
        assert_eq!(
            validate(
                key,
                &review(Operation::Create, &alice, &stamped, None),
                OPERATOR
            ),
            Ok(())
        );
        stamped["metadata"]["uid"] = json!("u1");
        stamped
    }

    /// `who` sets the decision annotation; returns the answer of each step and the result.
    fn decide_as(
        key: &SealKey,
        old: &Value,
        who: &UserInfo,
        value: &str,
        allowed: bool,
    ) -> Result<Value, String> {
        let mut edit = old.clone();
        edit["metadata"]["annotations"][DECISION_ANNOTATION] = json!(value);
        let r = review(Operation::Update, who, &edit, Some(old));
        let answer = match mutate(key, &r, None) {
            Answer::CheckApprove => mutate(key, &r, Some(allowed)),
            other => other,
        };
        match answer {
            Answer::Patch(ops) => {
                let stored = apply(&edit, &ops);
                validate(
                    key,
                    &review(Operation::Update, who, &stored, Some(old)),
                    OPERATOR,
                )?;
                Ok(stored)
            }
            Answer::Deny(m) => Err(m),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn as_reset(v: &Value) -> PasscodeReset {
        serde_json::from_value(v.clone()).unwrap()
    }

    #[test]
    fn the_requester_is_recorded_on_create_and_read_back() {
        let key = SealKey::new(b"k");
        let stored = created(&key);
        assert_eq!(
            seal::read(&key, &as_reset(&stored)).requester,
            Requester::Verified(user("alice"))
        );
        // Without annotations at all, the map is created.
        let bare = json!({"metadata": {"name": "r", "namespace": "ns"}, "spec": {}});
        let Answer::Patch(ops) = mutate(
            &key,
            &review(Operation::Create, &user("a"), &bare, None),
            None,
        ) else {
            panic!()
        };
        assert!(apply(&bare, &ops)["metadata"]["annotations"][REQUESTER_ANNOTATION].is_string());
    }

    #[test]
    fn a_creator_cannot_set_the_records() {
        let key = SealKey::new(b"k");
        let mallory = user("mallory");
        for k in [
            REQUESTER_ANNOTATION,
            APPROVAL_ANNOTATION,
            DECISION_ANNOTATION,
        ] {
            let forged = object(json!({k: "{\"username\":\"alice\"}"}));
            match mutate(
                &key,
                &review(Operation::Create, &mallory, &forged, None),
                None,
            ) {
                Answer::Deny(m) => assert!(
                    m.contains(k) && m.contains("cannot be set by the creator"),
                    "{m}"
                ),
                other => panic!("{other:?}"),
            }
        }
        // A record for someone else (as another mutating webhook could leave it) is refused too.
        let stamp = seal::stamp_requester(&key, "ns", "r", &user("alice"));
        let other = object(json!({REQUESTER_ANNOTATION: stamp}));
        assert!(
            validate(
                &key,
                &review(Operation::Create, &mallory, &other, None),
                OPERATOR
            )
            .is_err()
        );
    }

    #[test]
    fn nobody_changes_or_removes_the_requester() {
        let key = SealKey::new(b"k");
        let stored = created(&key);
        for admin in [user("admin"), user(OPERATOR)] {
            let mut removed = stored.clone();
            removed["metadata"]["annotations"]
                .as_object_mut()
                .unwrap()
                .remove(REQUESTER_ANNOTATION);
            let err = validate(
                &key,
                &review(Operation::Update, &admin, &removed, Some(&stored)),
                OPERATOR,
            )
            .unwrap_err();
            assert!(err.contains("nobody can change or remove it"), "{err}");
            let mut edited = stored.clone();
            edited["metadata"]["annotations"][REQUESTER_ANNOTATION] =
                json!(seal::stamp_requester(&key, "ns", "r", &user("mallory")));
            assert!(
                validate(
                    &key,
                    &review(Operation::Update, &admin, &edited, Some(&stored)),
                    OPERATOR
                )
                .is_err()
            );
        }
        // Other edits pass (labels, finalizers).
        let mut labelled = stored.clone();
        labelled["metadata"]["labels"] = json!({"a": "b"});
        assert_eq!(
            validate(
                &key,
                &review(Operation::Update, &user("x"), &labelled, Some(&stored)),
                OPERATOR
            ),
            Ok(())
        );
    }

    #[test]
    fn status_records_are_the_operators_alone() {
        let key = SealKey::new(b"k");
        let old = json!({"metadata": {}, "status": {"phase": "Pending"}});
        let forged = json!({"metadata": {}, "status": {"phase": "Pending", "requester": {"username": "alice"}}});
        for (who, ok) in [(user("admin"), false), (user(OPERATOR), true)] {
            let r = Review {
                subresource: Some("status"),
                ..review(Operation::Update, &who, &forged, Some(&old))
            };
            assert_eq!(validate(&key, &r, OPERATOR).is_ok(), ok);
        }
        // Every other status field too (an emptied status would read as nothing sent yet),
        // while a write that changes nothing passes.
        let admin = user("admin");
        for (status, ok) in [
            (json!({"phase": "Failed"}), false),
            (json!({}), false),
            (json!({"phase": "Pending"}), true),
        ] {
            let other = json!({"metadata": {}, "status": status});
            let r = Review {
                subresource: Some("status"),
                ..review(Operation::Update, &admin, &other, Some(&old))
            };
            let answer = validate(&key, &r, OPERATOR);
            assert_eq!(answer.is_ok(), ok, "{answer:?}");
            if let Err(m) = answer {
                assert!(m.contains("written by passcode-operator only"), "{m}");
            }
        }
    }

    #[test]
    fn a_second_person_with_the_right_approves() {
        let key = SealKey::new(b"k");
        let stored = created(&key);
        let approved = decide_as(&key, &stored, &user("bob"), "approve", true).unwrap();
        assert!(approved["metadata"]["annotations"][DECISION_ANNOTATION].is_null());
        let reset = as_reset(&approved);
        assert_eq!(
            seal::read(&key, &reset).approval,
            Approval::Decided(ApprovalRecord {
                decision: Decision::Approved,
                approver: user("bob"),
                decided_at: Time(now()),
            })
        );
        // Final: nobody decides again, and nobody edits the record.
        let again = decide_as(&key, &approved, &user("carol"), "deny", true).unwrap_err();
        assert!(again.contains("already approved by bob"), "{again}");
        let mut removed = approved.clone();
        removed["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove(APPROVAL_ANNOTATION);
        assert!(
            validate(
                &key,
                &review(Operation::Update, &user("alice"), &removed, Some(&approved)),
                OPERATOR
            )
            .is_err()
        );
        // Copying bob's record onto another object does not verify.
        let mut copy = stored.clone();
        copy["metadata"]["uid"] = json!("u2");
        copy["metadata"]["annotations"][APPROVAL_ANNOTATION] =
            approved["metadata"]["annotations"][APPROVAL_ANNOTATION].clone();
        let mut old_copy = stored.clone();
        old_copy["metadata"]["uid"] = json!("u2");
        assert!(
            validate(
                &key,
                &review(Operation::Update, &user("bob"), &copy, Some(&old_copy)),
                OPERATOR
            )
            .is_err()
        );
    }

    #[test]
    fn the_requester_cannot_approve_and_the_unauthorized_cannot_decide() {
        let key = SealKey::new(b"k");
        let stored = created(&key);
        let own = decide_as(&key, &stored, &user("alice"), "approve", true).unwrap_err();
        assert!(own.contains("cannot approve it"), "{own}");
        // Same uid under another name is the same person.
        let alias = UserInfo {
            username: "alice2".into(),
            uid: "alice-uid".into(),
            groups: vec![],
        };
        assert!(decide_as(&key, &stored, &alias, "approve", true).is_err());
        let carol = decide_as(&key, &stored, &user("carol"), "approve", false).unwrap_err();
        assert!(carol.contains("needs the verb approve"), "{carol}");
        let bad = decide_as(&key, &stored, &user("bob"), "yes", true).unwrap_err();
        assert!(bad.contains("must be approve or deny"), "{bad}");
        // A denial by a second person is recorded.
        let denied = decide_as(&key, &stored, &user("bob"), "deny", true).unwrap();
        assert!(matches!(
            seal::read(&key, &as_reset(&denied)).approval,
            Approval::Decided(ApprovalRecord {
                decision: Decision::Denied,
                ..
            })
        ));
    }

    #[test]
    fn a_reset_without_a_recorded_requester_cannot_be_approved() {
        let key = SealKey::new(b"k");
        let old = object(json!({}));
        let err = decide_as(&key, &old, &user("bob"), "approve", true).unwrap_err();
        assert!(err.contains("no requester recorded"), "{err}");
    }

    /// Review finding: a denial is final. An edit of the spec (possible without CEL) makes the
    /// denial stale, and then a second approver's approval replaces it: the denial disappears
    /// from the record and the reset runs. The operator may not have acted on the denial yet
    /// (a queued reconcile, a leader change).
    #[test]
    fn review_a_denial_is_not_overturned_by_editing_the_spec() {
        let key = SealKey::new(b"k");
        let denied = decide_as(&key, &created(&key), &user("bob"), "deny", true).unwrap();
        let mut edited = denied.clone();
        edited["spec"]["lockNow"] = json!(true);
        let overturned = decide_as(&key, &edited, &user("carol"), "approve", true);
        assert!(
            overturned.is_err(),
            "bob's denial was replaced by carol's approval after a spec edit"
        );
    }

    #[test]
    fn nobody_changes_the_spec() {
        let key = SealKey::new(b"k");
        let stored = created(&key);
        for who in [user("alice"), user("admin"), user(OPERATOR)] {
            let mut edited = stored.clone();
            edited["spec"]["device"] = json!("enterprises/E/devices/other");
            let err = validate(
                &key,
                &review(Operation::Update, &who, &edited, Some(&stored)),
                OPERATOR,
            )
            .unwrap_err();
            assert!(
                err.contains("spec of a PasscodeReset cannot be changed"),
                "{err}"
            );
        }
    }

    #[test]
    fn an_approval_of_an_earlier_spec_can_be_replaced() {
        let key = SealKey::new(b"k");
        let approved = decide_as(&key, &created(&key), &user("bob"), "approve", true).unwrap();
        let mut edited = approved.clone();
        edited["spec"]["lockNow"] = json!(true);
        assert!(matches!(
            seal::read(&key, &as_reset(&edited)).approval,
            Approval::Stale(_)
        ));
        assert!(decide_as(&key, &edited, &user("carol"), "approve", true).is_ok());
    }
}
