//! The inspection and control API under `/sim/v1/`, apart from AMAPI: no authentication, no
//! quota, no faults. Tests and demos use it to see every command a device received (never the
//! passcode), count calls, change devices and policies behind the client's back, move the
//! simulated clock, set faults and quota at run time, turn an enterprise's notifications on or
//! off and look at the Pub/Sub subscription's messages. Errors use Google's error body.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::clock;
use super::errors::ApiError;
use super::faults::{FaultSettings, PubsubFaults};
use super::quota::QuotaSettings;
use super::server::Shared;
use super::world::{DevicePatch, World};

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/sim/v1/commands", get(all_commands))
        .route(
            "/sim/v1/enterprises/{e}/devices/{d}/commands",
            get(device_commands),
        )
        .route(
            "/sim/v1/enterprises/{e}/devices/{d}",
            get(get_device).patch(patch_device).post(sync_device),
        )
        .route(
            "/sim/v1/enterprises/{e}/policies/{p}",
            get(get_policy).patch(patch_policy),
        )
        .route(
            "/sim/v1/enterprises/{e}",
            get(get_enterprise).patch(patch_enterprise),
        )
        .route("/sim/v1/pubsub", get(get_pubsub))
        .route("/sim/v1/pubsub/messages", post(publish_message))
        .route(
            "/sim/v1/pubsub/faults",
            get(get_pubsub_faults).put(put_pubsub_faults),
        )
        .route("/sim/v1/counters", get(counters))
        .route("/sim/v1/faults", get(get_faults).put(put_faults))
        .route("/sim/v1/quota", get(get_quota).put(put_quota))
        .route("/sim/v1/clock", get(get_clock))
        .route("/sim/v1/clock:advance", post(advance_clock))
}

/// Runs `f` on the world once every due event has happened, then wakes the scheduler.
fn with_world(
    shared: &Shared,
    f: impl FnOnce(&mut World, jiff::Timestamp) -> Result<Value, ApiError>,
) -> Response {
    let now = shared.clock.now();
    let result = {
        let mut world = shared.world.lock().expect("world lock");
        world.tick(now);
        f(&mut world, now)
    };
    shared.wake.notify_one();
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_argument(format!("Invalid JSON payload received: {e}")))
}

async fn all_commands(State(shared): State<Arc<Shared>>) -> Response {
    with_world(&shared, |w, _| Ok(w.commands()))
}

async fn device_commands(
    State(shared): State<Arc<Shared>>,
    Path((e, d)): Path<(String, String)>,
) -> Response {
    with_world(&shared, |w, _| w.device_commands(&e, &d))
}

async fn get_device(
    State(shared): State<Arc<Shared>>,
    Path((e, d)): Path<(String, String)>,
) -> Response {
    with_world(&shared, |w, _| w.admin_device(&e, &d))
}

async fn patch_device(
    State(shared): State<Arc<Shared>>,
    Path((e, d)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    with_world(&shared, |w, now| {
        let patch: DevicePatch = parse(&body)?;
        w.patch_device(&e, &d, patch, now)
    })
}

/// `POST .../devices/{d}:sync`.
async fn sync_device(
    State(shared): State<Arc<Shared>>,
    Path((e, d)): Path<(String, String)>,
) -> Response {
    match d.split_once(':') {
        Some((d, "sync")) => with_world(&shared, |w, now| w.sync_now(&e, d, now)),
        _ => ApiError::not_found("Unknown admin method (devices have :sync).").into_response(),
    }
}

async fn get_policy(
    State(shared): State<Arc<Shared>>,
    Path((e, p)): Path<(String, String)>,
) -> Response {
    with_world(&shared, |w, _| w.admin_get_policy(&e, &p))
}

async fn patch_policy(
    State(shared): State<Arc<Shared>>,
    Path((e, p)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    with_world(&shared, |w, now| {
        let body: Map<String, Value> = parse(&body)?;
        w.admin_patch_policy(&e, &p, body, now)
    })
}

async fn counters(State(shared): State<Arc<Shared>>) -> Response {
    let (pending, pubsub) = {
        let mut world = shared.world.lock().expect("world lock");
        world.tick(shared.clock.now());
        let mut pubsub = world.pubsub.counters.to_json();
        // Messages not acknowledged yet (copies of duplicated ones counted).
        pubsub["pending"] = json!(world.pubsub.pending());
        (world.late_commands(), pubsub)
    };
    let mut counters = shared.counters.lock().expect("counters lock").to_json();
    // Commands the late-creation fault still holds back: not on any device yet.
    counters["faults"]["lateCreationsPending"] = json!(pending);
    counters["pubsub"] = pubsub;
    Json(counters).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NotificationPatch {
    enabled_notification_types: Option<Vec<String>>,
    pubsub_topic: Option<String>,
}

async fn get_enterprise(State(shared): State<Arc<Shared>>, Path(e): Path<String>) -> Response {
    with_world(&shared, |w, _| w.notifications_view(&e))
}

/// Turns an enterprise's notifications on or off (`enabledNotificationTypes`, `pubsubTopic`).
async fn patch_enterprise(
    State(shared): State<Arc<Shared>>,
    Path(e): Path<String>,
    body: Bytes,
) -> Response {
    with_world(&shared, |w, _| {
        let patch: NotificationPatch = parse(&body)?;
        w.patch_notifications(&e, patch.enabled_notification_types, patch.pubsub_topic)
    })
}

/// The subscription, its counters and every message not acknowledged yet (never its data).
async fn get_pubsub(State(shared): State<Arc<Shared>>) -> Response {
    with_world(&shared, |w, now| Ok(w.pubsub.view(now)))
}

/// A message published by hand, to the subscription's topic (faults apply): `data` is sent as
/// given (so it can be malformed); `json` is encoded to base64 first. For messages AMAPI would
/// not send: about an unknown operation, another enterprise, broken data.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ManualMessage {
    #[serde(default)]
    attributes: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    json: Option<Value>,
}

async fn publish_message(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    with_world(&shared, |w, now| {
        let message: ManualMessage = parse(&body)?;
        let data = match (message.data, message.json) {
            (Some(data), None) => data,
            (None, Some(v)) => crate::amapi::base64::encode(v.to_string().as_bytes()),
            (None, None) => String::new(),
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid_argument("give data or json, not both"));
            }
        };
        let Some(topic) = w.pubsub.topic().map(str::to_owned) else {
            return Err(ApiError::failed_precondition(
                "no Pub/Sub subscription is configured (settings.pubsub)",
            ));
        };
        w.pubsub.publish_encoded(
            &topic,
            message.attributes,
            zeroize::Zeroizing::new(data),
            "(admin)",
            "",
            now,
            fastrand::f64,
        );
        Ok(json!({}))
    })
}

async fn get_pubsub_faults(State(shared): State<Arc<Shared>>) -> Response {
    with_world(&shared, |w, _| Ok(json!(w.pubsub.faults)))
}

/// Replaces the Pub/Sub faults; fields left out are off. They apply to messages published from
/// now on (and, for errors and permission, to calls).
async fn put_pubsub_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    with_world(&shared, |w, _| {
        let faults: PubsubFaults = parse(&body)?;
        faults.validate().map_err(ApiError::invalid_argument)?;
        tracing::info!(?faults, "pubsub faults changed");
        w.pubsub.faults = faults.clone();
        Ok(json!(faults))
    })
}

async fn get_faults(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.faults.lock().expect("faults lock").clone()).into_response()
}

/// Replaces the fault settings; fields left out are off.
async fn put_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let settings = match parse::<FaultSettings>(&body)
        .and_then(|s| s.validate().map(|()| s).map_err(ApiError::invalid_argument))
    {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    *shared.faults.lock().expect("faults lock") = settings.clone();
    tracing::info!(?settings, "faults changed");
    Json(settings).into_response()
}

async fn get_quota(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.quota.lock().expect("quota lock").settings()).into_response()
}

/// Replaces the quota and starts a fresh window.
async fn put_quota(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let settings = match parse::<QuotaSettings>(&body)
        .and_then(|s| s.validate().map(|()| s).map_err(ApiError::invalid_argument))
    {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    shared.quota.lock().expect("quota lock").reset(settings);
    tracing::info!(?settings, "quota changed");
    Json(settings).into_response()
}

fn clock_view(shared: &Shared) -> Value {
    json!({
        "now": clock::rfc3339(shared.clock.now()),
        "offset": clock::google_duration(
            Duration::try_from(shared.clock.offset()).unwrap_or_default()
        ),
    })
}

async fn get_clock(State(shared): State<Arc<Shared>>) -> Response {
    Json(clock_view(&shared)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    seconds: f64,
}

/// Moves simulated time forward; commands that expire by then expire now, devices due to sync
/// sync now.
async fn advance_clock(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let advance = match parse::<Advance>(&body) {
        Ok(a) if a.seconds.is_finite() && a.seconds >= 0.0 => a,
        Ok(_) => {
            return ApiError::invalid_argument("seconds must be a number of seconds, 0 or more")
                .into_response();
        }
        Err(e) => return e.into_response(),
    };
    shared
        .clock
        .advance(Duration::from_secs_f64(advance.seconds.min(1e12)));
    tracing::info!(seconds = advance.seconds, "simulated clock advanced");
    let now = shared.clock.now();
    shared.world.lock().expect("world lock").tick(now);
    shared.wake.notify_one();
    Json(clock_view(&shared)).into_response()
}
