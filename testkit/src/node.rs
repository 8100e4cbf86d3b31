//! A real single node (`hack/node`): kube-apiserver, controller-manager, scheduler, a kubelet with
//! containerd, runc and a bridge CNI; pods run from images loaded into its containerd.
//!
//! One per test binary ([`node`]), started with `--owner-pid` of this process so it is stopped,
//! its network, mounts and cgroups undone and its directory removed when the process exits,
//! however it exits (directory `passcode-operator-test-node-PID`, which `hack/no-strays` looks
//! for). Anything a user installs goes through [`Node::kubectl`] (`apply -k`, `apply -f` of a
//! rendered chart, ...) with [`Node::kubeconfig`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use kube::Client;

use crate::cluster::client_from;
use crate::repo;

const NODE_PREFIX: &str = "passcode-operator-test-node";

pub struct Node {
    pub dir: PathBuf,
    /// Where pods reach the host (a server a test runs for pods listens here).
    pub host_ip: IpAddr,
}

impl Node {
    fn start() -> Node {
        let dir = std::env::temp_dir().join(format!("{NODE_PREFIX}-{}", std::process::id()));
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
    NODE.get_or_init(Node::start)
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
