//! Google's OAuth 2.0 token endpoint for service accounts (JWT bearer grant, RFC 7523), and the
//! access tokens it hands out. Tokens live on real time, like the client's clock.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::{Value, json};

use super::credentials::CLIENT_EMAIL;
use super::server::Shared;

/// The scope AMAPI needs.
pub const SCOPE: &str = "https://www.googleapis.com/auth/androidmanagement";
/// The scopes Pub/Sub accepts.
pub const PUBSUB_SCOPE: &str = "https://www.googleapis.com/auth/pubsub";
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// An assertion must ask for one of these: the APIs the simulator serves. (Google accepts any
/// scope; cloud-platform alone is refused here because AMAPI does not accept it.)
const SERVED_SCOPES: &[&str] = &[SCOPE, PUBSUB_SCOPE];
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google refuses assertions meant to live longer than this.
const MAX_ASSERTION_LIFETIME: i64 = 3600;
/// How far in the future `iat` may be (clock skew between client and server).
const IAT_SKEW: i64 = 60;
/// Google's token endpoint. Google's own libraries (google-auth for Python) always name it as the
/// audience, whatever `token_uri` the key file says, and Google accepts it; so does the simulator.
pub const GOOGLE_TOKEN_ENDPOINT: &str = "https://oauth2.googleapis.com/token";

/// Issued access tokens, when each expires, the scopes it was granted and whose it is.
#[derive(Debug)]
pub struct Tokens {
    ttl: Duration,
    issued: HashMap<String, Grant>,
}

#[derive(Debug)]
struct Grant {
    expires: Instant,
    scopes: Vec<String>,
    /// A service account's email, or a federated `principal://` (IAM's member names).
    principal: String,
}

impl Tokens {
    pub fn new(ttl: Duration) -> Self {
        Tokens {
            ttl,
            issued: HashMap::new(),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new random token of the simulated service account valid for the configured lifetime,
    /// for `scopes`.
    pub fn issue(&mut self, now: Instant, scopes: Vec<String>) -> String {
        self.issue_for(now, self.ttl, scopes, CLIENT_EMAIL.to_owned())
    }

    /// A new random token for `principal`, valid for `ttl`.
    pub fn issue_for(
        &mut self,
        now: Instant,
        ttl: Duration,
        scopes: Vec<String>,
        principal: String,
    ) -> String {
        self.issued.retain(|_, grant| grant.expires > now);
        let random: String = std::iter::repeat_with(fastrand::alphanumeric)
            .take(64)
            .collect();
        let token = format!("ya29.sim-{random}");
        let grant = Grant {
            expires: now + ttl,
            scopes,
            principal,
        };
        self.issued.insert(token.clone(), grant);
        token
    }

    /// Whose a valid token is; `None` when it is unknown or expired.
    pub fn principal(&self, token: &str, now: Instant) -> Option<&str> {
        self.issued
            .get(token)
            .filter(|grant| grant.expires > now)
            .map(|grant| grant.principal.as_str())
    }

    #[cfg(test)]
    pub fn is_valid(&self, token: &str, now: Instant) -> bool {
        self.scopes(token, now).is_some()
    }

    /// The scopes of a valid token; `None` when it is unknown or expired.
    pub fn scopes(&self, token: &str, now: Instant) -> Option<&[String]> {
        self.issued
            .get(token)
            .filter(|grant| grant.expires > now)
            .map(|grant| grant.scopes.as_slice())
    }
}

/// An OAuth error response (RFC 6749 section 5.2), as Google's token endpoint sends them.
#[derive(Debug, PartialEq, Eq)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn grant(description: impl Into<String>) -> Self {
        OAuthError {
            error: "invalid_grant",
            description: description.into(),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        (StatusCode::BAD_REQUEST, Json(body)).into_response()
    }
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    aud: Option<Value>,
    scope: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
}

/// Checks a JWT-bearer assertion: RS256 signed by the service account's key, issued by its
/// email, for this token endpoint (or Google's), asking for the AMAPI or the Pub/Sub scope,
/// short-lived and unexpired. Returns the scopes asked for.
pub fn verify_assertion(
    assertion: &str,
    key: &DecodingKey,
    token_uri: &str,
    now_unix: i64,
) -> Result<Vec<String>, OAuthError> {
    // Google accepts base64url segments with or without padding (yup-oauth2 pads them); the
    // signature covers the segments exactly as sent.
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err(OAuthError::grant(
            "Invalid JWT: expected three dot-separated segments.",
        ));
    };
    let unpad = |segment: &str| segment.trim_end_matches('=').to_owned();
    let normalized = format!("{}.{}.{}", unpad(header), unpad(payload), unpad(signature));
    let decoded = jsonwebtoken::dangerous::insecure_decode::<Claims>(&normalized)
        .map_err(|e| OAuthError::grant(format!("Invalid JWT: {e}.")))?;
    if decoded.header.alg != Algorithm::RS256 {
        return Err(OAuthError::grant(
            "Invalid JWT: the assertion must be signed with RS256.",
        ));
    }
    let message = format!("{header}.{payload}");
    let signed =
        jsonwebtoken::crypto::verify(&unpad(signature), message.as_bytes(), key, Algorithm::RS256)
            .unwrap_or(false);
    if !signed {
        return Err(OAuthError::grant(
            "Invalid JWT signature: not signed by this service account's key.",
        ));
    }
    let claims = decoded.claims;
    if claims.iss.as_deref() != Some(CLIENT_EMAIL) {
        return Err(OAuthError::grant(
            "Invalid JWT: iss is not this service account's client_email.",
        ));
    }
    let accepted = |a: &str| a == token_uri || a == GOOGLE_TOKEN_ENDPOINT;
    let audience_ok = match &claims.aud {
        Some(Value::String(a)) => accepted(a),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(accepted),
        _ => false,
    };
    if !audience_ok {
        return Err(OAuthError::grant(format!(
            "Invalid JWT: aud must be the token endpoint ({token_uri} or {GOOGLE_TOKEN_ENDPOINT})."
        )));
    }
    let scopes: Vec<String> = claims
        .scope
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if !scopes.iter().any(|s| SERVED_SCOPES.contains(&s.as_str())) {
        return Err(OAuthError {
            error: "invalid_scope",
            description: format!("The scope claim must include {SCOPE} or {PUBSUB_SCOPE}."),
        });
    }
    let (Some(iat), Some(exp)) = (claims.iat, claims.exp) else {
        return Err(OAuthError::grant("Invalid JWT: iat and exp are required."));
    };
    if exp <= now_unix {
        return Err(OAuthError::grant(
            "Invalid JWT: the assertion has expired (exp).",
        ));
    }
    if iat > now_unix + IAT_SKEW || exp <= iat || exp - iat > MAX_ASSERTION_LIFETIME {
        return Err(OAuthError::grant(
            "Invalid JWT: iat must not be in the future and exp must be at most one hour after iat.",
        ));
    }
    Ok(scopes)
}

#[derive(Deserialize)]
pub struct TokenRequest {
    grant_type: Option<String>,
    assertion: Option<String>,
}

/// `POST /token`.
pub async fn token(
    State(shared): State<Arc<Shared>>,
    form: Result<Form<TokenRequest>, FormRejection>,
) -> Response {
    let Ok(Form(request)) = form else {
        return OAuthError {
            error: "invalid_request",
            description: "Expected a form-encoded body (application/x-www-form-urlencoded).".into(),
        }
        .into_response();
    };
    if request.grant_type.as_deref() != Some(GRANT_TYPE) {
        return OAuthError {
            error: "unsupported_grant_type",
            description: format!("grant_type must be {GRANT_TYPE}."),
        }
        .into_response();
    }
    let Some(assertion) = request.assertion else {
        return OAuthError {
            error: "invalid_request",
            description: "The assertion parameter is missing.".into(),
        }
        .into_response();
    };
    let now_unix = jiff::Timestamp::now().as_second();
    let scopes = match verify_assertion(
        &assertion,
        &shared.account.decoding_key,
        &shared.token_uri,
        now_unix,
    ) {
        Ok(scopes) => scopes,
        Err(e) => {
            tracing::info!(error = e.error, reason = %e.description, "token request refused");
            return e.into_response();
        }
    };
    let (token, ttl) = {
        let mut tokens = shared.tokens.lock().expect("tokens lock");
        (tokens.issue(Instant::now(), scopes), tokens.ttl())
    };
    shared.counters.lock().expect("counters lock").tokens += 1;
    tracing::debug!(expires_in = ttl.as_secs(), "access token issued");
    Json(json!({
        "access_token": token,
        "expires_in": ttl.as_secs(),
        "token_type": "Bearer",
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire() {
        let t0 = Instant::now();
        let mut tokens = Tokens::new(Duration::from_secs(10));
        let a = tokens.issue(t0, vec![SCOPE.into()]);
        assert!(tokens.is_valid(&a, t0 + Duration::from_secs(9)));
        assert_eq!(tokens.scopes(&a, t0), Some(&[SCOPE.to_owned()][..]));
        assert!(!tokens.is_valid(&a, t0 + Duration::from_secs(10)));
        assert!(!tokens.is_valid("ya29.forged", t0));
        assert_eq!(tokens.principal(&a, t0), Some(CLIENT_EMAIL));
        let b = tokens.issue(t0 + Duration::from_secs(11), vec![PUBSUB_SCOPE.into()]);
        assert_ne!(a, b);
        assert!(!tokens.issued.contains_key(&a), "expired tokens are pruned");
    }
}
