//! The Helm chart (`charts/passcode-operator`) installs what `manifests/` does: rendered by the
//! real `helm` (hack/chart-tools) for each credential mode and several value combinations, parsed
//! and checked, and every rendered object accepted by the real API server (a server-side dry run:
//! the shared control plane keeps the manifests' own installation). `tests/node/chart.rs` installs
//! it on a real node and runs it.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};
use testkit::cluster::{OPERATOR_NAMESPACE, control_plane};
use testkit::{helm, repo, yaml_documents};

fn chart() -> PathBuf {
    repo().join("charts/passcode-operator")
}

/// `helm template` with `--set` values (and `--set-file` for `key=@path`).
fn template_text(values: &[(&str, &str)], crds: bool, namespace: &str) -> Result<String, String> {
    let chart = chart();
    let mut args: Vec<String> = vec![
        "template".into(),
        "passcode-operator".into(),
        chart.to_str().unwrap().into(),
        "--namespace".into(),
        namespace.into(),
    ];
    if crds {
        args.push("--include-crds".into());
    }
    for (k, v) in values {
        match v.strip_prefix('@') {
            Some(path) => args.extend(["--set-file".into(), format!("{k}={path}")]),
            None => args.extend(["--set".into(), format!("{k}={v}")]),
        }
    }
    helm(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn template(values: &[(&str, &str)]) -> Vec<Value> {
    let text = template_text(values, false, OPERATOR_NAMESPACE)
        .unwrap_or_else(|e| panic!("{values:?}: {e}"));
    yaml_documents(&text)
}

fn kinds(docs: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = docs
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    k.sort();
    k
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name} in {:?}", kinds(docs)))
}

fn deployment(docs: &[Value]) -> &Value {
    find(docs, "Deployment", "passcode-operator")
}

fn container(docs: &[Value]) -> &Value {
    &deployment(docs)["spec"]["template"]["spec"]["containers"][0]
}

fn env(docs: &[Value], name: &str) -> Option<String> {
    container(docs)["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .map(|e| e["value"].as_str().unwrap_or("").to_owned())
}

fn wif_config() -> String {
    repo()
        .join("manifests/credentials/wif/credentials.json")
        .to_str()
        .unwrap()
        .to_owned()
}

fn manifests(file: &str) -> Vec<Value> {
    yaml_documents(&std::fs::read_to_string(repo().join("manifests").join(file)).unwrap())
}

const BASE_KINDS: [&str; 14] = [
    "ClusterRole/passcode-operator",
    "ClusterRoleBinding/passcode-operator",
    "Deployment/passcode-operator",
    "MutatingWebhookConfiguration/passcode-operator",
    "Role/passcode-operator-leader-election",
    "Role/passcode-operator-records",
    "Role/passcode-operator-webhook",
    "RoleBinding/passcode-operator-leader-election",
    "RoleBinding/passcode-operator-records",
    "RoleBinding/passcode-operator-webhook",
    "Service/passcode-operator-metrics",
    "Service/passcode-operator-webhook",
    "ServiceAccount/passcode-operator",
    "ValidatingWebhookConfiguration/passcode-operator",
];

fn base_kinds() -> Vec<String> {
    BASE_KINDS.iter().map(|k| k.to_string()).collect()
}

#[test]
fn the_chart_lints() {
    let out = helm(&["lint", "--strict", chart().to_str().unwrap()]).unwrap();
    assert!(out.contains("0 chart(s) failed"), "{out}");
    let every = helm(&[
        "lint",
        "--strict",
        chart().to_str().unwrap(),
        "--set",
        "serviceMonitor.enabled=true,prometheusRule.enabled=true,dashboard.enabled=true",
    ])
    .unwrap();
    assert!(every.contains("0 chart(s) failed"), "{every}");
}

/// The chart grants exactly what manifests/rbac.yaml grants: the same roles, rules and bindings.
#[test]
fn the_charts_rbac_is_the_manifests() {
    let docs = template(&[]);
    let rbac = manifests("rbac.yaml");
    assert_eq!(rbac.len(), 8);
    for want in &rbac {
        let kind = want["kind"].as_str().unwrap();
        let name = want["metadata"]["name"].as_str().unwrap();
        let got = find(&docs, kind, name);
        for field in ["rules", "roleRef", "subjects"] {
            assert_eq!(got[field], want[field], "{kind}/{name}: {field}");
        }
    }
    let chart_rbac = docs
        .iter()
        .filter(|d| d["apiVersion"].as_str().unwrap().starts_with("rbac."))
        .count();
    assert_eq!(chart_rbac, rbac.len(), "no grant beyond the manifests'");
}

/// The Deployment runs as the manifests' does: same security context, probes, ports, resources,
/// and every setting the manifests give.
#[test]
fn the_deployment_is_the_manifests() {
    let docs = template(&[]);
    let want = &manifests("deployment.yaml")[0];
    let got = deployment(&docs);
    assert_eq!(got["spec"]["replicas"], want["spec"]["replicas"]);
    let (w, g) = (
        &want["spec"]["template"]["spec"],
        &got["spec"]["template"]["spec"],
    );
    for field in ["securityContext", "serviceAccountName", "volumes"] {
        assert_eq!(g[field], w[field], "pod {field}");
    }
    let (wc, gc) = (&w["containers"][0], &g["containers"][0]);
    let mut ports = gc["ports"].clone();
    for p in ports.as_array_mut().unwrap() {
        assert_eq!(
            p.as_object_mut().unwrap().remove("protocol"),
            Some(json!("TCP"))
        );
    }
    assert_eq!(ports, wc["ports"]);
    for field in [
        "args",
        "livenessProbe",
        "readinessProbe",
        "resources",
        "securityContext",
        "volumeMounts",
    ] {
        assert_eq!(gc[field], wc[field], "container {field}");
    }
    for e in wc["env"].as_array().unwrap() {
        let found = gc["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == e["name"]);
        assert_eq!(found, Some(e), "env {}", e["name"]);
    }
    assert_eq!(gc["image"], "passcode-operator:0.1.0");
}

#[test]
fn each_credential_mode_renders_what_it_needs() {
    // A key: the existing Secret mounted; the chart itself never carries a Secret.
    let key = template(&[("credentials.key.secretName", "google-key")]);
    assert_eq!(kinds(&key), base_kinds());
    assert_eq!(
        env(&key, "AMAPI_CREDENTIALS").as_deref(),
        Some("/var/run/secrets/amapi/credentials.json")
    );
    let volumes = &deployment(&key)["spec"]["template"]["spec"]["volumes"];
    assert_eq!(volumes[0]["secret"]["secretName"], "google-key");

    // GKE Workload Identity: the annotation, no file, nodes with the metadata server.
    let gke = template(&[
        ("credentials.mode", "gke"),
        (
            "credentials.gke.serviceAccount",
            "passcode-operator@p.iam.gserviceaccount.com",
        ),
    ]);
    assert_eq!(kinds(&gke), base_kinds());
    let sa = find(&gke, "ServiceAccount", "passcode-operator");
    assert_eq!(
        sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"],
        "passcode-operator@p.iam.gserviceaccount.com"
    );
    let pod = &deployment(&gke)["spec"]["template"]["spec"];
    assert!(pod["volumes"].is_null(), "{pod:#}");
    assert!(container(&gke)["volumeMounts"].is_null());
    assert_eq!(env(&gke, "AMAPI_CREDENTIALS"), None);
    assert_eq!(
        pod["nodeSelector"]["iam.gke.io/gke-metadata-server-enabled"],
        "true"
    );

    // Workload Identity Federation: the configuration and the token for the provider in one
    // volume; the audience taken from the configuration.
    let file = wif_config();
    let wif = template(&[
        ("credentials.mode", "wif"),
        ("credentials.wif.config", &format!("@{file}")),
    ]);
    let mut want = base_kinds();
    want.push("ConfigMap/passcode-operator-amapi-credentials".into());
    want.sort();
    assert_eq!(kinds(&wif), want);
    let cm = find(&wif, "ConfigMap", "passcode-operator-amapi-credentials");
    let cfg: Value =
        serde_json::from_str(cm["data"]["credentials.json"].as_str().unwrap()).unwrap();
    assert_eq!(
        cfg,
        serde_json::from_str::<Value>(&std::fs::read_to_string(&file).unwrap()).unwrap()
    );
    let sources =
        &deployment(&wif)["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"];
    assert_eq!(
        sources[0]["configMap"]["name"],
        "passcode-operator-amapi-credentials"
    );
    assert_eq!(
        sources[1]["serviceAccountToken"]["audience"],
        cfg["audience"]
    );
    assert_eq!(sources[1]["serviceAccountToken"]["path"], "token");
    assert_eq!(
        cfg["credential_source"]["file"],
        "/var/run/secrets/amapi/token"
    );
    assert_eq!(
        container(&wif)["volumeMounts"][0]["mountPath"],
        "/var/run/secrets/amapi"
    );
    assert_eq!(
        env(&wif, "AMAPI_CREDENTIALS").as_deref(),
        Some("/var/run/secrets/amapi/credentials.json")
    );
    // A ConfigMap of the user's own, with an explicit audience.
    let own = template(&[
        ("credentials.mode", "wif"),
        ("credentials.wif.existingConfigMap", "my-wif"),
        (
            "credentials.wif.audience",
            "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k",
        ),
    ]);
    assert_eq!(kinds(&own), base_kinds());
    let sources =
        &deployment(&own)["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"];
    assert_eq!(sources[0]["configMap"]["name"], "my-wif");

    for docs in [&key, &gke, &wif, &own] {
        assert!(
            !docs.iter().any(|d| d["kind"] == "Secret"),
            "no Secret in the chart"
        );
        assert!(
            !serde_json::to_string(docs).unwrap().contains("private_key"),
            "no key in the chart"
        );
    }
}

#[test]
fn values_render_as_asked() {
    // The settings a platform team sets.
    let docs = template(&[
        ("enterprises", "{LC0a,LC0b}"),
        ("unknownRequester", "run"),
        ("requireScopes", "false"),
        ("pubsub.subscription", "projects/p/subscriptions/s"),
        ("image.repository", "registry.example/po"),
        ("image.tag", "1.2.3"),
        ("resources.limits.memory", "256Mi"),
    ]);
    assert_eq!(
        env(&docs, "PASSCODE_OPERATOR_ENTERPRISES").as_deref(),
        Some("LC0a,LC0b")
    );
    assert_eq!(
        env(&docs, "PASSCODE_OPERATOR_UNKNOWN_REQUESTER").as_deref(),
        Some("run")
    );
    assert_eq!(
        env(&docs, "PASSCODE_OPERATOR_REQUIRE_SCOPES").as_deref(),
        Some("false")
    );
    assert_eq!(
        env(&docs, "PASSCODE_OPERATOR_PUBSUB_SUBSCRIPTION").as_deref(),
        Some("projects/p/subscriptions/s")
    );
    assert_eq!(container(&docs)["image"], "registry.example/po:1.2.3");
    assert_eq!(container(&docs)["resources"]["limits"]["memory"], "256Mi");

    // One replica without leader election.
    let single = template(&[("replicas", "1"), ("leaderElection", "false")]);
    assert_eq!(deployment(&single)["spec"]["replicas"], 1);
    assert_eq!(
        env(&single, "PASSCODE_OPERATOR_LEADER_ELECTION").as_deref(),
        Some("false")
    );

    // The webhook at a URL: no Service for it, the configurations call the URL.
    let url = template(&[("webhook.url", "https://operator.example:8443")]);
    assert!(!kinds(&url).contains(&"Service/passcode-operator-webhook".to_owned()));
    let m = find(&url, "MutatingWebhookConfiguration", "passcode-operator");
    assert_eq!(
        m["webhooks"][0]["clientConfig"],
        json!({"url": "https://operator.example:8443/mutate"})
    );
    assert!(
        m["webhooks"][0]["clientConfig"]["caBundle"].is_null(),
        "caBundle is the operator's"
    );
    assert_eq!(
        env(&url, "PASSCODE_OPERATOR_WEBHOOK_URL").as_deref(),
        Some("https://operator.example:8443")
    );

    // The webhook off: no configurations, nothing listening, requesters not refused.
    let off = template(&[("webhook.enabled", "false"), ("unknownRequester", "run")]);
    let k = kinds(&off);
    assert!(!k.iter().any(|k| k.contains("Webhook")), "{k:?}");
    assert_eq!(env(&off, "PASSCODE_OPERATOR_WEBHOOK_LISTEN"), None);

    // The default webhook: the Service, as in manifests/webhook.yaml.
    let docs = template(&[]);
    for want in manifests("webhook.yaml") {
        let got = find(&docs, want["kind"].as_str().unwrap(), "passcode-operator");
        assert_eq!(got["webhooks"], want["webhooks"]);
    }

    // Monitoring: the ServiceMonitor selects the metrics Service's port; the rule and dashboard.
    let mon = template(&[
        ("serviceMonitor.enabled", "true"),
        ("prometheusRule.enabled", "true"),
        ("dashboard.enabled", "true"),
    ]);
    let sm = find(&mon, "ServiceMonitor", "passcode-operator");
    let svc = find(&mon, "Service", "passcode-operator-metrics");
    assert_eq!(
        sm["spec"]["endpoints"][0]["port"],
        svc["spec"]["ports"][0]["name"]
    );
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&svc["metadata"]["labels"][k], v);
    }
    assert!(
        !kinds(&docs)
            .iter()
            .any(|k| k.starts_with("ServiceMonitor") || k.starts_with("PrometheusRule"))
    );
}

#[test]
fn values_that_cannot_work_are_refused() {
    let bad_file = std::env::temp_dir().join("po-chart-bad-wif.json");
    std::fs::write(
        &bad_file,
        r#"{"type": "external_account", "audience": "//x", "credential_source": {"file": "/tmp/token"}}"#,
    )
    .unwrap();
    let bad = format!("@{}", bad_file.display());
    for (values, says) in [
        (
            vec![("credentials.mode", "gke")],
            "needs credentials.gke.serviceAccount",
        ),
        (
            vec![("credentials.mode", "wif")],
            "needs credentials.wif.config",
        ),
        (
            vec![
                ("credentials.mode", "wif"),
                ("credentials.wif.config", bad.as_str()),
            ],
            "credential_source.file must be /var/run/secrets/amapi/token",
        ),
        (
            vec![("credentials.mode", "vault")],
            "credentials.mode must be key, gke or wif",
        ),
        (
            vec![("replicas", "2"), ("leaderElection", "false")],
            "needs leaderElection",
        ),
        (
            vec![("webhook.enabled", "false")],
            "unknownRequester=refuse needs webhook.enabled",
        ),
        (vec![("webhook.url", "http://plain")], "https://"),
    ] {
        let err = template_text(&values, false, OPERATOR_NAMESPACE)
            .expect_err(&format!("{values:?} rendered"));
        assert!(err.contains(says), "{values:?}: {err}");
    }
}

/// The chart's copies are the sources: CRDs generated from the code, the alerts, the dashboard.
#[test]
fn the_charts_copies_are_their_sources() {
    let read = |p: &str| std::fs::read_to_string(repo().join(p)).unwrap();
    assert!(
        read("charts/passcode-operator/crds/crds.yaml") == read("crds/crds.yaml"),
        "charts/passcode-operator/crds/crds.yaml differs from crds/crds.yaml: cp crds/crds.yaml charts/passcode-operator/crds/"
    );
    assert!(
        read("charts/passcode-operator/files/alerts.yaml")
            == read("manifests/monitoring/alerts.yaml"),
        "copy manifests/monitoring/alerts.yaml to charts/passcode-operator/files/"
    );
    assert!(
        read("charts/passcode-operator/files/dashboard.json")
            == read("manifests/monitoring/dashboard.json"),
        "copy manifests/monitoring/dashboard.json to charts/passcode-operator/files/"
    );
    let groups = &yaml_documents(&read("manifests/monitoring/alerts.yaml"))[0]["groups"];
    let rule = &manifests("monitoring/prometheusrule.yaml")[0];
    assert_eq!(
        &rule["spec"]["groups"], groups,
        "prometheusrule.yaml carries alerts.yaml"
    );
    let mon = template(&[
        ("prometheusRule.enabled", "true"),
        ("dashboard.enabled", "true"),
    ]);
    assert_eq!(
        &find(&mon, "PrometheusRule", "passcode-operator")["spec"]["groups"],
        groups
    );
    let dash = find(&mon, "ConfigMap", "passcode-operator-dashboard");
    assert_eq!(
        dash["data"]["passcode-operator.json"].as_str().unwrap(),
        read("manifests/monitoring/dashboard.json")
    );
    // The kustomize pack renders.
    let out = Command::new("kubectl")
        .args([
            "kustomize",
            repo().join("manifests/monitoring").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pack = yaml_documents(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(
        kinds(&pack),
        [
            "ConfigMap/passcode-operator-dashboard",
            "PrometheusRule/passcode-operator",
            "ServiceMonitor/passcode-operator"
        ]
    );
}

/// Every object of each mode's rendering, CRDs included, is accepted by the real API server (a
/// dry run: validation and admission run, nothing is stored). The prometheus-operator's kinds are
/// left out: this control plane has no such CRDs.
#[test]
fn the_api_server_accepts_the_chart() {
    // A namespace of its own: the manifests' Deployment lives in the operator's namespace of
    // this shared control plane.
    let ns = "chart-install";
    let namespaces = control_plane().kubectl(&["get", "namespaces", "-o", "name"]);
    if !namespaces.lines().any(|l| l == format!("namespace/{ns}")) {
        control_plane().kubectl(&["create", "namespace", ns]);
    }
    let file = wif_config();
    let wif_arg = format!("@{file}");
    for (i, values) in [
        vec![],
        vec![
            ("credentials.mode", "gke"),
            (
                "credentials.gke.serviceAccount",
                "g@p.iam.gserviceaccount.com",
            ),
        ],
        vec![
            ("credentials.mode", "wif"),
            ("credentials.wif.config", wif_arg.as_str()),
        ],
        vec![
            ("webhook.url", "https://operator.example:8443"),
            ("replicas", "1"),
            ("leaderElection", "false"),
            ("dashboard.enabled", "true"),
        ],
    ]
    .into_iter()
    .enumerate()
    {
        // Names of its own, so the objects are created as in a fresh install, not merged with
        // the cluster-wide ones other tests change (a webhook clientConfig with a URL and a
        // Service merged is refused).
        let name = format!("chart-test-{i}");
        let mut values = values;
        values.push(("fullnameOverride", &name));
        let text = template_text(&values, true, ns).unwrap();
        let (crds, objects): (Vec<Value>, Vec<Value>) = yaml_documents(&text)
            .into_iter()
            .partition(|d| d["kind"] == "CustomResourceDefinition");
        assert_eq!(crds.len(), 3);
        // Server-side apply, as helm 4 installs, for everything but the CRDs: this 1.20 server
        // knows no x-kubernetes-validations in a CRD schema and its server-side apply refuses
        // them (helm 3, or helm 4 with --server-side=false, applies client-side, as here).
        for (what, docs, server_side) in [("objects", objects, true), ("crds", crds, false)] {
            let path = control_plane().dir.join(format!("chart-{what}.json"));
            let count = docs.len();
            let list = json!({"apiVersion": "v1", "kind": "List", "items": docs});
            std::fs::write(&path, list.to_string()).unwrap();
            let mut args = vec![
                "apply",
                "--dry-run=server",
                "--validate=false",
                "-f",
                path.to_str().unwrap(),
            ];
            if server_side {
                args.extend([
                    "--server-side",
                    "--force-conflicts",
                    "--field-manager=chart-test",
                ]);
            }
            let out = control_plane().kubectl(&args);
            let applied = out
                .lines()
                .filter(|l| l.contains("(server dry run)"))
                .count();
            assert_eq!(applied, count, "{values:?} {what}:\n{out}");
        }
    }
}
