//! Pub/Sub's pull API under `/v1/projects/{p}/subscriptions/{s}`, with Google's REST paths and
//! JSON: `:pull`, `:acknowledge`, `:modifyAckDeadline`. The gate, in the order Google's front end
//! applies it: a valid token (401), a Pub/Sub or cloud-platform scope (403), injected 503s, the
//! caller's permission on the subscription (403), the subscription existing (404), then the body
//! (400). No AMAPI quota: Pub/Sub is another service.
//!
//! A pull without `returnImmediately` waits up to [`PULL_WAIT`] of real time for a message, as
//! Google's does for a bounded time; then it answers `{}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::amapi::{authorize, bearer};
use super::clock;
use super::errors::ApiError;
use super::oauth::{CLOUD_PLATFORM_SCOPE, PUBSUB_SCOPE};
use super::server::Shared;

/// How long a pull without `returnImmediately` waits for a message (real time).
pub const PULL_WAIT: Duration = Duration::from_secs(1);
/// How often a waiting pull looks again.
const PULL_POLL: Duration = Duration::from_millis(20);
/// The most messages one pull returns, whatever `maxMessages` asks.
const MAX_PULL: usize = 1000;

pub fn router() -> Router<Arc<Shared>> {
    Router::new().route(
        "/v1/projects/{p}/subscriptions/{s}",
        post(subscription_custom_method),
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Pull,
    Acknowledge,
    ModifyAckDeadline,
}

impl Method {
    fn grpc(self) -> &'static str {
        match self {
            Method::Pull => "google.pubsub.v1.Subscriber.Pull",
            Method::Acknowledge => "google.pubsub.v1.Subscriber.Acknowledge",
            Method::ModifyAckDeadline => "google.pubsub.v1.Subscriber.ModifyAckDeadline",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PullRequest {
    #[serde(default)]
    max_messages: Option<Int>,
    #[serde(default)]
    return_immediately: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AcknowledgeRequest {
    #[serde(default)]
    ack_ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ModifyAckDeadlineRequest {
    #[serde(default)]
    ack_ids: Vec<String>,
    #[serde(default)]
    ack_deadline_seconds: Option<Int>,
}

/// A JSON int32: a number, or a string holding one (protobuf's JSON accepts both).
#[derive(Deserialize)]
#[serde(untagged)]
enum Int {
    Number(i64),
    Text(String),
}

impl Int {
    fn value(&self, field: &str) -> Result<i64, ApiError> {
        match self {
            Int::Number(n) => Ok(*n),
            Int::Text(t) => t
                .parse()
                .map_err(|_| ApiError::invalid_argument(format!("Invalid value at '{field}'."))),
        }
    }
}

/// `POST /v1/projects/{p}/subscriptions/{s}:{method}`.
async fn subscription_custom_method(
    State(shared): State<Arc<Shared>>,
    Path((project, last)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (id, method) = match last.split_once(':') {
        Some((id, "pull")) => (id, Method::Pull),
        Some((id, "acknowledge")) => (id, Method::Acknowledge),
        Some((id, "modifyAckDeadline")) => (id, Method::ModifyAckDeadline),
        _ => {
            return ApiError::not_found(
                "The requested method does not exist (the simulator serves subscriptions \
                 :pull, :acknowledge and :modifyAckDeadline).",
            )
            .into_response();
        }
    };
    let name = format!("projects/{project}/subscriptions/{id}");
    let result = match method {
        Method::Pull => pull(&shared, &headers, &name, &body).await,
        Method::Acknowledge => acknowledge(&shared, &headers, &name, &body),
        Method::ModifyAckDeadline => modify_ack_deadline(&shared, &headers, &name, &body),
    };
    match result {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err(e) => {
            tracing::debug!(method = method.grpc(), status = e.status, message = %e.message, "Pub/Sub call failed");
            e.into_response()
        }
    }
}

/// Everything before a call is processed; then its body, parsed.
fn admit<T: DeserializeOwned>(
    shared: &Shared,
    headers: &HeaderMap,
    name: &str,
    method: Method,
    body: &[u8],
) -> Result<T, ApiError> {
    {
        let mut world = shared.world.lock().expect("world lock");
        let counters = &mut world.pubsub.counters;
        match method {
            Method::Pull => counters.pull_calls += 1,
            Method::Acknowledge => counters.acknowledge_calls += 1,
            Method::ModifyAckDeadline => counters.modify_ack_deadline_calls += 1,
        }
    }
    authorize(
        shared,
        bearer(headers),
        &[PUBSUB_SCOPE, CLOUD_PLATFORM_SCOPE],
        "pubsub.googleapis.com",
    )
    .map_err(|mut e| {
        if e.status == "PERMISSION_DENIED"
            && let Some(detail) = e.details.first_mut()
        {
            detail["metadata"]["method"] = json!(method.grpc());
        }
        e
    })?;
    {
        let mut world = shared.world.lock().expect("world lock");
        if world.pubsub.faults.fails(fastrand::f64) {
            world.pubsub.counters.errors += 1;
            return Err(ApiError::unavailable());
        }
        world.pubsub.check(name)?;
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid_argument(format!(
            "Invalid JSON payload received (line {} column {}).",
            e.line(),
            e.column()
        ))
    })
}

async fn pull(
    shared: &Shared,
    headers: &HeaderMap,
    name: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let request: PullRequest = admit(shared, headers, name, Method::Pull, body)?;
    let max = match &request.max_messages {
        Some(m) => m.value("max_messages")?,
        None => 0,
    };
    if max <= 0 {
        return Err(ApiError::invalid_argument(
            "max_messages must be greater than 0.",
        ));
    }
    let max = usize::try_from(max).unwrap_or(MAX_PULL).min(MAX_PULL);
    let until = Instant::now() + PULL_WAIT;
    loop {
        let received = {
            let now = shared.clock.now();
            let mut world = shared.world.lock().expect("world lock");
            world.tick(now);
            let received = world.pubsub.pull(name, max, now, fastrand::shuffle)?;
            received
                .into_iter()
                .map(|r| {
                    json!({
                        "ackId": r.ack_id,
                        "message": {
                            "data": r.data,
                            "attributes": r.attributes,
                            "messageId": r.message_id,
                            "publishTime": clock::rfc3339(r.publish_time),
                        },
                    })
                })
                .collect::<Vec<Value>>()
        };
        shared.wake.notify_one();
        if !received.is_empty() {
            return Ok(json!({"receivedMessages": received}));
        }
        if request.return_immediately || Instant::now() >= until {
            return Ok(json!({}));
        }
        tokio::time::sleep(PULL_POLL).await;
    }
}

fn acknowledge(
    shared: &Shared,
    headers: &HeaderMap,
    name: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let request: AcknowledgeRequest = admit(shared, headers, name, Method::Acknowledge, body)?;
    if request.ack_ids.is_empty() {
        return Err(ApiError::invalid_argument(
            "You have passed an empty ack_ids list.",
        ));
    }
    let now = shared.clock.now();
    let mut world = shared.world.lock().expect("world lock");
    world.tick(now);
    world.pubsub.acknowledge(name, &request.ack_ids, now)?;
    Ok(json!({}))
}

fn modify_ack_deadline(
    shared: &Shared,
    headers: &HeaderMap,
    name: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let request: ModifyAckDeadlineRequest =
        admit(shared, headers, name, Method::ModifyAckDeadline, body)?;
    if request.ack_ids.is_empty() {
        return Err(ApiError::invalid_argument(
            "You have passed an empty ack_ids list.",
        ));
    }
    let seconds = match &request.ack_deadline_seconds {
        Some(s) => s.value("ack_deadline_seconds")?,
        None => 0,
    };
    let seconds = u64::try_from(seconds).map_err(|_| {
        ApiError::invalid_argument(format!(
            "Invalid ack deadline given: {seconds}. The ack deadline must be between 0 and 600 seconds."
        ))
    })?;
    let now = shared.clock.now();
    let mut world = shared.world.lock().expect("world lock");
    world.tick(now);
    world
        .pubsub
        .modify_ack_deadline(name, &request.ack_ids, seconds, now)?;
    Ok(json!({}))
}
