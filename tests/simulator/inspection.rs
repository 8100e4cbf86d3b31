//! The admin API's counters.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{GOOD_PIN, PIXEL, sim};

#[tokio::test]
async fn the_admin_api_counts_exactly() {
    let mut s = sim().await;
    let tablet = "enterprises/E1/devices/tablet13";
    let a = s
        .reset(PIXEL, Some(GOOD_PIN), &["LOCK_NOW", "REQUIRE_ENTRY"])
        .await;
    let b = s.reset(tablet, None, &[]).await;
    let c = s.reset(PIXEL, Some("123456"), &[]).await;
    s.post(&format!("v1/{PIXEL}:issueCommand"), json!({"type": "NOPE"}))
        .await;
    for op in [&a, &b, &c] {
        s.wait_done(op["name"].as_str().unwrap()).await;
    }
    s.get(&format!("v1/{PIXEL}")).await;
    s.get("v1/enterprises/E1/devices").await;
    s.get(&format!("v1/{PIXEL}/operations")).await;
    s.get("v1/enterprises/E1/policies/wp").await;

    let all = s.admin(Method::GET, "commands", None).await.body;
    let devices = all["devices"].as_object().unwrap();
    assert_eq!(devices.len(), 2);
    let pixel = devices[PIXEL].as_array().unwrap();
    assert_eq!(pixel.len(), 2);
    assert_eq!(pixel[0]["operation"], a["name"]);
    assert_eq!(
        pixel[0]["resetPasswordFlags"],
        json!(["LOCK_NOW", "REQUIRE_ENTRY"])
    );
    assert_eq!(pixel[0]["state"], "SUCCEEDED");
    assert_eq!(pixel[0]["errorCode"], Value::Null);
    assert_eq!(pixel[0]["duration"], "600s");
    assert!(
        pixel[0]["receivedAt"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .is_ok()
    );
    assert_eq!(pixel[1]["state"], "FAILED");
    assert_eq!(pixel[1]["errorCode"], "INVALID_VALUE");
    let tablet_commands = devices[tablet].as_array().unwrap();
    assert_eq!(tablet_commands.len(), 1);
    assert_eq!(tablet_commands[0]["newPasswordSet"], false);
    assert!(!all.to_string().contains(GOOD_PIN) && !all.to_string().contains("123456"));
    let device = s.admin(Method::GET, PIXEL, None).await.body;
    assert_eq!(device["requireEntry"], true);

    let counters = s.counters().await;
    let methods = &counters["methods"];
    assert_eq!(methods["devices.issueCommand"], 4);
    assert_eq!(methods["devices.get"], 1);
    assert_eq!(methods["devices.list"], 1);
    assert_eq!(methods["operations.list"], 1);
    assert_eq!(methods["policies.get"], 1);
    assert_eq!(methods["policies.patch"], 0);
    assert_eq!(methods["operations.cancel"], 0);
    assert!(methods["operations.get"].as_u64().unwrap() >= 3);
    assert_eq!(counters["tokens"], 1);
    assert_eq!(counters["unauthenticated"], 0);
}
