//! Driving an in-process AMAPI simulator over real HTTP, as a client would: sign a JWT with the
//! service-account key, trade it for a token, call AMAPI; and the admin API for setup and checks.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use passcode_operator::simulator::Simulator;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const SCOPE: &str = "https://www.googleapis.com/auth/androidmanagement";
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// How long a test waits for something that should happen within a sync delay or two.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

pub struct TestSim {
    pub sim: Simulator,
    pub http: reqwest::Client,
    pub base: String,
    pub key: Value,
    token: Option<String>,
}

/// A reply: status, headers and the JSON body (Null when the body is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl TestSim {
    /// Starts a simulator for `fleet_yaml` on a free loopback port.
    pub async fn start(fleet_yaml: &str) -> TestSim {
        let sim = crate::simulator(fleet_yaml, None).await;
        let key: Value = serde_json::from_str(&sim.credentials_json()).expect("key file is JSON");
        TestSim {
            base: sim.base_url(),
            sim,
            http: http(),
            key,
            token: None,
        }
    }

    /// A JWT-bearer assertion signed with the service account's key; `edit` changes the claims.
    pub fn assertion(&self, edit: impl FnOnce(&mut Value)) -> String {
        self.assertion_signed_by(self.key["private_key"].as_str().unwrap(), edit)
    }

    /// An assertion for this simulator signed with any RSA key (PKCS#8 PEM).
    pub fn assertion_signed_by(&self, private_pem: &str, edit: impl FnOnce(&mut Value)) -> String {
        let now = jiff::Timestamp::now().as_second();
        let mut claims = json!({
            "iss": self.key["client_email"],
            "scope": SCOPE,
            "aud": self.key["token_uri"],
            "iat": now,
            "exp": now + 3600,
        });
        edit(&mut claims);
        let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).expect("an RSA key");
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).expect("signing")
    }

    /// POSTs a form to the token endpoint.
    pub async fn token_request(&self, grant_type: &str, assertion: &str) -> Reply {
        let body = format!(
            "grant_type={}&assertion={}",
            form_encode(grant_type),
            form_encode(assertion)
        );
        let response = self
            .http
            .post(self.sim.token_uri())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("token request");
        reply(response).await
    }

    /// A fresh access token through the real flow.
    pub async fn fresh_token(&self) -> String {
        let r = self
            .token_request(GRANT_TYPE, &self.assertion(|_| {}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r.body["access_token"].as_str().unwrap().to_owned()
    }

    /// The cached access token, fetched on first use.
    pub async fn token(&mut self) -> String {
        if self.token.is_none() {
            self.token = Some(self.fresh_token().await);
        }
        self.token.clone().unwrap()
    }

    /// An AMAPI call with the cached token. `path` is relative to the base URL (`v1/...`).
    pub async fn amapi(&mut self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let token = self.token().await;
        self.amapi_with(method, path, body, Some(&token)).await
    }

    pub async fn amapi_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Reply {
        let response = self
            .send(method, path, body, token)
            .await
            .expect("AMAPI request");
        reply(response).await
    }

    /// Sends without reading the body, for tests of transport failures.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> reqwest::Result<reqwest::Response> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.amapi(Method::GET, path, None).await
    }

    pub async fn post(&mut self, path: &str, body: Value) -> Reply {
        self.amapi(Method::POST, path, Some(body)).await
    }

    /// An admin API call (`path` under `sim/v1/`).
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.amapi_with(method, &format!("sim/v1/{path}"), body, None)
            .await
    }

    pub async fn counters(&self) -> Value {
        self.admin(Method::GET, "counters", None).await.body
    }

    /// Issues RESET_PASSWORD and returns the Operation.
    pub async fn reset(&mut self, device: &str, passcode: Option<&str>, flags: &[&str]) -> Value {
        let mut command = json!({"type": "RESET_PASSWORD", "resetPasswordFlags": flags});
        if let Some(p) = passcode {
            command["newPassword"] = json!(p);
        }
        let r = self
            .post(&format!("v1/{device}:issueCommand"), command)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r.body
    }

    /// Polls operations.get until the operation is done.
    pub async fn wait_done(&mut self, operation: &str) -> Value {
        let patience = Patience::new(format!("{operation} to be done"));
        loop {
            let r = self.get(&format!("v1/{operation}")).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            if r.body["done"] == json!(true) {
                return r.body;
            }
            patience.wait().await;
        }
    }

    /// Polls the admin view of a device until `check` holds.
    pub async fn wait_device(
        &self,
        device: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let patience = Patience::new(format!("{device}: {what}"));
        loop {
            let r = self.admin(Method::GET, device, None).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            if check(&r.body) {
                return r.body;
            }
            patience.wait().await;
        }
    }
}

/// A deadline for polling a condition: `wait` pauses briefly, and fails the test once the
/// deadline has passed.
pub struct Patience {
    what: String,
    deadline: Instant,
}

impl Patience {
    pub fn new(what: impl Into<String>) -> Self {
        Patience {
            what: what.into(),
            deadline: Instant::now() + PATIENCE,
        }
    }

    pub async fn wait(&self) {
        assert!(
            Instant::now() < self.deadline,
            "timed out waiting for {}",
            self.what
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("response body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
    }
}

/// application/x-www-form-urlencoded for one value.
pub fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
