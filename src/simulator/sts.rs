//! Google's Security Token Service, `POST /v1/token` (RFC 8693 token exchange), for one workload
//! identity pool provider trusting one Kubernetes service-account issuer. The subject token is
//! verified as Google verifies it: RS256 signature by a key of the issuer's JWKS (fetched from
//! `{issuer}/.well-known/openid-configuration`, refetched for an unknown `kid`), `iss`, `aud`
//! (the provider's name, with or without `https:`), `exp`, `iat`. The federated token it issues
//! belongs to `principal://iam.googleapis.com/{pool}/subject/{sub}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::fleet::WorkloadIdentitySettings;
use super::oauth::{CLOUD_PLATFORM_SCOPE, OAuthError};
use super::server::Shared;

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const SUBJECT_TOKEN_TYPES: &[&str] = &[
    "urn:ietf:params:oauth:token-type:jwt",
    "urn:ietf:params:oauth:token-type:id_token",
];
/// Clock skew allowed on `exp` and `iat` (Google's is about a minute).
const SKEW: i64 = 60;
/// Google refuses subject tokens meant to live longer than a day.
const MAX_SUBJECT_LIFETIME: i64 = 24 * 3600;

/// The provider, and the issuer's keys as last fetched.
pub struct Federation {
    pub settings: WorkloadIdentitySettings,
    http: reqwest::Client,
    keys: Mutex<Option<JwkSet>>,
}

impl Federation {
    pub fn new(settings: WorkloadIdentitySettings) -> anyhow::Result<Self> {
        crate::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10));
        if let Some(path) = &settings.issuer_ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                anyhow::anyhow!("workloadIdentity.issuerCaFile {}: {e}", path.display())
            })?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                anyhow::anyhow!("workloadIdentity.issuerCaFile {}: {e}", path.display())
            })? {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(Federation {
            settings,
            http: builder.build()?,
            keys: Mutex::new(None),
        })
    }

    /// The issuer's key `kid`, fetched again when the cached set does not hold it.
    async fn key(&self, kid: Option<&str>) -> Result<DecodingKey, String> {
        let mut cached = self.keys.lock().await;
        for fresh in [false, true] {
            if fresh || cached.is_none() {
                *cached = Some(self.fetch_keys().await?);
            }
            let set = cached.as_ref().expect("fetched above");
            let found = match kid {
                Some(kid) => set.find(kid),
                None if set.keys.len() == 1 => set.keys.first(),
                None => None,
            };
            if let Some(jwk) = found {
                return DecodingKey::from_jwk(jwk).map_err(|e| e.to_string());
            }
            if fresh {
                break;
            }
        }
        Err("no key of the issuer's JWKS matches the token's kid".into())
    }

    async fn fetch_keys(&self) -> Result<JwkSet, String> {
        let issuer = self.settings.issuer.trim_end_matches('/');
        let discovery: Value = self
            .get(&format!("{issuer}/.well-known/openid-configuration"))
            .await?;
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or("the OpenID configuration has no jwks_uri")?;
        let set: Value = self.get(jwks_uri).await?;
        serde_json::from_value(set).map_err(|e| format!("{jwks_uri} is not a JWKS: {e}"))
    }

    async fn get(&self, url: &str) -> Result<Value, String> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        response.json().await.map_err(|e| format!("{url}: {e}"))
    }
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Value>,
    exp: Option<i64>,
    iat: Option<i64>,
}

/// Checks a subject token's claims (the signature is checked apart); returns its `sub`.
fn check_claims(
    claims: &Claims,
    settings: &WorkloadIdentitySettings,
    now: i64,
) -> Result<String, OAuthError> {
    if claims.iss.as_deref() != Some(settings.issuer.as_str()) {
        return Err(OAuthError::grant(format!(
            "The issuer in ID Token {} does not match the expected one in config",
            claims.iss.as_deref().unwrap_or("(none)")
        )));
    }
    let https = format!("https:{}", settings.provider);
    let accepted = |a: &str| a == settings.provider || a == https;
    let audiences: Vec<&str> = match &claims.aud {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.iter().any(|a| accepted(a)) {
        return Err(OAuthError::grant(format!(
            "The audience in ID Token [{}] does not match the expected audience.",
            audiences.join(", ")
        )));
    }
    let (Some(exp), Some(iat)) = (claims.exp, claims.iat) else {
        return Err(OAuthError::grant("The ID Token must have exp and iat."));
    };
    if exp + SKEW <= now {
        return Err(OAuthError::grant(format!(
            "ID Token issued at {iat} is stale to sign-in."
        )));
    }
    if iat > now + SKEW || exp - iat > MAX_SUBJECT_LIFETIME {
        return Err(OAuthError::grant(format!(
            "ID Token issued at {iat} with expiry {exp} is not valid: iat must be in the past and the token must expire within 24 hours."
        )));
    }
    match claims.sub.as_deref() {
        Some(sub) if !sub.is_empty() => Ok(sub.to_owned()),
        _ => Err(OAuthError::grant("The ID Token has no sub claim.")),
    }
}

/// Verifies a subject token; returns its `sub`.
async fn verify(federation: &Federation, token: &str, now: i64) -> Result<String, OAuthError> {
    let unreadable = || OAuthError::grant("Unable to parse the ID Token.");
    let header = jsonwebtoken::decode_header(token).map_err(|_| unreadable())?;
    if header.alg != Algorithm::RS256 {
        return Err(OAuthError::grant(
            "Unable to verify the ID Token signature: only RS256 is supported here.",
        ));
    }
    let claims = jsonwebtoken::dangerous::insecure_decode::<Claims>(token)
        .map_err(|_| unreadable())?
        .claims;
    // The issuer first: keys are only ever fetched from the configured one.
    let sub = check_claims(&claims, &federation.settings, now)?;
    let key = federation.key(header.kid.as_deref()).await.map_err(|e| {
        OAuthError::grant(format!(
            "Unable to verify the ID Token signature: cannot get the issuer's keys: {e}"
        ))
    })?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map_err(|_| OAuthError::grant("Unable to verify the ID Token signature."))?;
    Ok(sub)
}

#[derive(Deserialize)]
pub struct ExchangeRequest {
    grant_type: Option<String>,
    audience: Option<String>,
    scope: Option<String>,
    requested_token_type: Option<String>,
    subject_token: Option<String>,
    subject_token_type: Option<String>,
}

fn invalid_request(description: String) -> OAuthError {
    OAuthError {
        error: "invalid_request",
        description,
    }
}

/// `POST /v1/token`.
pub async fn token(
    State(shared): State<Arc<Shared>>,
    form: Result<Form<ExchangeRequest>, FormRejection>,
) -> Response {
    match exchange(&shared, form).await {
        Ok(body) => Json(body).into_response(),
        Err(e) => {
            shared.counters.lock().expect("counters lock").sts_refused += 1;
            tracing::info!(error = e.error, reason = %e.description, "token exchange refused");
            e.into_response()
        }
    }
}

async fn exchange(
    shared: &Shared,
    form: Result<Form<ExchangeRequest>, FormRejection>,
) -> Result<Value, OAuthError> {
    let Ok(Form(request)) = form else {
        return Err(invalid_request(
            "Expected a form-encoded body (application/x-www-form-urlencoded).".into(),
        ));
    };
    if request.grant_type.as_deref() != Some(GRANT_TYPE) {
        return Err(OAuthError {
            error: "unsupported_grant_type",
            description: format!("Invalid value for \"grant_type\": expected {GRANT_TYPE}."),
        });
    }
    let Some(federation) = &shared.federation else {
        return Err(OAuthError {
            error: "invalid_target",
            description: "The target service indicated by the \"audience\" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn't exist.".into(),
        });
    };
    let audience = request.audience.unwrap_or_default();
    if !audience.starts_with("//iam.googleapis.com/") {
        return Err(invalid_request("Invalid value for \"audience\". This value should be the full resource name of the Identity Provider.".into()));
    }
    if audience != federation.settings.provider {
        return Err(OAuthError {
            error: "invalid_target",
            description: "The target service indicated by the \"audience\" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn't exist.".into(),
        });
    }
    if request.requested_token_type.as_deref() != Some(ACCESS_TOKEN_TYPE) {
        return Err(invalid_request(format!(
            "Invalid value for \"requested_token_type\": expected {ACCESS_TOKEN_TYPE}."
        )));
    }
    if !SUBJECT_TOKEN_TYPES.contains(&request.subject_token_type.as_deref().unwrap_or("")) {
        return Err(invalid_request(
            "Invalid value for \"subject_token_type\": expected urn:ietf:params:oauth:token-type:jwt or urn:ietf:params:oauth:token-type:id_token.".into(),
        ));
    }
    let subject_token = request.subject_token.unwrap_or_default();
    if subject_token.is_empty() {
        return Err(invalid_request(
            "The subject_token parameter is missing.".into(),
        ));
    }
    let now = jiff::Timestamp::now().as_second();
    let sub = verify(federation, &subject_token, now).await?;
    let pool = federation.settings.pool().expect("validated");
    let principal = format!("principal://iam.googleapis.com/{pool}/subject/{sub}");
    let mut scopes: Vec<String> = request
        .scope
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() {
        scopes.push(CLOUD_PLATFORM_SCOPE.to_owned());
    }
    // Google's federated token lives as long as the subject token does, at most an hour.
    let exp = jsonwebtoken::dangerous::insecure_decode::<Claims>(&subject_token)
        .ok()
        .and_then(|d| d.claims.exp)
        .unwrap_or(now);
    let (token, ttl) = {
        let mut tokens = shared.tokens.lock().expect("tokens lock");
        let left = Duration::from_secs(u64::try_from(exp - now).unwrap_or(0).max(1));
        let ttl = tokens.ttl().min(left);
        (
            tokens.issue_for(Instant::now(), ttl, scopes, principal),
            ttl,
        )
    };
    {
        let mut counters = shared.counters.lock().expect("counters lock");
        counters.sts_exchanges += 1;
        counters.sts_last_subject = Some(fingerprint(&subject_token));
    }
    tracing::debug!(subject = %sub, expires_in = ttl.as_secs(), "federated token issued");
    Ok(json!({
        "access_token": token,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
    }))
}

/// What the admin API shows of a subject token: the first 16 hex digits of its SHA-256, enough
/// for a test to tell which token was exchanged, useless to anyone else.
pub fn fingerprint(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> WorkloadIdentitySettings {
        WorkloadIdentitySettings {
            provider: "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k".into(),
            issuer: "https://issuer.example".into(),
            issuer_ca_file: None,
            service_accounts: Vec::new(),
        }
    }

    fn claims(edit: impl FnOnce(&mut Value)) -> Claims {
        let mut v = json!({
            "iss": "https://issuer.example",
            "sub": "system:serviceaccount:ns:sa",
            "aud": ["//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k"],
            "iat": 1000,
            "exp": 4600,
        });
        edit(&mut v);
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn claims_are_checked_as_google_checks_them() {
        let s = settings();
        assert_eq!(
            check_claims(&claims(|_| {}), &s, 2000).unwrap(),
            "system:serviceaccount:ns:sa"
        );
        let https = claims(|c| {
            c["aud"] = json!(
                "https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k"
            )
        });
        assert!(check_claims(&https, &s, 2000).is_ok());
        let refused = |c: Claims, now: i64| check_claims(&c, &s, now).unwrap_err().description;
        assert!(
            refused(
                claims(|c| c["aud"] = json!(["https://kubernetes.default.svc"])),
                2000
            )
            .contains("The audience in ID Token [https://kubernetes.default.svc] does not match")
        );
        assert!(
            refused(claims(|c| c["iss"] = json!("https://evil.example")), 2000)
                .contains("The issuer in ID Token https://evil.example does not match")
        );
        assert!(refused(claims(|_| {}), 4600 + SKEW).contains("is stale to sign-in"));
        assert!(check_claims(&claims(|_| {}), &s, 4600 + SKEW - 1).is_ok());
        assert!(refused(claims(|_| {}), 1000 - SKEW - 1).contains("iat must be in the past"));
        assert!(
            refused(
                claims(|c| c["exp"] = json!(1000 + MAX_SUBJECT_LIFETIME + 1)),
                2000
            )
            .contains("within 24 hours")
        );
        assert!(refused(claims(|c| c["sub"] = json!("")), 2000).contains("no sub"));
        assert!(
            refused(
                claims(|c| c.as_object_mut().unwrap().remove("exp").map(drop).unwrap()),
                2000
            )
            .contains("exp and iat")
        );
    }

    #[test]
    fn fingerprints_are_short_and_stable() {
        assert_eq!(fingerprint("a"), fingerprint("a"));
        assert_ne!(fingerprint("a"), fingerprint("b"));
        assert_eq!(fingerprint("a").len(), 16);
    }
}
