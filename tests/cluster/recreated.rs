//! GitOps self-heal re-creates a deleted reset as a new object with the same name and spec. The
//! operator's record of the first one (a ConfigMap in its own namespace) makes the twin fail
//! `Recreated` instead of resetting the passcode a second time; commands counted on the simulator.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams};
use passcode_operator::api::Reason;
use passcode_operator::reconcile::reset::record::{NAMESPACE_LABEL, record_name, runs};
use serde_json::json;

use testkit::cluster::OPERATOR_NAMESPACE;
use testkit::scenario::Env;

const POLICY: &str = "      - id: wp\n        passwordPolicies: [{passwordScope: SCOPE_PROFILE, passwordQuality: NUMERIC_COMPLEX, passwordMinimumLength: 6}]\n";
const PHONE: &str = "      - {id: phone, managementMode: PROFILE_OWNER, apiLevel: 34, policy: wp, syncDelay: 100ms}\n";

fn spec() -> serde_json::Value {
    json!({"newPasscode": {"secretKeyRef": {"name": "pc", "key": "passcode"}}})
}

async fn delete(env: &Env, name: &str) {
    env.resets()
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
    env.wait_gone(name).await;
}

fn records(env: &Env) -> Api<ConfigMap> {
    Api::namespaced(env.client.clone(), OPERATOR_NAMESPACE)
}

async fn records_of_namespace(env: &Env) -> Vec<ConfigMap> {
    records(env)
        .list(&ListParams::default().labels(&format!("{NAMESPACE_LABEL}={}", env.ns)))
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn a_recreated_twin_never_runs_again() {
    let env = Env::new("recreated", POLICY, PHONE).await;
    env.secret("pc", "passcode", b"830417").await;
    env.reset("r", "phone", spec()).await;
    let first = env.reason_is("r", Reason::PasscodeReset).await;
    assert_eq!(env.commands("phone").await.len(), 1);

    // Deleted, then created again from git: same name, same spec, new uid.
    delete(&env, "r").await;
    env.reset("r", "phone", spec()).await;
    let twin = env.reason_is("r", Reason::Recreated).await;
    assert_ne!(twin.metadata.uid, first.metadata.uid);
    let status = twin.status.unwrap();
    let message = status.message.unwrap();
    assert!(
        message.contains(first.metadata.uid.as_deref().unwrap()) && message.contains("new name"),
        "{message}"
    );
    assert!(status.claimed_at.is_none() && status.operation.is_none());
    assert!(
        twin.metadata
            .finalizers
            .as_ref()
            .is_none_or(|f| f.is_empty()),
        "a twin never holds the in-flight finalizer"
    );
    assert_eq!(
        env.commands("phone").await.len(),
        1,
        "the twin sent nothing"
    );

    // A new name is a new reset.
    env.reset("again", "phone", spec()).await;
    env.reason_is("again", Reason::PasscodeReset).await;
    assert_eq!(env.commands("phone").await.len(), 2);

    // The name reused for a different reset runs, and is added to the record beside the first.
    delete(&env, "r").await;
    let different = json!({"newPasscode": {"secretKeyRef": {"name": "pc", "key": "passcode"}}, "lockNow": true});
    env.reset("r", "phone", different.clone()).await;
    let reused = env.reason_is("r", Reason::PasscodeReset).await;
    assert_eq!(env.commands("phone").await.len(), 3);
    let record = records(&env).get(&record_name(&env.ns, "r")).await.unwrap();
    let uids: Vec<String> = runs(&record).unwrap().into_iter().map(|r| r.uid).collect();
    assert_eq!(
        uids,
        [first.metadata.uid.unwrap(), reused.metadata.uid.unwrap()],
        "every run of the name"
    );
    assert_eq!(records_of_namespace(&env).await.len(), 2, "r and again");

    // The documented way to let a name run once more: delete its record.
    delete(&env, "r").await;
    records(&env)
        .delete(&record_name(&env.ns, "r"), &DeleteParams::default())
        .await
        .unwrap();
    env.reset("r", "phone", different).await;
    env.reason_is("r", Reason::PasscodeReset).await;
    assert_eq!(env.commands("phone").await.len(), 4);
}

#[tokio::test]
async fn a_reset_deleted_before_its_claim_runs_when_recreated() {
    let env = Env::new("recreated-early", POLICY, PHONE).await;
    env.reset("r", "phone", spec()).await;
    env.wait("r", "WaitingForSecret", |r| {
        r.status.as_ref().and_then(|s| s.reason) == Some(Reason::WaitingForSecret)
    })
    .await;
    assert!(
        records_of_namespace(&env).await.is_empty(),
        "nothing is recorded before the Secret is there"
    );
    delete(&env, "r").await;
    env.reset("r", "phone", spec()).await;
    env.secret("pc", "passcode", b"830417").await;
    env.reason_is("r", Reason::PasscodeReset).await;
    assert_eq!(env.commands("phone").await.len(), 1);
    assert_eq!(records_of_namespace(&env).await.len(), 1);
}

/// A claim released because AMAPI certainly took no command (429 on every attempt) keeps its
/// record: the reset claims again, possibly from another replica, and the record must be there for
/// that claim. The reset then succeeds with one command and one record.
#[tokio::test]
async fn a_released_claim_keeps_its_record_and_succeeds_once() {
    let env = Env::new("recreated-released", POLICY, PHONE).await;
    env.secret("pc", "passcode", b"830417").await;
    env.sim_send(
        reqwest::Method::PUT,
        "faults",
        json!({"throttleRate": 1.0, "methods": ["devices.issueCommand"]}),
    )
    .await;
    env.reset("r", "phone", spec()).await;
    env.wait("r", "the claim released after 429s", |r| {
        r.status
            .as_ref()
            .is_some_and(|s| s.reason == Some(Reason::Retrying) && s.claimed_at.is_none())
    })
    .await;
    assert_eq!(records_of_namespace(&env).await.len(), 1);
    assert!(env.commands("phone").await.is_empty());
    env.sim_send(reqwest::Method::PUT, "faults", json!({}))
        .await;
    env.reason_is("r", Reason::PasscodeReset).await;
    assert_eq!(env.commands("phone").await.len(), 1);
    assert_eq!(records_of_namespace(&env).await.len(), 1);
}
