//! The operator as users run it: its image built here (`hack/image`), loaded into a real node's
//! containerd (`hack/node`), installed with `kubectl apply -k` of an overlay that changes only
//! the image reference, the AMAPI endpoint (a simulator on the host) and where the API server
//! calls the admission webhook (no kube-proxy here: see [`webhook_service`]).
//!
//! The tests share one installation and take turns ([`turn`]): they delete and kill its pods.

mod image;
mod operator;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Endpoints;
use kube::Api;
use passcode_operator::simulator::{Fleet, Simulator, SimulatorConfig};
use testkit::node::{Node, image, node};

pub const NAMESPACE: &str = "passcode-operator-system";
/// The help desk's namespace, covered by a PasscodeResetScope (the manifests require one).
pub const HELPDESK: &str = "helpdesk";
pub const ENTERPRISE: &str = "LCnode";

/// Devices: `ok` syncs at once; the `offline-*` ones hold their command pending until a test
/// brings them online.
const FLEET: &str = "enterprises:
  - id: LCnode
    policies:
      - id: wp
    devices:
      - {id: ok, policy: wp, syncDelay: 100ms}
      - {id: offline-leader, policy: wp, online: false, syncDelay: 100ms}
      - {id: offline-killed, policy: wp, online: false, syncDelay: 100ms}
";

pub struct Installed {
    pub node: &'static Node,
    /// The simulator's base URL (on the host IP, reached by pods and by the tests).
    pub amapi: String,
}

/// A runtime that outlives every test's own: it serves the simulator and the webhook stand-in.
fn background() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Runs `f` on the background runtime from any thread (a test's runtime cannot block on it).
fn on_background<T: Send + 'static>(f: impl std::future::Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || background().block_on(f))
        .join()
        .expect("background task")
}

/// The operator installed on the node, once per test binary.
pub fn installed() -> &'static Installed {
    static INSTALLED: OnceLock<Installed> = OnceLock::new();
    INSTALLED.get_or_init(install)
}

fn install() -> Installed {
    let started = Instant::now();
    let archive = image();
    let node = node();
    node.load(archive);
    let ip = node.host_ip;
    let (amapi, credentials) = on_background(async move {
        passcode_operator::install_crypto_provider();
        let sim = Simulator::start(SimulatorConfig {
            listen: SocketAddr::new(ip, 0),
            fleet: Fleet::from_yaml(FLEET).expect("fleet parses"),
            credentials_path: None,
        })
        .await
        .expect("simulator starts");
        let out = (sim.base_url(), sim.credentials_json());
        // It serves for the rest of the test binary's life.
        std::mem::forget(sim);
        out
    });
    let webhook = on_background(webhook_service(node));
    let dir: PathBuf = node.dir.join("install");
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("credentials.json");
    std::fs::write(&key_file, credentials).unwrap();
    // As a user does: the namespace and the key Secret, then the manifests (README, "Running on
    // your own cluster"; --validate=false on Kubernetes < 1.23).
    node.kubectl(&["create", "namespace", NAMESPACE]);
    node.kubectl(&[
        "create",
        "secret",
        "generic",
        "amapi-credentials",
        "-n",
        NAMESPACE,
        &format!("--from-file=credentials.json={}", key_file.display()),
    ]);
    std::fs::write(
        dir.join("kustomization.yaml"),
        overlay(&dir, &amapi, &webhook),
    )
    .unwrap();
    node.kubectl(&["apply", "--validate=false", "-k", dir.to_str().unwrap()]);
    std::fs::write(
        dir.join("helpdesk.yaml"),
        format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {HELPDESK}}}\n---\n\
             apiVersion: amapi.passcode-operator.io/v1alpha1\nkind: PasscodeResetScope\n\
             metadata: {{name: {HELPDESK}}}\nspec: {{namespaces: [{HELPDESK}], enterprises: [{ENTERPRISE}]}}\n"
        ),
    )
    .unwrap();
    node.kubectl(&["apply", "-f", dir.join("helpdesk.yaml").to_str().unwrap()]);
    node.kubectl(&[
        "rollout",
        "status",
        "-n",
        NAMESPACE,
        "deployment/passcode-operator",
        "--timeout=300s",
    ]);
    eprintln!(
        "[node] image built, node up, operator installed and rolled out in {:.0?}",
        started.elapsed()
    );
    Installed { node, amapi }
}

/// The overlay a user would write: the image built here (never pulled), the simulator as AMAPI,
/// the webhook's URL. Everything else is `manifests/` as shipped.
fn overlay(dir: &Path, amapi: &str, webhook: &str) -> String {
    // kustomize takes only relative paths to other kustomizations
    let dir = dir.canonicalize().unwrap();
    let repo = testkit::repo().canonicalize().unwrap();
    let manifests = format!(
        "{}{}/manifests",
        "../".repeat(dir.components().count() - 1),
        repo.strip_prefix("/").unwrap().display()
    );
    format!(
        r#"apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - {manifests}
images:
  - {{name: passcode-operator, newName: localhost/passcode-operator, newTag: "{version}"}}
patches:
  - target: {{kind: Deployment, name: passcode-operator}}
    patch: |-
      - {{op: add, path: /spec/template/spec/containers/0/imagePullPolicy, value: Never}}
      - {{op: add, path: /spec/template/spec/containers/0/env/-, value: {{name: AMAPI_BASE_URL, value: "{amapi}"}}}}
      - {{op: add, path: /spec/template/spec/containers/0/env/-, value: {{name: PASSCODE_OPERATOR_WEBHOOK_URL, value: "{webhook}"}}}}
"#,
        version = env!("CARGO_PKG_VERSION"),
    )
}

/// What kube-proxy would do for Service `passcode-operator-webhook`, which the API server (on
/// the host) must reach: a TCP forwarder on the host IP that sends each connection to a ready
/// endpoint of the Service, read from its Endpoints at that moment. Returns the webhook URL.
async fn webhook_service(node: &'static Node) -> String {
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(node.host_ip, 0))
        .await
        .expect("bind the webhook stand-in");
    let url = format!("https://{}", listener.local_addr().unwrap());
    let endpoints: Api<Endpoints> = Api::namespaced(node.admin().await, NAMESPACE);
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                continue;
            };
            let endpoints = endpoints.clone();
            tokio::spawn(async move {
                for backend in ready_backends(&endpoints).await {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        return;
                    }
                }
            });
        }
    });
    url
}

async fn ready_backends(endpoints: &Api<Endpoints>) -> Vec<SocketAddr> {
    let Ok(Some(ep)) = endpoints.get_opt("passcode-operator-webhook").await else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for subset in ep.subsets.unwrap_or_default() {
        let port = subset
            .ports
            .unwrap_or_default()
            .first()
            .map(|p| p.port as u16)
            .unwrap_or(8443);
        for address in subset.addresses.unwrap_or_default() {
            if let Ok(ip) = address.ip.parse() {
                out.push(SocketAddr::new(ip, port));
            }
        }
    }
    out
}

/// One test at a time: they delete and kill the installation's pods.
pub async fn turn() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// Polls `check` every 200 ms until it returns Some, or panics naming `what` after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
