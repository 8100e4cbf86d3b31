//! Reconcilers: a pure decision per resource and the thin shell that performs its effects
//! against Kubernetes and AMAPI.

mod config;
pub mod govern;
pub mod policy;
pub mod reset;
pub mod scopes;

use std::sync::Arc;

use kube::Client;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;

pub use config::{Config, DEFAULT_ADOPTION_WINDOW, UnknownRequester};

use crate::amapi::AmapiClient;
use crate::api::WorkProfilePasscodePolicy;
use crate::metrics::Metrics;

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub amapi: AmapiClient,
    /// What the operator may act on (both reconcilers read it).
    pub config: Config,
    pub policies: Store<WorkProfilePasscodePolicy>,
    /// Publishes Events for policies (resets publish through `cluster`).
    pub events: Recorder,
    pub metrics: Arc<Metrics>,
    /// Kubernetes as the reset reconciler sees it.
    pub cluster: reset::edges::KubeCluster,
    /// The claims this process wrote (see `reset::claims`).
    pub claims: reset::claims::Claims,
    /// Completions AMAPI pushed (see `reset::pushed`).
    pub pushed: Arc<reset::pushed::Pushed>,
    /// Where completion is pushed (see `reset::delivery`).
    pub delivery: Arc<reset::delivery::Delivery>,
    /// Who writes a new reset's first status (see `reset::accepting`).
    pub accepting: Arc<reset::accepting::Accepting>,
}

/// A reconcile that could not finish; the controller retries it with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A broken invariant of the operator's own: a bug, never the user's input.
    #[error("internal error: {0}")]
    Invariant(&'static str),
    /// The decision asked for more steps than any path needs; the next reconcile starts over.
    #[error("the decision did not settle; looking again")]
    Unsettled,
}

impl Error {
    /// Every value of [`Error::label`].
    pub const LABELS: [&'static str; 4] = ["conflict", "kubernetes", "invariant", "unsettled"];

    /// For the `reconcile_errors` metric and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(s)) if s.is_conflict() => "conflict",
            Error::Kube(_) => "kubernetes",
            Error::Invariant(_) => "invariant",
            Error::Unsettled => "unsettled",
        }
    }
}
