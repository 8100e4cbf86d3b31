//! The passcode never leaks: a canary passcode through every path (success, invalid, refused by
//! the device, retries under faults) with TRACE logging, then searched for in the operator's
//! logs, Events, statuses and metrics, as text and as base64 (the form a Secret travels in).

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use passcode_operator::api::Reason;
use serde_json::json;

use testkit::scenario::{Env, OperatorOptions};

const CANARY: &str = "Zq7#canary-Xw";

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test]
async fn a_canary_passcode_never_leaks_anywhere() {
    let policies = "      - id: strict\n        passwordPolicies: [{passwordScope: SCOPE_PROFILE, passwordQuality: COMPLEX, passwordMinimumSymbols: 4}]\n";
    let devices = "      - {id: ok, syncDelay: 100ms}\n      - {id: strict, policy: strict, syncDelay: 100ms}\n      - {id: unconfirmed, resetTokenActive: false, syncDelay: 100ms}\n      - {id: flaky, syncDelay: 100ms}\n";
    let env = Env::with(
        "canary",
        policies,
        devices,
        OperatorOptions {
            log_level: Some("trace".into()),
            ..Default::default()
        },
    )
    .await;
    env.secret("canary", "passcode", CANARY.as_bytes()).await;
    let spec = json!({"newPasscode": {"secretKeyRef": {"name": "canary", "key": "passcode"}}, "lockNow": true});
    env.reset("ok", "ok", spec.clone()).await;
    env.reset("invalid", "strict", spec.clone()).await;
    env.reset("refused", "unconfirmed", spec.clone()).await;
    env.reason_is("ok", Reason::PasscodeReset).await;
    env.reason_is("invalid", Reason::PasscodeInvalid).await;
    env.reason_is("refused", Reason::DeviceRejected).await;
    // Retries: AMAPI failing often.
    env.sim_send(
        reqwest::Method::PUT,
        "faults",
        json!({"errorRate": 0.3, "throttleRate": 0.2}),
    )
    .await;
    env.reset("flaky", "flaky", spec).await;
    env.done("flaky").await;
    env.sim_send(reqwest::Method::PUT, "faults", json!({}))
        .await;

    let op = env.operator.as_ref().unwrap();
    let logs = op.logs();
    assert!(
        logs.contains("\"level\":\"TRACE\""),
        "the operator logged at TRACE"
    );
    let statuses = serde_json::to_string(
        &env.resets()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items,
    )
    .unwrap();
    let events = serde_json::to_string(
        &Api::<Event>::namespaced(env.client.clone(), &env.ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items,
    )
    .unwrap();
    let metrics = env.metrics().await;
    assert!(events.contains("PasscodeReset") && statuses.contains("PasscodeInvalid"));
    let encoded = base64(CANARY.as_bytes());
    for (place, text) in [
        ("logs", &logs),
        ("statuses", &statuses),
        ("events", &events),
        ("metrics", &metrics),
    ] {
        assert!(!text.contains(CANARY), "the passcode leaked into {place}");
        assert!(
            !text.contains("canary-Xw"),
            "part of the passcode leaked into {place}"
        );
        assert!(
            !text.contains(&encoded[..16]),
            "the base64 passcode leaked into {place}"
        );
    }
}

#[test]
fn base64_matches_the_standard_encoding() {
    assert_eq!(&base64(CANARY.as_bytes())[..16], "WnE3I2NhbmFyeS1Y");
    assert_eq!(base64(b"Ma"), "TWE");
}
