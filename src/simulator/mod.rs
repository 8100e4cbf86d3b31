//! An Android Management API simulator: a real HTTP server speaking the AMAPI subset this operator
//! uses, plus Google's OAuth token endpoint, with devices that behave like devices. Tests, demos
//! and users' dry runs point the operator at it instead of Google.
//!
//! - `POST /token`: service-account JWT bearer grant ([`oauth`]).
//! - `POST /v1/token`: STS token exchange of a Kubernetes service-account token, verified against
//!   the cluster's issuer ([`sts`]); `POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken`:
//!   IAM Credentials impersonation ([`iam`]); `/computeMetadata/v1/...`: the metadata server of
//!   GKE and Compute Engine ([`metadata`]). Their tokens are accepted like `/token`'s.
//! - `/v1/...`: devices.get/list/issueCommand, operations.get/list/cancel, policies.get/patch
//!   ([`amapi`]), with quota and injected faults.
//! - `/v1/projects/{p}/subscriptions/{s}:pull|:acknowledge|:modifyAckDeadline`: Pub/Sub's pull
//!   API for AMAPI notifications ([`pubsub_api`], [`pubsub`]): when an enterprise's
//!   `enabledNotificationTypes` holds COMMAND, each command that ends is published, at least
//!   once, with faults.
//! - `/sim/v1/...`: inspection and control, no auth ([`admin`]).
//!
//! What the simulator chose where Google documents nothing:
//!
//! | case | answer |
//! |---|---|
//! | enterprise not in the fleet | 403 PERMISSION_DENIED |
//! | unknown or DELETED device, unknown operation or policy (get) | 404 NOT_FOUND |
//! | `policies.patch` on a missing policy | creates it (as Google's "updates or creates") |
//! | malformed command (unknown field or type, bad flag or duration) | 400 INVALID_ARGUMENT |
//! | command type other than RESET_PASSWORD, LOCK, REBOOT | accepted, fails `UNSUPPORTED` |
//! | reset token not active | errorCode `UNKNOWN`, error code 9 FAILED_PRECONDITION |
//! | API level < 26 / not PROFILE_OWNER or DEVICE_OWNER | `API_LEVEL` / `MANAGEMENT_MODE`, error 9 |
//! | `DO_NOT_ASK_CREDENTIALS_ON_BOOT` on a work profile | `MANAGEMENT_MODE` |
//! | passcode refused by the rules engine | `INVALID_VALUE`, error 3 INVALID_ARGUMENT naming the unmet rules |
//! | command not executed within `duration` | done, error 4 DEADLINE_EXCEEDED, no errorCode |
//! | cancelled before the device acted | done, error 1 CANCELLED, no errorCode |
//! | operations order in operations.list | oldest first; `filter` ignored |
//! | `Command.duration` absent | echoed as `"600s"` |
//! | token without a scope of the API called | 403 PERMISSION_DENIED, ACCESS_TOKEN_SCOPE_INSUFFICIENT |
//! | assertion asking for neither the AMAPI nor the Pub/Sub scope | `invalid_scope` |
//! | Pub/Sub subscription not configured / caller not allowed | 404 "Resource not found (resource=...)." / 403 |
//! | pull with nothing to deliver | waits up to 1 s (real time), then `{}` |
//! | ack after the ack deadline, or with a superseded ack ID | accepted, settles nothing |
//!
//! Time: devices, commands and Pub/Sub ack deadlines run on a simulated clock (real time plus an
//! offset the admin API advances); tokens, the quota window and a pull's wait run on real time.

// Private: users need only [`Simulator`], its configuration and the admin client; the rest is
// how the simulator works inside.
mod admin;
mod admin_client;
mod amapi;
mod clock;
mod command;
mod counters;
mod credentials;
mod device;
mod errors;
mod faults;
mod fleet;
mod iam;
mod metadata;
mod oauth;
mod policy;
mod pubsub;
mod pubsub_api;
mod quota;
mod server;
mod sts;
mod world;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

pub use admin_client::AdminClient;
pub use faults::{FaultSettings, PubsubFaults};
pub use fleet::Fleet;
pub use quota::QuotaSettings;
/// How the counters name an exchanged subject token (`sts.lastSubjectFingerprint`).
pub use sts::fingerprint as token_fingerprint;

use credentials::ServiceAccount;
use server::Shared;

pub struct SimulatorConfig {
    pub listen: SocketAddr,
    pub fleet: Fleet,
    /// A service-account key file: its key is reused when the file exists, and the file is
    /// (re)written with this run's `token_uri`, readable by the owner only.
    pub credentials_path: Option<PathBuf>,
}

/// A running simulator; [`Simulator::shutdown`] stops it (dropping it aborts its tasks).
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    credentials: String,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    scheduler: JoinHandle<()>,
}

/// How long shutdown waits for open connections to finish before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

impl Simulator {
    /// Binds `config.listen`, then serves on a spawned task.
    pub async fn start(config: SimulatorConfig) -> anyhow::Result<Simulator> {
        config
            .fleet
            .validate()
            .map_err(|e| anyhow::anyhow!("fleet: {e}"))?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let base_url = base_url(addr);
        let token_uri = format!("{base_url}token");
        let account = match config.credentials_path.clone() {
            Some(path) => {
                tokio::task::spawn_blocking(move || ServiceAccount::load_or_generate(&path))
                    .await
                    .context("key generation task")??
            }
            None => tokio::task::spawn_blocking(ServiceAccount::generate)
                .await
                .context("key generation task")??,
        };
        let credentials = account.key_file(&base_url, &token_uri);
        if let Some(path) = &config.credentials_path {
            credentials::write_key_file(path, &credentials)?;
        }
        let settings = &config.fleet.settings;
        let federation = settings
            .workload_identity
            .clone()
            .map(sts::Federation::new)
            .transpose()?;
        let clock = clock::Clock::default();
        let world = world::World::from_fleet(&config.fleet, clock.now());
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
            clock,
            tokens: Mutex::new(oauth::Tokens::new(settings.token_ttl)),
            quota: Mutex::new(quota::Quota::new(settings.quota)),
            faults: Mutex::new(settings.faults.clone()),
            counters: Mutex::default(),
            account,
            token_uri,
            federation,
            wake: Notify::new(),
        });
        let app = server::router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "simulator server failed");
            }
        });
        let scheduler = tokio::spawn(server::schedule(shared.clone()));
        tracing::info!(%addr, "AMAPI simulator listening");
        Ok(Simulator {
            addr,
            shared,
            credentials,
            stop: Some(stop),
            server: Some(server),
            scheduler,
        })
    }

    /// The address it is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/`: AMAPI's root URL for clients (a wildcard bind is reached on
    /// loopback).
    pub fn base_url(&self) -> String {
        base_url(self.addr)
    }

    /// A client for this simulator's admin API.
    pub fn admin(&self) -> AdminClient {
        AdminClient::new(&self.base_url())
    }

    pub fn token_uri(&self) -> String {
        self.shared.token_uri.clone()
    }

    /// The Google service-account key file for the simulated service account.
    pub fn credentials_json(&self) -> String {
        self.credentials.clone()
    }

    /// Stops serving: open requests may finish for a few seconds, then everything stops.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
        self.scheduler.abort();
        tracing::info!(addr = %self.addr, "AMAPI simulator stopped");
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
        self.scheduler.abort();
    }
}

fn base_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(ip, addr.port()))
}
