//! A real control plane: etcd + kube-apiserver v1.20.2, started by `hack/control-plane`, with the
//! CRDs installed from the code and the operator's ServiceAccount and RBAC from `manifests/`,
//! exactly as a user applies them.
//!
//! It is started with `--owner-pid` of this process, so it is stopped and its directory removed
//! when this process exits, also after a panic or a kill. Tests share one per test binary
//! ([`control_plane`], directory `passcode-operator-test-PID`, which `hack/no-strays` looks for);
//! the benchmark starts its own under another prefix, so a concurrent `make test` never takes it
//! for a stray.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config, ResourceExt};

use crate::repo;

/// The namespace `manifests/` installs the operator's ServiceAccount in.
pub const OPERATOR_NAMESPACE: &str = "passcode-operator-system";

/// Held by a test that registers the webhook configurations (one pair per cluster) or needs
/// them as shipped.
pub static WEBHOOK_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The namespace label a test's operator registers its webhook for.
pub const WEBHOOK_LABEL: &str = "amapi.passcode-operator.io/webhook-test";

/// The people the control plane authenticates besides the admin and the operator (user: groups):
/// `alice`, `carol` (helpdesk-a), `bob` (helpdesk-a, approvers-a), `dave` (helpdesk-b). They
/// have no rights until a test grants them.
pub const PEOPLE: [&str; 4] = ["alice", "bob", "carol", "dave"];

/// The directory prefix of the tests' control planes.
const TEST_PREFIX: &str = "passcode-operator-test";

pub struct ControlPlane {
    pub dir: PathBuf,
    pub server_version: String,
}

impl ControlPlane {
    /// Starts etcd + kube-apiserver in `<temp>/<prefix>-<this PID>`, stopped once this process
    /// has exited however it exits; then installs the CRDs and `manifests/`.
    pub async fn start(prefix: &str) -> ControlPlane {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
        // Its stdout goes to stderr: a benchmark's stdout carries only its results.
        let status = Command::new(repo().join("hack/control-plane"))
            .arg("start")
            .arg(&dir)
            .arg("--owner-pid")
            .arg(std::process::id().to_string())
            .stdout(Stdio::from(std::io::stderr()))
            .status()
            .expect("run hack/control-plane");
        assert!(
            status.success(),
            "hack/control-plane start failed: {status}"
        );
        let client = client_from(&dir.join("kubeconfig")).await;
        let server_version = client
            .apiserver_version()
            .await
            .expect("server version")
            .git_version;
        let crds: Api<CustomResourceDefinition> = Api::all(client);
        for crd in passcode_operator::api::crds() {
            let name = crd.name_any();
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
        let cp = ControlPlane {
            dir,
            server_version,
        };
        // 1.20's published OpenAPI predates CEL rules, so kubectl's client-side check would
        // refuse `x-kubernetes-validations`; the server itself still validates everything it
        // knows.
        cp.kubectl(&[
            "apply",
            "--validate=false",
            "-k",
            repo().join("manifests").to_str().unwrap(),
        ]);
        cp.neutral_webhooks();
        // Written outside the test harness's capture, so every test log names the server it
        // used.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "[testkit] kube-apiserver {} at {}",
            cp.server_version,
            cp.dir.display()
        );
        cp
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// The issuer of this server's ServiceAccount tokens (the server itself): where verifiers
    /// find its keys (`/.well-known/openid-configuration`, public).
    pub fn issuer(&self) -> String {
        std::fs::read_to_string(self.dir.join("issuer"))
            .expect("hack/control-plane wrote the issuer")
            .trim()
            .to_owned()
    }

    /// The certificate to trust when fetching from [`ControlPlane::issuer`].
    pub fn issuer_ca_file(&self) -> PathBuf {
        self.dir.join("issuer-ca.crt")
    }

    /// A token for ServiceAccount `namespace/name` from the TokenRequest API, as the kubelet gets
    /// one for a projected volume: for `audience`, valid `seconds` (600 at least).
    pub async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
        audience: &str,
        seconds: i64,
    ) -> String {
        use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
        use k8s_openapi::api::core::v1::ServiceAccount;
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: Some(vec![audience.to_owned()]),
                expiration_seconds: Some(seconds),
                ..Default::default()
            }),
            ..Default::default()
        };
        Api::<ServiceAccount>::namespaced(self.admin().await, namespace)
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .expect("TokenRequest")
            .status
            .expect("a TokenRequest status")
            .token
            .expect("a token")
    }

    /// A kubeconfig authenticated as the operator's ServiceAccount.
    pub fn operator_kubeconfig(&self) -> PathBuf {
        self.dir.join("operator.kubeconfig")
    }

    /// The shipped webhook configurations call a Service no test runs, for every namespace
    /// (failurePolicy Fail): they are put back as shipped and pointed at no namespace until a
    /// test's operator registers itself for its own (`--webhook-url`,
    /// `--webhook-namespace-selector`). Hold [`WEBHOOK_TURN`] around it once tests run.
    pub fn neutral_webhooks(&self) {
        self.kubectl(&[
            "replace",
            "-n",
            OPERATOR_NAMESPACE,
            "-f",
            repo().join("manifests/webhook.yaml").to_str().unwrap(),
        ]);
        for kind in [
            "mutatingwebhookconfiguration",
            "validatingwebhookconfiguration",
        ] {
            self.kubectl(&[
                "patch",
                kind,
                "passcode-operator",
                "--type=json",
                "-p",
                &format!(
                    r#"[{{"op":"add","path":"/webhooks/0/namespaceSelector","value":{{"matchLabels":{{"{WEBHOOK_LABEL}":"none"}}}}}}]"#
                ),
            ]);
        }
    }

    /// A client authenticated as one of [`PEOPLE`].
    pub async fn person(&self, name: &str) -> Client {
        client_from(&self.dir.join(format!("{name}.kubeconfig"))).await
    }

    /// A client with full rights (system:masters). A client lives on the runtime that created it.
    pub async fn admin(&self) -> Client {
        client_from(&self.kubeconfig()).await
    }

    /// A client authenticated as the operator's ServiceAccount: it has exactly what `manifests/`
    /// grants.
    pub async fn operator(&self) -> Client {
        client_from(&self.operator_kubeconfig()).await
    }

    /// Runs kubectl as admin; panics with its output on failure.
    pub fn kubectl(&self, args: &[&str]) -> String {
        kubectl(&self.kubeconfig(), args)
    }

    /// Stops kube-apiserver and starts it again with the same flags (etcd keeps the data).
    /// Blocks until it is ready.
    pub fn restart_apiserver(&self) {
        let status = Command::new(repo().join("hack/control-plane"))
            .arg("restart-apiserver")
            .arg(&self.dir)
            .status()
            .expect("run hack/control-plane");
        assert!(status.success(), "restart-apiserver failed");
    }

    /// The PID of `apiserver` or `etcd`.
    pub fn pid(&self, name: &str) -> Option<u32> {
        std::fs::read_to_string(self.dir.join(format!("{name}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

static CONTROL_PLANE: OnceLock<ControlPlane> = OnceLock::new();

/// The control plane of this test binary, started on first use.
pub fn control_plane() -> &'static ControlPlane {
    CONTROL_PLANE.get_or_init(|| {
        // On a thread of its own: the first caller may be inside a test's runtime, which cannot
        // block on another.
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(ControlPlane::start(TEST_PREFIX))
        })
        .join()
        .expect("control plane setup")
    })
}

/// An admin client on the test binary's control plane. Build one per test: a client lives on the
/// runtime that created it.
pub async fn admin() -> Client {
    control_plane().admin().await
}

/// An operator-ServiceAccount client on the test binary's control plane.
pub async fn operator() -> Client {
    control_plane().operator().await
}

pub async fn client_from(kubeconfig: &Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(kubeconfig).expect("read kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    Client::try_from(config).expect("client")
}

/// Creates namespace `name` and returns its name.
pub async fn create_namespace(client: &Client, name: &str) -> String {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    name.to_owned()
}

/// A fresh namespace for one test, named after it.
pub async fn namespace(client: &Client, test: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "{}-{}",
        test.replace('_', "-"),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    create_namespace(client, &name).await
}

/// Runs kubectl with `kubeconfig`; panics with its output on failure.
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
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
