//! Devices: get and list, resets and what Android refuses, offline devices, expiry, cancel,
//! operations.list, malformed commands.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use testkit::discovery::check;

use crate::{GOOD_PIN, PIXEL, error_status, outcome, sim};

#[tokio::test]
async fn devices_get_and_list() {
    let mut s = sim().await;
    let r = s.get(&format!("v1/{PIXEL}")).await;
    assert_eq!(r.status, StatusCode::OK);
    let d = &r.body;
    assert_eq!(d["name"], PIXEL);
    assert_eq!(d["managementMode"], "PROFILE_OWNER");
    assert_eq!(d["ownership"], "PERSONALLY_OWNED");
    assert_eq!(d["apiLevel"], 34);
    assert_eq!(d["policyName"], "enterprises/E1/policies/wp");
    assert_eq!(d["appliedPolicyVersion"], "1");
    assert_eq!(
        d["appliedPasswordPolicies"][0]["passwordQuality"],
        "NUMERIC_COMPLEX"
    );
    assert_eq!(d["hardwareInfo"]["serialNumber"], "S1");

    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            None => "v1/enterprises/E1/devices?pageSize=4".to_string(),
            Some(t) => format!("v1/enterprises/E1/devices?pageSize=4&pageToken={t}"),
        };
        let page = s.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        check("ListDevicesResponse", &page.body).unwrap();
        let devices = page.body["devices"].as_array().unwrap();
        assert!(devices.len() <= 4);
        names.extend(
            devices
                .iter()
                .map(|d| d["name"].as_str().unwrap().to_owned()),
        );
        match page.body["nextPageToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        names.len(),
        9,
        "every device but the deleted one: {names:?}"
    );
    assert!(!names.iter().any(|n| n.ends_with("/gone")));
    let default_page = s.get("v1/enterprises/E1/devices").await;
    assert_eq!(default_page.body["devices"].as_array().unwrap().len(), 9);

    let unknown_enterprise = s.get("v1/enterprises/NOPE/devices/pixel").await;
    assert_eq!(unknown_enterprise.status, StatusCode::FORBIDDEN);
    assert_eq!(error_status(&unknown_enterprise.body), "PERMISSION_DENIED");
    for missing in [
        "v1/enterprises/E1/devices/nope",
        "v1/enterprises/E1/devices/gone",
    ] {
        let r = s.get(missing).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{missing}");
        assert_eq!(error_status(&r.body), "NOT_FOUND");
    }
    let bad_token = s.get("v1/enterprises/E1/devices?pageToken=xyz").await;
    assert_eq!(bad_token.status, StatusCode::BAD_REQUEST);
    let unknown_path = s.get("v1/enterprises/E1/webApps").await;
    assert_eq!(unknown_path.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_reset_succeeds_and_locks_the_work_profile() {
    let mut s = sim().await;
    let op = s.reset(PIXEL, Some(GOOD_PIN), &["LOCK_NOW"]).await;
    assert_eq!(op["done"], false);
    let name = op["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with(&format!("{PIXEL}/operations/")), "{name}");
    let id = name.rsplit('/').next().unwrap();
    assert!(id.bytes().all(|b| b.is_ascii_digit()), "{id}");
    let m = &op["metadata"];
    assert_eq!(
        m["@type"],
        "type.googleapis.com/google.android.devicemanagement.v1.Command"
    );
    assert_eq!(m["type"], "RESET_PASSWORD");
    assert_eq!(m["newPassword"], GOOD_PIN, "Google echoes the passcode");
    assert_eq!(m["resetPasswordFlags"], json!(["LOCK_NOW"]));
    assert_eq!(m["duration"], "600s");
    assert_eq!(m["userName"], "enterprises/E1/users/user-pixel");
    assert!(
        m["createTime"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .is_ok()
    );

    let done = s.wait_done(&name).await;
    assert_eq!(
        done["response"]["@type"],
        "type.googleapis.com/google.android.devicemanagement.v1.IssueCommandResponse"
    );
    assert!(done.get("error").is_none() && done["metadata"].get("errorCode").is_none());
    assert_eq!(
        done["metadata"]["newPassword"], GOOD_PIN,
        "still echoed when done"
    );

    let device = s
        .admin(Method::GET, "enterprises/E1/devices/pixel", None)
        .await
        .body;
    assert_eq!(device["passcodeSet"], true);
    assert_eq!(device["locked"], true);
    assert_eq!(device["requireEntry"], false);
    let commands = s
        .admin(Method::GET, "enterprises/E1/devices/pixel/commands", None)
        .await
        .body;
    let c = &commands["commands"][0];
    assert_eq!(c["state"], "SUCCEEDED");
    assert_eq!(c["newPasswordSet"], true);
    assert_eq!(c["operation"], json!(name));
    assert!(!commands.to_string().contains(GOOD_PIN));
    assert!(!device.to_string().contains(GOOD_PIN));
}

#[tokio::test]
async fn clearing_works_only_when_nothing_requires_a_passcode() {
    let mut s = sim().await;
    let cleared = s.reset("enterprises/E1/devices/tablet13", None, &[]).await;
    let cleared = s.wait_done(cleared["name"].as_str().unwrap()).await;
    assert!(cleared["response"].is_object(), "{cleared}");
    assert!(cleared["metadata"].get("newPassword").is_none());
    let tablet = s
        .admin(Method::GET, "enterprises/E1/devices/tablet13", None)
        .await;
    assert_eq!(tablet.body["passcodeSet"], false);

    let refused = s.reset(PIXEL, None, &[]).await;
    let refused = s.wait_done(refused["name"].as_str().unwrap()).await;
    assert_eq!(refused["metadata"]["errorCode"], "INVALID_VALUE");
    let pixel = s
        .admin(Method::GET, "enterprises/E1/devices/pixel", None)
        .await;
    assert_eq!(
        pixel.body["passcodeSet"], true,
        "a refused clear keeps the passcode"
    );
}

#[tokio::test]
async fn devices_refuse_resets_like_android() {
    let mut s = sim().await;
    let (code, done) = outcome(&mut s, "enterprises/E1/devices/nougat", Some(GOOD_PIN)).await;
    assert_eq!(code, "API_LEVEL");
    assert!(done["error"]["message"].is_string());
    assert!(done.get("response").is_none());

    let (code, _) = outcome(&mut s, "enterprises/E1/devices/unmanaged", Some(GOOD_PIN)).await;
    assert_eq!(code, "MANAGEMENT_MODE");

    let unconfirmed = "enterprises/E1/devices/unconfirmed";
    let d = s.get(&format!("v1/{unconfirmed}")).await.body;
    assert_eq!(
        d["nonComplianceDetails"][0]["specificNonComplianceReason"],
        "PASSWORD_POLICIES_USER_CREDENTIALS_CONFIRMATION_REQUIRED"
    );
    let (code, done) = outcome(&mut s, unconfirmed, Some(GOOD_PIN)).await;
    assert_eq!(code, "UNKNOWN");
    assert!(
        done["error"]["message"]
            .as_str()
            .unwrap()
            .contains("token is not active")
    );
    // Once the user confirms their lock, the same reset works.
    let r = s
        .admin(
            Method::PATCH,
            "enterprises/E1/devices/unconfirmed",
            Some(json!({"resetTokenActive": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["device"].get("nonComplianceDetails").is_none());
    let (code, _) = outcome(&mut s, unconfirmed, Some(GOOD_PIN)).await;
    assert_eq!(code, "");

    let (code, done) = outcome(&mut s, PIXEL, Some("123456")).await;
    assert_eq!(code, "INVALID_VALUE", "a sequence under NUMERIC_COMPLEX");
    assert!(
        done["error"]["message"]
            .as_str()
            .unwrap()
            .contains("noSequence")
    );
    let (code, _) = outcome(&mut s, PIXEL, Some("73918")).await;
    assert_eq!(code, "INVALID_VALUE", "shorter than 6");

    // Android 14: a numeric passcode needs 6 digits even with no policy; Android 13 takes 4.
    let (code, done) = outcome(&mut s, "enterprises/E1/devices/phone14", Some("7391")).await;
    assert_eq!(code, "INVALID_VALUE");
    assert!(
        done["error"]["message"]
            .as_str()
            .unwrap()
            .contains("android14Numeric")
    );
    let (code, _) = outcome(&mut s, "enterprises/E1/devices/tablet13", Some("7391")).await;
    assert_eq!(code, "");

    // The policy governs the work profile only: a fully managed device's lock is free of it.
    let (code, _) = outcome(&mut s, "enterprises/E1/devices/kiosk", Some("Kiosk!2468")).await;
    assert_eq!(code, "");
}

#[tokio::test]
async fn an_offline_device_acts_once_it_comes_online() {
    let mut s = sim().await;
    let drawer = "enterprises/E1/devices/drawer";
    let op = s.reset(drawer, Some(GOOD_PIN), &[]).await;
    let name = op["name"].as_str().unwrap().to_owned();
    let view = s.admin(Method::GET, drawer, None).await.body;
    assert_eq!(view["pendingCommands"], 1);
    assert_eq!(view["nextSync"], Value::Null, "offline devices never sync");
    let sync = s.admin(Method::POST, &format!("{drawer}:sync"), None).await;
    assert_eq!(sync.status, StatusCode::BAD_REQUEST);
    assert_eq!(s.get(&format!("v1/{name}")).await.body["done"], false);

    let r = s
        .admin(Method::PATCH, drawer, Some(json!({"online": true})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let done = s.wait_done(&name).await;
    assert!(done["response"].is_object(), "{done}");
}

#[tokio::test]
async fn a_command_expires_when_the_clock_passes_its_duration() {
    let mut s = sim().await;
    let drawer = "enterprises/E1/devices/drawer";
    let r = s
        .post(
            &format!("v1/{drawer}:issueCommand"),
            json!({"type": "RESET_PASSWORD", "newPassword": GOOD_PIN, "duration": "60s"}),
        )
        .await;
    assert_eq!(r.body["metadata"]["duration"], "60s");
    let name = r.body["name"].as_str().unwrap().to_owned();
    let clock = s
        .admin(Method::POST, "clock:advance", Some(json!({"seconds": 59})))
        .await;
    assert_eq!(clock.status, StatusCode::OK, "{:?}", clock.body);
    assert_eq!(s.get(&format!("v1/{name}")).await.body["done"], false);
    s.admin(Method::POST, "clock:advance", Some(json!({"seconds": 2})))
        .await;
    let op = s.get(&format!("v1/{name}")).await.body;
    assert_eq!(
        op["done"], true,
        "expiry is immediate after the clock moves"
    );
    assert_eq!(op["error"]["code"], 4);
    assert!(op["metadata"].get("errorCode").is_none());
    let commands = s
        .admin(Method::GET, &format!("{drawer}/commands"), None)
        .await
        .body;
    assert_eq!(commands["commands"][0]["state"], "EXPIRED");
    // Coming online later does not resurrect it.
    s.admin(Method::PATCH, drawer, Some(json!({"online": true})))
        .await;
    s.admin(Method::POST, &format!("{drawer}:sync"), None).await;
    assert_eq!(s.get(&format!("v1/{name}")).await.body["error"]["code"], 4);
    let now = s.admin(Method::GET, "clock", None).await.body;
    assert!(
        now["now"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .is_ok()
    );
}

#[tokio::test]
async fn cancel_before_the_device_acts_and_after() {
    let mut s = sim().await;
    let slow = "enterprises/E1/devices/slow";
    let op = s.reset(slow, Some(GOOD_PIN), &[]).await;
    let name = op["name"].as_str().unwrap().to_owned();
    let r = s.post(&format!("v1/{name}:cancel"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({}));
    let cancelled = s.get(&format!("v1/{name}")).await.body;
    assert_eq!(cancelled["done"], true);
    assert_eq!(cancelled["error"]["code"], 1);
    assert!(cancelled["metadata"].get("errorCode").is_none());
    s.admin(Method::POST, &format!("{slow}:sync"), None).await;
    let view = s.admin(Method::GET, slow, None).await.body;
    assert_eq!(view["locked"], false);
    assert_eq!(
        s.admin(Method::GET, &format!("{slow}/commands"), None)
            .await
            .body["commands"][0]["state"],
        "CANCELLED"
    );

    let op = s.reset(PIXEL, Some(GOOD_PIN), &[]).await;
    let name = op["name"].as_str().unwrap().to_owned();
    let done = s.wait_done(&name).await;
    let r = s.post(&format!("v1/{name}:cancel"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        s.get(&format!("v1/{name}")).await.body,
        done,
        "no change once done"
    );

    let missing = s
        .post(&format!("v1/{PIXEL}/operations/12345:cancel"), json!({}))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn operations_list_pages_through_every_command() {
    let mut s = sim().await;
    let slow = "enterprises/E1/devices/slow";
    let mut names = Vec::new();
    for _ in 0..3 {
        let op = s.reset(slow, Some(GOOD_PIN), &[]).await;
        names.push(op["name"].as_str().unwrap().to_owned());
    }
    let first = s
        .get(&format!("v1/{slow}/operations?pageSize=2&filter=whatever"))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    check("ListOperationsResponse", &first.body).unwrap();
    let token = first.body["nextPageToken"].as_str().unwrap().to_owned();
    let second = s
        .get(&format!(
            "v1/{slow}/operations?pageSize=2&pageToken={token}"
        ))
        .await;
    let listed: Vec<&str> = first.body["operations"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second.body["operations"].as_array().unwrap())
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, names);
    assert!(second.body.get("nextPageToken").is_none());
    assert_eq!(
        first.body["operations"][0]["metadata"]["newPassword"],
        GOOD_PIN
    );
    let empty = s.get(&format!("v1/{PIXEL}/operations")).await;
    assert_eq!(empty.body["operations"], json!([]));
}

#[tokio::test]
async fn malformed_commands_are_refused_and_not_recorded() {
    let mut s = sim().await;
    let path = format!("v1/{PIXEL}:issueCommand");
    for bad in [
        json!({"type": "FORMAT_DISK"}),
        json!({"type": "RESET_PASSWORD", "duration": "10 minutes"}),
        json!({"type": "RESET_PASSWORD", "resetPasswordFlags": ["LOCK_TOMORROW"]}),
        json!({"type": "RESET_PASSWORD", "newPasscode": GOOD_PIN}),
    ] {
        let r = s.post(&path, bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(error_status(&r.body), "INVALID_ARGUMENT", "{bad}");
    }
    let unknown = s.post(&format!("v1/{PIXEL}:wipe"), json!({})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        s.admin(Method::GET, "commands", None).await.body,
        json!({"devices": {}})
    );
}
