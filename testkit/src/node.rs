//! A real single node (`hack/node`): kube-apiserver, controller-manager, scheduler, a kubelet with
//! containerd, runc and a bridge CNI; pods run from images loaded into its containerd.
//!
//! One per test binary ([`node`]), started with `--owner-pid` of this process so it is stopped,
//! its network, mounts and cgroups undone and its directory removed when the process exits,
//! however it exits (directory `passcode-operator-test-node-PID`, which `hack/no-strays` looks
//! for). Anything a user installs goes through [`Node::kubectl`] (`apply -k`, `apply -f` of a
//! rendered chart, ...) with [`Node::kubeconfig`].

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use passcode_operator::simulator::{Fleet, Simulator, SimulatorConfig};

use crate::cluster::client_from;
use crate::repo;

const NODE_PREFIX: &str = "passcode-operator-test-node";

pub struct Node {
    pub dir: PathBuf,
    /// Where pods reach the host (a server a test runs for pods listens here).
    pub host_ip: IpAddr,
}

impl Node {
    /// Starts a node of its own, named `name` among the nodes of this process. [`node`] is the
    /// one most tests share.
    pub fn start(name: &str) -> Node {
        let dir = std::env::temp_dir().join(format!("{NODE_PREFIX}-{}-{name}", std::process::id()));
        let status = Command::new(repo().join("hack/node"))
            .arg("up")
            .arg(&dir)
            .arg("--owner-pid")
            .arg(std::process::id().to_string())
            .stdout(Stdio::from(std::io::stderr()))
            .status()
            .expect("run hack/node");
        assert!(status.success(), "hack/node up failed: {status}");
        let host_ip = std::fs::read_to_string(dir.join("host-ip"))
            .expect("hack/node wrote host-ip")
            .trim()
            .parse()
            .expect("host-ip is an IP address");
        Node { dir, host_ip }
    }

    /// An admin (system:masters) kubeconfig.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// A client with full rights. A client lives on the runtime that created it.
    pub async fn admin(&self) -> Client {
        client_from(&self.kubeconfig()).await
    }

    /// The ServiceAccount token issuer (this node's API server, its discovery public) and the CA
    /// to trust when fetching its keys: what Workload Identity Federation's STS verifies against.
    pub fn issuer(&self) -> (String, PathBuf) {
        let issuer =
            std::fs::read_to_string(self.dir.join("issuer")).expect("hack/node wrote issuer");
        (issuer.trim().to_owned(), self.dir.join("issuer-ca.crt"))
    }

    /// Runs kubectl as admin; panics with its output on failure.
    pub fn kubectl(&self, args: &[&str]) -> String {
        crate::cluster::kubectl(&self.kubeconfig(), args)
    }

    /// Imports an OCI archive into the node's containerd, for pods with `imagePullPolicy: Never`.
    pub fn load(&self, archive: &Path) {
        self.hack(&[
            "load",
            self.dir.to_str().unwrap(),
            archive.to_str().unwrap(),
        ]);
    }

    /// The host PID of a container (`containerd://ID`, as a pod's status names it).
    pub fn container_pid(&self, container_id: &str) -> u32 {
        let id = container_id.trim_start_matches("containerd://");
        self.hack(&["pid", self.dir.to_str().unwrap(), id])
            .trim()
            .parse()
            .expect("hack/node pid prints a PID")
    }

    fn hack(&self, args: &[&str]) -> String {
        let out = Command::new(repo().join("hack/node"))
            .args(args)
            .output()
            .expect("run hack/node");
        assert!(
            out.status.success(),
            "hack/node {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

static NODE: OnceLock<Node> = OnceLock::new();

/// The node of this test binary, started on first use (about half a minute).
pub fn node() -> &'static Node {
    NODE.get_or_init(|| Node::start("shared"))
}

/// The operator's image (`hack/image build`: the release build, then buildah), built once per
/// test binary, so a test never runs an image older than the code.
pub fn image() -> &'static Path {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let archive = repo().join("target/image/passcode-operator.tar");
        build_image(&archive);
        archive
    })
}

/// Runs `hack/image build ARCHIVE`.
pub fn build_image(archive: &Path) {
    let status = Command::new(repo().join("hack/image"))
        .arg("build")
        .arg(archive)
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .expect("run hack/image");
    assert!(status.success(), "hack/image build failed: {status}");
}

/// A runtime that outlives every test's own: for servers the node's pods reach (a simulator, a
/// Service stand-in) while tests come and go.
pub fn background() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Runs `f` on the [`background`] runtime from any thread (a test's runtime cannot block on it).
pub fn on_background<T: Send + 'static>(
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || background().block_on(f))
        .join()
        .expect("background task")
}

/// A simulator for `fleet_yaml` on the host IP, where pods reach it, serving for the rest of the
/// process's life: (its base URL, its service-account key file's JSON).
pub fn host_simulator(node: &Node, fleet_yaml: &str) -> (String, String) {
    let ip = node.host_ip;
    let fleet = Fleet::from_yaml(fleet_yaml).expect("fleet parses");
    on_background(async move {
        passcode_operator::install_crypto_provider();
        let sim = Simulator::start(SimulatorConfig {
            listen: SocketAddr::new(ip, 0),
            fleet,
            credentials_path: None,
        })
        .await
        .expect("simulator starts");
        let out = (sim.base_url(), sim.credentials_json());
        std::mem::forget(sim);
        out
    })
}

/// What kube-proxy would do for a Service the API server (on the host) must reach, such as the
/// admission webhook's: a TCP forwarder on the host IP that sends each connection to `port` of a
/// Ready pod matching `selector` in `namespace`, as they are at that moment. Returns its https
/// URL.
pub fn service_stand_in(node: &'static Node, namespace: &str, selector: &str, port: u16) -> String {
    let (namespace, selector) = (namespace.to_owned(), selector.to_owned());
    on_background(async move {
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(node.host_ip, 0))
            .await
            .expect("bind the Service stand-in");
        let url = format!("https://{}", listener.local_addr().unwrap());
        let pods: Api<Pod> = Api::namespaced(node.admin().await, &namespace);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let (pods, selector) = (pods.clone(), selector.clone());
                tokio::spawn(async move {
                    for ip in ready_pod_ips(&pods, &selector).await {
                        let backend = SocketAddr::new(ip, port);
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(backend).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            return;
                        }
                    }
                });
            }
        });
        url
    })
}

async fn ready_pod_ips(pods: &Api<Pod>, selector: &str) -> Vec<IpAddr> {
    let Ok(list) = pods.list(&ListParams::default().labels(selector)).await else {
        return Vec::new();
    };
    list.items
        .into_iter()
        .filter_map(|p| {
            let status = p.status?;
            let ready = status
                .conditions?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            ready.then_some(status.pod_ip?.parse().ok()?)
        })
        .collect()
}
