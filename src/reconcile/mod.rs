//! Reconcilers: a pure decision per resource and the thin shell that performs its effects
//! against Kubernetes and AMAPI.

pub mod govern;
pub mod policy;
pub mod reset;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::Client;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;

use crate::amapi::AmapiClient;
use crate::api::{PasscodeReset, WorkProfilePasscodePolicy};
use crate::metrics::Metrics;

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub amapi: AmapiClient,
    pub config: reset::decide::Config,
    pub resets: Store<PasscodeReset>,
    pub policies: Store<WorkProfilePasscodePolicy>,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Devices with a reset claimed by this process and not finished: device → reset
    /// (`namespace/name`). Fresher than the cache, which may not show a claim just written.
    pub in_flight: Mutex<HashMap<String, String>>,
    /// How often Enforce policies are compared with AMAPI to correct drift.
    pub policy_resync: std::time::Duration,
    /// Where the records of resets acted on are kept (see `reset::record`).
    pub operator_namespace: String,
    /// Operations of finished resets that left the cache (see `reset::cached`).
    pub settled_operations: Arc<reset::cached::SettledOperations>,
    /// Claims without a recorded operation, by reset (`namespace/name`): the claim's `claimedAt`
    /// and when this process wrote or first saw it, on its monotonic clock.
    pub claims_seen: Mutex<HashMap<String, (String, std::time::Instant)>>,
}

/// A reconcile that could not finish; the controller retries it with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Other(String),
}
