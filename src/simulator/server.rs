//! The state every handler shares, the HTTP router that puts the APIs together, and the
//! scheduler that makes devices sync and commands expire on time with no request to drive them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use tokio::sync::Notify;

use super::clock::{self, Clock};
use super::counters::Counters;
use super::credentials::ServiceAccount;
use super::faults::FaultSettings;
use super::oauth::{self, Tokens};
use super::quota::Quota;
use super::sts::{self, Federation};
use super::world::World;
use super::{admin, amapi, iam, metadata, pubsub_api};

pub struct Shared {
    pub world: Mutex<World>,
    pub clock: Clock,
    pub tokens: Mutex<Tokens>,
    pub quota: Mutex<Quota>,
    pub faults: Mutex<FaultSettings>,
    pub counters: Mutex<Counters>,
    pub account: ServiceAccount,
    /// This simulator's token endpoint: the audience assertions must name.
    pub token_uri: String,
    /// STS and IAM Credentials' configuration (Workload Identity Federation), if any.
    pub federation: Option<Federation>,
    /// Something changed that may move the next due event.
    pub wake: Notify,
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/token", post(oauth::token))
        .route("/v1/token", post(sts::token))
        .merge(iam::router())
        .merge(metadata::router())
        .merge(amapi::router())
        .merge(pubsub_api::router())
        .merge(admin::router())
        .fallback(amapi::fallback)
        .with_state(shared)
}

/// The scheduler never sleeps longer than this, so a bug in wake-ups costs at most this delay.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Runs due events, then sleeps until the next one or until woken by a change.
pub async fn schedule(shared: Arc<Shared>) {
    loop {
        let wait = {
            let now = shared.clock.now();
            let mut world = shared.world.lock().expect("world lock");
            world.tick(now);
            world
                .next_event()
                .map_or(MAX_SLEEP, |at| clock::until(now, at).min(MAX_SLEEP))
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.wake.notified() => {}
        }
    }
}
