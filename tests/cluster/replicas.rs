//! Two replicas with leader election: one acts; when the leader dies the other takes over; one
//! command per reset throughout.

use std::time::{Duration, Instant};

use passcode_operator::api::Reason;
use serde_json::json;

use testkit::scenario::{Env, OperatorOptions};

const POLICY: &str = "      - id: wp\n";
const PHONES: &str = "      - {id: p1, syncDelay: 100ms}\n      - {id: p2, syncDelay: 100ms}\n";

fn is_leader(metrics: &str) -> bool {
    metrics.lines().any(|l| l == "passcode_operator_leader 1")
}

#[tokio::test]
async fn one_leader_acts_and_the_other_takes_over() {
    let env = Env::without_operator("leader", POLICY, PHONES).await;
    let lease = format!("{}-lease", env.ns);
    let options = |id: &str| OperatorOptions {
        leader_election: true,
        identity: Some(id.into()),
        lease_name: Some(lease.clone()),
        ..Default::default()
    };
    let mut a = env.spawn_operator(options("replica-a"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !is_leader(&a.metrics().await) {
        assert!(
            Instant::now() < deadline,
            "replica-a never led:\n{}",
            a.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let b = env.spawn_operator(options("replica-b"));
    env.secret("pc", "passcode", b"830417").await;
    env.reset(
        "first",
        "p1",
        json!({"newPasscode": {"secretKeyRef": {"name": "pc", "key": "passcode"}}}),
    )
    .await;
    env.reason_is("first", Reason::PasscodeReset).await;
    let standby = b.metrics().await;
    assert!(
        !standby.is_empty() && !is_leader(&standby),
        "replica-b stands by"
    );
    assert!(
        !standby.contains("passcode_operator_reconciles_total{"),
        "the standby never reconciled:\n{standby}"
    );

    a.kill();
    env.reset(
        "second",
        "p2",
        json!({"newPasscode": {"secretKeyRef": {"name": "pc", "key": "passcode"}}}),
    )
    .await;
    env.reason_is("second", Reason::PasscodeReset).await;
    assert!(
        is_leader(&b.metrics().await),
        "replica-b took over:\n{}",
        b.logs()
    );
    assert_eq!(env.commands("p1").await.len(), 1);
    assert_eq!(env.commands("p2").await.len(), 1);
}
