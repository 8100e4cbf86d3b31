//! Keyless Google credentials end to end: the operator binary gets its tokens by Workload Identity
//! Federation (a real ServiceAccount token from this API server's TokenRequest, exchanged at the
//! simulator's STS, which verifies it against the server's published keys), by impersonating a
//! service account through IAM Credentials, and from the metadata server; and credentials that
//! cannot work end in a clear startup error that never prints a token.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use passcode_operator::api::Reason;
use passcode_operator::simulator::token_fingerprint;
use serde_json::{Value, json};
use testkit::cluster::{OPERATOR_NAMESPACE, control_plane};
use testkit::process::free_port;
use testkit::scenario::{Env, GoogleCredentials, OperatorOptions};

const POLICY: &str = "      - id: wp\n        passwordPolicies: [{passwordScope: SCOPE_PROFILE, passwordQuality: NUMERIC_COMPLEX, passwordMinimumLength: 6}]\n";
const DEVICES: &str = "      - {id: phone, managementMode: PROFILE_OWNER, apiLevel: 34, policy: wp, syncDelay: 100ms}\n      - {id: tablet, managementMode: PROFILE_OWNER, apiLevel: 34, policy: wp, syncDelay: 100ms}\n";

const POOL: &str = "projects/123456789012/locations/global/workloadIdentityPools/sim-pool";
/// The simulated Google service account (the simulator's key file's `client_email`).
const SERVICE_ACCOUNT: &str = "passcode-operator@amapi-simulator.iam.gserviceaccount.com";
const KSA: &str = "passcode-operator";

fn provider() -> String {
    format!("//iam.googleapis.com/{POOL}/providers/kubernetes")
}

/// The operator's ServiceAccount as a federated IAM principal.
fn principal() -> String {
    format!(
        "principal://iam.googleapis.com/{POOL}/subject/system:serviceaccount:{OPERATOR_NAMESPACE}:{KSA}"
    )
}

/// The simulator trusts this API server's issuer for the pool's provider, lets the operator's
/// ServiceAccount impersonate the service account, and hands out tokens living `ttl`.
fn settings(ttl: &str) -> String {
    let cp = control_plane();
    format!(
        "  tokenTtl: {ttl}\n  workloadIdentity:\n    provider: {}\n    issuer: {}\n    issuerCaFile: {}\n    serviceAccounts:\n      - email: {SERVICE_ACCOUNT}\n        members: [{}]\n",
        provider(),
        cp.issuer(),
        cp.issuer_ca_file().display(),
        principal()
    )
}

/// A real token for the operator's ServiceAccount, as the kubelet would project it.
async fn ksa_token(audience: &str, seconds: i64) -> String {
    control_plane()
        .service_account_token(OPERATOR_NAMESPACE, KSA, audience, seconds)
        .await
}

/// Replaces `path` the way the kubelet does: the new file appears whole.
fn write_token(path: &Path, token: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, token).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// An `external_account` credential configuration as `gcloud iam workload-identity-pools
/// create-cred-config` writes it, with the simulator's URLs.
fn wif_config(env: &Env, name: &str, token_file: &Path, impersonate: Option<&str>) -> PathBuf {
    let base = env.sim.base_url();
    let mut config = json!({
        "type": "external_account",
        "audience": provider(),
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": format!("{base}v1/token"),
        "credential_source": {"file": token_file, "format": {"type": "text"}},
    });
    if let Some(email) = impersonate {
        config["service_account_impersonation_url"] = json!(format!(
            "{base}v1/projects/-/serviceAccounts/{email}:generateAccessToken"
        ));
    }
    let path = env.dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    path
}

/// Polls the simulator's counters until `check` holds, for at most `within`.
async fn wait_counters(env: &Env, what: &str, within: Duration, check: impl Fn(&Value) -> bool) {
    testkit::until(
        what,
        within,
        Duration::from_millis(200),
        || env.sim_get("counters"),
        check,
    )
    .await;
}

/// A reset of `device` succeeds with exactly one command.
async fn reset_succeeds_once(env: &Env, name: &str, device: &str) {
    env.secret(name, "passcode", b"830417").await;
    let passcode = json!({"secretKeyRef": {"name": name, "key": "passcode"}});
    env.reset(
        name,
        device,
        json!({"newPasscode": passcode, "lockNow": true}),
    )
    .await;
    env.reason_is(name, Reason::PasscodeReset).await;
    assert_eq!(env.commands(device).await.len(), 1, "exactly one command");
}

fn options(credentials: GoogleCredentials) -> OperatorOptions {
    OperatorOptions {
        credentials,
        ..Default::default()
    }
}

fn assert_no_token(log: &str, tokens: &[&str]) {
    for token in tokens {
        assert!(!log.contains(token), "a token is in the operator's log");
    }
    assert!(
        !log.contains("ya29."),
        "an access token is in the operator's log"
    );
}

#[tokio::test]
async fn workload_identity_federation_resets_once_and_rereads_a_rotated_token() {
    let mut env = Env::with_settings("wif", POLICY, DEVICES, &settings("60s")).await;
    let token_file = env.dir.join("token");
    let first = ksa_token(&provider(), 3600).await;
    write_token(&token_file, &first);
    let config = wif_config(&env, "wif.json", &token_file, None);
    env.start_operator(options(GoogleCredentials::File(config)));
    env.operator
        .as_mut()
        .unwrap()
        .wait_ready(Duration::from_secs(60))
        .await;
    reset_succeeds_once(&env, "r1", "phone").await;
    let counters = env.sim_get("counters").await;
    assert_eq!(
        counters["sts"]["lastSubjectFingerprint"],
        token_fingerprint(&first)
    );
    assert_eq!(
        counters["impersonations"], 0,
        "no service account: {counters}"
    );
    assert_eq!(counters["tokens"], 0, "no key file: {counters}");

    // The kubelet rotates the token; the exchanged token lives 60 s, so the new subject token
    // must be exchanged before the old exchange expires.
    let rotated_at = Instant::now();
    let second = ksa_token(&provider(), 3700).await;
    assert_ne!(first, second);
    write_token(&token_file, &second);
    wait_counters(
        &env,
        "the rotated token exchanged",
        Duration::from_secs(60),
        |c| c["sts"]["lastSubjectFingerprint"] == token_fingerprint(&second),
    )
    .await;
    assert!(rotated_at.elapsed() < Duration::from_secs(60));
    reset_succeeds_once(&env, "r2", "tablet").await;

    let log = env.operator.as_ref().unwrap().logs();
    assert!(
        log.contains("Workload Identity Federation") && log.contains(&principal()),
        "startup names the mode and the federated principal:\n{log}"
    );
    assert_no_token(&log, &[&first, &second]);
}

#[tokio::test]
async fn impersonating_a_service_account_through_iam_credentials() {
    let mut env = Env::with_settings("wif-sa", POLICY, DEVICES, &settings("3599s")).await;
    let token_file = env.dir.join("token");
    let token = ksa_token(&provider(), 3600).await;
    write_token(&token_file, &token);
    let config = wif_config(&env, "wif.json", &token_file, Some(SERVICE_ACCOUNT));
    env.start_operator(options(GoogleCredentials::File(config)));
    reset_succeeds_once(&env, "r", "phone").await;
    let counters = env.sim_get("counters").await;
    assert!(
        counters["sts"]["exchanges"].as_u64() >= Some(1),
        "{counters}"
    );
    assert!(counters["impersonations"].as_u64() >= Some(1), "{counters}");
    let log = env.operator.as_ref().unwrap().logs();
    assert!(
        log.contains("Workload Identity Federation") && log.contains(SERVICE_ACCOUNT),
        "{log}"
    );
    assert_no_token(&log, &[&token]);
}

/// `impersonated_service_account`: its source credentials (here federated ones) get the token
/// that IAM Credentials takes to issue the service account's.
#[tokio::test]
async fn an_impersonated_service_account_file() {
    let mut env = Env::with_settings("impersonated", POLICY, DEVICES, &settings("3599s")).await;
    let token_file = env.dir.join("token");
    let token = ksa_token(&provider(), 3600).await;
    write_token(&token_file, &token);
    let source: Value = serde_json::from_slice(
        &std::fs::read(wif_config(&env, "source.json", &token_file, None)).unwrap(),
    )
    .unwrap();
    let config = env.dir.join("impersonated.json");
    let file = json!({
        "type": "impersonated_service_account",
        "service_account_impersonation_url": format!(
            "{}v1/projects/-/serviceAccounts/{SERVICE_ACCOUNT}:generateAccessToken",
            env.sim.base_url()
        ),
        "source_credentials": source,
    });
    std::fs::write(&config, file.to_string()).unwrap();
    env.start_operator(options(GoogleCredentials::File(config)));
    reset_succeeds_once(&env, "r", "phone").await;
    let counters = env.sim_get("counters").await;
    assert!(counters["impersonations"].as_u64() >= Some(1), "{counters}");
    let log = env.operator.as_ref().unwrap().logs();
    assert!(
        log.contains("service-account impersonation") && log.contains(SERVICE_ACCOUNT),
        "{log}"
    );
    assert_no_token(&log, &[&token]);
}

#[tokio::test]
async fn the_metadata_server_without_a_credentials_file() {
    let mut env = Env::with_settings("mds", POLICY, DEVICES, "  tokenTtl: 3599s\n").await;
    let host = env.sim.local_addr().to_string();
    env.start_operator(options(GoogleCredentials::MetadataServer(host)));
    reset_succeeds_once(&env, "r", "phone").await;
    let counters = env.sim_get("counters").await;
    assert!(counters["metadataTokens"].as_u64() >= Some(1), "{counters}");
    assert_eq!(counters["tokens"], 0, "{counters}");
    let log = env.operator.as_ref().unwrap().logs();
    assert!(
        log.contains("metadata server") && log.contains(SERVICE_ACCOUNT),
        "{log}"
    );
    assert_no_token(&log, &[]);
}

/// A token signed with this API server's own key (so its `kid` and signature are real) whose
/// claims `edit` changes: what the TokenRequest API will not issue, such as an expired token.
async fn signed_by_the_cluster(edit: impl FnOnce(&mut Value)) -> String {
    let real = ksa_token(&provider(), 600).await;
    let header = jsonwebtoken::decode_header(&real).unwrap();
    let mut claims: Value = jsonwebtoken::dangerous::insecure_decode(&real)
        .unwrap()
        .claims;
    edit(&mut claims);
    let key = std::fs::read(control_plane().dir.join("sa.key")).unwrap();
    let mut h = Header::new(Algorithm::RS256);
    h.kid = header.kid;
    jsonwebtoken::encode(&h, &claims, &EncodingKey::from_rsa_pem(&key).unwrap()).unwrap()
}

#[tokio::test]
async fn credentials_that_cannot_work_are_a_clear_startup_error() {
    let env = Env::with_settings("bad-creds", POLICY, DEVICES, &settings("3599s")).await;
    let now = jiff::Timestamp::now().as_second();
    let other_audience = ksa_token(&control_plane().issuer(), 3600).await;
    let expired = signed_by_the_cluster(|c| {
        c["iat"] = json!(now - 7200);
        c["nbf"] = json!(now - 7200);
        c["exp"] = json!(now - 3600);
    })
    .await;
    let valid = ksa_token(&provider(), 3600).await;
    let forged = {
        let real = valid.clone();
        let (signed, _) = real.rsplit_once('.').unwrap();
        // The cluster's header and claims under another signature.
        format!("{signed}.{}", "A".repeat(342))
    };
    let token_file = |name: &str, token: &str| {
        let path = env.dir.join(name);
        write_token(&path, token);
        path
    };
    let mut cases: Vec<(&str, GoogleCredentials, String)> = vec![
        (
            "a token for another audience",
            GoogleCredentials::File(wif_config(
                &env,
                "aud.json",
                &token_file("aud.token", &other_audience),
                None,
            )),
            format!(
                "the security token service refused the subject token: invalid_grant: The audience in ID Token [{}] does not match the expected audience.",
                control_plane().issuer()
            ),
        ),
        (
            "an expired token",
            GoogleCredentials::File(wif_config(
                &env,
                "expired.json",
                &token_file("expired.token", &expired),
                None,
            )),
            format!(
                "refused the subject token: invalid_grant: ID Token issued at {} is stale to sign-in.",
                now - 7200
            ),
        ),
        (
            "a token the cluster did not sign",
            GoogleCredentials::File(wif_config(
                &env,
                "forged.json",
                &token_file("forged.token", &forged),
                None,
            )),
            "refused the subject token: invalid_grant: Unable to verify the ID Token signature."
                .into(),
        ),
        (
            "an unreadable token file",
            GoogleCredentials::File(wif_config(
                &env,
                "missing.json",
                &env.dir.join("no-such-token"),
                None,
            )),
            format!(
                "cannot read the subject token file {}",
                env.dir.join("no-such-token").display()
            ),
        ),
        (
            "impersonation refused",
            GoogleCredentials::File(wif_config(
                &env,
                "denied.json",
                &token_file("denied.token", &valid),
                Some("someone-else@amapi-simulator.iam.gserviceaccount.com"),
            )),
            "IAM Credentials refused the service account's token: 403 PERMISSION_DENIED: Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).".into(),
        ),
    ];
    let nothing_there = free_port().to_string();
    cases.push((
        "no metadata server",
        GoogleCredentials::MetadataServer(nothing_there.clone()),
        format!("no metadata server at http://{nothing_there}/"),
    ));
    let tokens = [&other_audience, &expired, &valid, &forged];
    for (case, credentials, expected) in cases {
        let mut operator = env.spawn_operator(options(credentials));
        let status = operator.wait_exit(Duration::from_secs(60)).await;
        let log = operator.logs();
        assert!(!status.success(), "{case}: the operator exits non-zero");
        assert!(
            log.contains(&expected),
            "{case}: expected {expected:?} in:\n{log}"
        );
        assert!(log.contains("cannot run"), "{case}: {log}");
        assert!(!log.contains("panicked"), "{case}: {log}");
        for token in tokens {
            assert!(
                !log.contains(token.as_str()),
                "{case}: a token is in the log"
            );
        }
    }
    assert_eq!(env.counter("devices.issueCommand").await, 0);
}

/// Google's own Python auth library (google-auth) gets tokens from the simulator's STS (with and
/// without impersonation) and metadata server, and AMAPI accepts them: a second opinion on how
/// faithfully they speak Google's protocols.
#[tokio::test]
async fn googles_python_auth_library_accepts_the_simulator() {
    let env = Env::with_settings("py-auth", POLICY, DEVICES, &settings("3599s")).await;
    let token_file = env.dir.join("token");
    write_token(&token_file, &ksa_token(&provider(), 3600).await);
    let federated = wif_config(&env, "wif.json", &token_file, None);
    let impersonated = wif_config(&env, "wif-sa.json", &token_file, Some(SERVICE_ACCOUNT));
    let python = testkit::discovery::cache_dir().join("venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run hack/discovery (or make discovery)",
        python.display()
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/google_auth.py");
    let host = env.sim.local_addr().to_string();
    let args: Vec<String> = vec![
        "--base-url".into(),
        env.sim.base_url(),
        "--device".into(),
        env.device("phone"),
        "--external-account".into(),
        federated.display().to_string(),
        "--external-account".into(),
        impersonated.display().to_string(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args(&args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("GCE_METADATA_HOST", &host)
            .env("GCE_METADATA_IP", &host)
            .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
            .env("NO_GCE_CHECK", "False")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "google_auth.py failed:\n{text}");
    for line in [
        "external_account: devices.get answered 200",
        "external_account impersonating passcode-operator@amapi-simulator.iam.gserviceaccount.com: devices.get answered 200",
        "default (metadata server) passcode-operator@amapi-simulator.iam.gserviceaccount.com: devices.get answered 200",
    ] {
        assert!(text.contains(line), "{line:?} in:\n{text}");
    }
    let counters = env.sim_get("counters").await;
    assert!(
        counters["sts"]["exchanges"].as_u64() >= Some(2),
        "{counters}"
    );
    assert!(counters["impersonations"].as_u64() >= Some(1), "{counters}");
    assert!(counters["metadataTokens"].as_u64() >= Some(1), "{counters}");
    assert!(!text.contains("ya29."), "no token printed");
}

/// Renders `manifests/` with one credentials Component, as a user's overlay would.
fn render_with(component: &str) -> String {
    let dir = control_plane().dir.join(format!("overlay-{component}"));
    std::fs::create_dir_all(&dir).unwrap();
    let manifests = dir.join("manifests");
    if !manifests.exists() {
        std::os::unix::fs::symlink(testkit::repo().join("manifests"), &manifests).unwrap();
    }
    let overlay = dir.join("overlay");
    std::fs::create_dir_all(&overlay).unwrap();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        format!("resources: [../manifests]\ncomponents: [../manifests/credentials/{component}]\n"),
    )
    .unwrap();
    let out = Command::new("kubectl")
        .args(["kustomize", overlay.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The rendering without its CustomResourceDefinitions (whose schemas name fields such as
/// `claimedCommand.secretName`), to look at what the operator mounts.
fn without_crds(rendered: &str) -> String {
    rendered
        .split("\n---\n")
        .filter(|doc| !doc.contains("kind: CustomResourceDefinition"))
        .collect::<Vec<_>>()
        .join("\n---\n")
}

#[test]
fn the_manifests_carry_each_mode() {
    let gke = without_crds(&render_with("gke"));
    assert!(
        gke.contains("iam.gke.io/gcp-service-account: GSA_EMAIL"),
        "{gke}"
    );
    assert!(
        !gke.contains("AMAPI_CREDENTIALS") && !gke.contains("secretName"),
        "{gke}"
    );
    let wif = without_crds(&render_with("wif"));
    assert!(wif.contains("\"type\": \"external_account\""), "{wif}");
    assert!(
        wif.contains("serviceAccountToken:") && wif.contains("path: token"),
        "{wif}"
    );
    assert!(wif.contains("/var/run/secrets/amapi/token"), "{wif}");
    assert!(!wif.contains("secretName"), "{wif}");
}
