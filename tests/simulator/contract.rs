//! The contract: every response fits the discovery document, and the checker itself.

use reqwest::Method;
use serde_json::json;
use testkit::discovery::{check, check_command_operation};

use crate::{GOOD_PIN, PIXEL, outcome, sim};

#[tokio::test]
async fn every_response_fits_the_discovery_document() {
    let mut s = sim().await;
    let device = s.get(&format!("v1/{PIXEL}")).await.body;
    check("Device", &device).unwrap();
    let unconfirmed = s.get("v1/enterprises/E1/devices/unconfirmed").await.body;
    check("Device", &unconfirmed).unwrap();
    let kiosk = s.get("v1/enterprises/E1/devices/kiosk").await.body;
    check("Device", &kiosk).unwrap();
    check(
        "ListDevicesResponse",
        &s.get("v1/enterprises/E1/devices").await.body,
    )
    .unwrap();

    let pending = s.reset(PIXEL, Some(GOOD_PIN), &["LOCK_NOW"]).await;
    check_command_operation(&pending).unwrap();
    let done = s.wait_done(pending["name"].as_str().unwrap()).await;
    check_command_operation(&done).unwrap();
    let (_, failed) = outcome(&mut s, PIXEL, Some("1234")).await;
    check_command_operation(&failed).unwrap();
    let slow = s.reset("enterprises/E1/devices/slow", None, &[]).await;
    let name = slow["name"].as_str().unwrap();
    let cancelled = s.post(&format!("v1/{name}:cancel"), json!({})).await.body;
    check("Empty", &cancelled).unwrap();
    check_command_operation(&s.get(&format!("v1/{name}")).await.body).unwrap();
    let list = s.get(&format!("v1/{PIXEL}/operations")).await.body;
    check("ListOperationsResponse", &list).unwrap();
    for op in list["operations"].as_array().unwrap() {
        check_command_operation(op).unwrap();
    }
    check("Policy", &s.get("v1/enterprises/E1/policies/wp").await.body).unwrap();
    check(
        "Policy",
        &s.get("v1/enterprises/E1/policies/open").await.body,
    )
    .unwrap();
    let patched = s
        .amapi(
            Method::PATCH,
            "v1/enterprises/E1/policies/open?updateMask=passwordPolicies",
            Some(json!({"passwordPolicies": [{"passwordQuality": "NUMERIC"}]})),
        )
        .await
        .body;
    check("Policy", &patched).unwrap();

    // Error bodies: `error` is a google.rpc.Status plus the status name.
    let not_found = s.get("v1/enterprises/E1/devices/nope").await.body;
    let mut status = not_found["error"].clone();
    assert_eq!(
        status.as_object_mut().unwrap().remove("status"),
        Some(json!("NOT_FOUND"))
    );
    check("Status", &status).unwrap();
}

#[test]
fn the_checker_flags_what_does_not_fit() {
    let ok = json!({"name": "enterprises/E/devices/D", "apiLevel": 34, "appliedPolicyVersion": "3",
                    "managementMode": "PROFILE_OWNER", "hardwareInfo": {"model": "Pixel"}});
    check("Device", &ok).unwrap();
    let cases = [
        (
            json!({"name": "d", "bogus": 1}),
            "Device.bogus: unknown property",
        ),
        (
            json!({"hardwareInfo": {"colour": "red"}}),
            "Device.hardwareInfo.colour: unknown property",
        ),
        (
            json!({"appliedPolicyVersion": 3}),
            "Device.appliedPolicyVersion: expected a string",
        ),
        (
            json!({"appliedPolicyVersion": "three"}),
            "not a valid int64",
        ),
        (
            json!({"apiLevel": "34"}),
            "Device.apiLevel: expected an integer",
        ),
        (
            json!({"managementMode": "OWNER"}),
            "not one of the enum values",
        ),
        (json!({"appliedPasswordPolicies": {}}), "expected an array"),
        (
            json!({"appliedPasswordPolicies": [{"passwordScope": "SCOPE_WATCH"}]}),
            "passwordScope",
        ),
        (
            json!({"lastPolicySyncTime": "yesterday"}),
            "google-datetime",
        ),
        (json!({"name": null}), "null"),
    ];
    for (value, expected) in cases {
        let err = check("Device", &value).expect_err(&value.to_string());
        assert!(err.contains(expected), "{value}: {err}");
    }
    let op = json!({"name": "o", "done": true, "metadata": {
        "@type": "type.googleapis.com/google.android.devicemanagement.v1.Command",
        "type": "RESET_PASSWORD", "duration": "ten minutes"}});
    assert!(
        check_command_operation(&op)
            .unwrap_err()
            .contains("google-duration")
    );
    assert!(check("NoSuchSchema", &json!({})).is_err());
}
