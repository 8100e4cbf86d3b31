//! Who asked and who approved: the operator's admission webhook for PasscodeResets.
//!
//! - `seal`: the sealed records (requester, decision) in a reset's annotations. Pure.
//! - `review`: what the webhook answers for one request. Pure.
//! - `certs`: the CA and serving certificate the operator makes for itself. Pure.
//! - `server`: the HTTPS server and the SubjectAccessReview.
//! - this file: the webhook Secret, the registration in the webhook configurations (`caBundle`,
//!   where to call), and rotation.

pub mod certs;
pub mod review;
pub mod seal;
mod server;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ServiceReference, ValidatingWebhookConfiguration,
    WebhookClientConfig,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tracing::{info, warn};

pub use seal::{Admission, SealKey};

/// Where the API server calls the webhook.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// A Service in the operator's namespace (in a cluster), port 443.
    Service { name: String },
    /// A URL such as `https://127.0.0.1:8443` (the operator outside the cluster, tests).
    Url(String),
}

/// How the webhook is served and registered.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub listen: SocketAddr,
    pub endpoint: Endpoint,
    /// The name of both the MutatingWebhookConfiguration and the ValidatingWebhookConfiguration.
    pub configuration: String,
    /// Restrict the webhooks to namespaces with these labels (default: as shipped).
    pub namespace_selector: Option<BTreeMap<String, String>>,
    /// The Secret (in the operator's namespace) holding the certificate and the seal key.
    pub secret: String,
    pub operator_namespace: String,
    /// The operator's own username (its ServiceAccount).
    pub operator_username: String,
    /// How often the Secret is read again (another replica may have rotated) and rotation due.
    pub check_every: Duration,
}

/// The webhook, serving: the seal key the reconcile verifies records with.
pub struct Webhook {
    pub key: SealKey,
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<()>,
}

impl WebhookConfig {
    /// The names the serving certificate must carry.
    pub fn hosts(&self) -> Result<Vec<String>, String> {
        match &self.endpoint {
            Endpoint::Service { name } => {
                let ns = &self.operator_namespace;
                Ok(vec![
                    format!("{name}.{ns}.svc"),
                    format!("{name}.{ns}.svc.cluster.local"),
                ])
            }
            Endpoint::Url(url) => {
                let parsed =
                    reqwest::Url::parse(url).map_err(|e| format!("--webhook-url {url:?}: {e}"))?;
                if parsed.scheme() != "https" {
                    return Err(format!("--webhook-url {url:?} must be https"));
                }
                match parsed.host_str() {
                    Some(host) => Ok(vec![host.trim_matches(['[', ']']).to_owned()]),
                    None => Err(format!("--webhook-url {url:?} has no host")),
                }
            }
        }
    }

    fn client_config(&self, path: &str, ca_bundle: &str) -> WebhookClientConfig {
        let ca_bundle = Some(ByteString(ca_bundle.as_bytes().to_vec()));
        match &self.endpoint {
            Endpoint::Service { name } => WebhookClientConfig {
                ca_bundle,
                service: Some(ServiceReference {
                    name: name.clone(),
                    namespace: self.operator_namespace.clone(),
                    path: Some(path.to_owned()),
                    port: Some(443),
                }),
                url: None,
            },
            Endpoint::Url(url) => WebhookClientConfig {
                ca_bundle,
                service: None,
                url: Some(format!("{}{path}", url.trim_end_matches('/'))),
            },
        }
    }
}

/// Loads (or makes) the certificate and seal key, serves the webhook, registers it, and keeps
/// the certificate fresh until `stop` resolves. Any failure here is a startup error.
pub async fn start(
    client: Client,
    cfg: WebhookConfig,
    stop: impl std::future::Future<Output = ()> + Send + Clone + 'static,
) -> anyhow::Result<Webhook> {
    let hosts = cfg.hosts().map_err(|e| anyhow!(e))?;
    let material = ensure(&client, &cfg, &hosts, None).await?;
    let key = SealKey::new(&material.seal_key);
    let resolver = Arc::new(server::Resolver(RwLock::new(Arc::new(
        certs::certified_key(&material).map_err(|e| anyhow!(e))?,
    ))));
    let (addr, task) = server::serve(
        cfg.listen,
        resolver.clone(),
        key.clone(),
        client.clone(),
        cfg.operator_username.clone(),
        stop.clone(),
    )
    .await
    .with_context(|| format!("cannot listen on {} for the webhook", cfg.listen))?;
    register(&client, &cfg, &material.ca_bundle).await?;
    info!(configuration = %cfg.configuration, not_after = %material.not_after, "admission webhook registered");
    tokio::spawn(keep_fresh(client, cfg, hosts, material, resolver, stop));
    Ok(Webhook { key, addr, task })
}

/// Reads the webhook Secret, making or rotating its material when needed. `held`: the material
/// this replica serves (none at startup), written back if the Secret is gone.
async fn ensure(
    client: &Client,
    cfg: &WebhookConfig,
    hosts: &[String],
    held: Option<&certs::Material>,
) -> anyhow::Result<certs::Material> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &cfg.operator_namespace);
    let what = || format!("Secret {}/{}", cfg.operator_namespace, cfg.secret);
    // Replicas starting together race; each round reads what the winner wrote.
    for _ in 0..5 {
        let now = jiff::Timestamp::now();
        let existing = api.get_opt(&cfg.secret).await.with_context(what)?;
        let data = existing
            .as_ref()
            .map(|s| s.data.clone().unwrap_or_default());
        let (next, restored) =
            match certs::next(data.as_ref(), held, hosts, now).map_err(|e| anyhow!(e))? {
                certs::Next::Keep(m) => return Ok(m),
                certs::Next::Write { material, restored } => (material, restored),
            };
        if restored {
            warn!(secret = %what(), "the webhook Secret is gone; writing back the seal key and CA this replica holds");
        }
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(cfg.secret.clone()),
                namespace: Some(cfg.operator_namespace.clone()),
                resource_version: existing
                    .as_ref()
                    .and_then(|s| s.metadata.resource_version.clone()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/name".to_owned(),
                    "passcode-operator".to_owned(),
                )])),
                ..Default::default()
            },
            data: Some(certs::to_data(&next)),
            ..Default::default()
        };
        let written = match existing {
            None => api.create(&PostParams::default(), &secret).await,
            Some(_) => {
                api.replace(&cfg.secret, &PostParams::default(), &secret)
                    .await
            }
        };
        match written {
            Ok(_) if restored => return Ok(next),
            Ok(_) => {
                info!(secret = %what(), not_after = %next.not_after, "made a new webhook certificate");
                return Ok(next);
            }
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e).with_context(what),
        }
    }
    Err(anyhow!("{} kept changing while being written", what()))
}

/// Points both webhook configurations at this operator with the current CA bundle.
async fn register(client: &Client, cfg: &WebhookConfig, ca_bundle: &str) -> anyhow::Result<()> {
    let selector = cfg.namespace_selector.as_ref().map(|labels| LabelSelector {
        match_labels: Some(labels.clone()),
        match_expressions: None,
    });
    for _ in 0..5 {
        let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
        let mut m = api.get(&cfg.configuration).await.with_context(|| {
            format!(
                "MutatingWebhookConfiguration {} (apply manifests/webhook.yaml)",
                cfg.configuration
            )
        })?;
        let before = m.clone();
        for w in m.webhooks.iter_mut().flatten() {
            w.client_config = cfg.client_config("/mutate", ca_bundle);
            if selector.is_some() {
                w.namespace_selector = selector.clone();
            }
        }
        if m != before {
            match api
                .replace(&cfg.configuration, &PostParams::default(), &m)
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => return Err(e).context("cannot update the MutatingWebhookConfiguration"),
            }
        }
        let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
        let mut v = api.get(&cfg.configuration).await.with_context(|| {
            format!(
                "ValidatingWebhookConfiguration {} (apply manifests/webhook.yaml)",
                cfg.configuration
            )
        })?;
        let before = v.clone();
        for w in v.webhooks.iter_mut().flatten() {
            w.client_config = cfg.client_config("/validate", ca_bundle);
            if selector.is_some() {
                w.namespace_selector = selector.clone();
            }
        }
        if v != before {
            match api
                .replace(&cfg.configuration, &PostParams::default(), &v)
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(e) => {
                    return Err(e).context("cannot update the ValidatingWebhookConfiguration");
                }
            }
        }
        return Ok(());
    }
    Err(anyhow!(
        "the webhook configurations {} kept changing while being updated",
        cfg.configuration
    ))
}

/// Reads the Secret again now and then: rotates when due (or takes another replica's rotation),
/// serves the new certificate and keeps the `caBundle` current.
async fn keep_fresh(
    client: Client,
    cfg: WebhookConfig,
    hosts: Vec<String>,
    mut material: certs::Material,
    resolver: Arc<server::Resolver>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let work = async {
        loop {
            tokio::time::sleep(cfg.check_every).await;
            let next = match ensure(&client, &cfg, &hosts, Some(&material)).await {
                Ok(m) => m,
                Err(e) => {
                    warn!(
                        error = format!("{e:#}"),
                        "could not read the webhook Secret; keeping the current certificate"
                    );
                    continue;
                }
            };
            if next == material {
                continue;
            }
            if next.seal_key != material.seal_key {
                // Records this replica seals and reads no longer match the other replicas'
                // until it restarts (another one minted a key while the Secret was gone).
                warn!(
                    "the webhook Secret holds another seal key than this replica; restart every replica so they share one"
                );
            }
            match certs::certified_key(&next) {
                Ok(k) => {
                    if let Ok(mut slot) = resolver.0.write() {
                        *slot = Arc::new(k);
                    }
                }
                Err(e) => {
                    warn!(error = %e, "the webhook Secret holds an unusable certificate");
                    continue;
                }
            }
            if let Err(e) = register(&client, &cfg, &next.ca_bundle).await {
                warn!(
                    error = format!("{e:#}"),
                    "could not update the webhook configurations"
                );
                continue;
            }
            info!(not_after = %next.not_after, "serving the rotated webhook certificate");
            material = next;
        }
    };
    tokio::select! { _ = work => {}, _ = stop => {} }
}
