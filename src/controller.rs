//! `passcode-operator run`: the two controllers, the AMAPI client, metrics and health, leader
//! election and graceful shutdown.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use futures::future::{BoxFuture, FutureExt, Shared};
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, predicates, reflector, watcher};
use kube::{Client, Config, ResourceExt};
use tracing::{error, info, warn};

use crate::admission::SealKey;
use crate::admission::seal::APPROVAL_ANNOTATION;
use crate::amapi::{AmapiClient, ClientOptions, Credentials, PubsubClient, PubsubOptions};
use crate::api::{PasscodeReset, PasscodeResetScope, WorkProfilePasscodePolicy};
use crate::metrics::{AmapiMetrics, Metrics};
use crate::reconcile::{self, Context, reset::decide};
use crate::server::{self, Health};

/// Everything `run` is configured with (flags with environment fallbacks, see main.rs).
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub kubeconfig: Option<PathBuf>,
    /// A Google credentials file; `None`: the metadata server.
    pub credentials: Option<PathBuf>,
    pub amapi_base_url: String,
    pub token_uri: Option<String>,
    pub enterprises: Vec<String>,
    pub amapi_rate: f64,
    /// See `ClientOptions::followup_share`.
    pub poll_share: f64,
    /// AMAPI COMMAND notifications: a Pub/Sub subscription (`projects/P/subscriptions/S`), and
    /// Pub/Sub's base URL.
    pub pubsub_subscription: Option<String>,
    pub pubsub_url: String,
    pub concurrency: u16,
    pub listen: SocketAddr,
    pub leader_election: bool,
    /// The operator's own namespace: the leader Lease and the reset records.
    pub operator_namespace: String,
    pub lease_name: String,
    pub identity: String,
    pub policy_resync: Duration,
    /// See `decide::Config::adoption_window`.
    pub adoption_window: Duration,
    /// Watch PasscodeResets in this namespace only (policies are cluster-wide).
    pub namespace: Option<String>,
    /// Serve and register the admission webhook (who asked, who approved).
    pub webhook: Option<crate::admission::WebhookConfig>,
    /// See `reconcile::Config::unknown_requester`.
    pub unknown_requester: reconcile::UnknownRequester,
    /// See `reconcile::Config::require_scopes`.
    pub require_scopes: bool,
    /// Only PasscodeResetScopes with these labels apply (a label selector).
    pub scope_selector: Option<String>,
}

type Stop = Shared<BoxFuture<'static, ()>>;

pub async fn run(
    cfg: RunConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    crate::install_crypto_provider();
    let stop: Stop = shutdown.boxed().shared();
    // Credentials that cannot work are a startup error, before anything runs: the file, the
    // metadata server, and one token (which asks STS, IAM or the token endpoint).
    let auth = Credentials::load(cfg.credentials.as_deref(), cfg.token_uri.as_deref())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    info!(credentials = auth.mode().as_str(), identity = auth.identity(), base_url = %cfg.amapi_base_url, "Google credentials loaded");
    auth.check().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    info!(identity = auth.identity(), "Google access token obtained");
    let client = kube_client(cfg.kubeconfig.as_deref()).await?;
    let metrics = Arc::new(Metrics::new());
    let amapi = AmapiClient::new(
        auth,
        ClientOptions {
            base_url: cfg.amapi_base_url.clone(),
            requests_per_second: cfg.amapi_rate,
            burst: (cfg.amapi_rate.ceil() as u32).max(1),
            followup_share: cfg.poll_share,
            ..Default::default()
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?
    .with_observer(Arc::new(AmapiMetrics(metrics.clone())));
    // A subscription name that cannot work is a startup error.
    if let Some(client) = pubsub_client(&cfg, &amapi)? {
        info!(
            subscription = client.subscription(),
            "AMAPI notifications pulled from Pub/Sub; polling is a slow safety net"
        );
    }

    // The webhook is served by every replica, leading or not: creating and approving resets
    // must not wait for an election. A webhook that cannot start is a startup error.
    let seal = match &cfg.webhook {
        Some(w) => Some(
            crate::admission::start(client.clone(), w.clone(), stop.clone())
                .await
                .context("cannot start the admission webhook")?
                .key,
        ),
        None => None,
    };
    let health = Arc::new(Health::default());
    let server = tokio::spawn(server::serve(
        cfg.listen,
        metrics.clone(),
        health.clone(),
        stop.clone(),
    ));

    if cfg.leader_election {
        lead_then_run(
            &cfg,
            client,
            amapi,
            seal,
            metrics,
            health.clone(),
            stop.clone(),
        )
        .await?;
    } else {
        metrics.leader.set(1);
        controllers(
            &cfg,
            client,
            amapi,
            seal,
            metrics,
            health.clone(),
            stop.clone(),
        )
        .await;
    }
    health.ready.store(false, Ordering::Relaxed);
    stop.await;
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(error = %e, "health server"),
        Err(e) => warn!(error = %e, "health server task"),
    }
    info!("stopped");
    Ok(())
}

async fn kube_client(path: Option<&std::path::Path>) -> anyhow::Result<Client> {
    let config = match path {
        Some(p) => {
            let kubeconfig = Kubeconfig::read_from(p)
                .with_context(|| format!("cannot read kubeconfig {}", p.display()))?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("kubeconfig {}", p.display()))?
        }
        None => Config::infer()
            .await
            .context("no kubeconfig and not in a cluster")?,
    };
    Ok(Client::try_from(config)?)
}

/// Waits for the lease; runs the controllers while holding it; stops them if it is lost.
async fn lead_then_run(
    cfg: &RunConfig,
    client: Client,
    amapi: AmapiClient,
    seal: Option<SealKey>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    stop: Stop,
) -> anyhow::Result<()> {
    let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &cfg.lease_name)
        .with_namespace(&cfg.operator_namespace)
        .with_identity(&cfg.identity)
        .with_duration(15)
        .with_grace(5)
        .build()
        .await
        .context("cannot set up leader election")?;
    let (mut leading, task) = manager.watch().await;
    // Not leading yet, but the state is known: a standby replica is ready.
    health.ready.store(true, Ordering::Relaxed);
    loop {
        if *leading.borrow_and_update() {
            info!(identity = %cfg.identity, "leading");
            metrics.leader.set(1);
            let lost = {
                let mut watch = leading.clone();
                async move {
                    while watch.changed().await.is_ok() {
                        if !*watch.borrow() {
                            return;
                        }
                    }
                }
            };
            let until = futures::future::select(stop.clone(), lost.boxed())
                .map(|_| ())
                .boxed()
                .shared();
            controllers(
                cfg,
                client.clone(),
                amapi.clone(),
                seal.clone(),
                metrics.clone(),
                health.clone(),
                until,
            )
            .await;
            metrics.leader.set(0);
            if stop.peek().is_some() {
                break;
            }
            warn!("lost the lease; standing by");
            health.ready.store(true, Ordering::Relaxed);
        }
        tokio::select! {
            changed = leading.changed() => if changed.is_err() { break },
            _ = stop.clone() => break,
        }
    }
    drop(leading);
    // Closing the channel makes the manager release the lease.
    match task.await {
        Ok(Ok(manager)) => {
            if let Err(e) = manager.release().await {
                warn!(error = %e, "could not release the lease");
            }
        }
        Ok(Err(e)) => warn!(error = %e, "leader election ended with an error"),
        Err(e) => warn!(error = %e, "leader election task"),
    }
    Ok(())
}

fn pubsub_client(cfg: &RunConfig, amapi: &AmapiClient) -> anyhow::Result<Option<PubsubClient>> {
    let Some(subscription) = &cfg.pubsub_subscription else {
        return Ok(None);
    };
    let options = PubsubOptions {
        base_url: cfg.pubsub_url.clone(),
        subscription: subscription.clone(),
        return_immediately: false,
    };
    PubsubClient::new(amapi, options)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("--pubsub-subscription: {e}"))
}

/// Both controllers, until `until` resolves.
async fn controllers(
    cfg: &RunConfig,
    client: Client,
    amapi: AmapiClient,
    seal: Option<SealKey>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    until: Stop,
) {
    let resets: Api<PasscodeReset> = match &cfg.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let policies: Api<WorkProfilePasscodePolicy> = Api::all(client.clone());

    // Only new objects and spec (generation) changes trigger a reconcile: the operator's own
    // status and finalizer writes do not, so a poll is never doubled.
    let (reset_store, reset_writer) = reflector::store();
    let settled_operations = Arc::new(reconcile::reset::cached::SettledOperations::default());
    // Settled resets leave the cache; the rest is kept without what is never read (see `cached`).
    let reset_events = watcher(resets, watcher::Config::default().any_semantic())
        .default_backoff()
        .filter_map({
            let settled = settled_operations.clone();
            move |event| {
                let event = event.map(|e| reconcile::reset::cached::for_cache(e, &settled));
                futures::future::ready(event.transpose())
            }
        })
        .reflect(reset_writer)
        .applied_objects()
        .predicate_filter(spec_or_decision, Default::default());
    let (policy_store, policy_writer) = reflector::store();
    let policy_events = watcher(policies, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(|p: &mut WorkProfilePasscodePolicy| p.metadata.managed_fields = None)
        .reflect(policy_writer)
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());

    // Who may: the scopes, watched; a reset reads them when it is decided.
    let scopes: Api<PasscodeResetScope> = Api::all(client.clone());
    let (scope_store, scope_writer) = reflector::store();
    let mut scope_watch = watcher::Config::default().any_semantic();
    if let Some(selector) = &cfg.scope_selector {
        scope_watch = scope_watch.labels(selector);
    }
    let scope_cache = watcher(scopes, scope_watch)
        .default_backoff()
        .modify(|s: &mut PasscodeResetScope| s.metadata.managed_fields = None)
        .reflect(scope_writer)
        .for_each(|_| async {});

    let reporter = Reporter {
        controller: "passcode-operator".into(),
        instance: Some(cfg.identity.clone()),
    };
    let events = Recorder::new(client.clone(), reporter);
    // Reconciles asked for from outside the watch: a pushed completion, or delivery lost.
    let (trigger, triggered) = futures::channel::mpsc::unbounded();
    let delivery = {
        let (resets, trigger) = (reset_store.clone(), trigger.clone());
        reconcile::reset::delivery::Delivery::new(
            metrics.completion_pushed.clone(),
            // Back on the polling schedule at once: every reset following a command there.
            Box::new(move |lost: &[String]| {
                for r in resets.state() {
                    let following = r
                        .status
                        .as_ref()
                        .and_then(|s| s.operation.as_deref())
                        .and_then(reconcile::reset::delivery::Delivery::enterprise);
                    if !r.phase().is_terminal()
                        && following.is_some_and(|e| lost.iter().any(|l| l == e))
                    {
                        let _ = trigger.unbounded_send(ObjectRef::from_obj(r.as_ref()));
                    }
                }
            }),
        )
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        amapi,
        config: reconcile::Config {
            enterprises: cfg.enterprises.clone(),
            adoption_window: cfg.adoption_window,
            notifications: false,
            policy_resync: cfg.policy_resync,
            unknown_requester: cfg.unknown_requester,
            require_scopes: cfg.require_scopes,
        },
        policies: policy_store.clone(),
        events: events.clone(),
        metrics,
        cluster: reconcile::reset::edges::KubeCluster {
            client,
            resets: reset_store.clone(),
            policies: policy_store.clone(),
            settled_operations,
            operator_namespace: cfg.operator_namespace.clone(),
            events,
            scopes: scope_store.clone(),
            seal,
        },
        claims: Default::default(),
        pushed: Default::default(),
        delivery: Arc::new(delivery),
        accepting: Default::default(),
    });
    // Completion pushed: notifications hand operations to their resets and trigger them.
    let notifications = {
        let pubsub = pubsub_client(cfg, &ctx.amapi).ok().flatten();
        let (store, pushed, delivery, metrics) = (
            reset_store.clone(),
            ctx.pushed.clone(),
            ctx.delivery.clone(),
            ctx.metrics.clone(),
        );
        let until = until.clone();
        async move {
            if let Some(pubsub) = pubsub {
                let follow =
                    crate::notifications::follow(pubsub, store, pushed, trigger, delivery, metrics);
                tokio::select! { _ = follow => {}, _ = until => {} }
            }
        }
    };
    // A status on first sight, outside the reconcile queue (see `accept_new_resets`).
    let acceptor = accept_new_resets(
        reset_store.clone(),
        ctx.client.clone(),
        ctx.amapi.clone(),
        ctx.accepting.clone(),
        until.clone(),
    );
    // Claimed and not finished, and not finished past their command's expiry, as the cache shows
    // them: gauges that heal with the cache.
    let in_flight_gauge = {
        let (store, metrics) = (reset_store.clone(), ctx.metrics.clone());
        let until = until.clone();
        async move {
            let count = async {
                loop {
                    let now = jiff::Timestamp::now();
                    let (mut in_flight, mut past_expiry) = (0, 0);
                    for r in store.state().iter().filter(|r| !r.phase().is_terminal()) {
                        let Some(s) = r.status.as_ref() else { continue };
                        in_flight += usize::from(s.claimed_at.is_some());
                        past_expiry +=
                            usize::from(s.expires_at.as_ref().is_some_and(|t| t.0 < now));
                    }
                    metrics.commands_in_flight.set(in_flight as i64);
                    metrics.resets_past_expiry.set(past_expiry as i64);
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            };
            tokio::select! { _ = count => {}, _ = until => {} }
        }
    };
    let controller_config = ControllerConfig::default().concurrency(cfg.concurrency);
    let reset_controller = Controller::for_stream(reset_events, reset_store.clone())
        .with_config(controller_config.clone())
        .reconcile_on(triggered)
        .graceful_shutdown_on(until.clone())
        .run(reconcile::reset::reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    // No reset is decided before the scopes are known: an empty cache would read as "no scopes"
    // and let a reset through that a scope refuses.
    let reset_controller = {
        let scopes_ready = scope_store.clone();
        let until = until.clone();
        async move {
            tokio::select! {
                ready = scopes_ready.wait_until_ready() => if ready.is_ok() { reset_controller.await },
                _ = until => {}
            }
        }
    };
    let policy_controller = Controller::for_stream(policy_events, policy_store.clone())
        .with_config(controller_config)
        .graceful_shutdown_on(until.clone())
        .run(reconcile::policy::reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    let until_scopes = until.clone();
    let ready = {
        let health = health.clone();
        async move {
            let (a, b, c) = futures::join!(
                reset_store.wait_until_ready(),
                policy_store.wait_until_ready(),
                scope_store.wait_until_ready()
            );
            if a.is_ok() && b.is_ok() && c.is_ok() {
                health.ready.store(true, Ordering::Relaxed);
                info!("caches synced; reconciling");
            }
        }
    };
    let scope_cache = async move {
        tokio::select! { _ = scope_cache => {}, _ = until_scopes => {} }
    };
    futures::join!(
        scope_cache,
        reset_controller,
        policy_controller,
        ready,
        in_flight_gauge,
        acceptor,
        notifications
    );
}

/// First-status writes in flight at once. The API server, not AMAPI, is the limit here: 16 left
/// the writes behind a wave of 2,000 creates (they shared the server about evenly); more keeps up.
const ACCEPT_IN_FLIGHT: usize = 64;

/// Writes `Pending/Validating` into every reset the cache shows without a status, so a new reset
/// has a status within a moment of its creation even when thousands wait for AMAPI's rate limit
/// (the reconciles that call AMAPI queue behind it; this never calls AMAPI). A scan of the cache
/// every 50 ms feeds a pipeline of [`ACCEPT_IN_FLIGHT`] writes, so one slow write holds up no
/// other. A reset whose reconcile has started is left to it (see `reconcile::reset::accepting`).
/// Each write is conditional on the resourceVersion: if anything wrote first (the reconcile, a
/// label or annotation edit), it is dropped, and the new version is handed over again while it has
/// no status; a write that failed otherwise is tried again after a backoff.
async fn accept_new_resets(
    resets: Store<PasscodeReset>,
    client: Client,
    amapi: AmapiClient,
    accepting: Arc<reconcile::reset::accepting::Accepting>,
    until: Stop,
) {
    let (queue, mut queued) = tokio::sync::mpsc::unbounded_channel::<Arc<PasscodeReset>>();
    // uid → when to try its first status again (a write that failed, not by a conflict, or one
    // left to a reconcile's write that may fail).
    let failed: Arc<std::sync::Mutex<HashMap<String, Retry>>> = Default::default();
    let scan = {
        let (resets, failed, accepting) = (resets.clone(), failed.clone(), accepting.clone());
        async move {
            // uid → resourceVersion of the status-less resets handed to the writers.
            let mut handed: HashMap<String, String> = HashMap::new();
            loop {
                let new: Vec<Arc<PasscodeReset>> = resets
                    .state()
                    .into_iter()
                    .filter(|r| r.status.is_none() && r.metadata.deletion_timestamp.is_none())
                    .collect();
                let uid = |r: &PasscodeReset| r.metadata.uid.clone().unwrap_or_default();
                let still: HashSet<String> = new.iter().map(|r| uid(r)).collect();
                handed.retain(|u, _| still.contains(u));
                accepting.retain(|u| still.contains(u));
                let now = std::time::Instant::now();
                let due: HashSet<String> = {
                    let mut failed = failed.lock().expect("acceptor failures");
                    failed.retain(|u, _| still.contains(u));
                    failed
                        .iter()
                        .filter(|(_, retry)| retry.at <= now)
                        .map(|(u, _)| u.clone())
                        .collect()
                };
                for r in new {
                    let (u, version) = (uid(&r), r.resource_version().unwrap_or_default());
                    // A new version (someone wrote it), or a failed write now due: again.
                    let fresh = handed.get(&u) != Some(&version) || due.contains(&u);
                    if fresh {
                        if let Some(retry) = failed.lock().expect("acceptor failures").get_mut(&u) {
                            // Not again before the writer of this version says so.
                            retry.at = now + Duration::from_secs(3600);
                            retry.version = version.clone();
                        }
                        handed.insert(u, version);
                        if queue.send(r).is_err() {
                            return;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let write = futures::stream::poll_fn(move |cx| queued.poll_recv(cx)).for_each_concurrent(
        ACCEPT_IN_FLIGHT,
        |r| {
            let (client, amapi, resets, failed, accepting) = (
                client.clone(),
                amapi.clone(),
                resets.clone(),
                failed.clone(),
                accepting.clone(),
            );
            async move {
                // Queued behind a wave: skip what has a status by now (a certain conflict).
                if resets
                    .get(&ObjectRef::from_obj(r.as_ref()))
                    .is_some_and(|now| now.status.is_some())
                {
                    return;
                }
                let uid = r.metadata.uid.clone().unwrap_or_default();
                let version = r.resource_version().unwrap_or_default();
                // Its reconcile is writing it (looked at again in a second, in case that write
                // fails), or a first status landed that the cache does not show yet.
                let Some(writing) = accepting.acceptor_begins(&uid, &version) else {
                    if !accepting.landed(&uid, &version) {
                        let again = Retry {
                            at: std::time::Instant::now() + Duration::from_secs(1),
                            backoff: Duration::from_secs(1),
                            version,
                        };
                        failed
                            .lock()
                            .expect("acceptor failures")
                            .entry(uid)
                            .and_modify(|retry| {
                                retry.at = again.at;
                                retry.version = again.version.clone();
                            })
                            .or_insert(again);
                    }
                    return;
                };
                let api: Api<PasscodeReset> =
                    Api::namespaced(client, &r.namespace().unwrap_or_default());
                let mut next = (*r).clone();
                next.status = Some(decide::accepted(&r, jiff::Timestamp::now(), amapi.waiting()));
                // The reconcile's first-status write hits it too: whichever writes it.
                crate::failpoint::hit("before-first-status-write");
                let result = api
                    .replace_status(&r.name_any(), &Default::default(), &next)
                    .await;
                if let Ok(landed) = &result {
                    writing.landed(landed);
                } else {
                    drop(writing);
                }
                let mut failed = failed.lock().expect("acceptor failures");
                match result {
                    // Done with this version (landed, or someone wrote first, or gone); a retry
                    // booked meanwhile for a newer one stays.
                    Ok(_) => drop_retry(&mut failed, &uid, &version),
                    Err(kube::Error::Api(s)) if s.is_conflict() || s.is_not_found() => {
                        drop_retry(&mut failed, &uid, &version)
                    }
                    Err(e) => {
                        // Backing off, 1 s doubling to a minute: an API server in trouble is
                        // not hammered (the reset's reconcile writes a status in any case).
                        let backoff = failed.get(&uid).map_or(Duration::from_secs(1), |retry| {
                            (retry.backoff * 2).min(Duration::from_secs(60))
                        });
                        warn!(error = %e, retry_in = ?backoff, "could not write a first status; trying again");
                        let at = std::time::Instant::now() + backoff;
                        failed.insert(uid, Retry { at, backoff, version });
                    }
                }
            }
        },
    );
    tokio::select! { _ = scan => {}, _ = write => {}, _ = until => {} }
}

/// When the acceptor tries a reset's first status again.
struct Retry {
    at: std::time::Instant,
    /// The next wait after another failure.
    backoff: Duration,
    /// The version the retry is for: a write over an older one that ends does not cancel it.
    version: String,
}

/// Forgets `uid`'s retry if it is for `version`.
fn drop_retry(failed: &mut HashMap<String, Retry>, uid: &str, version: &str) {
    if failed
        .get(uid)
        .is_some_and(|retry| retry.version == version)
    {
        failed.remove(uid);
    }
}

/// What triggers a reconcile of a reset: a new object, a spec change (generation), or a decision
/// recorded on it. The operator's own status and finalizer writes do not.
fn spec_or_decision(r: &PasscodeReset) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    r.metadata.generation.hash(&mut h);
    r.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(APPROVAL_ANNOTATION))
        .hash(&mut h);
    Some(h.finish())
}

fn error_policy<K>(_: Arc<K>, error: &reconcile::Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_error(error.label());
    match error {
        reconcile::Error::Kube(kube::Error::Api(s)) if s.is_conflict() => {
            Action::requeue(Duration::from_millis(200))
        }
        e => {
            error!(error = %e, kind = e.label(), "reconcile failed; retrying");
            Action::requeue(Duration::from_secs(5))
        }
    }
}

#[cfg(test)]
mod acceptor_tests {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};

    use super::*;
    use crate::reconcile::reset::accepting::{Accepting, FirstStatus};

    /// The acceptor running against a stand-in API server that takes status PUTs: each records
    /// the resourceVersion it was made over; one over a version in `conflicting` answers 409 after
    /// 600 ms (a loaded server), any other lands.
    struct Running {
        puts: Arc<std::sync::Mutex<Vec<String>>>,
        cache: reflector::store::Writer<PasscodeReset>,
        accepting: Arc<Accepting>,
        stop: Option<futures::channel::oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<()>,
        dir: std::path::PathBuf,
    }

    impl Running {
        async fn start(name: &str, conflicting: &'static [&'static str]) -> Running {
            crate::install_crypto_provider();
            let puts: Arc<std::sync::Mutex<Vec<String>>> = Default::default();
            let app = axum::Router::new().fallback({
                let puts = puts.clone();
                move |method: http::Method, uri: http::Uri, body: axum::body::Bytes| {
                    let puts = puts.clone();
                    async move {
                        use axum::response::IntoResponse;
                        if method != http::Method::PUT || !uri.path().ends_with("/status") {
                            return http::StatusCode::NOT_FOUND.into_response();
                        }
                        let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                        let rv = v["metadata"]["resourceVersion"]
                            .as_str()
                            .unwrap()
                            .to_owned();
                        puts.lock().unwrap().push(rv.clone());
                        if conflicting.contains(&rv.as_str()) {
                            tokio::time::sleep(Duration::from_millis(600)).await;
                            let status = serde_json::json!({
                                "kind": "Status", "apiVersion": "v1", "metadata": {},
                                "status": "Failure", "reason": "Conflict", "code": 409,
                                "message": "the object has been modified",
                            });
                            return (http::StatusCode::CONFLICT, axum::Json(status))
                                .into_response();
                        }
                        v["metadata"]["resourceVersion"] = "100".into();
                        axum::Json(v).into_response()
                    }
                }
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await });
            let client =
                Client::try_from(Config::new(format!("http://{addr}").parse().unwrap())).unwrap();
            let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
            let amapi = idle_amapi(&dir).await;
            let (store, cache) = reflector::store::<PasscodeReset>();
            let accepting = Arc::new(Accepting::default());
            let (stop, stopped) = futures::channel::oneshot::channel::<()>();
            let until: Stop = stopped.map(|_| ()).boxed().shared();
            let task = tokio::spawn(accept_new_resets(
                store,
                client,
                amapi,
                accepting.clone(),
                until,
            ));
            Running {
                puts,
                cache,
                accepting,
                stop: Some(stop),
                task,
                dir,
            }
        }

        /// The watch brings the reset at `rv`, without a status.
        fn shows(&mut self, rv: &str) {
            let reset: PasscodeReset = serde_json::from_value(serde_json::json!({
                "apiVersion": "amapi.passcode-operator.io/v1alpha1",
                "kind": "PasscodeReset",
                "metadata": {"name": "r", "namespace": "ns", "uid": "u1", "resourceVersion": rv},
                "spec": {"device": "enterprises/E1/devices/d1"},
            }))
            .unwrap();
            self.cache
                .apply_watcher_event(&watcher::Event::Apply(reset));
        }

        fn puts(&self) -> Vec<String> {
            self.puts.lock().unwrap().clone()
        }

        /// Until a PUT over `rv` came, or 5 s passed; whether it came.
        async fn put_over(&self, rv: &str) -> bool {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while !self.puts().iter().any(|p| p == rv) && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            self.puts().iter().any(|p| p == rv)
        }

        async fn stop(mut self) {
            let _ = self.stop.take().map(|s| s.send(()));
            let _ = (&mut self.task).await;
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// An AMAPI client that is never called (the acceptor reads only its queue length).
    async fn idle_amapi(dir: &std::path::Path) -> AmapiClient {
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let file = serde_json::json!({
            "type": "service_account", "project_id": "p", "private_key_id": "k",
            "private_key": pem.as_str(), "client_email": "sa@p.iam.gserviceaccount.com",
            "client_id": "1", "auth_uri": "http://127.0.0.1:1/auth",
            "token_uri": "http://127.0.0.1:1/token",
            "auth_provider_x509_cert_url": "http://127.0.0.1:1/certs",
            "client_x509_cert_url": "http://127.0.0.1:1/x509",
        });
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("sa.json");
        std::fs::write(&path, file.to_string()).unwrap();
        let auth = Credentials::from_file(&path, None).await.unwrap();
        AmapiClient::new(auth, ClientOptions::default()).unwrap()
    }

    /// Review regression. A reconcile's first-status write is slow (an API server in trouble:
    /// over a second) and then fails. The acceptor looked while it was in flight (retry in 1 s)
    /// and again a second later, when the scan had parked the retry an hour ahead ("not again
    /// before the writer says so"). The acceptor must still try again once the reconcile's write
    /// is over, not leave the reset to its reconcile's requeue behind AMAPI's rate limit.
    #[tokio::test]
    async fn a_slow_failed_reconcile_write_leaves_the_acceptor_trying_again() {
        let mut running = Running::start("acceptor-retry", &[]).await;
        running.shows("1");
        // The reconcile's write, in flight for 2.5 s (the scenario's time, not a wait for a
        // race): the acceptor leaves the reset alone meanwhile.
        let FirstStatus::Write(in_flight) = running.accepting.first_status("u1", "1") else {
            panic!("free")
        };
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(
            running.puts().is_empty(),
            "the acceptor waits for the reconcile's write"
        );
        // It failed (a 5xx): nothing landed, and the reconcile is requeued behind the queue.
        drop(in_flight);
        let wrote = running.put_over("1").await;
        running.stop().await;
        assert!(
            wrote,
            "the acceptor wrote no first status within 5 s of the reconcile's write failing"
        );
    }

    /// Review regression (round 3). The acceptor's own write over rv 1 is in flight (600 ms) when
    /// the cache shows rv 2, still without a status (a label edit, or a decision annotation,
    /// landed first). rv 2's writer finds the uid being written and books a retry; rv 1's write
    /// then ends in a conflict, which must not cancel that retry (rv 2 is not handed over again
    /// otherwise, and the reset would wait for its reconcile behind the AMAPI queue).
    #[tokio::test]
    async fn the_acceptors_own_conflict_does_not_drop_the_retry_of_a_newer_version() {
        let mut running = Running::start("acceptor-rv2", &["1"]).await;
        running.shows("1");
        assert!(running.put_over("1").await, "the acceptor writes over rv 1");
        running.shows("2");
        // rv 1's conflict comes back at 600 ms; a retry booked for rv 2 is due a second after it
        // was booked: 5 s is plenty.
        let wrote = running.put_over("2").await;
        let puts = running.puts();
        running.stop().await;
        assert!(
            wrote,
            "no first status written over rv 2 within 5 s (writes: {puts:?})"
        );
    }
}
