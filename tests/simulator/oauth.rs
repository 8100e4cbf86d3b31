//! OAuth: the token endpoint, a real client's service-account flow, and tokens on AMAPI calls.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use testkit::sim::{GRANT_TYPE, Patience, TestSim};

use crate::{FLEET, PIXEL, error_status, sim};

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
    let token = auth.token(&[testkit::sim::SCOPE]).await.unwrap();
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
