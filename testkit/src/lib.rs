//! The test kit: what the integration tests (`tests/`) and the benchmark (`benches/`) share.
//!
//! - [`cluster`]: a real control plane (etcd + kube-apiserver v1.20.2 from `hack/control-plane`)
//!   with the CRDs from the code and the RBAC of `manifests/` installed; one per test binary.
//! - [`process`]: the operator binary as a child process, killed on drop.
//! - [`scenario`]: one operator scenario on the shared control plane (a namespace, an enterprise
//!   of its own in an in-process simulator, the operator watching only those).
//! - [`sim`]: driving an in-process AMAPI simulator over real HTTP, as a client would.
//! - [`node`]: a real node (`hack/node`: kubelet, containerd) for the operator as a Pod, and its
//!   image (`hack/image`).
//! - [`discovery`]: checking JSON against the schemas of AMAPI's discovery document.

use std::path::{Path, PathBuf};

use passcode_operator::simulator::{Fleet, Simulator, SimulatorConfig};

pub mod cluster;
pub mod discovery;
pub mod node;
pub mod process;
pub mod scenario;
pub mod sim;

/// The repository (the root package's directory).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ lies in the repository")
}

/// A tool `hack/chart-tools install` put in the cache (`helm`, `promtool`); panics with how to
/// get it when it is missing.
pub fn tool(name: &str) -> PathBuf {
    let out = std::process::Command::new(repo().join("hack/chart-tools"))
        .args(["path", name])
        .output()
        .expect("run hack/chart-tools");
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        out.status.success() && path.exists(),
        "{name} is not installed: run `make chart-tools` (hack/chart-tools install)"
    );
    path
}

/// Runs the real `helm` ([`tool`]) with no user configuration or repositories: it reads only the
/// chart. Its stdout, or its stderr on failure.
pub fn helm(args: &[&str]) -> Result<String, String> {
    let home = std::env::temp_dir().join("po-helm");
    let out = std::process::Command::new(tool("helm"))
        .args(args)
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .expect("run helm");
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Every document of a multi-document YAML text, comment-only documents left out.
pub fn yaml_documents(text: &str) -> Vec<serde_json::Value> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            docs.push(String::new());
        } else {
            let doc = docs.last_mut().expect("one document at least");
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs.into_iter()
        .filter(|doc| {
            doc.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .map(|doc| serde_saphyr::from_str(&doc).unwrap_or_else(|e| panic!("{e}:\n{doc}")))
        .collect()
}

/// Starts an in-process simulator for `fleet_yaml` on a free loopback port; with `credentials`,
/// its service-account key file is written there.
pub async fn simulator(fleet_yaml: &str, credentials: Option<PathBuf>) -> Simulator {
    let fleet = Fleet::from_yaml(fleet_yaml).expect("test fleet parses");
    Simulator::start(SimulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        fleet,
        credentials_path: credentials,
    })
    .await
    .expect("simulator starts")
}

/// Reads with `probe` until `check` holds, every `every`, for at most `within`; panics naming
/// `what` and showing the last reading. A wait on a condition, never a fixed sleep.
pub async fn until<T, F, Fut>(
    what: &str,
    within: std::time::Duration,
    every: std::time::Duration,
    mut probe: F,
    check: impl Fn(&T) -> bool,
) -> T
where
    T: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        let reading = probe().await;
        if check(&reading) {
            return reading;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} within {within:?}; last reading:\n{reading}"
        );
        tokio::time::sleep(every).await;
    }
}
