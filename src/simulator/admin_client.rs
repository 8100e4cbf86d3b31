//! A client for the simulator's admin API (`/sim/v1/`): what tests, the benchmark and users' own
//! dry-run scripts use to set faults and quotas, change devices and read what devices received.

use reqwest::Method;
use serde_json::Value;

#[derive(Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    /// The simulator's root, `http://HOST:PORT/`.
    base: String,
}

impl AdminClient {
    pub fn new(base_url: &str) -> Self {
        crate::install_crypto_provider();
        AdminClient {
            http: reqwest::Client::new(),
            base: base_url.to_owned(),
        }
    }

    /// `GET /sim/v1/{path}`.
    pub async fn get(&self, path: &str) -> Result<Value, String> {
        self.send(Method::GET, path, None).await
    }

    /// `PUT /sim/v1/{path}` with a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> Result<Value, String> {
        self.send(Method::PUT, path, Some(body)).await
    }

    /// Any admin call; a status other than 2xx is an error naming it. An empty reply is `null`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let what = format!("{method} /sim/v1/{path}");
        let mut request = self
            .http
            .request(method, format!("{}sim/v1/{path}", self.base));
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| format!("{what}: {e}"))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| format!("{what}: {e}"))?;
        if !status.is_success() {
            return Err(format!(
                "{what}: {status}: {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("{what}: not JSON: {e}"))
    }
}
