//! The simulator's own logs, at TRACE, never carry a passcode. Alone in its test binary: it
//! installs the process-wide subscriber, so every thread's logs are captured and no other test
//! can race it for tracing's per-callsite caches.

use std::io::Write;
use std::sync::{Arc, Mutex};

use reqwest::{Method, StatusCode};
use serde_json::json;
use testkit::sim::TestSim;

/// Collects formatted log output.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const FLEET: &str = r#"
enterprises:
  - id: E1
    policies:
      - id: wp
        passwordPolicies: [{passwordScope: SCOPE_PROFILE, passwordQuality: NUMERIC_COMPLEX, passwordMinimumLength: 6}]
    devices:
      - {id: pixel, policy: wp, syncDelay: 20ms}
"#;
const PIXEL: &str = "enterprises/E1/devices/pixel";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_contain_the_passcode() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    const CANARY: &str = "Zq7#Canary!93";
    const LONG_CANARY: &str = "Canary7391846205813";
    let mut s = TestSim::start(FLEET).await;
    let accepted = s.reset(PIXEL, Some(CANARY), &["LOCK_NOW"]).await;
    let accepted = s.wait_done(accepted["name"].as_str().unwrap()).await;
    assert!(accepted["response"].is_object(), "{accepted}");
    let refused = s.reset(PIXEL, Some(LONG_CANARY), &[]).await;
    let refused = s.wait_done(refused["name"].as_str().unwrap()).await;
    assert_eq!(refused["metadata"]["errorCode"], "INVALID_VALUE");
    let bad = s
        .post(
            &format!("v1/{PIXEL}:issueCommand"),
            json!({"type": "RESET_PASSWORD", "newPassword": CANARY, "duration": "soon"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(!bad.body.to_string().contains(CANARY));
    s.admin(Method::PUT, "faults", Some(json!({"dropRate": 1.0})))
        .await;
    let token = s.token().await;
    let sent = s
        .send(
            Method::POST,
            &format!("v1/{PIXEL}:issueCommand"),
            Some(json!({"type": "RESET_PASSWORD", "newPassword": CANARY})),
            Some(&token),
        )
        .await;
    if let Ok(response) = sent {
        assert!(response.bytes().await.is_err(), "the response was dropped");
    }
    s.admin(Method::PUT, "faults", Some(json!({}))).await;
    s.get(&format!("v1/{PIXEL}/operations")).await;
    s.admin(Method::GET, "commands", None).await;
    s.sim.shutdown().await;

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    for expected in [
        "command received",
        "device synced",
        "dropping the connection",
    ] {
        assert!(
            logs.contains(expected),
            "logs were captured ({expected}):\n{logs}"
        );
    }
    for canary in [CANARY, LONG_CANARY, "Canary"] {
        assert!(
            !logs.contains(canary),
            "{canary} leaked into the logs:\n{logs}"
        );
    }
}
