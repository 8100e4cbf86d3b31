//! `passcode-operator simulate` as a user runs it: the listening line on stdout, the credentials
//! file (mode 0600, key reused across restarts), SIGTERM, a clear error for a bad fleet, and
//! TRACE logs on stderr that never carry a passcode.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use testkit::sim::{GRANT_TYPE, Patience, SCOPE, form_encode, http};

const CANARY: &str = "Zq7#Canary!93";

struct Running {
    child: Child,
    base: String,
}

/// A test that fails midway must not leave the simulator running.
impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start(credentials: &Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_passcode-operator"))
        .args([
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--fleet",
            "examples/fleet.yaml",
        ])
        .arg("--write-credentials")
        .arg(credentials)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn passcode-operator simulate");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the simulator prints its address within 30s");
    let base = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(
        base.starts_with("http://127.0.0.1:") && base.ends_with('/'),
        "{base}"
    );
    assert!(!base.ends_with(":0/"), "the real port is printed: {base}");
    Running { child, base }
}

/// SIGTERM, then the exit status and everything it logged.
fn stop(running: &mut Running) -> (std::process::ExitStatus, String) {
    let pid = running.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = running.child.wait().unwrap();
    let mut logs = String::new();
    running
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    (status, logs)
}

async fn access_token(key: &Value) -> String {
    let now = jiff::Timestamp::now().as_second();
    let claims = json!({"iss": key["client_email"], "scope": SCOPE, "aud": key["token_uri"],
                        "iat": now, "exp": now + 600});
    let signing =
        jsonwebtoken::EncodingKey::from_rsa_pem(key["private_key"].as_str().unwrap().as_bytes())
            .unwrap();
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &signing,
    )
    .unwrap();
    let response = http()
        .post(key["token_uri"].as_str().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type={}&assertion={jwt}",
            form_encode(GRANT_TYPE)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn read_key(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn simulate_serves_until_sigterm_and_keeps_its_key() {
    let dir = temp_dir("serve");
    let credentials = dir.join("sa.json");
    let mut running = start(&credentials);

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&credentials)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the key file is private");
    let key = read_key(&credentials);
    assert_eq!(key["type"], "service_account");
    assert_eq!(key["token_uri"], json!(format!("{}token", running.base)));

    let client = http();
    let token = access_token(&key).await;
    let device = "enterprises/LC01demo/devices/3a8f0c2d";
    let r = client
        .get(format!("{}v1/{device}", running.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let op: Value = client
        .post(format!("{}v1/{device}:issueCommand", running.base))
        .bearer_auth(&token)
        .json(&json!({"type": "RESET_PASSWORD", "newPassword": CANARY, "resetPasswordFlags": ["LOCK_NOW"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let name = op["name"].as_str().unwrap().to_owned();
    let patience = Patience::new("the reset to finish");
    loop {
        let op: Value = client
            .request(Method::GET, format!("{}v1/{name}", running.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if op["done"] == true {
            assert!(op["response"].is_object(), "{op}");
            break;
        }
        patience.wait().await;
    }

    let (status, logs) = stop(&mut running);
    assert!(
        status.success(),
        "SIGTERM is a clean stop: {status:?}\n{logs}"
    );
    assert!(
        logs.contains("command received"),
        "TRACE logs were written:\n{logs}"
    );
    assert!(
        !logs.contains(CANARY),
        "the passcode leaked into the logs:\n{logs}"
    );

    // A restart reuses the key, so clients configured with the file keep working.
    let mut again = start(&credentials);
    let reused = read_key(&credentials);
    assert_eq!(reused["private_key"], key["private_key"]);
    assert_eq!(reused["private_key_id"], key["private_key_id"]);
    assert_eq!(reused["token_uri"], json!(format!("{}token", again.base)));
    access_token(&reused).await;
    let (status, _) = stop(&mut again);
    assert!(status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_fleet_is_a_clear_error() {
    let dir = temp_dir("bad");
    let fleet = dir.join("fleet.yaml");
    std::fs::write(
        &fleet,
        "enterprises: [{id: E, devices: [{id: d, onlien: true}]}]\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_passcode-operator"))
        .args(["simulate", "--listen", "127.0.0.1:0", "--fleet"])
        .arg(&fleet)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("onlien"), "{stderr}");
    assert!(stderr.contains("fleet.yaml"), "{stderr}");
    assert!(output.stdout.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
