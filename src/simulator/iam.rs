//! IAM Credentials' `generateAccessToken`: a caller holding `roles/iam.workloadIdentityUser` (or
//! `roles/iam.serviceAccountTokenCreator`) on a service account gets that account's token.
//! `POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken`, Bearer token with the
//! cloud-platform or iam scope, body `{"scope": [...], "lifetime": "3600s"}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::amapi::bearer;
use super::clock::parse_google_duration;
use super::errors::ApiError;
use super::oauth::CLOUD_PLATFORM_SCOPE;
use super::server::Shared;

const IAM_SCOPE: &str = "https://www.googleapis.com/auth/iam";
/// Google's longest token lifetime without the organisation policy that extends it.
const MAX_LIFETIME: Duration = Duration::from_secs(3600);

pub fn router() -> Router<Arc<Shared>> {
    Router::new().route(
        "/v1/projects/{project}/serviceAccounts/{name}",
        post(generate_access_token),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateAccessTokenRequest {
    #[serde(default)]
    scope: Vec<String>,
    #[serde(default)]
    lifetime: Option<String>,
}

/// Whether `principal` is one of `members` (IAM member syntax).
fn is_member(members: &[String], principal: &str) -> bool {
    members.iter().any(|m| {
        if m == principal || m.strip_prefix("serviceAccount:") == Some(principal) {
            return true;
        }
        // principalSet://iam.googleapis.com/{pool}/* : every identity of the pool.
        m.strip_prefix("principalSet://iam.googleapis.com/")
            .and_then(|set| set.strip_suffix("/*"))
            .is_some_and(|pool| {
                principal
                    .strip_prefix("principal://iam.googleapis.com/")
                    .and_then(|p| p.strip_prefix(pool))
                    .is_some_and(|rest| rest.starts_with("/subject/"))
            })
    })
}

fn denied() -> ApiError {
    let mut e = ApiError::permission_denied(
        "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
    );
    e.details.push(json!({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "IAM_PERMISSION_DENIED",
        "domain": "iam.googleapis.com",
        "metadata": {"permission": "iam.serviceAccounts.getAccessToken"},
    }));
    e
}

async fn generate_access_token(
    State(shared): State<Arc<Shared>>,
    Path((project, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match generate(&shared, &project, &name, &headers, &body) {
        Ok(response) => response,
        Err(e) => {
            tracing::info!(status = e.status, reason = %e.message, "generateAccessToken refused");
            e.into_response()
        }
    }
}

fn generate(
    shared: &Shared,
    project: &str,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let Some(email) = name.strip_suffix(":generateAccessToken") else {
        return Err(ApiError::not_found(format!(
            "Method not found: {name} (this simulator serves :generateAccessToken)"
        )));
    };
    if project != "-" {
        return Err(ApiError::invalid_argument(
            "The project in the resource name must be '-' (a wildcard).",
        ));
    }
    let now = Instant::now();
    let principal = {
        let tokens = shared.tokens.lock().expect("tokens lock");
        let token = bearer(headers).unwrap_or("");
        let Some(principal) = tokens.principal(token, now).map(str::to_owned) else {
            return Err(ApiError::unauthenticated());
        };
        let scoped = tokens.scopes(token, now).is_some_and(|granted| {
            granted
                .iter()
                .any(|g| g == CLOUD_PLATFORM_SCOPE || g == IAM_SCOPE)
        });
        if !scoped {
            return Err(ApiError::insufficient_scopes(
                "iamcredentials.googleapis.com",
            ));
        }
        principal
    };
    let allowed = shared
        .federation
        .as_ref()
        .and_then(|f| {
            f.settings
                .service_accounts
                .iter()
                .find(|b| b.email == email)
        })
        .is_some_and(|binding| is_member(&binding.members, &principal));
    if !allowed {
        return Err(denied());
    }
    let request: GenerateAccessTokenRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_argument(format!("Invalid JSON payload received. {e}")))?;
    if request.scope.is_empty() {
        return Err(ApiError::invalid_argument("Scope is required."));
    }
    let lifetime = match request.lifetime.as_deref() {
        None => MAX_LIFETIME,
        Some(text) => parse_google_duration(text)
            .filter(|d| *d >= Duration::from_secs(1) && *d <= MAX_LIFETIME)
            .ok_or_else(|| {
                ApiError::invalid_argument(format!(
                    "The lifetime {text:?} is not valid: it must be between 1s and 3600s."
                ))
            })?,
    };
    let (token, ttl) = {
        let mut tokens = shared.tokens.lock().expect("tokens lock");
        // The simulator's tokenTtl caps every lifetime, so tests can make tokens short.
        let ttl = lifetime.min(tokens.ttl());
        let token = tokens.issue_for(now, ttl, request.scope, email.to_owned());
        (token, ttl)
    };
    shared
        .counters
        .lock()
        .expect("counters lock")
        .impersonations += 1;
    let expire = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(ttl.as_secs() as i64))
        .unwrap_or(jiff::Timestamp::MAX);
    // Google writes whole seconds (Python's client parses no fraction).
    let expire_time = expire.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    Ok(Json(json!({"accessToken": token, "expireTime": expire_time})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members() {
        let pool = "projects/1/locations/global/workloadIdentityPools/p";
        let subject =
            format!("principal://iam.googleapis.com/{pool}/subject/system:serviceaccount:ns:sa");
        let one = vec![subject.clone()];
        assert!(is_member(&one, &subject));
        assert!(!is_member(&one, &format!("{subject}x")));
        let set = vec![format!("principalSet://iam.googleapis.com/{pool}/*")];
        assert!(is_member(&set, &subject));
        assert!(!is_member(
            &set,
            "principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/other/subject/s"
        ));
        let sa = vec!["serviceAccount:a@p.iam.gserviceaccount.com".to_owned()];
        assert!(is_member(&sa, "a@p.iam.gserviceaccount.com"));
        assert!(!is_member(&sa, "b@p.iam.gserviceaccount.com"));
    }
}
