//! Test support: one real control plane (etcd + kube-apiserver v1.20.2, started by
//! `hack/control-plane`) per test binary, the CRDs installed from the code, the operator's
//! ServiceAccount and RBAC installed from `manifests/`, and one namespace per test.
//!
//! The control plane is started with `--owner-pid` of this process, so it is stopped and its
//! directory removed when the test binary exits, also after a panic or a kill.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config};

pub const OPERATOR_NAMESPACE: &str = "passcode-operator-system";

pub struct ControlPlane {
    pub dir: PathBuf,
    pub server_version: String,
}

static CONTROL_PLANE: OnceLock<ControlPlane> = OnceLock::new();

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The control plane of this test binary, started on first use.
pub fn control_plane() -> &'static ControlPlane {
    CONTROL_PLANE.get_or_init(start)
}

fn start() -> ControlPlane {
    let dir = std::env::temp_dir().join(format!("passcode-operator-test-{}", std::process::id()));
    let status = Command::new(repo().join("hack/control-plane"))
        .arg("start")
        .arg(&dir)
        .arg("--owner-pid")
        .arg(std::process::id().to_string())
        .status()
        .expect("run hack/control-plane");
    assert!(
        status.success(),
        "hack/control-plane start failed: {status}"
    );

    // CRDs from the code, then the manifests exactly as a user applies them. On a thread of its
    // own: the first caller may be inside a test's runtime, which cannot block on another.
    let setup_dir = dir.clone();
    let server_version = std::thread::spawn(move || {
        let dir = setup_dir;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let client = client_from(&dir.join("kubeconfig")).await;
            let version = client.apiserver_version().await.expect("server version");
            let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
            for crd in passcode_operator::api::crds() {
                let name = crd.metadata.name.clone().unwrap();
                crds.create(&PostParams::default(), &crd)
                    .await
                    .expect("create CRD");
                tokio::time::timeout(
                    Duration::from_secs(30),
                    await_condition(crds.clone(), &name, conditions::is_crd_established()),
                )
                .await
                .expect("CRD established in 30s")
                .expect("watch CRD");
            }
            version.git_version
        })
    })
    .join()
    .expect("control plane setup");
    // 1.20's published OpenAPI predates CEL rules, so kubectl's client-side check would refuse
    // `x-kubernetes-validations`; the server itself still validates everything it knows.
    kubectl(
        &dir,
        &[
            "apply",
            "--validate=false",
            "-k",
            repo().join("manifests").to_str().unwrap(),
        ],
    );
    // Written outside the test harness's capture so every test log names the server it used.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "[support] kube-apiserver {server_version} at {}",
        dir.display()
    );
    ControlPlane {
        dir,
        server_version,
    }
}

/// Runs kubectl as admin against the test control plane; panics with its output on failure.
pub fn kubectl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .env("KUBECONFIG", dir.join("kubeconfig"))
        .args(args)
        .output()
        .expect("run kubectl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn client_from(kubeconfig: &Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    Client::try_from(config).expect("client")
}

/// A client with full rights (system:masters). Build one per test: a client lives on the
/// runtime that created it.
pub async fn admin() -> Client {
    client_from(&control_plane().dir.join("kubeconfig")).await
}

/// A client authenticated as the operator's ServiceAccount: it has exactly what `manifests/`
/// grants.
pub async fn operator() -> Client {
    client_from(&control_plane().dir.join("operator.kubeconfig")).await
}

/// A fresh namespace for one test.
pub async fn namespace(client: &Client, test: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "{}-{}",
        test.replace('_', "-"),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    name
}
