//! The AMAPI endpoints, under `/v1/`, with the paths Google serves. Every call goes through the
//! same gate, in the order Google's front end applies them: authentication (401, does not use
//! quota), the project quota (429), injected faults (503/500/429, not processed); then the call
//! is processed, the injected latency added, and possibly the connection dropped. Under the
//! late-creation fault an issueCommand is checked, answered 504, and its command created later.
//!
//! Custom methods (`:issueCommand`, `:cancel`) are part of the last path segment; axum cannot
//! route on them, so the handlers split the segment themselves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::Timestamp;
use serde_json::Value;

use super::counters::Method;
use super::errors::ApiError;
use super::faults::PreFault;
use super::oauth::SCOPE;
use super::server::Shared;
use super::world::World;

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/enterprises/{e}/devices", get(list_devices))
        .route(
            "/v1/enterprises/{e}/devices/{d}",
            get(get_device).post(device_custom_method),
        )
        .route(
            "/v1/enterprises/{e}/devices/{d}/operations",
            get(list_operations),
        )
        .route(
            "/v1/enterprises/{e}/devices/{d}/operations/{o}",
            get(get_operation).post(operation_custom_method),
        )
        .route(
            "/v1/enterprises/{e}/policies/{p}",
            get(get_policy).patch(patch_policy),
        )
}

type Params = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// The query parameters a method reads; Google's standard ones (`alt`, `prettyPrint`, `fields`,
/// ...) are accepted and ignored.
struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    fn from(params: Params) -> Result<Self, ApiError> {
        params
            .map(|Query(p)| QueryParams(p))
            .map_err(|_| ApiError::invalid_argument("Malformed query string."))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn page_size(&self) -> Result<Option<i64>, ApiError> {
        self.get("pageSize")
            .map(|s| {
                s.parse()
                    .map_err(|_| ApiError::invalid_argument(format!("Invalid pageSize {s:?}.")))
            })
            .transpose()
    }
}

/// What every AMAPI handler takes from the request besides its path and body: the simulator, the
/// headers (for the token) and the query parameters.
struct Request {
    shared: Arc<Shared>,
    headers: HeaderMap,
    params: Result<QueryParams, ApiError>,
}

impl FromRequestParts<Arc<Shared>> for Request {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let params: Params = Query::from_request_parts(parts, shared).await;
        Ok(Request {
            shared: shared.clone(),
            headers: parts.headers.clone(),
            params: QueryParams::from(params),
        })
    }
}

/// What a handler does under the world lock: given the world, simulated now, the query parameters
/// and, when the late-creation fault hit this call, how much later its effect is to happen.
trait Process:
    FnOnce(&mut World, Timestamp, &QueryParams, Option<Duration>) -> Result<Value, ApiError>
{
}

impl<F> Process for F where
    F: FnOnce(&mut World, Timestamp, &QueryParams, Option<Duration>) -> Result<Value, ApiError>
{
}

impl Request {
    /// Runs the call through the gate; see [`call`].
    async fn call(self, method: Method, process: impl Process) -> Response {
        call(&self.shared, method, &self.headers, &self.params, process).await
    }
}

/// Runs one AMAPI call through the gate. `process` runs under the world lock, after every event
/// due by now has happened, with the query parameters (already found well-formed).
async fn call(
    shared: &Shared,
    method: Method,
    headers: &HeaderMap,
    params: &Result<QueryParams, ApiError>,
    process: impl Process,
) -> Response {
    shared
        .counters
        .lock()
        .expect("counters lock")
        .called(method);
    let faults = shared.faults.lock().expect("faults lock").clone();
    let faults = if faults.applies_to(method.as_str()) {
        faults
    } else {
        Default::default()
    };
    let admitted = gate(shared, &faults, headers, params.as_ref().ok())
        .and_then(|()| params.as_ref().map_err(Clone::clone));
    let late = admitted
        .is_ok()
        .then(|| faults.creates_late(method.as_str(), fastrand::f64))
        .flatten();
    // Processed only once admitted: refused calls change nothing and are never dropped.
    let processed = admitted.map(|params| {
        let now = shared.clock.now();
        let result = {
            let mut world = shared.world.lock().expect("world lock");
            world.tick(now);
            process(&mut world, now, params, late)
        };
        shared.wake.notify_one();
        result
    });
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    let result = match processed {
        Ok(result) => result,
        Err(refused) => {
            tracing::debug!(
                method = method.as_str(),
                status = refused.status,
                "AMAPI call refused"
            );
            return refused.into_response();
        }
    };
    let response = match result {
        Ok(body) => (StatusCode::OK, axum::Json(body)).into_response(),
        Err(e) => {
            tracing::debug!(method = method.as_str(), status = e.status, message = %e.message, "AMAPI call failed");
            e.into_response()
        }
    };
    // A call drawn for late creation gets no other fault.
    if late.is_some() {
        return response;
    }
    if faults.drops(fastrand::f64) {
        shared.counters.lock().expect("counters lock").fault_dropped += 1;
        tracing::info!(
            method = method.as_str(),
            "fault: dropping the connection after processing"
        );
        return cut_off(response).await;
    }
    if faults.garbles(fastrand::f64) {
        shared.counters.lock().expect("counters lock").fault_garbled += 1;
        tracing::info!(
            method = method.as_str(),
            "fault: answering garbage after processing"
        );
        return (
            axum::http::StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "text/html")],
            "<html><body>502 Bad Gateway (not really)</body></html>",
        )
            .into_response();
    }
    response
}

/// Authentication, quota and injected faults: what stops a call before it is processed.
fn gate(
    shared: &Shared,
    faults: &super::faults::FaultSettings,
    headers: &HeaderMap,
    params: Option<&QueryParams>,
) -> Result<(), ApiError> {
    let token = bearer(headers).or_else(|| params.and_then(|p| p.get("access_token")));
    let now = Instant::now();
    authorize(shared, token, &[SCOPE], "androidmanagement.googleapis.com")?;
    if let Err(retry_after) = shared.quota.lock().expect("quota lock").admit(now) {
        shared
            .counters
            .lock()
            .expect("counters lock")
            .quota_rejected += 1;
        return Err(ApiError::quota_exhausted(retry_after));
    }
    if let Some(fault) = faults.before(fastrand::f64) {
        let mut counters = shared.counters.lock().expect("counters lock");
        return Err(match fault {
            PreFault::Unavailable => {
                counters.fault_errors += 1;
                ApiError::unavailable()
            }
            PreFault::Internal => {
                counters.fault_errors += 1;
                ApiError::internal()
            }
            PreFault::Throttled => {
                counters.fault_throttled += 1;
                ApiError::throttled()
            }
        });
    }
    Ok(())
}

/// Authentication (401: no valid token) and then the token's scopes (403: none of `scopes`), as
/// Google's front end checks them for every API.
pub fn authorize(
    shared: &Shared,
    token: Option<&str>,
    scopes: &[&str],
    service: &str,
) -> Result<(), ApiError> {
    let now = Instant::now();
    let granted = token.and_then(|t| {
        shared
            .tokens
            .lock()
            .expect("tokens lock")
            .scopes(t, now)
            .map(|granted| scopes.iter().any(|s| granted.iter().any(|g| g == s)))
    });
    match granted {
        None => {
            shared
                .counters
                .lock()
                .expect("counters lock")
                .unauthenticated += 1;
            Err(ApiError::unauthenticated())
        }
        Some(false) => Err(ApiError::insufficient_scopes(service)),
        Some(true) => Ok(()),
    }
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The same response, but its body breaks off halfway: the client sees a transport error after
/// the server did the work.
async fn cut_off(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(half),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "simulated dropped connection",
        )),
    ];
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from_stream(futures::stream::iter(chunks)))
}

async fn list_devices(Path(e): Path<String>, request: Request) -> Response {
    request
        .call(Method::DevicesList, |w, _, p, _| {
            w.list_devices(&e, p.page_size()?, p.get("pageToken"))
        })
        .await
}

async fn get_device(Path((e, d)): Path<(String, String)>, request: Request) -> Response {
    request
        .call(Method::DevicesGet, |w, _, _, _| w.get_device(&e, &d))
        .await
}

async fn device_custom_method(
    Path((e, d)): Path<(String, String)>,
    request: Request,
    body: Bytes,
) -> Response {
    match d.split_once(':') {
        Some((d, "issueCommand")) => {
            let shared = request.shared.clone();
            request
                .call(Method::DevicesIssueCommand, |w, now, _, late| match late {
                    None => w.issue_command(&e, d, &body, now),
                    Some(delay) => {
                        let due = w.issue_command_late(&e, d, &body, now, delay)?;
                        shared.counters.lock().expect("counters lock").fault_late += 1;
                        tracing::info!(
                            device = d,
                            due = %due,
                            "fault: answering 504, the command is created later"
                        );
                        Err(deadline_exceeded())
                    }
                })
                .await
        }
        _ => unknown_method(),
    }
}

async fn list_operations(Path((e, d)): Path<(String, String)>, request: Request) -> Response {
    request
        .call(Method::OperationsList, |w, _, p, _| {
            w.list_operations(&e, &d, p.page_size()?, p.get("pageToken"))
        })
        .await
}

async fn get_operation(
    Path((e, d, o)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    request
        .call(Method::OperationsGet, |w, _, _, _| {
            w.get_operation(&e, &d, &o)
        })
        .await
}

async fn operation_custom_method(
    Path((e, d, o)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    match o.split_once(':') {
        Some((o, "cancel")) => {
            request
                .call(Method::OperationsCancel, |w, now, _, _| {
                    w.cancel_operation(&e, &d, o, now)
                })
                .await
        }
        _ => unknown_method(),
    }
}

async fn get_policy(Path((e, p)): Path<(String, String)>, request: Request) -> Response {
    request
        .call(Method::PoliciesGet, |w, _, _, _| w.get_policy(&e, &p))
        .await
}

async fn patch_policy(
    Path((e, p)): Path<(String, String)>,
    request: Request,
    body: Bytes,
) -> Response {
    request
        .call(Method::PoliciesPatch, |w, now, params, _| {
            w.patch_policy(&e, &p, &body, params.get("updateMask"), now)
        })
        .await
}

/// What Google's front end answers when the backend did not reply in time, which does not stop
/// the backend from carrying the request out later.
fn deadline_exceeded() -> ApiError {
    ApiError {
        http: StatusCode::GATEWAY_TIMEOUT,
        status: "DEADLINE_EXCEEDED",
        message: "The request did not complete within its deadline.".into(),
        details: Vec::new(),
        retry_after: None,
    }
}

fn unknown_method() -> Response {
    ApiError::not_found(
        "The requested method does not exist (the simulator serves :issueCommand and :cancel).",
    )
    .into_response()
}

/// Anything else under `/v1/`.
pub async fn fallback() -> Response {
    ApiError::not_found(
        "The requested URL was not found: the simulator serves devices.get/list/issueCommand, \
         operations.get/list/cancel and policies.get/patch.",
    )
    .into_response()
}
