//! The AMAPI client against the simulator over real HTTP (OAuth JWT signing included): every
//! call, every failure class, exactly-once of issueCommand, and the passcode never leaking. For
//! replies the simulator never gives (endless or looping pages, 408, 409), a scripted stand-in
//! serves AMAPI while the simulator still issues the tokens.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use passcode_operator::amapi::client::{MAX_OPERATION_PAGES, OPERATIONS_PAGE_SIZE};
use passcode_operator::amapi::model::{
    Command, CommandType, OperationOutcome, PasswordRequirements, PasswordScope, Policy,
    ResetPasswordFlag, google_duration, google_duration_nanos, parse_google_duration_nanos,
};
use passcode_operator::amapi::retry::RetryPolicy;
use passcode_operator::amapi::{AmapiClient, AmapiError, ClientOptions, Credentials};
use passcode_operator::simulator::{Fleet, Simulator, SimulatorConfig};
use serde_json::{Value, json};
use zeroize::Zeroizing;

const CANARY: &str = "Zx9!canary-839201";

struct Setup {
    sim: Simulator,
    dir: PathBuf,
}

impl Setup {
    async fn new(name: &str, fleet: &str) -> Setup {
        Self::on(name, fleet, "127.0.0.1:0".parse().unwrap()).await
    }

    async fn on(name: &str, fleet: &str, listen: std::net::SocketAddr) -> Setup {
        passcode_operator::install_crypto_provider();
        let dir = std::env::temp_dir().join(format!("amapi-client-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sim = Simulator::start(SimulatorConfig {
            listen,
            fleet: Fleet::from_yaml(fleet).unwrap(),
            credentials_path: Some(dir.join("sa.json")),
        })
        .await
        .unwrap();
        std::fs::write(dir.join("sa.json"), sim.credentials_json()).unwrap();
        Setup { sim, dir }
    }

    async fn client(&self, retry: RetryPolicy) -> AmapiClient {
        self.client_for(&self.sim.base_url(), retry).await
    }

    /// A client that gets its tokens from the simulator and sends AMAPI calls to `base_url`.
    async fn client_for(&self, base_url: &str, retry: RetryPolicy) -> AmapiClient {
        let auth = Credentials::from_file(&self.dir.join("sa.json"), None)
            .await
            .unwrap();
        AmapiClient::new(
            auth,
            ClientOptions {
                base_url: base_url.to_owned(),
                requests_per_second: 200.0,
                burst: 50,
                followup_share: 0.25,
                retry,
                timeout: Duration::from_secs(5),
            },
        )
        .unwrap()
    }

    async fn admin_get(&self, path: &str) -> Value {
        self.sim.admin().get(path).await.unwrap()
    }

    async fn admin_send(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        self.sim
            .admin()
            .send(method, path, Some(body))
            .await
            .unwrap()
    }

    async fn faults(&self, faults: Value) {
        self.admin_send(reqwest::Method::PUT, "faults", faults)
            .await;
    }

    async fn counter(&self, method: &str) -> u64 {
        self.admin_get("counters").await["methods"][method]
            .as_u64()
            .unwrap_or(0)
    }

    async fn commands(&self, device: &str) -> Vec<Value> {
        let v = self.admin_get(&format!("{device}/commands")).await;
        v.as_array()
            .cloned()
            .or_else(|| v["commands"].as_array().cloned())
            .unwrap_or_default()
    }

    async fn sync(&self, device: &str) {
        self.sim
            .admin()
            .send(reqwest::Method::POST, &format!("{device}:sync"), None)
            .await
            .unwrap();
    }
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    }
}

fn once() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 1,
        ..fast()
    }
}

const FLEET: &str = r#"
enterprises:
  - id: E1
    policies:
      - id: wp
        passwordPolicies:
          - {passwordScope: SCOPE_PROFILE, passwordQuality: NUMERIC_COMPLEX, passwordMinimumLength: 6}
          - {passwordScope: SCOPE_DEVICE, passwordQuality: SOMETHING}
    devices:
      - {id: phone, managementMode: PROFILE_OWNER, apiLevel: 34, policy: wp, syncDelay: 60s}
      - {id: offline, managementMode: PROFILE_OWNER, apiLevel: 34, policy: wp, online: false}
"#;

const PHONE: &str = "enterprises/E1/devices/phone";

fn reset_command(passcode: &str) -> Command {
    Command {
        type_: CommandType::ResetPassword,
        new_password: Some(Zeroizing::new(passcode.to_owned())),
        reset_password_flags: vec![ResetPasswordFlag::LockNow],
        duration: Some(google_duration(600)),
    }
}

async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn devices_get_and_list_every_page() {
    let mut fleet = String::from("enterprises:\n  - id: E1\n    devices:\n");
    for i in 0..230 {
        fleet.push_str(&format!(
            "      - {{id: d{i:03}, managementMode: PROFILE_OWNER}}\n"
        ));
    }
    let s = Setup::new("list", &fleet).await;
    let c = s.client(fast()).await;
    let d = c.get_device("enterprises/E1/devices/d007").await.unwrap();
    assert_eq!(d.name, "enterprises/E1/devices/d007");
    assert!(d.api_level.is_some());
    let all = c.list_devices("E1").await.unwrap();
    assert_eq!(all.len(), 230, "every page");
    assert!(
        s.counter("devices.list").await >= 3,
        "230 devices need 3 pages of 100"
    );
    let missing = c
        .get_device("enterprises/E1/devices/nope")
        .await
        .unwrap_err();
    assert!(
        missing.is_not_found() && !missing.is_transient(),
        "{missing}"
    );
    s.sim.shutdown().await;
}

#[tokio::test]
async fn issue_poll_list_and_cancel_commands() {
    let s = Setup::new("commands", FLEET).await;
    let c = s.client(fast()).await;
    let op = c
        .issue_command(PHONE, &reset_command("830417"))
        .await
        .unwrap();
    assert!(
        op.name
            .starts_with("enterprises/E1/devices/phone/operations/")
    );
    assert_eq!(op.outcome(), OperationOutcome::Pending);
    s.sync("enterprises/E1/devices/phone").await;
    let done = c.get_operation(&op.name).await.unwrap();
    assert_eq!(done.outcome(), OperationOutcome::Succeeded);
    let listed = c.list_operations(PHONE).await.unwrap();
    assert!(listed.iter().any(|o| o.name == op.name));

    // The device judges the passcode with its applied policy: 1234 is too short and a sequence.
    let bad = c
        .issue_command(PHONE, &reset_command("1234"))
        .await
        .unwrap();
    s.sync("enterprises/E1/devices/phone").await;
    let refused = c.get_operation(&bad.name).await.unwrap();
    assert!(
        matches!(refused.outcome(), OperationOutcome::CommandError(_)),
        "{refused:?}"
    );

    // Cancel before the device acts.
    let offline = "enterprises/E1/devices/offline";
    let pending = c
        .issue_command(offline, &reset_command("830417"))
        .await
        .unwrap();
    c.cancel_operation(&pending.name).await.unwrap();
    let cancelled = c.get_operation(&pending.name).await.unwrap();
    assert_eq!(cancelled.outcome(), OperationOutcome::Cancelled);
    assert_eq!(s.counter("devices.issueCommand").await, 3);
    s.sim.shutdown().await;
}

#[tokio::test]
async fn policies_get_and_patch_with_update_mask() {
    let s = Setup::new("policies", FLEET).await;
    let c = s.client(fast()).await;
    let name = "enterprises/E1/policies/wp";
    let before = c.get_policy(name).await.unwrap();
    let mut policies = before.password_policies.clone();
    policies[0].password_minimum_length = Some(8);
    let written = c
        .patch_policy(
            name,
            &Policy {
                password_policies: policies,
                ..Default::default()
            },
            &["passwordPolicies"],
        )
        .await
        .unwrap();
    assert!(written.version > before.version, "version increments");
    let after = c.get_policy(name).await.unwrap();
    assert_eq!(after.password_policies[0].password_minimum_length, Some(8));
    assert_eq!(
        after.password_policies[1].password_scope,
        Some(PasswordScope::Device),
        "other scopes kept"
    );
    let refused = c
        .patch_policy(name, &Policy::default(), &[])
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("updateMask"));
    assert_eq!(
        s.counter("policies.patch").await,
        1,
        "a maskless patch never leaves the client"
    );
    let _ = PasswordRequirements::default();
    s.sim.shutdown().await;
}

#[tokio::test]
async fn safe_calls_are_retried_through_5xx_and_429() {
    let s = Setup::new("retries", FLEET).await;
    let c = s
        .client(RetryPolicy {
            max_attempts: 40,
            ..fast()
        })
        .await;
    s.faults(json!({"errorRate": 0.5, "throttleRate": 0.2}))
        .await;
    for _ in 0..10 {
        c.get_device(PHONE).await.expect("retried to success");
    }
    let counters = s.admin_get("counters").await;
    assert!(
        counters["faults"]["errors"].as_u64().unwrap() > 0,
        "{counters}"
    );
    assert!(
        s.counter("devices.get").await > 10,
        "some calls were retried"
    );
    s.faults(json!({"errorRate": 1.0})).await;
    let e = s.client(fast()).await.get_device(PHONE).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    s.sim.shutdown().await;
}

#[tokio::test]
async fn issue_command_is_never_repeated_blindly() {
    let s = Setup::new("exactly-once", FLEET).await;
    let c = s.client(fast()).await;

    // 5xx: the outcome is unknown, so the command is not sent again.
    s.faults(json!({"errorRate": 1.0})).await;
    let e = c
        .issue_command(PHONE, &reset_command("830417"))
        .await
        .unwrap_err();
    assert!(matches!(e, AmapiError::Ambiguous { .. }), "{e}");
    assert_eq!(s.counter("devices.issueCommand").await, 1, "sent once");
    assert_eq!(
        s.commands(PHONE).await.len(),
        0,
        "the simulator refused it before processing"
    );

    // A dropped connection after processing: ambiguous, and the command does exist.
    s.faults(json!({"dropRate": 1.0})).await;
    let e = c
        .issue_command(PHONE, &reset_command("830417"))
        .await
        .unwrap_err();
    assert!(matches!(e, AmapiError::Ambiguous { .. }), "{e}");
    assert_eq!(
        s.commands(PHONE).await.len(),
        1,
        "the caller must look at the operations"
    );
    s.faults(json!({})).await;
    assert_eq!(c.list_operations(PHONE).await.unwrap().len(), 1);

    // 429 means not processed: retried, and exactly one command results.
    s.faults(json!({"throttleRate": 0.6})).await;
    let calls_before = s.counter("devices.issueCommand").await;
    let mut created = 0;
    for _ in 0..5 {
        if c.issue_command(PHONE, &reset_command("830417"))
            .await
            .is_ok()
        {
            created += 1;
        }
    }
    s.faults(json!({})).await;
    assert_eq!(
        s.commands(PHONE).await.len(),
        1 + created,
        "each success is exactly one command"
    );
    assert!(s.counter("devices.issueCommand").await > calls_before + 5 || created < 5);
    s.sim.shutdown().await;
}

/// A command is only sent within its limits, so it exists by a known time: no attempt starts
/// after `start_by`, and 429s are not retried past it.
#[tokio::test]
async fn issue_command_is_not_sent_late() {
    let s = Setup::new("within", FLEET).await;
    let c = s.client(fast()).await;
    let too_late = std::time::Instant::now();
    let e = c
        .issue_command_within(
            PHONE,
            &reset_command("830417"),
            Some((too_late, Duration::from_secs(1))),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, AmapiError::Transient { .. }), "{e}");
    assert_eq!(s.counter("devices.issueCommand").await, 0, "nothing sent");

    // Throttled on every attempt: retried only while there is time.
    s.faults(json!({"throttleRate": 1.0})).await;
    let start_by = std::time::Instant::now() + Duration::from_millis(300);
    let e = c
        .issue_command_within(
            PHONE,
            &reset_command("830417"),
            Some((start_by, Duration::from_secs(1))),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, AmapiError::Transient { .. }), "{e}");
    // The simulator asks to wait 1 s (Retry-After), past `start_by`: no second attempt.
    assert_eq!(s.counter("devices.issueCommand").await, 1);
    assert!(s.commands(PHONE).await.is_empty());

    // In time, it is sent as usual.
    s.faults(json!({})).await;
    let start_by = std::time::Instant::now() + Duration::from_secs(5);
    c.issue_command_within(
        PHONE,
        &reset_command("830417"),
        Some((start_by, Duration::from_secs(1))),
    )
    .await
    .unwrap();
    assert_eq!(s.commands(PHONE).await.len(), 1);
    s.sim.shutdown().await;
}

#[tokio::test]
async fn quota_exhaustion_is_transient_with_retry_after() {
    let s = Setup::new("quota", FLEET).await;
    s.admin_send(
        reqwest::Method::PUT,
        "quota",
        json!({"requests": 3, "window": "100s"}),
    )
    .await;
    let c = s.client(once()).await;
    for _ in 0..3 {
        c.get_device(PHONE).await.unwrap();
    }
    match c.get_device(PHONE).await.unwrap_err() {
        AmapiError::Transient {
            status: Some(429),
            retry_after: Some(wait),
            rpc_status,
            ..
        } => {
            assert!(
                wait > Duration::from_secs(50) && wait <= Duration::from_secs(100),
                "{wait:?}"
            );
            assert_eq!(rpc_status.as_deref(), Some("RESOURCE_EXHAUSTED"));
        }
        other => panic!("expected a 429 with Retry-After, got {other:?}"),
    }
    s.sim.shutdown().await;
}

#[tokio::test]
async fn tokens_are_renewed_when_they_expire_or_are_refused() {
    // Short-lived tokens: the client keeps working across expiries.
    let short = format!("settings: {{tokenTtl: 1s}}\n{FLEET}");
    let s = Setup::new("token-ttl", &short).await;
    let c = s.client(fast()).await;
    until("a second token", || async {
        c.get_device(PHONE).await.unwrap();
        s.admin_get("counters").await["tokens"]
            .as_u64()
            .unwrap_or(0)
            >= 2
    })
    .await;
    s.sim.shutdown().await;

    // A token the server no longer honours (simulator restarted with the same key): one 401,
    // one refresh, success.
    let s = Setup::new("token-401", FLEET).await;
    let c = s.client(fast()).await;
    c.get_device(PHONE).await.unwrap();
    let addr = s.sim.local_addr();
    let dir = s.dir.clone();
    s.sim.shutdown().await;
    let s2 = Setup::on("token-401", FLEET, addr).await;
    assert_eq!(s2.dir, dir);
    c.get_device(PHONE).await.expect("refreshed after a 401");
    let counters = s2.admin_get("counters").await;
    assert_eq!(counters["unauthenticated"], 1, "{counters}");
    assert_eq!(counters["tokens"], 1, "{counters}");
    s2.sim.shutdown().await;
}

#[tokio::test]
async fn bad_credentials_are_clear_errors() {
    let s = Setup::new("bad-creds", FLEET).await;
    let missing = Credentials::from_file(&s.dir.join("missing.json"), None)
        .await
        .err()
        .unwrap();
    assert!(missing.to_string().contains("missing.json"), "{missing}");
    // A key the simulator did not issue: the token endpoint refuses the signature.
    let mut key: Value = serde_json::from_str(&s.sim.credentials_json()).unwrap();
    let other = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    key["private_key"] = rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&other, Default::default())
        .unwrap()
        .to_string()
        .into();
    std::fs::write(s.dir.join("forged.json"), key.to_string()).unwrap();
    let auth = Credentials::from_file(&s.dir.join("forged.json"), None)
        .await
        .unwrap();
    let c = AmapiClient::new(
        auth,
        ClientOptions {
            base_url: s.sim.base_url(),
            retry: once(),
            ..Default::default()
        },
    )
    .unwrap();
    let e = c.get_device(PHONE).await.unwrap_err();
    assert!(matches!(e, AmapiError::Auth(_)), "{e}");
    assert_eq!(
        s.counter("devices.get").await,
        0,
        "no AMAPI call without a token"
    );
    s.sim.shutdown().await;
}

/// A writer the test can read back: everything logged at TRACE, from client and simulator.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_passcode_never_appears_in_logs_results_or_errors() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let mut seen = String::new();
    tracing::subscriber::with_default(subscriber, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let s = Setup::new("canary", FLEET).await;
            let c = s.client(fast()).await;
            let ok = c
                .issue_command(PHONE, &reset_command(CANARY))
                .await
                .unwrap();
            s.sync("enterprises/E1/devices/phone").await;
            let done = c.get_operation(&ok.name).await.unwrap();
            let listed = c.list_operations(PHONE).await.unwrap();
            seen.push_str(&format!(
                "{ok:?}{done:?}{listed:?}{}",
                serde_json::to_string(&listed).unwrap()
            ));
            seen.push_str(&format!("{:?}", reset_command(CANARY)));
            for faults in [
                json!({"errorRate": 1.0}),
                json!({"dropRate": 1.0}),
                json!({"throttleRate": 1.0}),
            ] {
                s.faults(faults).await;
                let e = c
                    .issue_command(PHONE, &reset_command(CANARY))
                    .await
                    .unwrap_err();
                seen.push_str(&format!("{e}{e:?}"));
            }
            s.faults(json!({})).await;
            // The raw operation as the simulator serves it does echo the passcode, like Google:
            // proof that the client's redaction is what keeps it out.
            let token_free = s.admin_get("commands").await.to_string();
            assert!(!token_free.contains(CANARY), "the admin API never shows it");
            s.sim.shutdown().await;
        });
    });
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("amapi call"), "TRACE logging was captured");
    assert!(
        !logs.contains(CANARY) && !logs.contains("canary"),
        "logs leak the passcode"
    );
    assert!(
        !seen.contains(CANARY) && !seen.contains("canary"),
        "results or errors leak it: {seen}"
    );
}

/// What the client sends fits Google's discovery document: the Command of issueCommand and the
/// Policy of policies.patch, exactly as serialized for the request body.
#[test]
fn request_bodies_fit_the_discovery_document() {
    for command in [
        reset_command("830417"),
        Command {
            type_: CommandType::ResetPassword,
            new_password: None,
            reset_password_flags: vec![],
            duration: None,
        },
        Command {
            type_: CommandType::ResetPassword,
            new_password: Some(Zeroizing::new("Tr0ub4dor&3".into())),
            reset_password_flags: vec![ResetPasswordFlag::RequireEntry, ResetPasswordFlag::LockNow],
            duration: Some(google_duration(3600)),
        },
    ] {
        let body = serde_json::to_value(&command).unwrap();
        testkit::discovery::check("Command", &body).unwrap_or_else(|e| panic!("{body}: {e}"));
    }
    let requirements = passcode_operator::api::PolicyRequirements {
        quality: passcode_operator::passcode::PasswordQuality::Complex,
        minimum_length: Some(8),
        minimum_symbols: Some(1),
        history_length: Some(5),
        expiration_timeout: Some("2160h".into()),
        require_password_unlock: Some(
            passcode_operator::api::RequirePasswordUnlock::RequireEveryDay,
        ),
        unified_lock_settings: Some(
            passcode_operator::api::UnifiedLockSettings::RequireSeparateWorkLock,
        ),
        ..Default::default()
    };
    let entry = passcode_operator::reconcile::policy::desired_entry(&requirements);
    let policy = Policy {
        password_policies: vec![entry],
        ..Default::default()
    };
    let body = serde_json::to_value(&policy).unwrap();
    testkit::discovery::check("Policy", &body).unwrap_or_else(|e| panic!("{body}: {e}"));
    // The checker is not a rubber stamp.
    assert!(
        testkit::discovery::check(
            "Command",
            &json!({"type": "RESET_PASSWORD", "resetPasswordFlags": ["LOCK_LATER"]})
        )
        .is_err()
    );
}

// ---- replies the simulator never gives: a scripted stand-in for AMAPI ----

/// One request the stand-in received.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    /// Path and query as sent.
    uri: String,
    /// The client's end of the connection: a new port is a new connection.
    peer: SocketAddr,
}

impl Seen {
    fn query(&self, key: &str) -> Option<String> {
        let (_, query) = self.uri.split_once('?')?;
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == key).then(|| v.to_owned())
        })
    }
}

type Answer = Box<dyn Fn(&Seen) -> (u16, Value) + Send + Sync>;

/// Answers every request with what `answer` says, and records it.
struct Fake {
    base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Arc<Mutex<Answer>>,
    server: tokio::task::JoinHandle<()>,
}

impl Fake {
    async fn start(answer: impl Fn(&Seen) -> (u16, Value) + Send + Sync + 'static) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Mutex<Answer>> = Arc::new(Mutex::new(Box::new(answer)));
        let (log, script) = (seen.clone(), answer.clone());
        let app = axum::Router::new().fallback(
            move |ConnectInfo(peer): ConnectInfo<SocketAddr>,
                  method: axum::http::Method,
                  uri: axum::http::Uri| {
                let request = Seen {
                    method: method.to_string(),
                    uri: uri.to_string(),
                    peer,
                };
                log.lock().unwrap().push(request.clone());
                let (status, body) = (script.lock().unwrap())(&request);
                async move {
                    (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        axum::Json(body),
                    )
                }
            },
        );
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Fake {
            base_url,
            seen,
            answer,
            server,
        }
    }

    fn answer(&self, answer: impl Fn(&Seen) -> (u16, Value) + Send + Sync + 'static) {
        *self.answer.lock().unwrap() = Box::new(answer);
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn operation(id: &str, done: bool) -> Value {
    json!({"name": format!("{PHONE}/operations/{id}"), "done": done})
}

fn google_error(code: u16, status: &str) -> (u16, Value) {
    (
        code,
        json!({"error": {"code": code, "message": format!("scripted {status}"), "status": status}}),
    )
}

/// A command created between two pages shifts one onto the next page as well: it is listed once,
/// as last read.
#[tokio::test]
async fn list_operations_lists_each_operation_once() {
    let s = Setup::new("list-dedup", FLEET).await;
    let fake = Fake::start(|seen| match seen.query("pageToken").as_deref() {
        None => (
            200,
            json!({"operations": [operation("1", true), operation("2", false)], "nextPageToken": "p2"}),
        ),
        Some("p2") => (
            200,
            json!({"operations": [operation("2", true), operation("3", false)]}),
        ),
        Some(_) => google_error(400, "INVALID_ARGUMENT"),
    })
    .await;
    let c = s.client_for(&fake.base_url, once()).await;
    let ops = c.list_operations(PHONE).await.unwrap();
    let ids: Vec<&str> = ops
        .iter()
        .map(|o| o.name.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(ids, ["1", "2", "3"]);
    assert!(ops[1].done, "the copy read last is kept");
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|r| r.query("pageSize") == Some(OPERATIONS_PAGE_SIZE.to_string()))
    );
    s.sim.shutdown().await;
}

/// A server that hands back a page token it already gave makes the listing fail as unavailable,
/// without looping.
#[tokio::test]
async fn list_operations_stops_at_a_repeated_page_token() {
    let s = Setup::new("list-loop", FLEET).await;
    // A → B → A.
    let fake = Fake::start(|seen| {
        let next = match seen.query("pageToken").as_deref() {
            None | Some("B") => "A",
            _ => "B",
        };
        (
            200,
            json!({"operations": [operation("1", false)], "nextPageToken": next}),
        )
    })
    .await;
    let c = s.client_for(&fake.base_url, fast()).await;
    let e = c.list_operations(PHONE).await.unwrap_err();
    assert!(
        matches!(e, AmapiError::Transient { status: None, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("page token"), "{e}");
    assert_eq!(
        fake.seen().len(),
        3,
        "stopped on the first token seen twice"
    );

    // The same token over and over.
    fake.answer(|_| (200, json!({"operations": [], "nextPageToken": "same"})));
    let before = fake.seen().len();
    let e = c.list_operations(PHONE).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert_eq!(fake.seen().len() - before, 2);
    s.sim.shutdown().await;
}

/// Pages that never end: the listing stops after the cap, as unavailable.
#[tokio::test]
async fn list_operations_stops_after_the_page_cap() {
    let s = Setup::new("list-cap", FLEET).await;
    let fake = Fake::start(|seen| {
        let n: u64 = seen
            .query("pageToken")
            .and_then(|t| t.strip_prefix('p').map(str::to_owned))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        (
            200,
            json!({"operations": [operation(&n.to_string(), false)], "nextPageToken": format!("p{}", n + 1)}),
        )
    })
    .await;
    let c = s.client_for(&fake.base_url, fast()).await;
    let e = c.list_operations(PHONE).await.unwrap_err();
    assert!(
        matches!(e, AmapiError::Transient { status: None, .. }),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains(&format!("more than {MAX_OPERATION_PAGES} pages")),
        "{e}"
    );
    assert_eq!(fake.seen().len(), MAX_OPERATION_PAGES);
    s.sim.shutdown().await;
}

/// How each answer to issueCommand is classified, and how often the client sends it.
#[tokio::test]
async fn issue_command_failures_are_classified_by_what_they_say_about_the_command() {
    let s = Setup::new("issue-classes", FLEET).await;
    let fake = Fake::start(|_| (200, json!({}))).await;
    let c = s.client_for(&fake.base_url, fast()).await;
    let retries = fast().max_attempts as usize;
    // (answer, expected class, requests sent)
    let cases: Vec<((u16, Value), &str, usize)> = vec![
        // The server timed out reading the request: nothing processed, retried.
        ((408, Value::Null), "transient", retries),
        (google_error(408, "DEADLINE_EXCEEDED"), "transient", retries),
        // ABORTED: nothing created; the caller tries again later, not this call.
        (google_error(409, "ABORTED"), "transient", 1),
        (google_error(409, "ALREADY_EXISTS"), "terminal", 1),
        (google_error(400, "INVALID_ARGUMENT"), "terminal", 1),
        (
            google_error(429, "RESOURCE_EXHAUSTED"),
            "transient",
            retries,
        ),
        (google_error(500, "INTERNAL"), "ambiguous", 1),
        (google_error(503, "UNAVAILABLE"), "ambiguous", 1),
        (google_error(504, "DEADLINE_EXCEEDED"), "ambiguous", 1),
    ];
    for ((status, body), class, sent) in cases {
        let reply = (status, body.clone());
        fake.answer(move |_| reply.clone());
        let before = fake.seen().len();
        let e = c
            .issue_command(PHONE, &reset_command("830417"))
            .await
            .unwrap_err();
        let what = format!("HTTP {status} {body}");
        assert_eq!(e.outcome(), class, "{what}: {e}");
        assert_eq!(fake.seen().len() - before, sent, "{what}: requests sent");
        if class == "transient" {
            assert_eq!(e.http_status(), Some(status), "{what}");
        }
    }
    s.sim.shutdown().await;
}

/// After an ambiguous issueCommand the calls that look for the command go out on a new
/// connection, not behind the one that may still carry the request.
#[tokio::test]
async fn after_an_ambiguous_command_calls_use_a_new_connection() {
    let s = Setup::new("fresh-connection", FLEET).await;
    let fake = Fake::start(|seen| match seen.method.as_str() {
        "POST" => google_error(503, "UNAVAILABLE"),
        _ => (200, json!({"operations": []})),
    })
    .await;
    let c = s.client_for(&fake.base_url, once()).await;
    for _ in 0..3 {
        c.list_operations(PHONE).await.unwrap();
    }
    let seen = fake.seen();
    assert!(
        seen.windows(2).any(|w| w[0].peer == w[1].peer),
        "calls normally share a connection: {seen:?}"
    );
    let e = c
        .issue_command(PHONE, &reset_command("830417"))
        .await
        .unwrap_err();
    assert!(matches!(e, AmapiError::Ambiguous { .. }), "{e}");
    c.list_operations(PHONE).await.unwrap();
    c.list_operations(PHONE).await.unwrap();
    let seen = fake.seen();
    let (before, after) = seen.split_at(seen.len() - 2);
    for later in after {
        assert!(
            before.iter().all(|r| r.peer != later.peer),
            "a call after the ambiguous one reused a connection: {seen:?}"
        );
    }
    s.sim.shutdown().await;
}

/// The simulator's late-creation fault, seen by the client: an ambiguous failure, nothing listed
/// right after, then the command, with the duration exactly as sent.
#[tokio::test]
async fn a_command_created_after_the_client_gave_up_shows_up_later() {
    let s = Setup::new("late", FLEET).await;
    let c = s.client(fast()).await;
    s.faults(json!({"lateCreationRate": 1.0, "lateCreationDelay": "300s"}))
        .await;
    let mut command = reset_command("830417");
    command.duration = Some(google_duration_nanos(600, 123_456));
    let e = c.issue_command(PHONE, &command).await.unwrap_err();
    assert!(matches!(e, AmapiError::Ambiguous { .. }), "{e}");
    assert_eq!(s.counter("devices.issueCommand").await, 1, "sent once");
    assert!(c.list_operations(PHONE).await.unwrap().is_empty());
    s.faults(json!({})).await;
    s.admin_send(
        reqwest::Method::POST,
        "clock:advance",
        json!({"seconds": 301}),
    )
    .await;
    let ops = c.list_operations(PHONE).await.unwrap();
    assert_eq!(ops.len(), 1);
    let duration = ops[0].metadata.as_ref().unwrap().duration.as_deref();
    assert_eq!(duration, Some("600.000123456s"));
    assert_eq!(
        duration.and_then(parse_google_duration_nanos),
        Some(600_000_123_456)
    );
    s.sim.shutdown().await;
}
