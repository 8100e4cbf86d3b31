//! WorkProfilePasscodePolicy: Enforce writes the SCOPE_PROFILE password policy into AMAPI and
//! corrects drift; Observe never writes; two policies on one AMAPI policy are both in conflict.

use std::time::{Duration, Instant};

use kube::api::{Api, PostParams};
use passcode_operator::api::{WorkProfilePasscodePolicy, conditions};
use serde_json::{Value, json};

use testkit::scenario::Env;

const POLICIES: &str = "      - id: wp\n        passwordPolicies:\n          - {passwordScope: SCOPE_PROFILE, passwordQuality: NUMERIC, passwordMinimumLength: 4}\n          - {passwordScope: SCOPE_DEVICE, passwordQuality: SOMETHING}\n      - id: observed\n      - id: shared\n";

async fn create(
    env: &Env,
    name: &str,
    amapi: &[String],
    enforcement: &str,
    requirements: Value,
) -> String {
    let name = format!("{}-{name}", env.ns);
    let p: WorkProfilePasscodePolicy = serde_json::from_value(json!({
        "apiVersion": "amapi.passcode-operator.io/v1alpha1", "kind": "WorkProfilePasscodePolicy",
        "metadata": {"name": name},
        "spec": {"amapiPolicies": amapi, "enforcement": enforcement, "requirements": requirements},
    }))
    .unwrap();
    Api::<WorkProfilePasscodePolicy>::all(env.client.clone())
        .create(&PostParams::default(), &p)
        .await
        .unwrap();
    name
}

async fn wait_policy(
    env: &Env,
    name: &str,
    what: &str,
    check: impl Fn(&WorkProfilePasscodePolicy) -> bool,
) -> WorkProfilePasscodePolicy {
    let api = Api::<WorkProfilePasscodePolicy>::all(env.client.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = api.get(name).await.unwrap();
        if check(&p) {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: timed out waiting for {what}: {:#?}",
            p.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sim_policy(env: &Env, id: &str) -> Value {
    let v = env
        .sim_get(&format!("enterprises/{}/policies/{id}", env.enterprise))
        .await;
    if v.get("policy").is_some() {
        v["policy"].clone()
    } else {
        v
    }
}

fn profile_entry(policy: &Value) -> Value {
    policy["passwordPolicies"]
        .as_array()
        .and_then(|l| {
            l.iter()
                .find(|p| p["passwordScope"] == "SCOPE_PROFILE")
                .cloned()
        })
        .unwrap_or(Value::Null)
}

fn synced(p: &WorkProfilePasscodePolicy) -> bool {
    p.status.as_ref().is_some_and(|s| {
        s.observed_generation == p.metadata.generation
            && conditions::status_of(&s.conditions, conditions::SYNCED) == Some("True")
    })
}

#[tokio::test]
async fn enforce_writes_the_work_profile_policy_and_corrects_drift() {
    let env = Env::new("enforce", POLICIES, "").await;
    let name = create(
        &env,
        "corp",
        &[env.policy("wp")],
        "Enforce",
        json!({"quality": "NUMERIC_COMPLEX", "minimumLength": 6, "historyLength": 3}),
    )
    .await;
    let p = wait_policy(&env, &name, "Synced", synced).await;
    let status = p.status.unwrap();
    assert_eq!(
        conditions::status_of(&status.conditions, conditions::READY),
        Some("True")
    );
    assert!(status.amapi_policies[0].synced && status.amapi_policies[0].version.is_some());
    let written = sim_policy(&env, "wp").await;
    let entry = profile_entry(&written);
    assert_eq!(entry["passwordQuality"], "NUMERIC_COMPLEX", "{written}");
    assert_eq!(entry["passwordMinimumLength"], 6);
    assert_eq!(entry["passwordHistoryLength"], 3);
    assert!(
        written["passwordPolicies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["passwordScope"] == "SCOPE_DEVICE"),
        "other scopes kept: {written}"
    );
    assert_eq!(env.counter("policies.patch").await, 1);

    // Someone weakens it in the EMM console: the next resync puts it back.
    env.sim_send(reqwest::Method::PATCH, &format!("enterprises/{}/policies/wp", env.enterprise), json!({
        "passwordPolicies": [{"passwordScope": "SCOPE_PROFILE", "passwordQuality": "SOMETHING"}, {"passwordScope": "SCOPE_DEVICE", "passwordQuality": "SOMETHING"}]
    })).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while profile_entry(&sim_policy(&env, "wp").await)["passwordQuality"] != "NUMERIC_COMPLEX" {
        assert!(Instant::now() < deadline, "drift not corrected");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        env.counter("policies.patch").await,
        2,
        "one write per drift, none while in sync"
    );
}

#[tokio::test]
async fn observe_never_writes_and_conflicts_are_reported_on_both_sides() {
    // Both claimants exist before the operator starts, so neither is ever alone.
    let mut env = Env::without_operator("observe", POLICIES, "").await;
    let observed = create(
        &env,
        "observer",
        &[env.policy("observed")],
        "Observe",
        json!({"quality": "NUMERIC"}),
    )
    .await;
    let a = create(
        &env,
        "a",
        &[env.policy("shared")],
        "Enforce",
        json!({"quality": "NUMERIC", "minimumLength": 6}),
    )
    .await;
    let b = create(
        &env,
        "b",
        &[env.policy("shared")],
        "Enforce",
        json!({"quality": "ALPHANUMERIC"}),
    )
    .await;
    env.start_operator(Default::default());
    let p = wait_policy(&env, &observed, "a status", |p| {
        p.status.as_ref().is_some_and(|s| !s.conditions.is_empty())
    })
    .await;
    let s = p.status.unwrap();
    assert_eq!(
        conditions::status_of(&s.conditions, conditions::READY),
        Some("True"),
        "{s:#?}"
    );
    for (me, other) in [(&a, &b), (&b, &a)] {
        let p = wait_policy(&env, me, "the conflict", |p| {
            p.status.as_ref().is_some_and(|s| {
                s.amapi_policies
                    .iter()
                    .any(|e| e.conflicts_with.contains(other))
            })
        })
        .await;
        let s = p.status.unwrap();
        assert_eq!(
            conditions::status_of(&s.conditions, conditions::READY),
            Some("False")
        );
    }
    assert_eq!(
        env.counter("policies.patch").await,
        0,
        "neither Observe nor a conflict writes AMAPI"
    );
}
