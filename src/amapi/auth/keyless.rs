//! Keyless credentials through Google's own Rust library, google-cloud-auth: Workload Identity
//! Federation (`external_account`: a subject token file exchanged at STS, then optionally a
//! service account impersonated through IAM Credentials), `impersonated_service_account`, and
//! the metadata server (GKE Workload Identity, Compute Engine; `GCE_METADATA_HOST` honoured).
//!
//! The library refreshes each token in the background before it expires, reading the subject
//! token file again each time, so a kubelet-rotated token is picked up. One credential is kept
//! per set of scopes; after an error, or when a refresh is forced, it is built afresh (the
//! library stops refreshing after a permanent error).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use google_cloud_auth::credentials::{AccessTokenCredentials, external_account, impersonated, mds};
use serde_json::Value;

/// Where the metadata server is when `GCE_METADATA_HOST` does not say (Google's name for it).
pub const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";
/// The longest wait for one token (the library itself sets no deadline).
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

pub enum Config {
    ExternalAccount(Value),
    ImpersonatedServiceAccount(Value),
    MetadataServer,
}

pub struct Keyless {
    config: Config,
    cache: Mutex<HashMap<Vec<String>, AccessTokenCredentials>>,
}

impl Keyless {
    pub fn new(config: Config) -> Self {
        Keyless {
            config,
            cache: Mutex::default(),
        }
    }

    fn build(&self, scopes: &[&str]) -> Result<AccessTokenCredentials, String> {
        let built = match &self.config {
            Config::ExternalAccount(json) => external_account::Builder::new(json.clone())
                .with_scopes(scopes.iter().copied())
                .build_access_token_credentials(),
            Config::ImpersonatedServiceAccount(json) => impersonated::Builder::new(json.clone())
                .with_scopes(scopes.iter().copied())
                .build_access_token_credentials(),
            Config::MetadataServer => mds::Builder::default()
                .with_scopes(scopes.iter().copied())
                .build_access_token_credentials(),
        };
        built.map_err(|e| chain(&e))
    }

    pub async fn token_for(&self, scopes: &[&str], refresh: bool) -> Result<String, String> {
        let key: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        let credentials = {
            let mut cache = self.cache.lock().expect("credentials cache lock");
            if refresh {
                cache.remove(&key);
            }
            match cache.get(&key) {
                Some(c) => c.clone(),
                None => {
                    let c = self.build(scopes)?;
                    cache.insert(key.clone(), c.clone());
                    c
                }
            }
        };
        let result = tokio::time::timeout(TOKEN_TIMEOUT, credentials.access_token()).await;
        let error = match result {
            Ok(Ok(token)) => return Ok(token.token),
            Ok(Err(e)) => explain(&chain(&e)),
            Err(_) => format!("no token within {}s", TOKEN_TIMEOUT.as_secs()),
        };
        self.cache
            .lock()
            .expect("credentials cache lock")
            .remove(&key);
        Err(error)
    }
}

/// An error and its sources on one line, each message once (the library's messages often repeat
/// their source's).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let message = e.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = e.source();
    }
    text
}

/// Google's own words when the library's message carries an error body: an OAuth error (STS:
/// `{"error": "invalid_grant", "error_description": ...}`) or a Google API error (IAM
/// Credentials: `{"error": {"code", "status", "message"}}`); else the message as it is.
pub fn explain(message: &str) -> String {
    let body = message.match_indices("{\"error\"").find_map(|(at, _)| {
        serde_json::Deserializer::from_str(&message[at..])
            .into_iter::<Value>()
            .next()?
            .ok()
    });
    let Some(body) = body else {
        return message.to_owned();
    };
    match &body["error"] {
        Value::String(error) => format!(
            "the security token service refused the subject token: {error}: {}",
            body["error_description"]
                .as_str()
                .unwrap_or("(no description)")
        ),
        Value::Object(error) => format!(
            "IAM Credentials refused the service account's token: {} {}: {}",
            error.get("code").and_then(Value::as_i64).unwrap_or(0),
            error.get("status").and_then(Value::as_str).unwrap_or(""),
            error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("(no message)")
        ),
        _ => message.to_owned(),
    }
}

/// The metadata server's host: `GCE_METADATA_HOST` (Google's libraries' variable), else Google's.
pub fn metadata_host() -> String {
    std::env::var("GCE_METADATA_HOST")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_METADATA_HOST.to_owned())
}

/// The metadata server's service account, asked the way Google's libraries ask; an error here
/// means there is no metadata server (not on GKE or Compute Engine, or `GCE_METADATA_HOST` wrong).
pub async fn metadata_server_email(host: &str) -> Result<String, String> {
    let url = format!("http://{host}/computeMetadata/v1/instance/service-accounts/default/email");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .get(&url)
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .map_err(|e| format!("no metadata server at http://{host}/: {}", chain(&e)))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| chain(&e))?;
    if !status.is_success() {
        return Err(format!(
            "the metadata server at http://{host}/ answered {status} for the service account's email: {}",
            text.trim()
        ));
    }
    Ok(text.trim().to_owned())
}

/// The service account an IAM Credentials `generateAccessToken` URL names.
pub fn impersonated_email(url: &str) -> Option<&str> {
    let rest = url.split("/serviceAccounts/").nth(1)?;
    let email = rest.split(':').next()?;
    (!email.is_empty()).then_some(email)
}

/// The IAM principal Google makes of a subject token for a workload identity provider:
/// `principal://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/subject/S`.
pub fn federated_principal(audience: &str, subject: &str) -> Option<String> {
    let pool = audience.strip_prefix("//iam.googleapis.com/")?;
    let (pool, _provider) = pool.rsplit_once("/providers/")?;
    Some(format!(
        "principal://iam.googleapis.com/{pool}/subject/{subject}"
    ))
}

/// The `sub` claim of a JWT, read without checking it (for the startup log only).
pub fn jwt_subject(token: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Claims {
        sub: Option<String>,
    }
    jsonwebtoken::dangerous::insecure_decode::<Claims>(token.trim())
        .ok()?
        .claims
        .sub
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities() {
        assert_eq!(
            impersonated_email(
                "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/op@p.iam.gserviceaccount.com:generateAccessToken"
            ),
            Some("op@p.iam.gserviceaccount.com")
        );
        assert_eq!(impersonated_email("https://example.com/token"), None);
        assert_eq!(
            federated_principal(
                "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/k8s",
                "system:serviceaccount:ns:sa"
            )
            .as_deref(),
            Some(
                "principal://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/subject/system:serviceaccount:ns:sa"
            )
        );
        assert_eq!(federated_principal("https://example.com", "s"), None);
        assert_eq!(jwt_subject("not a jwt"), None);
        // {"alg":"RS256"}.{"sub":"system:serviceaccount:ns:sa"}.sig, unsigned.
        let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6bnM6c2EifQ.c2ln";
        assert_eq!(
            jwt_subject(token).as_deref(),
            Some("system:serviceaccount:ns:sa")
        );
    }

    #[test]
    fn googles_words_are_quoted() {
        let sts = r#"failed to exchange token, body=<{"error":"invalid_grant","error_description":"The audience in ID Token [x] does not match the expected audience."}> and future attempts will not succeed: HTTP status client error (400 Bad Request)"#;
        assert_eq!(
            explain(sts),
            "the security token service refused the subject token: invalid_grant: The audience in ID Token [x] does not match the expected audience."
        );
        let iam = r#"failed to fetch token: the HTTP transport reports a [403] error: {"error":{"code":403,"message":"Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).","status":"PERMISSION_DENIED"}}"#;
        assert_eq!(
            explain(iam),
            "IAM Credentials refused the service account's token: 403 PERMISSION_DENIED: Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)."
        );
        assert_eq!(explain("connection refused"), "connection refused");
        assert_eq!(explain(r#"body {"error" cut"#), r#"body {"error" cut"#);
    }

    #[test]
    fn chains_say_each_message_once() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let e = E(
            "failed to exchange token: HTTP 400",
            Some(Box::new(E(
                "HTTP 400",
                Some(Box::new(E("invalid_grant", None))),
            ))),
        );
        assert_eq!(
            chain(&e),
            "failed to exchange token: HTTP 400: invalid_grant"
        );
    }
}
