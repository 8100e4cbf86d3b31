//! The AMAPI simulator over real HTTP: OAuth, every AMAPI call, device outcomes, quota, faults,
//! policies, the admin API, the discovery-document contract, and Google's own Python client.
//! (Logs are checked in `simulator_logs.rs`, alone in their process.)

mod contract;
mod devices;
mod faults;
mod google_client;
mod inspection;
mod keyless;
mod oauth;
mod policies;

use serde_json::Value;
use testkit::sim::TestSim;

const FLEET: &str = r#"
enterprises:
  - id: E1
    policies:
      - id: wp
        passwordPolicies:
          - {passwordScope: SCOPE_PROFILE, passwordQuality: NUMERIC_COMPLEX, passwordMinimumLength: 6}
        screenCaptureDisabled: true
      - id: open
    devices:
      - {id: pixel, policy: wp, syncDelay: 50ms, hardware: {brand: Google, model: Pixel 8, serialNumber: S1}}
      - {id: tablet13, policy: open, apiLevel: 33, syncDelay: 50ms}
      - {id: phone14, policy: open, apiLevel: 34, syncDelay: 50ms}
      - {id: nougat, policy: wp, apiLevel: 25, syncDelay: 50ms}
      - {id: unmanaged, managementMode: MANAGEMENT_MODE_UNSPECIFIED, syncDelay: 50ms}
      - {id: unconfirmed, policy: wp, resetTokenActive: false, syncDelay: 50ms}
      - {id: drawer, policy: wp, online: false, syncDelay: 50ms}
      - {id: kiosk, managementMode: DEVICE_OWNER, policy: wp, syncDelay: 50ms}
      - {id: gone, state: DELETED}
      - {id: slow, policy: wp, syncDelay: 1h}
"#;

const PIXEL: &str = "enterprises/E1/devices/pixel";
const GOOD_PIN: &str = "739184";

async fn sim() -> TestSim {
    TestSim::start(FLEET).await
}

fn error_status(body: &Value) -> &str {
    body["error"]["status"].as_str().unwrap_or_default()
}

/// Issues a reset and waits for its outcome: the errorCode, or "" on success.
async fn outcome(s: &mut TestSim, device: &str, passcode: Option<&str>) -> (String, Value) {
    let op = s.reset(device, passcode, &["LOCK_NOW"]).await;
    let done = s.wait_done(op["name"].as_str().unwrap()).await;
    let code = done["metadata"]["errorCode"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (code, done)
}
