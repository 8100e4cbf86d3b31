//! The Helm chart on a real node of its own, installed the two ways platform teams do (`helm
//! install`, and `helm template` applied by a GitOps tool), in the two keyless credential modes
//! that only a node can show end to end:
//!
//! - release `po-wif`, Workload Identity Federation: the kubelet projects the pod's
//!   ServiceAccount token for the provider's audience and rotates it; the operator exchanges it
//!   at the simulator's STS, which verifies it against this node's API server (its published
//!   keys, issuer, audience, expiry), then impersonates the service account.
//! - release `po-gke`, GKE Workload Identity: no file; the operator finds the (simulated)
//!   metadata server the way Google's libraries do (`GCE_METADATA_HOST`), on a node labelled as
//!   GKE labels node pools that run it.
//!
//! Two operators in one cluster, as the chart allows: each watches its own help-desk namespace,
//! honours only its own PasscodeResetScopes (`scopeSelector`) and registers a webhook for its own
//! namespaces only. Only the image reference, the Google endpoints (the simulator on the host) and
//! the webhook URL (no kube-proxy here) differ from what a user would set.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::Api;
use passcode_operator::simulator::token_fingerprint;
use serde_json::{Value, json};
use testkit::node::{Node, host_simulator, image, service_stand_in};
use testkit::{helm, repo};

use crate::Installed;
use crate::operator::{Cluster, name};

const ENTERPRISE: &str = "LCchart";
const POOL: &str = "projects/123456789012/locations/global/workloadIdentityPools/node-pool";
/// The simulated Google service account: the one STS impersonates and the metadata server
/// speaks for.
const SERVICE_ACCOUNT: &str = "passcode-operator@amapi-simulator.iam.gserviceaccount.com";
const GKE_LABEL: &str = "iam.gke.io/gke-metadata-server-enabled";

fn provider() -> String {
    format!("//iam.googleapis.com/{POOL}/providers/node")
}

/// Release `name` of the chart: its namespace, objects and Lease are all called `name`; its
/// resets go to `helpdesk-{mode}`.
fn release(node: &'static Node, amapi: &str, name: &'static str, mode: &str) -> Installed {
    Installed {
        node,
        amapi: amapi.to_owned(),
        namespace: name,
        lease: name,
        replicas: if mode == "wif" { 2 } else { 1 },
        helpdesk: if mode == "wif" {
            "helpdesk-wif"
        } else {
            "helpdesk-gke"
        },
        enterprise: ENTERPRISE,
    }
}

struct Charts {
    wif: Installed,
    gke: Installed,
}

fn charts() -> &'static Charts {
    static CHARTS: OnceLock<Charts> = OnceLock::new();
    CHARTS.get_or_init(install)
}

fn install() -> Charts {
    static NODE: OnceLock<Node> = OnceLock::new();
    let archive = image();
    let node: &'static Node = NODE.get_or_init(|| Node::start("chart"));
    node.load(archive);
    let (issuer, issuer_ca) = node.issuer();
    let (amapi, _key_never_used) = host_simulator(node, &fleet(&issuer, &issuer_ca));
    let dir = node.dir.join("chart");
    std::fs::create_dir_all(&dir).unwrap();
    // GKE labels the nodes of pools that run its metadata server; the chart selects them.
    node.kubectl(&["label", "node", "--all", &format!("{GKE_LABEL}=true")]);
    let chart = repo().join("charts/passcode-operator");
    let kubeconfig = node.kubeconfig();
    let image_values = [
        "--set",
        "image.repository=localhost/passcode-operator",
        "--set",
        concat!("image.tag=", env!("CARGO_PKG_VERSION")),
        "--set",
        "image.pullPolicy=Never",
    ];

    // po-wif: `helm install` (Kubernetes < 1.23: client-side apply), the credential configuration
    // as gcloud writes it, with the simulator's STS and IAM Credentials URLs.
    let wif = release(node, &amapi, "po-wif", "wif");
    helpdesk(node, &dir, &wif, "wif");
    let config = dir.join("wif-credentials.json");
    std::fs::write(&config, wif_config(&amapi).to_string()).unwrap();
    let webhook = service_stand_in(node, wif.namespace, "app.kubernetes.io/name=po-wif", 8443);
    let mut args = vec![
        "install",
        "po-wif",
        chart.to_str().unwrap(),
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--namespace",
        "po-wif",
        "--create-namespace",
        "--server-side=false",
    ];
    args.extend(image_values);
    let sets = common_values("po-wif", "wif", &amapi, &webhook);
    let wif_sets = [
        ("credentials.mode", "wif".to_owned()),
        ("credentials.wif.config", format!("@{}", config.display())),
    ];
    let flags = set_flags(sets.iter().chain(&wif_sets));
    args.extend(flags.iter().map(String::as_str));
    helm(&args).unwrap_or_else(|e| panic!("helm install po-wif: {e}"));
    scope(node, &dir, &wif, "wif");

    // po-gke: `helm template`, applied with kubectl (what Argo CD and Flux do with a chart).
    let gke = release(node, &amapi, "po-gke", "gke");
    helpdesk(node, &dir, &gke, "gke");
    let metadata_host = amapi
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let webhook = service_stand_in(node, gke.namespace, "app.kubernetes.io/name=po-gke", 8443);
    let mut args = vec![
        "template",
        "po-gke",
        chart.to_str().unwrap(),
        "--namespace",
        "po-gke",
    ];
    args.extend(image_values);
    let sets = common_values("po-gke", "gke", &amapi, &webhook);
    let gke_sets = [
        ("credentials.mode", "gke".to_owned()),
        ("credentials.gke.serviceAccount", SERVICE_ACCOUNT.to_owned()),
        ("replicas", "1".to_owned()),
        ("extraEnv[0].name", "GCE_METADATA_HOST".to_owned()),
        ("extraEnv[0].value", metadata_host),
    ];
    let flags = set_flags(sets.iter().chain(&gke_sets));
    args.extend(flags.iter().map(String::as_str));
    let rendered = helm(&args).unwrap_or_else(|e| panic!("helm template po-gke: {e}"));
    let file = dir.join("po-gke.yaml");
    std::fs::write(&file, rendered).unwrap();
    node.kubectl(&["create", "namespace", "po-gke"]);
    node.kubectl(&["apply", "-n", "po-gke", "-f", file.to_str().unwrap()]);
    scope(node, &dir, &gke, "gke");

    for installed in [&wif, &gke] {
        node.kubectl(&[
            "rollout",
            "status",
            "-n",
            installed.namespace,
            &format!("deployment/{}", installed.lease),
            "--timeout=300s",
        ]);
    }
    Charts { wif, gke }
}

/// Values both releases set: one operator per help-desk namespace, its own scopes and webhook.
fn common_values(
    release: &str,
    mode: &str,
    amapi: &str,
    webhook: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("fullnameOverride", release.to_owned()),
        ("enterprises[0]", ENTERPRISE.to_owned()),
        ("watchNamespace", format!("helpdesk-{mode}")),
        ("scopeSelector", format!("passcode-operator/release={mode}")),
        (
            "webhook.namespaceSelector.passcode-operator/release",
            mode.to_owned(),
        ),
        ("webhook.url", webhook.to_owned()),
        ("amapi.baseUrl", amapi.to_owned()),
    ]
}

/// `--set-string k=v` (`--set-file k=path` for `@path`).
fn set_flags<'a>(values: impl Iterator<Item = &'a (&'static str, String)>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in values {
        match v.strip_prefix('@') {
            Some(path) => out.extend(["--set-file".to_owned(), format!("{k}={path}")]),
            None => out.extend(["--set-string".to_owned(), format!("{k}={v}")]),
        }
    }
    out
}

/// The help-desk namespace of a release and the PasscodeResetScope only that release honours.
/// (The scope's CRD comes with the chart: call after `helm install`.)
fn helpdesk(node: &Node, dir: &Path, installed: &Installed, mode: &str) {
    let file = dir.join(format!("helpdesk-{mode}.yaml"));
    std::fs::write(
        &file,
        format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {{passcode-operator/release: {mode}}}}}\n",
            ns = installed.helpdesk
        ),
    )
    .unwrap();
    node.kubectl(&["apply", "-f", file.to_str().unwrap()]);
}

fn scope(node: &Node, dir: &Path, installed: &Installed, mode: &str) {
    let file = dir.join(format!("scope-{mode}.yaml"));
    std::fs::write(
        &file,
        format!(
            "apiVersion: amapi.passcode-operator.io/v1alpha1\nkind: PasscodeResetScope\n\
             metadata: {{name: {ns}, labels: {{passcode-operator/release: {mode}}}}}\n\
             spec: {{namespaces: [{ns}], enterprises: [{ENTERPRISE}]}}\n",
            ns = installed.helpdesk
        ),
    )
    .unwrap();
    node.kubectl(&["apply", "-f", file.to_str().unwrap()]);
}

/// An `external_account` credential configuration as `gcloud iam workload-identity-pools
/// create-cred-config --service-account=... --credential-source-file=...` writes it, with the
/// token file where the chart projects it.
fn wif_config(amapi: &str) -> Value {
    json!({
        "type": "external_account",
        "audience": provider(),
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": format!("{amapi}v1/token"),
        "service_account_impersonation_url": format!(
            "{amapi}v1/projects/-/serviceAccounts/{SERVICE_ACCOUNT}:generateAccessToken"
        ),
        "credential_source": {"file": "/var/run/secrets/amapi/token", "format": {"type": "text"}},
    })
}

/// The simulator: STS trusts this node's issuer for the provider; only release po-wif's
/// ServiceAccount may impersonate the service account.
fn fleet(issuer: &str, issuer_ca: &Path) -> String {
    format!(
        "settings:
  workloadIdentity:
    provider: {provider}
    issuer: {issuer}
    issuerCaFile: {ca}
    serviceAccounts:
      - email: {SERVICE_ACCOUNT}
        members: [principal://iam.googleapis.com/{POOL}/subject/system:serviceaccount:po-wif:po-wif]
enterprises:
  - id: {ENTERPRISE}
    policies:
      - id: wp
    devices:
      - {{id: wif-phone, policy: wp, syncDelay: 100ms}}
      - {{id: gke-phone, policy: wp, syncDelay: 100ms}}
",
        provider = provider(),
        ca = issuer_ca.display(),
    )
}

/// The claims of a JWT, unverified (the simulator's STS did the verifying).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// The token the kubelet projected into `pod`'s credentials volume, read on the node.
fn projected_token(node: &Node, pod: &Pod) -> String {
    let uid = pod.metadata.uid.as_deref().unwrap();
    let path: PathBuf = node.dir.join(format!(
        "kubelet/pods/{uid}/volumes/kubernetes.io~projected/amapi-credentials/token"
    ));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn counters(c: &Cluster) -> Value {
    c.sim().get("counters").await.unwrap()
}

#[tokio::test]
async fn the_chart_by_helm_install_federates_the_kubelets_projected_token() {
    let charts = charts();
    let installed = &charts.wif;
    let c = Cluster::of(installed).await;
    let (leader, others) = c.settled().await;
    c.reset("wif-first", "wif-phone").await;
    let r = c.succeeded("wif-first").await;
    assert_eq!(
        c.commands("wif-phone").await,
        1,
        "one command for one reset"
    );
    let status = serde_json::to_value(r.status.as_ref().unwrap()).unwrap();
    assert_eq!(
        status["requester"]["username"], "admin",
        "po-wif's webhook recorded who asked: {status:#}"
    );
    let counters = counters(&c).await;
    assert!(
        counters["sts"]["exchanges"].as_u64() >= Some(1),
        "{counters}"
    );
    assert!(counters["impersonations"].as_u64() >= Some(1), "{counters}");
    assert_eq!(counters["tokens"], 0, "no key file anywhere: {counters}");
    // What the STS last exchanged is a token the kubelet projected into one of the pods: bound
    // to that pod, for the provider, from this node's issuer.
    let (issuer, _) = installed.node.issuer();
    let pods: Vec<Pod> = std::iter::once(leader).chain(others).collect();
    let exchanged = pods
        .iter()
        .map(|p| (p, projected_token(installed.node, p)))
        .find(|(_, t)| counters["sts"]["lastSubjectFingerprint"] == token_fingerprint(t))
        .unwrap_or_else(|| panic!("the exchanged token is no pod's projected token: {counters}"));
    let claims = claims(&exchanged.1);
    assert_eq!(claims["iss"], issuer.as_str(), "{claims:#}");
    assert_eq!(claims["aud"], json!([provider()]), "{claims:#}");
    assert_eq!(
        claims["sub"], "system:serviceaccount:po-wif:po-wif",
        "{claims:#}"
    );
    assert_eq!(
        claims["kubernetes.io"]["pod"]["name"],
        name(exchanged.0).as_str(),
        "bound to the pod it was projected into: {claims:#}"
    );
    // (What the log says at startup, and that no token is in it, is checked on the control plane,
    // `tests/cluster/credentials.rs`: here a second node's kubelet may remove this node's pod log
    // directories, /var/log/pods being one for the whole machine in Kubernetes 1.20.)
}

#[tokio::test]
async fn the_chart_by_helm_template_gets_tokens_from_the_metadata_server() {
    let charts = charts();
    let installed = &charts.gke;
    let c = Cluster::of(installed).await;
    let (leader, _) = c.settled().await;
    let selector = leader.spec.as_ref().unwrap().node_selector.clone().unwrap();
    assert_eq!(selector.get(GKE_LABEL).map(String::as_str), Some("true"));
    let sa = Api::<ServiceAccount>::namespaced(installed.node.admin().await, "po-gke")
        .get("po-gke")
        .await
        .unwrap();
    assert_eq!(
        sa.metadata.annotations.unwrap_or_default()["iam.gke.io/gcp-service-account"],
        SERVICE_ACCOUNT,
        "the binding GKE's metadata server reads"
    );
    c.reset("gke-first", "gke-phone").await;
    let r = c.succeeded("gke-first").await;
    assert_eq!(
        c.commands("gke-phone").await,
        1,
        "one command for one reset"
    );
    let status = serde_json::to_value(r.status.as_ref().unwrap()).unwrap();
    assert_eq!(status["requester"]["username"], "admin", "{status:#}");
    let counters = counters(&c).await;
    assert!(counters["metadataTokens"].as_u64() >= Some(1), "{counters}");
    assert_eq!(counters["tokens"], 0, "no key file anywhere: {counters}");
}
