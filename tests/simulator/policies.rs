//! Policies: patch with and without an update mask, admin drift reaching devices.

use reqwest::{Method, StatusCode};
use serde_json::json;
use testkit::discovery::check;

use crate::{GOOD_PIN, PIXEL, outcome, sim};

#[tokio::test]
async fn policies_patch_with_and_without_update_mask() {
    let mut s = sim().await;
    let path = "v1/enterprises/E1/policies/wp";
    let p = s.get(path).await.body;
    check("Policy", &p).unwrap();
    assert_eq!(p["version"], "1");
    assert_eq!(p["screenCaptureDisabled"], true);

    let stricter = json!({"passwordPolicies": [{"passwordScope": "SCOPE_PROFILE", "passwordQuality": "ALPHANUMERIC", "passwordMinimumLength": 8}]});
    let r = s
        .amapi(
            Method::PATCH,
            &format!("{path}?updateMask=passwordPolicies"),
            Some(stricter.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["version"], "2");
    assert_eq!(
        r.body["screenCaptureDisabled"], true,
        "outside the mask: kept"
    );
    assert_eq!(r.body["passwordPolicies"], stricter["passwordPolicies"]);

    let again = s
        .amapi(
            Method::PATCH,
            &format!("{path}?updateMask=passwordPolicies"),
            Some(stricter.clone()),
        )
        .await;
    assert_eq!(again.body["version"], "2", "no change, no new version");

    // The device applies version 2 on its next sync, and judges by it.
    s.wait_device(PIXEL, "policy version 2 applied", |d| {
        d["device"]["appliedPolicyVersion"] == "2"
    })
    .await;
    let (code, _) = outcome(&mut s, PIXEL, Some(GOOD_PIN)).await;
    assert_eq!(code, "INVALID_VALUE", "a PIN no longer meets ALPHANUMERIC");

    let r = s.amapi(Method::PATCH, path, Some(stricter.clone())).await;
    assert_eq!(r.body["version"], "3");
    assert!(
        r.body.get("screenCaptureDisabled").is_none(),
        "without a mask every field is overwritten: {}",
        r.body
    );

    let bad = s
        .amapi(
            Method::PATCH,
            path,
            Some(json!({"passwordPolicies": [{"passwordQuality": "SUPER_STRONG"}]})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let created = s
        .amapi(
            Method::PATCH,
            "v1/enterprises/E1/policies/brand-new?updateMask=passwordPolicies",
            Some(stricter),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "patch creates like Google");
    assert_eq!(created.body["version"], "1");
    let missing = s.get("v1/enterprises/E1/policies/never").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admin_drift_reaches_devices() {
    let mut s = sim().await;
    let drift = json!({"passwordPolicies": [{"passwordScope": "SCOPE_PROFILE", "passwordQuality": "SOMETHING"}]});
    let r = s
        .admin(Method::PATCH, "enterprises/E1/policies/wp", Some(drift))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["version"], "2");
    assert_eq!(r.body["screenCaptureDisabled"], true);
    let d = s
        .wait_device(PIXEL, "drifted policy applied", |d| {
            d["device"]["appliedPolicyVersion"] == "2"
        })
        .await;
    assert_eq!(
        d["device"]["appliedPasswordPolicies"][0]["passwordQuality"],
        "SOMETHING"
    );
    let seen = s.get("v1/enterprises/E1/policies/wp").await.body;
    assert_eq!(seen["version"], "2");
    let drawer = s
        .admin(Method::GET, "enterprises/E1/devices/drawer", None)
        .await
        .body;
    assert_eq!(
        drawer["device"]["appliedPolicyVersion"], "1",
        "offline: not yet"
    );
}
