//! The metadata server of GKE (Workload Identity) and Compute Engine, for the simulated service
//! account: what Google's auth libraries ask it, with its header rule (requests without
//! `Metadata-Flavor: Google` are refused; answers carry it). Point a client at it with
//! `GCE_METADATA_HOST=127.0.0.1:PORT` (and `GCE_METADATA_IP` for Python's detection probe).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::credentials::{CLIENT_EMAIL, PROJECT_ID};
use super::oauth::CLOUD_PLATFORM_SCOPE;
use super::server::Shared;

const FLAVOR: &str = "metadata-flavor";

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(root))
        .route(
            "/computeMetadata/v1/instance/service-accounts/{account}/",
            get(account),
        )
        .route(
            "/computeMetadata/v1/instance/service-accounts/{account}/{item}",
            get(account_item),
        )
        .route(
            "/computeMetadata/v1/project/project-id",
            get(|headers: HeaderMap| async move { text(&headers, PROJECT_ID) }),
        )
        .route(
            "/computeMetadata/v1/universe/universe-domain",
            get(|headers: HeaderMap| async move { text(&headers, "googleapis.com") }),
        )
}

/// Google's answers carry `Metadata-Flavor: Google`, which clients check.
fn flavored(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(FLAVOR, HeaderValue::from_static("Google"));
    response
}

/// Requests without the header are refused, so a page fetched by mistake is never taken for a
/// token.
fn refused(headers: &HeaderMap) -> Option<Response> {
    let ok = headers
        .get(FLAVOR)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("google"));
    (!ok).then(|| {
        flavored(
            (
                StatusCode::FORBIDDEN,
                "Missing required header \"Metadata-Flavor\": \"Google\"\n",
            )
                .into_response(),
        )
    })
}

fn text(headers: &HeaderMap, body: &'static str) -> Response {
    refused(headers).unwrap_or_else(|| flavored(body.into_response()))
}

/// Python's detection probe (`GET http://$GCE_METADATA_IP/`).
async fn root() -> Response {
    flavored("computeMetadata/\n".into_response())
}

fn known(account: &str) -> bool {
    account == "default" || account == CLIENT_EMAIL
}

fn not_found() -> Response {
    flavored((StatusCode::NOT_FOUND, "Not Found\n").into_response())
}

/// `.../service-accounts/{account}/?recursive=true`: the account's email, aliases and scopes.
async fn account(Path(account): Path<String>, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&headers) {
        return r;
    }
    if !known(&account) {
        return not_found();
    }
    flavored(
        Json(json!({
            "aliases": ["default"],
            "email": CLIENT_EMAIL,
            "scopes": [CLOUD_PLATFORM_SCOPE],
        }))
        .into_response(),
    )
}

async fn account_item(
    State(shared): State<Arc<Shared>>,
    Path((account, item)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refused(&headers) {
        return r;
    }
    if !known(&account) {
        return not_found();
    }
    match item.as_str() {
        "email" => flavored(CLIENT_EMAIL.into_response()),
        "scopes" => flavored(format!("{CLOUD_PLATFORM_SCOPE}\n").into_response()),
        "aliases" => flavored("default\n".into_response()),
        "token" => {
            // `?scopes=a,b` (comma-separated); without it, the node's scopes.
            let scopes: Vec<String> = query
                .get("scopes")
                .map(|s| {
                    s.split([',', ' '])
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .filter(|s: &Vec<String>| !s.is_empty())
                .unwrap_or_else(|| vec![CLOUD_PLATFORM_SCOPE.to_owned()]);
            let (token, ttl) = {
                let mut tokens = shared.tokens.lock().expect("tokens lock");
                let ttl = tokens.ttl();
                let token = tokens.issue_for(Instant::now(), ttl, scopes, CLIENT_EMAIL.to_owned());
                (token, ttl)
            };
            shared
                .counters
                .lock()
                .expect("counters lock")
                .metadata_tokens += 1;
            let mut response = Json(json!({
                "access_token": token,
                "expires_in": ttl.as_secs(),
                "token_type": "Bearer",
            }))
            .into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            flavored(response)
        }
        _ => not_found(),
    }
}
