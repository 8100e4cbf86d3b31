//! The webhook's HTTPS server: `/mutate` and `/validate`, AdmissionReview v1 in and out, over
//! TLS with the certificate of `certs` (swapped in place on rotation). The answers are
//! `review`'s; this file decodes, asks the API server the access question, and logs decisions.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Client;
use kube::api::{Api, PostParams};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{info, warn};

use super::review::{self, APPROVE_VERB, Answer, Operation, Review};
use super::seal::SealKey;
use crate::api::UserInfo;

/// The serving certificate, replaced on rotation without a restart.
#[derive(Debug)]
pub struct Resolver(pub RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.read().ok().map(|k| k.clone())
    }
}

#[derive(Clone)]
struct AppState {
    key: SealKey,
    client: Client,
    /// The operator's own username: the one identity that writes the status records.
    operator: String,
}

/// TLS connections, handshaken off the accept loop so a slow client holds up no other.
struct TlsListener {
    addr: SocketAddr,
    accepted: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(c) => c,
            // The accept task ended: the server is stopping; wait for the shutdown signal.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

/// Binds `addr` and serves until `shutdown` resolves. Returns the bound address once listening.
pub async fn serve(
    addr: SocketAddr,
    resolver: Arc<Resolver>,
    key: SealKey,
    client: Client,
    operator: String,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let tcp = tokio::net::TcpListener::bind(addr).await?;
    let local = tcp.local_addr()?;
    let mut tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let accept = tokio::spawn(async move {
        loop {
            let (stream, peer) = match tcp.accept().await {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "webhook accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                    Ok(Ok(s)) => {
                        let _ = tx.send((s, peer)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, %peer, "webhook TLS handshake"),
                    Err(_) => tracing::debug!(%peer, "webhook TLS handshake timed out"),
                }
            });
        }
    });
    let router = Router::new()
        .route("/mutate", post(mutate))
        .route("/validate", post(validate))
        .with_state(AppState {
            key,
            client,
            operator,
        });
    let listener = TlsListener {
        addr: local,
        accepted: rx,
    };
    info!(address = %local, "serving the admission webhook (/mutate, /validate) over TLS");
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            warn!(error = %e, "admission webhook server");
        }
        accept.abort();
    });
    Ok((local, task))
}

type ReviewJson = Json<AdmissionReview<DynamicObject>>;

fn user_of(req: &AdmissionRequest<DynamicObject>) -> UserInfo {
    UserInfo {
        username: req.user_info.username.clone().unwrap_or_default(),
        uid: req.user_info.uid.clone().unwrap_or_default(),
        groups: req.user_info.groups.clone().unwrap_or_default(),
    }
}

fn operation(req: &AdmissionRequest<DynamicObject>) -> Operation {
    match req.operation {
        kube::core::admission::Operation::Create => Operation::Create,
        kube::core::admission::Operation::Update => Operation::Update,
        _ => Operation::Other,
    }
}

/// Decodes a review, or answers that it cannot be read.
#[allow(clippy::result_large_err)] // the answer is sent at once, never carried around
fn request(
    review: AdmissionReview<DynamicObject>,
) -> Result<AdmissionRequest<DynamicObject>, ReviewJson> {
    review
        .try_into()
        .map_err(|e: kube::core::admission::ConvertAdmissionReviewError| {
            Json(AdmissionResponse::invalid(e.to_string()).into_review())
        })
}

/// What both webhooks read of a request: who sent it and the objects as JSON.
struct Read {
    user: UserInfo,
    namespace: String,
    object: serde_json::Value,
    old: Option<serde_json::Value>,
}

impl Read {
    fn of(req: &AdmissionRequest<DynamicObject>) -> Read {
        Read {
            user: user_of(req),
            namespace: req.namespace.clone().unwrap_or_default(),
            object: serde_json::to_value(&req.object).unwrap_or_default(),
            old: req
                .old_object
                .as_ref()
                .map(|o| serde_json::to_value(o).unwrap_or_default()),
        }
    }

    /// The request as the pure review sees it.
    fn review<'a>(&'a self, req: &'a AdmissionRequest<DynamicObject>) -> Review<'a> {
        Review {
            operation: operation(req),
            namespace: &self.namespace,
            subresource: req.sub_resource.as_deref(),
            user: &self.user,
            object: &self.object,
            old: self.old.as_ref(),
            now: jiff::Timestamp::now(),
        }
    }
}

async fn mutate(State(s): State<AppState>, Json(review): ReviewJson) -> ReviewJson {
    let req = match request(review) {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let read = Read::of(&req);
    let (user, namespace) = (&read.user, &read.namespace);
    let r = read.review(&req);
    let mut answer = review::mutate(&s.key, &r, None);
    if answer == Answer::CheckApprove {
        let allowed = may_approve(&s.client, &req, user).await;
        answer = match allowed {
            Ok(allowed) => review::mutate(&s.key, &r, Some(allowed)),
            Err(e) => Answer::Deny(format!(
                "could not check whether {} may approve: {e}",
                user.username
            )),
        };
    }
    let response = AdmissionResponse::from(&req);
    let response = match answer {
        Answer::Allow | Answer::CheckApprove => response,
        Answer::Deny(m) => {
            info!(audit = true, namespace, name = %req.name, user = %user.username, reason = %m, "admission refused");
            response.deny(m)
        }
        Answer::Patch(ops) => {
            if r.operation == Operation::Update {
                info!(audit = true, namespace, name = %req.name, approver = %user.username, "passcode reset decision recorded");
            } else {
                info!(audit = true, namespace, name = %req.name, requester = %user.username, "passcode reset requester recorded");
            }
            match serde_json::from_value::<json_patch::Patch>(serde_json::Value::Array(ops))
                .map_err(|e| e.to_string())
                .and_then(|p| response.clone().with_patch(p).map_err(|e| e.to_string()))
            {
                Ok(r) => r,
                Err(e) => response.deny(format!("internal error building the patch: {e}")),
            }
        }
    };
    Json(response.into_review())
}

async fn validate(State(s): State<AppState>, Json(review): ReviewJson) -> ReviewJson {
    let req = match request(review) {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    let read = Read::of(&req);
    let user = &read.user;
    let r = read.review(&req);
    let response = AdmissionResponse::from(&req);
    let response = match review::validate(&s.key, &r, &s.operator) {
        Ok(()) => response,
        Err(m) => {
            info!(audit = true, namespace = read.namespace.as_str(), name = %req.name, user = %user.username, reason = %m, "admission refused");
            response.deny(m)
        }
    };
    Json(response.into_review())
}

/// A SubjectAccessReview: may `user` `approve` this reset?
async fn may_approve(
    client: &Client,
    req: &AdmissionRequest<DynamicObject>,
    user: &UserInfo,
) -> Result<bool, String> {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.username.clone()),
            uid: (!user.uid.is_empty()).then(|| user.uid.clone()),
            groups: Some(user.groups.clone()),
            extra: req.user_info.extra.clone(),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(APPROVE_VERB.into()),
                group: Some(crate::api::GROUP.into()),
                resource: Some("passcoderesets".into()),
                namespace: req.namespace.clone(),
                name: Some(req.name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| e.to_string())?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}
