//! The operator's ServiceAccount has exactly what `manifests/` grants, checked on the real API
//! server: what it needs, and not a verb more (above all, no listing or watching Secrets).

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};

use testkit::cluster::{OPERATOR_NAMESPACE, admin, control_plane, namespace, operator};
use testkit::repo;

async fn can(client: &Client, verb: &str, group: &str, resource: &str, ns: Option<&str>) -> bool {
    can_named(client, verb, group, resource, ns, None).await
}

async fn can_named(
    client: &Client,
    verb: &str,
    group: &str,
    resource: &str,
    ns: Option<&str>,
    name: Option<&str>,
) -> bool {
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r, Some(s.to_owned())),
        None => (resource, None),
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.into()),
                subresource,
                namespace: ns.map(Into::into),
                name: name.map(Into::into),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .expect("access review")
        .status
        .expect("review status")
        .allowed
}

#[tokio::test]
async fn operator_can_do_what_it_needs_and_nothing_more() {
    let client = operator().await;
    const G: &str = "amapi.passcode-operator.io";
    let needed = [
        ("get", G, "passcoderesets", None),
        ("list", G, "passcoderesets", None),
        ("watch", G, "passcoderesets", None),
        ("patch", G, "passcoderesets", Some("any")),
        ("update", G, "passcoderesets/status", Some("any")),
        ("list", G, "workprofilepasscodepolicies", None),
        ("watch", G, "workprofilepasscodepolicies", None),
        ("update", G, "workprofilepasscodepolicies/status", None),
        ("get", "", "secrets", Some("any")),
        // deleteSecretAfterFinished: by name, once the reset is final.
        ("delete", "", "secrets", Some("any")),
        ("create", "events.k8s.io", "events", Some("any")),
        ("patch", "events.k8s.io", "events", Some("any")),
        (
            "get",
            "coordination.k8s.io",
            "leases",
            Some(OPERATOR_NAMESPACE),
        ),
        (
            "create",
            "coordination.k8s.io",
            "leases",
            Some(OPERATOR_NAMESPACE),
        ),
        (
            "patch",
            "coordination.k8s.io",
            "leases",
            Some(OPERATOR_NAMESPACE),
        ),
        // The records of resets acted on.
        ("get", "", "configmaps", Some(OPERATOR_NAMESPACE)),
        ("create", "", "configmaps", Some(OPERATOR_NAMESPACE)),
        ("update", "", "configmaps", Some(OPERATOR_NAMESPACE)),
        ("delete", "", "configmaps", Some(OPERATOR_NAMESPACE)),
        // Who may: the scopes and the namespaces' labels.
        ("get", G, "passcoderesetscopes", None),
        ("list", G, "passcoderesetscopes", None),
        ("watch", G, "passcoderesetscopes", None),
        ("get", "", "namespaces", None),
        // Who approved: the access review of the person approving.
        (
            "create",
            "authorization.k8s.io",
            "subjectaccessreviews",
            None,
        ),
        // The webhook Secret (created once, then updated by name).
        ("create", "", "secrets", Some(OPERATOR_NAMESPACE)),
    ];
    for (verb, group, resource, ns) in needed {
        assert!(
            can(&client, verb, group, resource, ns).await,
            "operator cannot {verb} {resource}"
        );
    }
    let forbidden = [
        ("list", "", "secrets", None),
        ("list", "", "secrets", Some("any")),
        ("watch", "", "secrets", Some("any")),
        ("create", "", "secrets", Some("any")),
        ("update", "", "secrets", Some("any")),
        ("patch", "", "secrets", Some("any")),
        ("deletecollection", "", "secrets", Some("any")),
        ("get", "", "configmaps", Some("any")),
        ("create", "", "configmaps", Some("any")),
        ("list", "", "configmaps", Some(OPERATOR_NAMESPACE)),
        ("delete", "", "configmaps", Some("any")),
        ("patch", "", "configmaps", Some(OPERATOR_NAMESPACE)),
        ("list", "", "pods", None),
        ("create", G, "passcoderesets", Some("any")),
        ("update", G, "passcoderesets", Some("any")),
        ("delete", G, "passcoderesets", Some("any")),
        ("patch", G, "passcoderesets/status", Some("any")),
        ("create", G, "workprofilepasscodepolicies", None),
        ("patch", G, "workprofilepasscodepolicies", None),
        ("delete", G, "workprofilepasscodepolicies", None),
        ("get", "coordination.k8s.io", "leases", Some("kube-system")),
        (
            "delete",
            "coordination.k8s.io",
            "leases",
            Some(OPERATOR_NAMESPACE),
        ),
        (
            "update",
            "coordination.k8s.io",
            "leases",
            Some(OPERATOR_NAMESPACE),
        ),
        ("create", "", "events", Some("any")),
        // Scopes are the platform team's: the operator only reads them.
        ("create", G, "passcoderesetscopes", None),
        ("update", G, "passcoderesetscopes", None),
        ("delete", G, "passcoderesetscopes", None),
        ("list", "", "namespaces", None),
        ("update", "", "namespaces", None),
        // Webhook configurations: none created, none but its own touched.
        (
            "create",
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            None,
        ),
        (
            "create",
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            None,
        ),
        (
            "list",
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            None,
        ),
        ("update", "", "secrets", Some(OPERATOR_NAMESPACE)),
        (
            "create",
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            None,
        ),
        (
            "create",
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            None,
        ),
    ];
    for (verb, group, resource, ns) in forbidden {
        assert!(
            !can(&client, verb, group, resource, ns).await,
            "operator may {verb} {resource} in {ns:?}"
        );
    }
    // By name only: its own webhook configurations and its own webhook Secret.
    const A: &str = "admissionregistration.k8s.io";
    for (verb, group, resource, ns, name, allowed) in [
        (
            "get",
            A,
            "mutatingwebhookconfigurations",
            None,
            "passcode-operator",
            true,
        ),
        (
            "update",
            A,
            "mutatingwebhookconfigurations",
            None,
            "passcode-operator",
            true,
        ),
        (
            "get",
            A,
            "validatingwebhookconfigurations",
            None,
            "passcode-operator",
            true,
        ),
        (
            "update",
            A,
            "validatingwebhookconfigurations",
            None,
            "passcode-operator",
            true,
        ),
        (
            "update",
            A,
            "mutatingwebhookconfigurations",
            None,
            "someone-else",
            false,
        ),
        (
            "update",
            A,
            "validatingwebhookconfigurations",
            None,
            "someone-else",
            false,
        ),
        (
            "delete",
            A,
            "mutatingwebhookconfigurations",
            None,
            "passcode-operator",
            false,
        ),
        (
            "patch",
            A,
            "validatingwebhookconfigurations",
            None,
            "passcode-operator",
            false,
        ),
        (
            "update",
            "",
            "secrets",
            Some(OPERATOR_NAMESPACE),
            "passcode-operator-webhook",
            true,
        ),
        (
            "update",
            "",
            "secrets",
            Some(OPERATOR_NAMESPACE),
            "amapi-credentials",
            false,
        ),
        (
            "update",
            "",
            "secrets",
            Some("any"),
            "passcode-operator-webhook",
            false,
        ),
        // Deleting a passcode Secret once its reset is final (`deleteSecretAfterFinished`) needs
        // delete on secrets wherever resets live, so this one is not out of reach either; the
        // operator writes back the key it holds if it is gone.
        (
            "delete",
            "",
            "secrets",
            Some(OPERATOR_NAMESPACE),
            "passcode-operator-webhook",
            true,
        ),
    ] {
        assert_eq!(
            can_named(&client, verb, group, resource, ns, Some(name)).await,
            allowed,
            "operator {verb} {resource}/{name} in {ns:?}"
        );
    }
}

#[tokio::test]
async fn operator_reads_a_named_secret_but_cannot_list_secrets() {
    let admin = admin().await;
    let ns = namespace(&admin, "secrets").await;
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("s".into()),
            ..Default::default()
        },
        string_data: Some([("passcode".to_string(), "839201".to_string())].into()),
        ..Default::default()
    };
    Api::<Secret>::namespaced(admin, &ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let op: Api<Secret> = Api::namespaced(operator().await, &ns);
    assert!(op.get("s").await.is_ok(), "direct GET is allowed");
    match op.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) if s.is_forbidden() => {}
        other => panic!("listing Secrets must be forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn manifests_pass_server_side_dry_run() {
    // Another test's operator may have pointed the webhook configurations at its URL.
    let _turn = testkit::cluster::WEBHOOK_TURN.lock().await;
    control_plane().neutral_webhooks();
    let out = control_plane().kubectl(&[
        "apply",
        "--dry-run=server",
        "--validate=false",
        "-k",
        repo().join("manifests").to_str().unwrap(),
    ]);
    for kind in [
        "customresourcedefinition.apiextensions.k8s.io/passcoderesets.amapi.passcode-operator.io",
        "namespace/passcode-operator-system",
        "serviceaccount/passcode-operator",
        "clusterrole.rbac.authorization.k8s.io/passcode-operator",
        "deployment.apps/passcode-operator",
        "service/passcode-operator-metrics",
        "service/passcode-operator-webhook",
        "mutatingwebhookconfiguration.admissionregistration.k8s.io/passcode-operator",
        "validatingwebhookconfiguration.admissionregistration.k8s.io/passcode-operator",
        "customresourcedefinition.apiextensions.k8s.io/passcoderesetscopes.amapi.passcode-operator.io",
    ] {
        assert!(out.contains(kind), "{kind} missing from:\n{out}");
    }
}

/// `passcode-operator crds | kubectl apply --dry-run=client -f -`, as the README shows.
#[test]
fn crds_output_applies_with_client_dry_run() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let crds = Command::new(env!("CARGO_BIN_EXE_passcode-operator"))
        .arg("crds")
        .output()
        .unwrap();
    assert!(crds.status.success());
    let mut kubectl = Command::new("kubectl")
        .env("KUBECONFIG", control_plane().kubeconfig())
        .args(["apply", "--dry-run=client", "--validate=false", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    kubectl
        .stdin
        .take()
        .unwrap()
        .write_all(&crds.stdout)
        .unwrap();
    let out = kubectl.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("passcoderesets.amapi.passcode-operator.io"),
        "{text}"
    );
    assert!(
        text.contains("workprofilepasscodepolicies.amapi.passcode-operator.io"),
        "{text}"
    );
}
