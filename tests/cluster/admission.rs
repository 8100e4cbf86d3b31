//! Who asked, who may, who approved, on the real API server: the operator's admission webhook
//! registered (over TLS, at a URL, for the scenario's namespace only) and called by the API
//! server for real identities from its token file (alice, carol and bob of help desk A, bob also
//! an approver, dave of help desk B). Commands are counted on the simulator: nothing is sent for
//! a refused or unapproved reset.
//!
//! The webhook configurations are one pair per cluster, so the scenarios that register them take
//! turns.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::ResourceExt;
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use passcode_operator::admission::seal::{DECISION_ANNOTATION, REQUESTER_ANNOTATION};
use passcode_operator::api::{Decision, PasscodeReset, Reason};
use passcode_operator::reconcile::reset::record;
use serde_json::json;

use testkit::cluster::{OPERATOR_NAMESPACE, WEBHOOK_LABEL, WEBHOOK_TURN as WEBHOOK, control_plane};
use testkit::process::free_port;
use testkit::scenario::{Env, OperatorOptions};

const POLICIES: &str = "      - id: team-a\n      - id: team-b\n";
const DEVICES: &str = "      - {id: p1, managementMode: PROFILE_OWNER, apiLevel: 34, policy: team-a, syncDelay: 100ms}\n      - {id: p2, managementMode: PROFILE_OWNER, apiLevel: 34, policy: team-a, syncDelay: 100ms}\n      - {id: p3, managementMode: PROFILE_OWNER, apiLevel: 34, policy: team-a, syncDelay: 100ms}\n      - {id: pb, managementMode: PROFILE_OWNER, apiLevel: 34, policy: team-b, syncDelay: 100ms}\n";

/// Help desk A may work with resets and Secrets in the scenario's namespace; approvers of A may
/// also approve. Help desk B (dave) gets nothing here.
async fn grant(env: &Env) {
    let rule = |resources: &[&str], verbs: &[&str], group: &str| PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(resources.iter().map(|s| s.to_string()).collect()),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let roles: Api<Role> = Api::namespaced(env.client.clone(), &env.ns);
    let bindings: Api<RoleBinding> = Api::namespaced(env.client.clone(), &env.ns);
    for (name, rules, group) in [
        (
            "helpdesk",
            vec![
                rule(
                    &["passcoderesets"],
                    &["create", "get", "list", "watch", "patch", "update"],
                    "amapi.passcode-operator.io",
                ),
                rule(&["secrets"], &["create", "get"], ""),
            ],
            "helpdesk-a",
        ),
        (
            "approver",
            vec![rule(
                &["passcoderesets"],
                &["approve"],
                "amapi.passcode-operator.io",
            )],
            "approvers-a",
        ),
    ] {
        let role = Role {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            rules: Some(rules),
        };
        roles.create(&PostParams::default(), &role).await.unwrap();
        let binding = RoleBinding {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "Role".into(),
                name: name.into(),
            },
            subjects: Some(vec![Subject {
                kind: "Group".into(),
                name: group.into(),
                api_group: Some("rbac.authorization.k8s.io".into()),
                ..Default::default()
            }]),
        };
        bindings
            .create(&PostParams::default(), &binding)
            .await
            .unwrap();
    }
}

/// The operator with its webhook at `https://127.0.0.1:PORT`, registered for this namespace.
fn webhook_options(env: &Env, unknown_requester: &str) -> OperatorOptions {
    let port = free_port();
    OperatorOptions {
        flags: vec![
            ("webhook-listen", port.to_string()),
            ("webhook-url", format!("https://{port}")),
            (
                "webhook-namespace-selector",
                format!("{WEBHOOK_LABEL}={}", env.ns),
            ),
            ("unknown-requester", unknown_requester.to_owned()),
        ],
        ..Default::default()
    }
}

async fn label_namespace(env: &Env) {
    let patch = json!({"metadata": {"labels": {WEBHOOK_LABEL: env.ns}}});
    Api::<Namespace>::all(env.client.clone())
        .patch(&env.ns, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

fn reset_object(env: &Env, name: &str, device: &str, extra: serde_json::Value) -> PasscodeReset {
    let mut spec = json!({"device": env.device(device)});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    serde_json::from_value(json!({
        "apiVersion": "amapi.passcode-operator.io/v1alpha1",
        "kind": "PasscodeReset",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap()
}

async fn as_person(env: &Env, who: &str) -> Api<PasscodeReset> {
    Api::namespaced(control_plane().person(who).await, &env.ns)
}

/// Waits until the API server calls the operator's webhook for this namespace (it picks up a
/// changed configuration within moments): a dry-run create comes back with the requester.
async fn wait_for_webhook(env: &Env) {
    let api = as_person(env, "alice").await;
    let probe = reset_object(env, "probe", "p1", json!({}));
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = api.create(&dry, &probe).await
            && r.annotations().contains_key(REQUESTER_ANNOTATION)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the webhook was not called within 30 s; operator log:\n{}",
            env.operator
                .as_ref()
                .map(|o| o.tail(30))
                .unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A scenario whose operator serves the webhook, ready and called.
async fn with_webhook(env: &mut Env, unknown_requester: &str) {
    grant(env).await;
    label_namespace(env).await;
    let options = webhook_options(env, unknown_requester);
    env.start_operator(options);
    env.operator
        .as_mut()
        .unwrap()
        .wait_ready(Duration::from_secs(30))
        .await;
    wait_for_webhook(env).await;
}

fn refused(result: Result<PasscodeReset, kube::Error>, says: &str) -> String {
    match result {
        Err(kube::Error::Api(s)) => {
            assert!(
                s.message.contains(says),
                "refused, but not saying {says:?}: {}",
                s.message
            );
            s.message
        }
        other => panic!("expected a refusal saying {says:?}, got {other:?}"),
    }
}

async fn annotate(
    api: &Api<PasscodeReset>,
    name: &str,
    key: &str,
    value: &str,
) -> Result<PasscodeReset, kube::Error> {
    let patch = json!({"metadata": {"annotations": {key: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
}

async fn event_notes(env: &Env, name: &str) -> Vec<String> {
    Api::<Event>::namespaced(env.client.clone(), &env.ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter_map(|e| e.note)
        .collect()
}

async fn record_runs(env: &Env, name: &str) -> Vec<record::Run> {
    let cm = Api::<ConfigMap>::namespaced(env.client.clone(), OPERATOR_NAMESPACE)
        .get(&record::record_name(&env.ns, name))
        .await
        .unwrap();
    record::runs(&cm).unwrap()
}

#[tokio::test]
async fn the_requester_is_recorded_and_nobody_can_forge_or_change_it() {
    let _turn = WEBHOOK.lock().await;
    let mut env = Env::without_operator("requester", POLICIES, DEVICES).await;
    with_webhook(&mut env, "refuse").await;
    let alice = as_person(&env, "alice").await;

    alice
        .create(
            &PostParams::default(),
            &reset_object(&env, "r1", "p1", json!({})),
        )
        .await
        .unwrap();
    let done = env.reason_is("r1", Reason::PasscodeCleared).await;
    let requester = done.status.unwrap().requester.expect("status.requester");
    assert_eq!(requester.username, "alice");
    assert_eq!(requester.uid, "alice-uid");
    assert!(
        requester.groups.contains(&"helpdesk-a".to_owned()),
        "{requester:?}"
    );
    assert_eq!(env.commands("p1").await.len(), 1);
    // In the Events, the record and the audit log line too.
    let notes = event_notes(&env, "r1").await;
    assert!(
        !notes.is_empty() && notes.iter().all(|n| n.contains("Requested by alice.")),
        "{notes:?}"
    );
    let runs = record_runs(&env, "r1").await;
    assert_eq!(
        runs[0].requester.as_ref().map(|u| u.username.as_str()),
        Some("alice")
    );
    let log = env.operator.as_ref().unwrap().logs();
    assert!(
        log.lines().any(|l| l.contains("\"audit\":true")
            && l.contains("\"requester\":\"alice\"")
            && l.contains("Succeeded")),
        "no audit line names alice"
    );

    // Forged on create: refused, whoever tries.
    let mut forged = reset_object(&env, "r2", "p2", json!({}));
    forged.metadata.annotations = Some(
        [(
            REQUESTER_ANNOTATION.to_owned(),
            r#"{"username":"bob","seal":"00"}"#.to_owned(),
        )]
        .into(),
    );
    refused(
        alice.create(&PostParams::default(), &forged).await,
        "cannot be set by the creator",
    );
    let admin: Api<PasscodeReset> = env.resets();
    refused(
        admin.create(&PostParams::default(), &forged).await,
        "cannot be set by the creator",
    );
    assert!(admin.get_opt("r2").await.unwrap().is_none());

    // Changed or removed afterwards: refused for help desk and admin alike.
    let carol = as_person(&env, "carol").await;
    refused(
        annotate(
            &carol,
            "r1",
            REQUESTER_ANNOTATION,
            r#"{"username":"carol"}"#,
        )
        .await,
        "nobody can change or remove it",
    );
    let remove = json!({"metadata": {"annotations": {REQUESTER_ANNOTATION: null}}});
    refused(
        admin
            .patch("r1", &PatchParams::default(), &Patch::Merge(&remove))
            .await,
        "nobody can change or remove it",
    );

    // The status (status.requester among it) is the operator's to write.
    let mut edited = admin.get("r1").await.unwrap();
    edited
        .status
        .as_mut()
        .unwrap()
        .requester
        .as_mut()
        .unwrap()
        .username = "mallory".into();
    let err = admin
        .replace_status("r1", &PostParams::default(), &edited)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the status of a PasscodeReset is written by passcode-operator only"),
        "{err}"
    );
    let after = admin.get("r1").await.unwrap();
    assert_eq!(after.status.unwrap().requester.unwrap().username, "alice");
    assert_eq!(env.commands("p2").await.len(), 0);
}

#[tokio::test]
async fn approval_by_a_second_person_with_the_right() {
    let _turn = WEBHOOK.lock().await;
    let mut env = Env::without_operator("approval", POLICIES, DEVICES).await;
    env.scope(
        &format!("{}-a", env.ns),
        json!({"namespaces": [env.ns], "enterprises": [env.enterprise], "approval": {"required": true, "expiresAfter": "1h"}}),
    )
    .await;
    with_webhook(&mut env, "run").await;
    let (alice, bob, carol, dave) = (
        as_person(&env, "alice").await,
        as_person(&env, "bob").await,
        as_person(&env, "carol").await,
        as_person(&env, "dave").await,
    );
    alice
        .create(
            &PostParams::default(),
            &reset_object(&env, "r1", "p1", json!({})),
        )
        .await
        .unwrap();
    let waiting = env
        .wait("r1", "AwaitingApproval", |r| {
            r.status.as_ref().and_then(|s| s.reason) == Some(Reason::AwaitingApproval)
        })
        .await;
    let message = waiting.status.unwrap().message.unwrap();
    assert!(
        message.contains("other than alice") && message.contains(DECISION_ANNOTATION),
        "{message}"
    );

    // The requester, someone without the right, someone of another team: refused.
    refused(
        annotate(&alice, "r1", DECISION_ANNOTATION, "approve").await,
        "alice created PasscodeReset",
    );
    refused(
        annotate(&carol, "r1", DECISION_ANNOTATION, "approve").await,
        "needs the verb approve",
    );
    match annotate(&dave, "r1", DECISION_ANNOTATION, "approve").await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403, "dave may not even patch here: {s:?}"),
        other => panic!("dave: {other:?}"),
    }
    // Writing the record directly is refused too.
    refused(
        annotate(
            &bob,
            "r1",
            passcode_operator::admission::seal::APPROVAL_ANNOTATION,
            r#"{"decision":"Approved"}"#,
        )
        .await,
        "cannot be written or removed directly",
    );
    assert_eq!(
        env.commands("p1").await.len(),
        0,
        "nothing sent while unapproved"
    );

    annotate(&bob, "r1", DECISION_ANNOTATION, "approve")
        .await
        .unwrap();
    let done = env.reason_is("r1", Reason::PasscodeCleared).await;
    let approval = done.status.unwrap().approval.expect("status.approval");
    assert_eq!(
        (approval.decision, approval.approver.username.as_str()),
        (Decision::Approved, "bob")
    );
    assert_eq!(env.commands("p1").await.len(), 1);
    assert_eq!(
        record_runs(&env, "r1").await[0]
            .approver
            .as_ref()
            .map(|u| u.username.as_str()),
        Some("bob")
    );
    assert!(
        event_notes(&env, "r1")
            .await
            .iter()
            .any(|n| n.contains("Decided by bob."))
    );
    // A decision is final.
    refused(
        annotate(&bob, "r1", DECISION_ANNOTATION, "deny").await,
        "a decision is final",
    );

    // Denied: ends the reset, nothing sent.
    alice
        .create(
            &PostParams::default(),
            &reset_object(&env, "r2", "p2", json!({})),
        )
        .await
        .unwrap();
    env.wait("r2", "AwaitingApproval", |r| {
        r.status.as_ref().and_then(|s| s.reason) == Some(Reason::AwaitingApproval)
    })
    .await;
    annotate(&bob, "r2", DECISION_ANNOTATION, "deny")
        .await
        .unwrap();
    let denied = env.reason_is("r2", Reason::Denied).await;
    assert!(
        denied
            .status
            .unwrap()
            .message
            .unwrap()
            .contains("Denied by bob")
    );
    assert_eq!(env.commands("p2").await.len(), 0);

    // The spec cannot change under an approver: the webhook refuses the edit (Kubernetes 1.20
    // does not enforce the CRD's CEL rule), and the approval stays this spec's.
    annotate(&alice, "r1", "note", "x").await.unwrap();
    let edit = json!({"spec": {"lockNow": true}});
    refused(
        alice
            .patch("r2", &PatchParams::default(), &Patch::Merge(&edit))
            .await,
        "the spec of a PasscodeReset cannot be changed; create a new one",
    );
    assert_eq!(env.commands("p2").await.len(), 0);
}

#[tokio::test]
async fn an_approval_not_given_in_time_expires() {
    let _turn = WEBHOOK.lock().await;
    let mut env = Env::without_operator("expiry", POLICIES, DEVICES).await;
    env.scope(
        &format!("{}-a", env.ns),
        json!({"namespaces": [env.ns], "enterprises": [env.enterprise], "approval": {"required": true, "expiresAfter": "4s"}}),
    )
    .await;
    with_webhook(&mut env, "run").await;
    as_person(&env, "alice")
        .await
        .create(
            &PostParams::default(),
            &reset_object(&env, "r", "p1", json!({})),
        )
        .await
        .unwrap();
    let r = env.reason_is("r", Reason::ApprovalExpired).await;
    assert!(r.status.unwrap().message.unwrap().contains("within 4 s"));
    assert_eq!(env.commands("p1").await.len(), 0);
    assert_eq!(env.counter("devices.issueCommand").await, 0);
}

#[tokio::test]
async fn without_the_webhook_nothing_is_created_and_unrecorded_resets_are_refused() {
    let _turn = WEBHOOK.lock().await;
    let mut env = Env::without_operator("webhook-down", POLICIES, DEVICES).await;
    // Created before the webhook covers the namespace: no requester recorded.
    env.reset("before", "p1", json!({})).await;
    with_webhook(&mut env, "refuse").await;
    let r = env.reason_is("before", Reason::RequesterUnknown).await;
    assert!(
        r.status
            .unwrap()
            .message
            .unwrap()
            .contains("no requester was recorded")
    );
    assert_eq!(
        env.counter("devices.get").await,
        0,
        "refused before any AMAPI call"
    );
    assert_eq!(env.commands("p1").await.len(), 0);

    // The operator (and its webhook) down: failurePolicy Fail refuses every create and edit.
    env.operator.as_mut().unwrap().kill();
    let alice = as_person(&env, "alice").await;
    let err = alice
        .create(
            &PostParams::default(),
            &reset_object(&env, "during", "p2", json!({})),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("stamp.passcoderesets.amapi.passcode-operator.io"),
        "{err}"
    );
    assert!(env.resets().get_opt("during").await.unwrap().is_none());

    // Back up: creating works again, with the requester recorded.
    with_webhook_again(&mut env).await;
    alice
        .create(
            &PostParams::default(),
            &reset_object(&env, "after", "p2", json!({})),
        )
        .await
        .unwrap();
    let done = env.reason_is("after", Reason::PasscodeCleared).await;
    assert_eq!(done.status.unwrap().requester.unwrap().username, "alice");
    assert_eq!(env.commands("p2").await.len(), 1);
}

async fn with_webhook_again(env: &mut Env) {
    let options = webhook_options(env, "refuse");
    env.start_operator(options);
    env.operator
        .as_mut()
        .unwrap()
        .wait_ready(Duration::from_secs(30))
        .await;
    wait_for_webhook(env).await;
}

#[tokio::test]
async fn scopes_allow_and_refuse_before_anything_is_sent() {
    let mut env = Env::without_operator("scopes", POLICIES, DEVICES).await;
    env.scope(
        &format!("{}-a", env.ns),
        json!({"namespaces": [env.ns], "enterprises": [env.enterprise], "amapiPolicies": [env.policy("team-a")]}),
    )
    .await;
    env.start_operator(OperatorOptions {
        // Another enterprise the operator may act on, which no scope allows here.
        flags: vec![("enterprises", "LC01other".to_owned())],
        ..Default::default()
    });
    env.reset("ok", "p1", json!({})).await;
    let ok = env.reason_is("ok", Reason::PasscodeCleared).await;
    assert_eq!(ok.status.unwrap().scope, Some(format!("{}-a", env.ns)));
    env.reset("other-team", "pb", json!({})).await;
    let r = env.reason_is("other-team", Reason::PolicyOutOfScope).await;
    assert!(
        r.status
            .unwrap()
            .message
            .unwrap()
            .contains(&env.policy("team-b"))
    );
    let before = env.counter("devices.get").await;
    let other = reset_object(
        &env,
        "other-enterprise",
        "x",
        json!({"device": "enterprises/LC01other/devices/x"}),
    );
    env.resets()
        .create(&PostParams::default(), &other)
        .await
        .unwrap();
    let r = env
        .reason_is("other-enterprise", Reason::EnterpriseOutOfScope)
        .await;
    assert!(
        r.status
            .unwrap()
            .message
            .unwrap()
            .contains(&format!("{}-a", env.ns))
    );
    assert_eq!(
        env.counter("devices.get").await,
        before,
        "refused before the device is read"
    );
    assert_eq!(env.commands("p1").await.len(), 1);
    assert_eq!(env.commands("pb").await.len(), 0);
    assert_eq!(env.counter("devices.issueCommand").await, 1);

    // Scopes made mandatory, none for this operator: nothing may run.
    let mut strict = Env::without_operator("scopes-required", POLICIES, DEVICES).await;
    strict.start_operator(OperatorOptions {
        flags: vec![("require-scopes", "true".to_owned())],
        ..Default::default()
    });
    strict.reset("r", "p1", json!({})).await;
    let r = strict.reason_is("r", Reason::NoScope).await;
    assert!(
        r.status
            .unwrap()
            .message
            .unwrap()
            .contains("No PasscodeResetScope covers namespace")
    );
    assert_eq!(strict.counter("devices.get").await, 0);
}

/// Review finding: GitOps tools apply server-side (Flux always; Argo CD with ServerSideApply).
/// Applying the same manifest again, unchanged, must not be refused: the requester annotation
/// the webhook added on create must not read as a field the applier owns and now removes.
#[tokio::test]
async fn review_applying_the_same_manifest_again_server_side_is_not_refused() {
    let _turn = WEBHOOK.lock().await;
    let mut env = Env::without_operator("review-ssa", POLICIES, DEVICES).await;
    with_webhook(&mut env, "refuse").await;
    let alice = as_person(&env, "alice").await;
    let manifest = json!({
        "apiVersion": "amapi.passcode-operator.io/v1alpha1",
        "kind": "PasscodeReset",
        "metadata": {"name": "gitops"},
        "spec": {"device": env.device("p1")},
    });
    let apply = PatchParams::apply("kustomize-controller").force();
    let first = alice
        .patch("gitops", &apply, &Patch::Apply(&manifest))
        .await
        .unwrap();
    assert!(first.annotations().contains_key(REQUESTER_ANNOTATION));
    env.reason_is("gitops", Reason::PasscodeCleared).await;
    let again = alice
        .patch("gitops", &apply, &Patch::Apply(&manifest))
        .await;
    assert!(
        again.is_ok(),
        "re-applying the unchanged manifest server-side was refused: {again:?}"
    );
    assert_eq!(env.commands("p1").await.len(), 1);
}

/// Review finding (exactly once, reachable by anyone RBAC allows `update` on
/// `passcoderesets/status`, e.g. a role with verbs `*`): the validating webhook now sees every
/// status write, but guards only `requester`, `approval` and `scope`. Writing a finished reset's
/// status back to empty makes the operator claim and send again (its record says the run is
/// its own). The webhook could keep the whole status the operator's.
#[tokio::test]
async fn review_a_status_rewritten_by_someone_else_never_sends_twice() {
    let _turn = WEBHOOK.lock().await;
    let mut env = Env::without_operator("review-status", POLICIES, DEVICES).await;
    with_webhook(&mut env, "refuse").await;
    let alice = as_person(&env, "alice").await;
    alice
        .create(
            &PostParams::default(),
            &reset_object(&env, "once", "p1", json!({})),
        )
        .await
        .unwrap();
    env.reason_is("once", Reason::PasscodeCleared).await;
    assert_eq!(env.commands("p1").await.len(), 1);

    // Someone with status rights (not the operator) empties the status.
    let admin = env.resets();
    let mut wiped = admin.get("once").await.unwrap();
    wiped.status = Some(passcode_operator::api::PasscodeResetStatus {
        requester: wiped.status.as_ref().and_then(|s| s.requester.clone()),
        scope: wiped.status.as_ref().and_then(|s| s.scope.clone()),
        ..Default::default()
    });
    let written = admin
        .replace_status("once", &PostParams::default(), &wiped)
        .await;
    // Either the webhook refuses the rewrite, or the operator must not act on it, also when
    // it looks at the reset again (a restart, a rollout).
    if written.is_ok() {
        env.operator.as_mut().unwrap().kill();
        with_webhook_again(&mut env).await;
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            assert_eq!(
                env.commands("p1").await.len(),
                1,
                "a second command was sent after the status was rewritten"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Review finding (approval bypass where the API server does not enforce the spec's CEL
/// immutability, such as this 1.20): the approver reads the reset, the requester then points it
/// at another device, and the approver's `kubectl annotate` (a patch without resourceVersion)
/// approves the spec as it is at that moment, which the approver never saw. The decision should
/// name what was approved (the generation, or `--resource-version`).
#[tokio::test]
async fn review_an_approval_covers_only_the_spec_the_approver_saw() {
    let _turn = WEBHOOK.lock().await;
    let mut env = Env::without_operator("review-toctou", POLICIES, DEVICES).await;
    env.scope(
        &format!("{}-a", env.ns),
        json!({"namespaces": [env.ns], "enterprises": [env.enterprise], "approval": {"required": true, "expiresAfter": "1h"}}),
    )
    .await;
    with_webhook(&mut env, "refuse").await;
    let (alice, bob) = (as_person(&env, "alice").await, as_person(&env, "bob").await);
    alice
        .create(
            &PostParams::default(),
            &reset_object(&env, "ticket", "p1", json!({})),
        )
        .await
        .unwrap();
    env.wait("ticket", "AwaitingApproval", |r| {
        r.status.as_ref().and_then(|s| s.reason) == Some(Reason::AwaitingApproval)
    })
    .await;
    // Bob looks: device p1, as in the ticket.
    let seen = bob.get("ticket").await.unwrap();
    assert_eq!(seen.spec.device, env.device("p1"));
    // Alice points the reset at another device before Bob annotates.
    let swap = json!({"spec": {"device": env.device("p2")}});
    let swapped = alice
        .patch("ticket", &PatchParams::default(), &Patch::Merge(&swap))
        .await;
    if swapped.is_err() {
        return; // the spec is immutable here: no window.
    }
    let _ = annotate(&bob, "ticket", DECISION_ANNOTATION, "approve").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        assert_eq!(
            env.commands("p2").await.len(),
            0,
            "bob approved device p1; the command went to p2"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
