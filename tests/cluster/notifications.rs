//! The AMAPI quota on a bad day: a status on first sight, and completion pushed over Pub/Sub
//! (with the simulator's emulated pull subscription), with polling as the safety net.

use std::time::{Duration, Instant};

use passcode_operator::api::{Phase, Reason};
use serde_json::json;

use testkit::scenario::{Env, OperatorOptions, SUBSCRIPTION};

const PHONE: &str = "      - {id: phone, syncDelay: 100ms}\n";

fn notified() -> OperatorOptions {
    OperatorOptions {
        pubsub_subscription: Some(SUBSCRIPTION.into()),
        ..Default::default()
    }
}

/// Waits until the operator's metrics contain `line`.
async fn metric(env: &Env, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = env.metrics().await;
        if text.contains(line) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {line} in the metrics:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every AMAPI answer takes 20 s, so the reconcile cannot write anything for that long; a new
/// reset still shows `Pending/Validating` from the acceptor, which never calls AMAPI: nothing a
/// user applies stays without a status.
#[tokio::test]
async fn a_new_reset_has_a_status_before_any_amapi_answer() {
    let env = Env::new("quota-first-status", "", PHONE).await;
    env.sim_send(reqwest::Method::PUT, "faults", json!({"latency": "20s"}))
        .await;
    env.reset("r", "phone", json!({})).await;
    let r = env
        .wait("r", "a first status", |r| r.status.is_some())
        .await;
    let s = r.status.unwrap();
    assert_eq!(s.phase, Some(Phase::Pending), "{s:#?}");
    assert_eq!(s.reason, Some(Reason::Validating), "{s:#?}");
    assert!(s.message.unwrap().starts_with("Accepted"));
    assert!(
        s.conditions
            .iter()
            .any(|c| c.type_ == "Reconciling" && c.status == "True"),
        "kstatus sees it in progress"
    );
    env.sim_send(reqwest::Method::PUT, "faults", json!({}))
        .await;
    env.reason_is("r", Reason::PasscodeCleared).await;
}

/// operations.get fails for good once the command is out, so only the COMMAND notification can
/// tell the reset that the device acted: it does, and the reset succeeds with one command.
#[tokio::test]
async fn completion_is_pushed_when_polling_cannot_see_it() {
    let mut env = Env::notified(
        "pushed",
        "",
        "      - {id: phone, online: false, syncDelay: 100ms}\n",
    )
    .await;
    env.start_operator(notified());
    env.reset("r", "phone", json!({})).await;
    env.issued("r").await;
    env.sim_send(
        reqwest::Method::PUT,
        "faults",
        json!({"errorRate": 1.0, "methods": ["operations.get"]}),
    )
    .await;
    env.patch_device("phone", json!({"online": true})).await;
    let r = env.reason_is("r", Reason::PasscodeCleared).await;
    assert!(r.status.unwrap().completed_at.is_some());
    assert_eq!(env.commands("phone").await.len(), 1);
    metric(
        &env,
        "passcode_operator_notifications_total{outcome=\"matched\"}",
    )
    .await;
    metric(&env, "passcode_operator_completion_pushed 1").await;
}

/// Every notification delivered twice, then none at all, then delivered again: duplicates change
/// nothing; with the message lost the safety-net poll (at 30 s) still finishes the reset and
/// shows that a notification was missed, which puts the enterprise back on the polling schedule
/// and looks at once at a reset that was waiting 40 minutes for its next safety-net poll; the next
/// notification makes the enterprise pushed again. (Devices that must be followed by their reset
/// before they act, so that their notification finds it, are offline until their command is out.)
#[tokio::test]
async fn duplicated_and_lost_notifications_change_nothing() {
    let devices = format!(
        "{PHONE}      - {{id: first, online: false, syncDelay: 100ms}}\n      - {{id: parked, online: false, syncDelay: 100ms}}\n      - {{id: again, online: false, syncDelay: 100ms}}\n"
    );
    let mut env = Env::notified("pushed-faults", "", &devices).await;
    env.start_operator(notified());
    let env = &env;
    let pushed = |n: u8| format!("passcode_operator_completion_pushed {n}");
    let faults = |v| env.sim_send(reqwest::Method::PUT, "pubsub/faults", v);
    let once = |device: &'static str| async move {
        assert_eq!(env.commands(device).await.len(), 1, "{device}: one command");
    };

    faults(json!({"duplicateRate": 1.0})).await;
    env.reset("r0", "first", json!({})).await;
    env.issued("r0").await;
    env.patch_device("first", json!({"online": true})).await;
    env.reason_is("r0", Reason::PasscodeCleared).await;
    metric(env, &pushed(1)).await;
    once("first").await;

    // Pushed: a reset on an offline device is polled at 30 s, then not for 40 minutes.
    env.reset("parked", "parked", json!({})).await;
    env.issued("parked").await;
    let polls = || async {
        env.sim_get("counters").await["methods"]["operations.get"]
            .as_u64()
            .unwrap_or(0)
    };
    let before = polls().await;
    testkit::until(
        "parked's 30 s safety-net poll",
        Duration::from_secs(60),
        Duration::from_millis(500),
        polls,
        |n| *n > before,
    )
    .await;

    faults(json!({"dropRate": 1.0})).await;
    env.reset("r1", "phone", json!({})).await;
    env.reason_is("r1", Reason::PasscodeCleared).await;
    metric(env, &pushed(0)).await;
    once("phone").await;
    // Delivery lost: parked is looked at again at once and polled on schedule, so it finishes
    // soon after its device comes online (without that: 40 minutes).
    env.patch_device("parked", json!({"online": true})).await;
    env.reason_is("parked", Reason::PasscodeCleared).await;
    once("parked").await;

    faults(json!({})).await;
    env.reset("r2", "again", json!({})).await;
    env.issued("r2").await;
    env.patch_device("again", json!({"online": true})).await;
    env.reason_is("r2", Reason::PasscodeCleared).await;
    metric(env, &pushed(1)).await;
    once("again").await;
}

/// A subscription that does not exist, then a malformed message and one for an operation no
/// reset follows: clear metrics, no crash, and resets fall back to polling.
#[tokio::test]
async fn bad_notifications_and_a_missing_subscription_fall_back_to_polling() {
    let devices = format!("{PHONE}      - {{id: late, online: false, syncDelay: 100ms}}\n");
    let mut env = Env::notified("pushed-bad", "", &devices).await;
    env.start_operator(OperatorOptions {
        pubsub_subscription: Some("projects/sim-project/subscriptions/missing".into()),
        ..Default::default()
    });
    env.reset("r", "phone", json!({})).await;
    env.reason_is("r", Reason::PasscodeCleared).await;
    metric(
        &env,
        "passcode_operator_notifications_total{outcome=\"pull_error\"}",
    )
    .await;
    assert!(
        env.metrics()
            .await
            .contains("passcode_operator_completion_pushed 0"),
        "no subscription, no push: resets are polled"
    );
    assert!(env.operator_alive());

    env.operator.take();
    env.start_operator(notified());
    env.sim_send(
        reqwest::Method::POST,
        "pubsub/messages",
        json!({"attributes": {"notificationType": "COMMAND"}, "data": "not base64 {"}),
    )
    .await;
    env.sim_send(
        reqwest::Method::POST,
        "pubsub/messages",
        json!({"attributes": {"notificationType": "COMMAND"},
               "json": {"name": format!("{}/operations/999", env.device("phone")), "done": true}}),
    )
    .await;
    metric(
        &env,
        "passcode_operator_notifications_total{outcome=\"malformed\"} 1",
    )
    .await;
    metric(
        &env,
        "passcode_operator_notifications_total{outcome=\"unknown_operation\"}",
    )
    .await;
    // The subscription pulls, but nothing in it is about this operator's commands (as when the
    // enterprise does not publish COMMAND notifications to it): polling stays on.
    assert!(
        env.metrics()
            .await
            .contains("passcode_operator_completion_pushed 0"),
        "messages about other operations do not make completion pushed"
    );
    // Offline until its command is out, so the notification finds the reset following it.
    env.reset("s", "late", json!({})).await;
    env.issued("s").await;
    env.patch_device("late", json!({"online": true})).await;
    env.reason_is("s", Reason::PasscodeCleared).await;
    metric(&env, "passcode_operator_completion_pushed 1").await;
    assert!(env.operator_alive());
}
