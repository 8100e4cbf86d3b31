//! The operator as users run it: its image built here (`hack/image`), loaded into a real node's
//! containerd (`hack/node`), installed with `kubectl apply -k` of an overlay that changes only
//! the image reference, the AMAPI endpoint (a simulator on the host) and where the API server
//! calls the admission webhook (no kube-proxy here: see `testkit::node::service_stand_in`).
//! [`chart`] installs the Helm chart on a node of its own, in the keyless credential modes.
//!
//! The tests share one installation and take turns ([`turn`]): they delete and kill its pods.

mod chart;
mod image;
mod operator;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use testkit::node::{Node, host_simulator, image, node, service_stand_in};

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

/// An installation of the operator on a node, and where its resets go.
pub struct Installed {
    pub node: &'static Node,
    /// The simulator's base URL (on the host IP, reached by pods and by the tests).
    pub amapi: String,
    /// The operator's namespace (its pods, its Lease) and the Lease's name.
    pub namespace: &'static str,
    pub lease: &'static str,
    pub replicas: usize,
    /// Where its resets are created (a PasscodeResetScope covers it), for which enterprise.
    pub helpdesk: &'static str,
    pub enterprise: &'static str,
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
    let (amapi, credentials) = host_simulator(node, FLEET);
    let webhook = service_stand_in(
        node,
        NAMESPACE,
        "app.kubernetes.io/name=passcode-operator",
        8443,
    );
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
    Installed {
        node,
        amapi,
        namespace: NAMESPACE,
        helpdesk: HELPDESK,
        enterprise: ENTERPRISE,
        lease: "passcode-operator",
        replicas: 2,
    }
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
