//! The simulator's keyless Google endpoints without a cluster: the metadata server's header rule
//! and tokens, STS and IAM Credentials refusing what Google refuses. (Subject-token verification
//! against a real issuer is in tests/cluster/credentials.rs.)

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{PIXEL, sim};

const TOKEN: &str = "computeMetadata/v1/instance/service-accounts/default/token";

#[tokio::test]
async fn the_metadata_server_wants_its_header_and_its_tokens_work() {
    let s = sim().await;
    let url = format!(
        "{}{TOKEN}?scopes=https://www.googleapis.com/auth/androidmanagement",
        s.base
    );
    let bare = s.http.get(&url).send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::FORBIDDEN);
    let r = s
        .http
        .get(&url)
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["metadata-flavor"], "Google");
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    let token = body["access_token"].as_str().unwrap();
    let device = s
        .amapi_with(Method::GET, &format!("v1/{PIXEL}"), None, Some(token))
        .await;
    assert_eq!(device.status, StatusCode::OK, "{:?}", device.body);

    // Without ?scopes= the node's scope, cloud-platform, which AMAPI does not take.
    let r = s
        .http
        .get(format!("{}{TOKEN}", s.base))
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    let device = s
        .amapi_with(Method::GET, &format!("v1/{PIXEL}"), None, Some(token))
        .await;
    assert_eq!(device.status, StatusCode::FORBIDDEN, "{:?}", device.body);

    let email = s
        .http
        .get(format!(
            "{}computeMetadata/v1/instance/service-accounts/default/email",
            s.base
        ))
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(email, s.key["client_email"].as_str().unwrap());
    assert_eq!(s.counters().await["metadataTokens"], 2);
}

#[tokio::test]
async fn sts_and_iam_refuse_as_google_does() {
    let s = sim().await;
    let form = |grant: &str| {
        format!(
            "grant_type={}&audience=%2F%2Fiam.googleapis.com%2Fprojects%2F1%2Flocations%2Fglobal%2FworkloadIdentityPools%2Fp%2Fproviders%2Fk&requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&subject_token=x",
            testkit::sim::form_encode(grant)
        )
    };
    let post = |body: String| {
        s.http
            .post(format!("{}v1/token", s.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let r = post(form("urn:ietf:params:oauth:grant-type:jwt-bearer"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type", "{body}");
    // No workload identity pool configured: the audience names no provider.
    let r = post(form("urn:ietf:params:oauth:grant-type:token-exchange"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_target", "{body}");
    assert_eq!(s.counters().await["sts"]["refused"], 2);

    // IAM Credentials: no token, then a token of a principal with no binding.
    let iam = format!(
        "v1/projects/-/serviceAccounts/{}:generateAccessToken",
        s.key["client_email"].as_str().unwrap()
    );
    let body = json!({"scope": ["https://www.googleapis.com/auth/androidmanagement"], "lifetime": "3600s"});
    let r = s
        .amapi_with(Method::POST, &iam, Some(body.clone()), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    let mds = s
        .http
        .get(format!("{}{TOKEN}", s.base))
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let token = mds["access_token"].as_str().unwrap();
    let r = s
        .amapi_with(Method::POST, &iam, Some(body), Some(token))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    assert_eq!(r.body["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(
        r.body["error"]["message"],
        "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)."
    );
    assert_eq!(s.counters().await["impersonations"], 0);
}
