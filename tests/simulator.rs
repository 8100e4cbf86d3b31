//! The AMAPI simulator over real HTTP: OAuth, every AMAPI call, device outcomes, quota, faults,
//! policies, the admin API, the discovery-document contract, and Google's own Python client.
//! (Logs are checked in `simulator_logs.rs`, alone in their process.)

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::discovery::{self, check, check_command_operation};
use support::sim::{GRANT_TYPE, Patience, TestSim};

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

// ---- OAuth ----

#[tokio::test]
async fn token_endpoint_accepts_a_good_assertion_and_refuses_bad_ones() {
    let s = sim().await;
    // Google's libraries name Google's endpoint as the audience whatever the key file says.
    let google_aud = s.assertion(|c| c["aud"] = json!("https://oauth2.googleapis.com/token"));
    let r = s.token_request(GRANT_TYPE, &google_aud).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let good = s.token_request(GRANT_TYPE, &s.assertion(|_| {})).await;
    assert_eq!(good.status, StatusCode::OK, "{:?}", good.body);
    assert_eq!(good.body["token_type"], "Bearer");
    assert_eq!(good.body["expires_in"], 3599);
    assert!(good.body["access_token"].as_str().unwrap().len() > 20);

    let other_key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let other_pem =
        rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&other_key, Default::default()).unwrap();
    let forged = s.assertion_signed_by(&other_pem, |_| {});

    let now = jiff::Timestamp::now().as_second();
    let cases: Vec<(&str, String, &str)> = vec![
        ("signed with another key", forged, "invalid_grant"),
        (
            "wrong audience",
            s.assertion(|c| c["aud"] = json!("https://example.com/token")),
            "invalid_grant",
        ),
        (
            "wrong issuer",
            s.assertion(|c| c["iss"] = json!("someone@example.iam.gserviceaccount.com")),
            "invalid_grant",
        ),
        (
            "wrong scope",
            s.assertion(|c| c["scope"] = json!("https://www.googleapis.com/auth/cloud-platform")),
            "invalid_scope",
        ),
        (
            "expired",
            s.assertion(|c| {
                c["iat"] = json!(now - 7200);
                c["exp"] = json!(now - 3600);
            }),
            "invalid_grant",
        ),
        (
            "longer than an hour",
            s.assertion(|c| c["exp"] = json!(now + 7200)),
            "invalid_grant",
        ),
        ("not a JWT", "not.a.jwt".to_string(), "invalid_grant"),
    ];
    for (what, assertion, error) in cases {
        let r = s.token_request(GRANT_TYPE, &assertion).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {:?}", r.body);
        assert_eq!(r.body["error"], error, "{what}: {:?}", r.body);
        assert!(r.body["error_description"].is_string(), "{what}");
    }
    let r = s
        .token_request("client_credentials", &s.assertion(|_| {}))
        .await;
    assert_eq!(r.body["error"], "unsupported_grant_type");
    let counters = s.counters().await;
    assert_eq!(
        counters["tokens"], 2,
        "only the good assertions got a token"
    );
    assert_eq!(counters["methods"]["devices.get"], 0);
}

/// yup-oauth2's service-account flow (what a Rust client uses) gets a working token.
#[tokio::test]
async fn yup_oauth2_authenticates_against_the_simulator() {
    let s = sim().await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let key = yup_oauth2::parse_service_account_key(s.sim.credentials_json()).unwrap();
    let auth = yup_oauth2::ServiceAccountAuthenticator::builder(key)
        .build()
        .await
        .unwrap();
    let token = auth.token(&[support::sim::SCOPE]).await.unwrap();
    let token = token.token().unwrap();
    let r = s
        .amapi_with(Method::GET, &format!("v1/{PIXEL}"), None, Some(token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(s.counters().await["tokens"], 1);
}

#[tokio::test]
async fn amapi_calls_need_a_valid_unexpired_token() {
    let s = TestSim::start(&format!("settings: {{tokenTtl: 1s}}\n{FLEET}")).await;
    let path = format!("v1/{PIXEL}");
    for token in [None, Some("ya29.made-up")] {
        let r = s.amapi_with(Method::GET, &path, None, token).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(error_status(&r.body), "UNAUTHENTICATED");
        assert!(r.headers.contains_key("www-authenticate"));
    }
    let issued = s.token_request(GRANT_TYPE, &s.assertion(|_| {})).await;
    assert_eq!(issued.body["expires_in"], 1);
    let token = issued.body["access_token"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let r = s.amapi_with(Method::GET, &path, None, Some(&token)).await;
    assert_eq!(r.status, StatusCode::OK, "a fresh token works");
    let patience = Patience::new("the 1s token to expire");
    loop {
        let r = s.amapi_with(Method::GET, &path, None, Some(&token)).await;
        if r.status == StatusCode::UNAUTHORIZED {
            assert_eq!(error_status(&r.body), "UNAUTHENTICATED");
            break;
        }
        assert_eq!(r.status, StatusCode::OK);
        patience.wait().await;
    }
    assert!(started.elapsed() >= Duration::from_millis(900));
    let counters = s.counters().await;
    assert!(counters["unauthenticated"].as_u64().unwrap() >= 3);
}

// ---- devices ----

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

// ---- quota and faults ----

#[tokio::test]
async fn over_quota_calls_get_429_with_retry_after() {
    let mut s = TestSim::start(&format!(
        "settings: {{quota: {{requests: 3, window: 100s}}}}\n{FLEET}"
    ))
    .await;
    let path = format!("v1/{PIXEL}");
    for _ in 0..3 {
        assert_eq!(s.get(&path).await.status, StatusCode::OK);
    }
    // Neither tokens nor the admin API use quota.
    s.fresh_token().await;
    s.admin(Method::GET, "counters", None).await;
    let r = s.get(&path).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_status(&r.body), "RESOURCE_EXHAUSTED");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((98..=100).contains(&retry), "{retry}");
    let counters = s.counters().await;
    assert_eq!(counters["quotaRejected"], 1);
    assert_eq!(counters["methods"]["devices.get"], 4);

    let r = s
        .admin(
            Method::PUT,
            "quota",
            Some(json!({"requests": 1000, "window": "100s"})),
        )
        .await;
    assert_eq!(r.body, json!({"requests": 1000, "window": "100s"}));
    assert_eq!(s.get(&path).await.status, StatusCode::OK, "a fresh window");
}

#[tokio::test]
async fn injected_faults() {
    let mut s = sim().await;
    let path = format!("v1/{PIXEL}");
    let token = s.token().await;
    // Errors: 503 or 500, before processing: no command is created.
    let set = s
        .admin(Method::PUT, "faults", Some(json!({"errorRate": 1.0})))
        .await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    let r = s
        .amapi_with(
            Method::POST,
            &format!("{path}:issueCommand"),
            Some(json!({"type": "RESET_PASSWORD", "newPassword": GOOD_PIN})),
            Some(&token),
        )
        .await;
    assert!(
        [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::INTERNAL_SERVER_ERROR
        ]
        .contains(&r.status),
        "{:?}",
        r.status
    );
    assert!(["UNAVAILABLE", "INTERNAL"].contains(&error_status(&r.body)));
    assert_eq!(
        s.admin(Method::GET, "commands", None).await.body["devices"],
        json!({})
    );

    // Throttling: 429 with Retry-After: 1.
    s.admin(Method::PUT, "faults", Some(json!({"throttleRate": 1.0})))
        .await;
    let r = s.get(&path).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers["retry-after"], "1");

    // Latency on every response.
    s.admin(Method::PUT, "faults", Some(json!({"latency": "300ms"})))
        .await;
    let started = Instant::now();
    assert_eq!(s.get(&path).await.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));

    // Dropped after processing: the client sees a transport error, the command exists.
    s.admin(Method::PUT, "faults", Some(json!({"dropRate": 1.0})))
        .await;
    let sent = s
        .send(
            Method::POST,
            &format!("{path}:issueCommand"),
            Some(json!({"type": "RESET_PASSWORD", "newPassword": GOOD_PIN})),
            Some(&token),
        )
        .await;
    let failed = match sent {
        Err(_) => true,
        Ok(response) => response.bytes().await.is_err(),
    };
    assert!(failed, "a dropped response is a transport error");
    s.admin(Method::PUT, "faults", Some(json!({}))).await;
    let commands = s.admin(Method::GET, "commands", None).await.body;
    assert_eq!(commands["devices"][PIXEL].as_array().unwrap().len(), 1);
    let listed = s.get(&format!("{path}/operations")).await;
    assert_eq!(listed.body["operations"].as_array().unwrap().len(), 1);

    // Garbage after processing: 200 with an HTML page, and the command exists.
    s.admin(Method::PUT, "faults", Some(json!({"garbageRate": 1.0})))
        .await;
    let garbled = s
        .send(
            Method::POST,
            &format!("{path}:issueCommand"),
            Some(json!({"type": "RESET_PASSWORD", "newPassword": GOOD_PIN})),
            Some(&token),
        )
        .await
        .expect("a response");
    assert_eq!(garbled.status(), StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&garbled.bytes().await.unwrap()).is_err());
    s.admin(Method::PUT, "faults", Some(json!({}))).await;
    let commands = s.admin(Method::GET, "commands", None).await.body;
    assert_eq!(commands["devices"][PIXEL].as_array().unwrap().len(), 2);

    let counters = s.counters().await;
    assert_eq!(
        counters["faults"],
        json!({"errors": 1, "throttled": 1, "dropped": 1, "garbled": 1,
               "lateCreations": 0, "lateCreationsPending": 0})
    );
    let bad = s
        .admin(Method::PUT, "faults", Some(json!({"errorRate": 3})))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // Faults never touch the token endpoint or the admin API.
    s.admin(
        Method::PUT,
        "faults",
        Some(json!({"errorRate": 1.0, "dropRate": 1.0})),
    )
    .await;
    s.fresh_token().await;
    assert_eq!(
        s.admin(Method::GET, "faults", None).await.body["errorRate"],
        1.0
    );
}

/// The late-creation fault: Google's front end answers 504 while the request is still on its way;
/// the command is created only later, exactly like any other, and carried out once.
#[tokio::test]
async fn late_creation_fault_creates_the_command_after_the_client_got_an_error() {
    let mut s = sim().await;
    let path = format!("v1/{PIXEL}");
    let command = json!({"type": "RESET_PASSWORD", "newPassword": GOOD_PIN,
                         "resetPasswordFlags": ["LOCK_NOW"], "duration": "600.000123456s"});
    // Limited to other methods, the fault leaves issueCommand alone.
    let set = s
        .admin(
            Method::PUT,
            "faults",
            Some(json!({"lateCreationRate": 1.0, "lateCreationDelay": "300s", "methods": ["devices.get"]})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    assert_eq!(set.body["lateCreationDelay"], "300s");
    let normal = s
        .post(&format!("{path}:issueCommand"), command.clone())
        .await;
    assert_eq!(normal.status, StatusCode::OK, "{:?}", normal.body);
    assert_eq!(
        s.get(&path).await.status,
        StatusCode::OK,
        "no effect on gets"
    );
    s.wait_done(normal.body["name"].as_str().unwrap()).await;

    s.admin(
        Method::PUT,
        "faults",
        Some(json!({"lateCreationRate": 1.0, "lateCreationDelay": "300s"})),
    )
    .await;
    // A malformed command is refused at once, as usual.
    let bad = s
        .post(&format!("{path}:issueCommand"), json!({"type": "FLY"}))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let sent_at = s.admin(Method::GET, "clock", None).await.body["now"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap();
    let r = s
        .post(&format!("{path}:issueCommand"), command.clone())
        .await;
    let answered_at = s.admin(Method::GET, "clock", None).await.body["now"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap();
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT, "{:?}", r.body);
    assert_eq!(error_status(&r.body), "DEADLINE_EXCEEDED");
    assert!(!r.body.to_string().contains(GOOD_PIN));
    // Only the first command exists, for now.
    assert_eq!(
        operations(&mut s, PIXEL).await.len(),
        1,
        "nothing new right after"
    );
    let counters = s.counters().await;
    assert_eq!(counters["faults"]["lateCreations"], 1);
    assert_eq!(counters["faults"]["lateCreationsPending"], 1);
    assert_eq!(counters["methods"]["devices.issueCommand"], 3);
    // Not before its time.
    s.admin(Method::POST, "clock:advance", Some(json!({"seconds": 290})))
        .await;
    assert_eq!(operations(&mut s, PIXEL).await.len(), 1);
    assert_eq!(
        s.admin(Method::GET, &format!("{PIXEL}/commands"), None)
            .await
            .body["commands"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Once due (the fault switched off meanwhile: what was accepted still happens).
    s.admin(Method::PUT, "faults", Some(json!({}))).await;
    s.admin(Method::POST, "clock:advance", Some(json!({"seconds": 11})))
        .await;
    let ops = operations(&mut s, PIXEL).await;
    assert_eq!(ops.len(), 2);
    assert_eq!(s.counters().await["faults"]["lateCreationsPending"], 0);
    let late = &ops[1];
    check_command_operation(late).unwrap();
    let m = &late["metadata"];
    assert_eq!(m["duration"], "600.000123456s");
    assert_eq!(m["newPassword"], GOOD_PIN, "echoed like any command");
    assert_eq!(m["resetPasswordFlags"], json!(["LOCK_NOW"]));
    let created: jiff::Timestamp = m["createTime"].as_str().unwrap().parse().unwrap();
    let delay = jiff::SignedDuration::from_secs(300);
    assert!(
        created >= sent_at + delay && created <= answered_at + delay,
        "created {created}, sent {sent_at}"
    );
    let name = late["name"].as_str().unwrap().to_owned();
    let id = |name: &str| name.rsplit('/').next().unwrap().parse::<u64>().unwrap();
    assert!(
        id(&name) > id(normal.body["name"].as_str().unwrap()),
        "numbered when created"
    );
    let done = s.wait_done(&name).await;
    assert!(done["response"].is_object(), "{done}");
    // Carried out once, and never created again.
    s.admin(
        Method::POST,
        "clock:advance",
        Some(json!({"seconds": 3600})),
    )
    .await;
    let commands = s
        .admin(Method::GET, &format!("{PIXEL}/commands"), None)
        .await
        .body;
    let commands = commands["commands"].as_array().unwrap();
    assert_eq!(commands.len(), 2);
    assert_eq!(commands[1]["operation"], json!(name));
    assert_eq!(commands[1]["state"], "SUCCEEDED");
    assert_eq!(commands[1]["duration"], "600.000123456s");
    assert_eq!(s.counters().await["methods"]["devices.issueCommand"], 3);
}

async fn operations(s: &mut TestSim, device: &str) -> Vec<Value> {
    let r = s.get(&format!("v1/{device}/operations")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["operations"].as_array().unwrap().clone()
}

/// `Command.duration` with nanoseconds: accepted, used for expiry, echoed as protobuf JSON writes
/// it.
#[tokio::test]
async fn command_durations_keep_their_nanoseconds() {
    let mut s = sim().await;
    let drawer = "enterprises/E1/devices/drawer";
    for (sent, echoed) in [
        ("600.000123456s", "600.000123456s"),
        ("600s", "600s"),
        ("90.5s", "90.500s"),
        ("60.000001000s", "60.000001s"),
    ] {
        let r = s
            .post(
                &format!("v1/{drawer}:issueCommand"),
                json!({"type": "RESET_PASSWORD", "newPassword": GOOD_PIN, "duration": sent}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{sent}: {:?}", r.body);
        assert_eq!(r.body["metadata"]["duration"], echoed, "{sent}");
        check_command_operation(&r.body).unwrap();
        let got = s
            .get(&format!("v1/{}", r.body["name"].as_str().unwrap()))
            .await;
        assert_eq!(got.body["metadata"]["duration"], echoed, "{sent}");
    }
    for bad in ["600.0000001234s", "-600s", "600.s"] {
        let r = s
            .post(
                &format!("v1/{drawer}:issueCommand"),
                json!({"type": "RESET_PASSWORD", "duration": bad}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    // The fraction counts for expiry: 60.5 s is still pending 60 s (and the few real
    // milliseconds this test takes) later, expired a second after that.
    let r = s
        .post(
            &format!("v1/{drawer}:issueCommand"),
            json!({"type": "RESET_PASSWORD", "newPassword": GOOD_PIN, "duration": "60.500s"}),
        )
        .await;
    let name = r.body["name"].as_str().unwrap().to_owned();
    s.admin(Method::POST, "clock:advance", Some(json!({"seconds": 60})))
        .await;
    assert_eq!(s.get(&format!("v1/{name}")).await.body["done"], false);
    s.admin(Method::POST, "clock:advance", Some(json!({"seconds": 1})))
        .await;
    assert_eq!(s.get(&format!("v1/{name}")).await.body["error"]["code"], 4);
}

// ---- policies ----

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

// ---- inspection ----

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

// ---- the contract ----

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

// ---- Google's own client ----

fn venv_python() -> std::path::PathBuf {
    let python = discovery::cache_dir().join("venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run hack/discovery (or make discovery)",
        python.display()
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn googles_python_client_resets_a_passcode() {
    let s = sim().await;
    let python = venv_python();
    let dir = std::env::temp_dir().join(format!("sim-python-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_path = dir.join("sa.json");
    std::fs::write(&key_path, s.sim.credentials_json()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/google_client.py");
    let base = s.base.clone();
    let key = key_path.clone();
    let output = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(python)
            .arg(script)
            .args(["--credentials".as_ref(), key.as_os_str()])
            .args(["--base-url", &base, "--device", PIXEL])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the venv's python");
        // The passcode goes in on stdin, never as an argument.
        child
            .stdin
            .take()
            .unwrap()
            .write_all(GOOD_PIN.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "google_client.py failed:\n{text}");
    assert!(text.contains("SUCCEEDED"), "{text}");
    assert!(
        !text.contains(GOOD_PIN),
        "the script never prints the passcode"
    );
    let commands = s.admin(Method::GET, "commands", None).await.body;
    let devices = commands["devices"].as_object().unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(
        devices[PIXEL].as_array().unwrap().len(),
        1,
        "exactly one command"
    );
    assert_eq!(devices[PIXEL][0]["state"], "SUCCEEDED");
    let counters = s.counters().await;
    assert_eq!(counters["tokens"], 1);
    assert_eq!(counters["methods"]["devices.issueCommand"], 1);
}
