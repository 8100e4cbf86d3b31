//! The AMAPI client: typed calls, one rate limiter, retries for calls that are safe to repeat,
//! and `issueCommand` never repeated blindly.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::AmapiError;
use super::auth::Credentials;
use super::model::{
    Command, Device, ErrorBody, ListDevicesResponse, ListOperationsResponse, Operation, Policy,
};
use super::observe::{NoopObserver, Observer};
use super::ratelimit::RateLimiter;
use super::retry::RetryPolicy;

/// Google's endpoint; the simulator's for tests and dry runs.
pub const DEFAULT_BASE_URL: &str = "https://androidmanagement.googleapis.com/";

/// The most `operations.list` pages read for one device (of [`OPERATIONS_PAGE_SIZE`]): past
/// that, something is wrong (a server that never ends its pages, or a device flooded with
/// commands), and the listing fails as unavailable rather than running on.
pub const MAX_OPERATION_PAGES: usize = 50;
/// Operations asked for per `operations.list` page (AMAPI's maximum).
pub const OPERATIONS_PAGE_SIZE: usize = 100;

/// How the client behaves; every knob has a production default.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub base_url: String,
    /// Average AMAPI requests per second across the whole process.
    pub requests_per_second: f64,
    pub burst: u32,
    /// The share of the rate that follow-up polls of long-pending commands may use (0 to 1).
    pub followup_share: f64,
    pub retry: RetryPolicy,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            base_url: DEFAULT_BASE_URL.to_owned(),
            requests_per_second: 8.0,
            burst: 8,
            followup_share: 0.25,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Clone)]
pub struct AmapiClient {
    inner: Arc<Inner>,
}

struct Inner {
    /// Replaced after an ambiguous `issueCommand`, so later calls do not ride the connection
    /// that may still be delivering it.
    http: RwLock<reqwest::Client>,
    base_url: String,
    auth: Credentials,
    limiter: RateLimiter,
    retry: RetryPolicy,
    timeout: Duration,
    observer: Arc<dyn Observer>,
}

/// Whether a call may be sent again when its outcome is unclear.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repeat {
    Safe,
    /// `issueCommand`: each POST creates a command.
    Never,
}

/// One call through the shared machinery (token, retries, error classes, metrics); the Pub/Sub
/// client builds its own.
pub(super) struct Call<'a> {
    pub(super) method: &'static str,
    http: Method,
    /// Under `v1/` of the base URL.
    path: String,
    query: Vec<(&'static str, String)>,
    pub(super) body: Option<Vec<u8>>,
    repeat: Repeat,
    /// A value to scrub from any error message (the passcode, for issueCommand).
    secret: Option<&'a str>,
    /// Another API's root URL (ending in `/`) instead of AMAPI's.
    pub(super) base_url: Option<&'a str>,
    /// The OAuth scopes of the token it is sent with.
    pub(super) scopes: &'static [&'static str],
    /// Whether it waits for the AMAPI rate limiter (AMAPI's quota; other APIs have their own).
    pub(super) rate_limited: bool,
    /// No attempt starts at or after this instant.
    start_by: Option<Instant>,
    /// Per-attempt timeout, when shorter than the client's.
    timeout: Option<Duration>,
}

impl AmapiClient {
    pub fn new(auth: Credentials, options: ClientOptions) -> Result<Self, AmapiError> {
        crate::install_crypto_provider();
        let http = http_client(options.timeout)
            .map_err(|e| AmapiError::Auth(format!("cannot build the HTTP client: {e}")))?;
        let mut base_url = options.base_url;
        if !base_url.ends_with('/') {
            base_url.push('/');
        }
        Ok(AmapiClient {
            inner: Arc::new(Inner {
                http: RwLock::new(http),
                base_url,
                auth,
                limiter: RateLimiter::new(
                    options.requests_per_second,
                    options.burst,
                    options.followup_share,
                ),
                retry: options.retry,
                timeout: options.timeout,
                observer: Arc::new(NoopObserver),
            }),
        })
    }

    /// Reports calls and rate-limiter waits to `observer` (metrics).
    pub fn with_observer(self, observer: Arc<dyn Observer>) -> Self {
        let inner = Arc::try_unwrap(self.inner)
            .unwrap_or_else(|_| panic!("with_observer must be called before the client is shared"));
        AmapiClient {
            inner: Arc::new(Inner { observer, ..inner }),
        }
    }

    pub fn identity(&self) -> &str {
        self.inner.auth.identity()
    }

    /// `devices.get`; a deleted device answers 404.
    pub async fn get_device(&self, name: &str) -> Result<Device, AmapiError> {
        self.call(Call::get("devices.get", name)?).await
    }

    /// `devices.list`, every page.
    pub async fn list_devices(&self, enterprise: &str) -> Result<Vec<Device>, AmapiError> {
        let parent = format!("{}/devices", enterprise_name(enterprise));
        let mut devices = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut call = Call::get("devices.list", &parent)?;
            call.query.push(("pageSize", "100".into()));
            if let Some(t) = token.take() {
                call.query.push(("pageToken", t));
            }
            let page: ListDevicesResponse = self.call(call).await?;
            devices.extend(page.devices);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(devices),
            }
        }
    }

    /// `devices.issueCommand`. Sent at most once, except when it is certain the command was not
    /// created (429, 408, connection refused, 401 before a token refresh). A 409 ABORTED is
    /// [`AmapiError::Transient`] too (not created) but not sent again here. Anything else that
    /// leaves the outcome open (5xx, a timeout, a cut connection, an unreadable reply) is
    /// [`AmapiError::Ambiguous`]: look at [`Self::list_operations`].
    pub async fn issue_command(
        &self,
        device: &str,
        command: &Command,
    ) -> Result<Operation, AmapiError> {
        self.issue_command_within(device, command, None).await
    }

    /// [`Self::issue_command`], with no attempt started at or after `start_by` and each attempt
    /// given at most `attempt_timeout`, so a command it creates exists by a known time. Too late to
    /// start is a transient error: certainly nothing was created by that attempt.
    pub async fn issue_command_within(
        &self,
        device: &str,
        command: &Command,
        within: Option<(Instant, Duration)>,
    ) -> Result<Operation, AmapiError> {
        let body = serde_json::to_vec(command).map_err(|e| AmapiError::Terminal {
            method: "devices.issueCommand",
            status: 0,
            rpc_status: None,
            message: format!("cannot encode the command: {e}"),
        })?;
        let secret = command.new_password.as_deref().map(String::as_str);
        let mut call = Call::new(
            "devices.issueCommand",
            Method::POST,
            format!("{}:issueCommand", checked_name(device)?),
        );
        call.body = Some(body);
        call.repeat = Repeat::Never;
        call.secret = secret;
        if let Some((start_by, attempt_timeout)) = within {
            call.start_by = Some(start_by);
            call.timeout = Some(attempt_timeout);
        }
        self.call(call).await
    }

    /// Whether a follow-up poll of a long-pending command may be made now (see
    /// [`RateLimiter::followup_allowed`]); when not, poll later rather than wait.
    pub fn followup_allowed(&self) -> bool {
        self.inner.limiter.followup_allowed()
    }

    /// AMAPI calls of this process waiting for the rate limit now.
    pub fn waiting(&self) -> usize {
        self.inner.limiter.waiting()
    }

    /// `operations.get`.
    pub async fn get_operation(&self, name: &str) -> Result<Operation, AmapiError> {
        self.call(Call::get("operations.get", name)?).await
    }

    /// `operations.list` for one device, every page, each operation once (a command created
    /// while paging can shift one onto the next page too; the copy read last is kept). At most
    /// [`MAX_OPERATION_PAGES`] pages, and a page token seen twice stops it: both fail as
    /// transient, never loop.
    pub async fn list_operations(&self, device: &str) -> Result<Vec<Operation>, AmapiError> {
        const METHOD: &str = "operations.list";
        let parent = format!("{}/operations", checked_name(device)?);
        let mut operations: Vec<Operation> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut tokens: HashSet<String> = HashSet::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_OPERATION_PAGES {
            let mut call = Call::get(METHOD, &parent)?;
            call.query
                .push(("pageSize", OPERATIONS_PAGE_SIZE.to_string()));
            if let Some(t) = token.take() {
                call.query.push(("pageToken", t));
            }
            let page: ListOperationsResponse = self.call(call).await?;
            for op in page.operations {
                match index.get(&op.name) {
                    Some(&i) => operations[i] = op,
                    None => {
                        index.insert(op.name.clone(), operations.len());
                        operations.push(op);
                    }
                }
            }
            match page.next_page_token.filter(|t| !t.is_empty()) {
                None => return Ok(operations),
                Some(t) if !tokens.insert(t.clone()) => {
                    return Err(listing_stopped(
                        METHOD,
                        format!(
                            "AMAPI returned a page token it had already returned for {device}; \
                             stopped listing rather than loop"
                        ),
                    ));
                }
                Some(t) => token = Some(t),
            }
        }
        Err(listing_stopped(
            METHOD,
            format!(
                "{device} has more than {MAX_OPERATION_PAGES} pages of operations (over {} \
                 operations); stopped listing",
                MAX_OPERATION_PAGES * OPERATIONS_PAGE_SIZE
            ),
        ))
    }

    /// `operations.cancel`: best effort; a cancelled operation ends with `error.code = 1`.
    pub async fn cancel_operation(&self, name: &str) -> Result<(), AmapiError> {
        let call = Call::new(
            "operations.cancel",
            Method::POST,
            format!("{}:cancel", checked_name(name)?),
        );
        let _: serde_json::Value = self.call(call).await?;
        Ok(())
    }

    /// `policies.get`.
    pub async fn get_policy(&self, name: &str) -> Result<Policy, AmapiError> {
        self.call(Call::get("policies.get", name)?).await
    }

    /// `policies.patch`, always with an `updateMask`: without one AMAPI overwrites every field.
    pub async fn patch_policy(
        &self,
        name: &str,
        policy: &Policy,
        update_mask: &[&str],
    ) -> Result<Policy, AmapiError> {
        if update_mask.is_empty() {
            return Err(AmapiError::Terminal {
                method: "policies.patch",
                status: 0,
                rpc_status: None,
                message: "refusing to patch a policy without an updateMask".into(),
            });
        }
        let mut call = Call::new("policies.patch", Method::PATCH, checked_name(name)?.into());
        call.query.push(("updateMask", update_mask.join(",")));
        call.body = Some(serde_json::to_vec(policy).expect("a Policy always encodes"));
        self.call(call).await
    }

    pub(super) async fn call<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, AmapiError> {
        let started = Instant::now();
        let result = self.attempts(&call).await;
        if matches!(result, Err(AmapiError::Ambiguous { .. })) {
            self.fresh_connections();
        }
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.metric_outcome(),
        };
        self.inner
            .observer
            .call(call.method, outcome, started.elapsed());
        match &result {
            Ok(_) => tracing::debug!(
                method = call.method,
                latency_ms = started.elapsed().as_millis() as u64,
                "amapi call"
            ),
            Err(e) => {
                tracing::debug!(method = call.method, outcome, error = %e, "amapi call failed")
            }
        }
        result
    }

    async fn attempts<T: DeserializeOwned>(&self, call: &Call<'_>) -> Result<T, AmapiError> {
        let inner = &self.inner;
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let step = self.attempt(call, &mut refreshed).await;
            let error = match step {
                Step::Done(value) => return Ok(value),
                Step::Again => continue, // the token was refreshed: not an attempt that reached AMAPI
                Step::Fail(e) => e,
                Step::Stop(e) => return Err(scrub(e, call.secret)),
            };
            let retry_after = match &error {
                AmapiError::Transient { retry_after, .. } => *retry_after,
                AmapiError::Auth(_) => None,
                _ => return Err(scrub(error, call.secret)),
            };
            if attempt >= inner.retry.max_attempts {
                return Err(scrub(error, call.secret));
            }
            let delay = inner.retry.delay(attempt, retry_after, fastrand::f64());
            if call.start_by.is_some_and(|by| Instant::now() + delay >= by) {
                return Err(scrub(error, call.secret));
            }
            tracing::debug!(
                method = call.method,
                attempt,
                delay_ms = delay.as_millis() as u64,
                "retrying amapi call"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Drops the connection pool: a request whose fate is unknown may still sit in a
    /// connection's send buffer, and the calls that go looking for its command must not queue
    /// behind it (HTTP/2 puts every call on one connection). Calls in flight keep theirs.
    fn fresh_connections(&self) {
        match http_client(self.inner.timeout) {
            Ok(http) => *self.inner.http.write().expect("http client lock") = http,
            Err(e) => {
                tracing::warn!(error = %e, "cannot build a fresh HTTP client; keeping the old one")
            }
        }
    }

    async fn attempt<T: DeserializeOwned>(&self, call: &Call<'_>, refreshed: &mut bool) -> Step<T> {
        let inner = &self.inner;
        if call.rate_limited {
            let waited = inner.limiter.acquire().await;
            if waited > Duration::from_millis(1) {
                inner.observer.rate_limited(waited);
            }
        }
        let token = match inner.auth.token_for(call.scopes, false).await {
            Ok(t) => t,
            Err(e) => return Step::Fail(e),
        };
        if call.start_by.is_some_and(|by| Instant::now() >= by) {
            return Step::Fail(AmapiError::Transient {
                method: call.method,
                status: None,
                rpc_status: None,
                message: "not sent: the time allowed to send it has passed".into(),
                retry_after: None,
            });
        }
        let http = inner.http.read().expect("http client lock").clone();
        let mut request = http
            .request(
                call.http.clone(),
                format!(
                    "{}v1/{}",
                    call.base_url.unwrap_or(&inner.base_url),
                    call.path
                ),
            )
            .bearer_auth(token)
            .timeout(call.timeout.unwrap_or(inner.timeout).min(inner.timeout));
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        if let Some(body) = &call.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let unsafe_to_repeat = call.repeat == Repeat::Never;
        let response = match request.send().await {
            Ok(r) => r,
            // Nothing reached AMAPI when the connection could not be made.
            Err(e) if e.is_connect() => return Step::Fail(transient(call.method, None, &e)),
            Err(e) if unsafe_to_repeat => return Step::Fail(ambiguous(call.method, &e)),
            Err(e) => return Step::Fail(transient(call.method, None, &e)),
        };
        let status = response.status();
        let retry_after = retry_after(&response);
        let bytes = match response.bytes().await {
            Ok(b) => b,
            // Only a 429 or a 4xx says the command was not processed; anything else, cut off
            // mid-body, leaves it open.
            Err(e)
                if unsafe_to_repeat
                    && !(status == StatusCode::TOO_MANY_REQUESTS || status.is_client_error()) =>
            {
                return Step::Fail(ambiguous(call.method, &e));
            }
            Err(e) => return Step::Fail(transient(call.method, Some(status), &e)),
        };
        if status.is_success() {
            return match serde_json::from_slice::<T>(&bytes) {
                Ok(value) => Step::Done(value),
                Err(e) if unsafe_to_repeat => Step::Fail(AmapiError::Ambiguous {
                    method: call.method,
                    message: format!("the response could not be read ({e}); the command may exist"),
                }),
                // serde's message can quote a value of the body: only its class and place.
                Err(e) => Step::Fail(AmapiError::Transient {
                    method: call.method,
                    status: Some(status.as_u16()),
                    rpc_status: None,
                    message: format!(
                        "the server answered with an unreadable body ({:?} error at line {} \
                         column {})",
                        e.classify(),
                        e.line(),
                        e.column()
                    ),
                    retry_after: None,
                }),
            };
        }
        let body: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
        let rpc_status = body
            .as_ref()
            .map(|b| b.error.status.clone())
            .filter(|s| !s.is_empty());
        let message = body
            .map(|b| b.error.message)
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("no message").to_owned());
        match status {
            StatusCode::UNAUTHORIZED if !*refreshed => {
                *refreshed = true;
                match inner.auth.token_for(call.scopes, true).await {
                    Ok(_) => Step::Again,
                    Err(e) => Step::Fail(e),
                }
            }
            // 429 means the request was refused before it was processed: safe even for commands.
            StatusCode::TOO_MANY_REQUESTS => Step::Fail(AmapiError::Transient {
                method: call.method,
                status: Some(429),
                rpc_status,
                message,
                retry_after,
            }),
            // The server gave up waiting for the request before it was processed: safe to send
            // again, even a command.
            StatusCode::REQUEST_TIMEOUT => Step::Fail(AmapiError::Transient {
                method: call.method,
                status: Some(408),
                rpc_status,
                message,
                retry_after,
            }),
            // ABORTED: a conflict refused before a command was created. Certainly not created,
            // but not retried at once either (Google: do not retry 409); the caller tries later.
            StatusCode::CONFLICT
                if unsafe_to_repeat && rpc_status.as_deref() == Some("ABORTED") =>
            {
                Step::Stop(AmapiError::Transient {
                    method: call.method,
                    status: Some(409),
                    rpc_status,
                    message,
                    retry_after,
                })
            }
            // UNIMPLEMENTED (operations.list may answer it): asking again will not help.
            StatusCode::NOT_IMPLEMENTED => Step::Fail(AmapiError::Terminal {
                method: call.method,
                status: 501,
                rpc_status,
                message,
            }),
            s if s.is_server_error() && unsafe_to_repeat => Step::Fail(AmapiError::Ambiguous {
                method: call.method,
                message: format!("HTTP {}: {message}", s.as_u16()),
            }),
            s if s.is_server_error() => Step::Fail(AmapiError::Transient {
                method: call.method,
                status: Some(s.as_u16()),
                rpc_status,
                message,
                retry_after,
            }),
            s => Step::Fail(AmapiError::Terminal {
                method: call.method,
                status: s.as_u16(),
                rpc_status,
                message,
            }),
        }
    }
}

enum Step<T> {
    Done(T),
    Again,
    Fail(AmapiError),
    /// Failed, and not to be tried again by this call even when transient.
    Stop(AmapiError),
}

impl<'a> Call<'a> {
    /// A call safe to repeat, to AMAPI.
    pub(super) fn new(method: &'static str, http: Method, path: String) -> Self {
        Call {
            method,
            http,
            path,
            query: Vec::new(),
            body: None,
            repeat: Repeat::Safe,
            secret: None,
            base_url: None,
            scopes: &[super::auth::SCOPE],
            rate_limited: true,
            start_by: None,
            timeout: None,
        }
    }

    fn get(method: &'static str, name: &str) -> Result<Self, AmapiError> {
        Ok(Call::new(
            method,
            Method::GET,
            checked_name(name)?.to_owned(),
        ))
    }
}

/// The HTTP client. `TCP_USER_TIMEOUT` makes the kernel give up on bytes the server never
/// acknowledges after `timeout` instead of retransmitting them for many minutes: a request the
/// client has given up on must not reach Google much later.
fn http_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("passcode-operator/", env!("CARGO_PKG_VERSION")));
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    let builder = builder.tcp_user_timeout(timeout);
    builder.build()
}

/// A listing that was stopped on purpose: unavailable for now, nothing the caller did wrong.
fn listing_stopped(method: &'static str, message: String) -> AmapiError {
    tracing::warn!(method, %message, "amapi listing stopped");
    AmapiError::Transient {
        method,
        status: None,
        rpc_status: None,
        message,
        retry_after: None,
    }
}

/// Resource names go into the path verbatim (`v1/{+name}`), so refuse anything that would change
/// the URL's meaning.
fn checked_name(name: &str) -> Result<&str, AmapiError> {
    let ok = name.starts_with("enterprises/")
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'.'));
    if ok {
        Ok(name)
    } else {
        Err(AmapiError::Terminal {
            method: "request",
            status: 0,
            rpc_status: None,
            message: format!("{name:?} is not an AMAPI resource name"),
        })
    }
}

fn enterprise_name(enterprise: &str) -> String {
    if enterprise.starts_with("enterprises/") {
        enterprise.to_owned()
    } else {
        format!("enterprises/{enterprise}")
    }
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    value
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

fn transient(method: &'static str, status: Option<StatusCode>, e: &reqwest::Error) -> AmapiError {
    AmapiError::Transient {
        method,
        status: status.map(|s| s.as_u16()),
        rpc_status: None,
        message: transport_message(e),
        retry_after: None,
    }
}

fn ambiguous(method: &'static str, e: &reqwest::Error) -> AmapiError {
    AmapiError::Ambiguous {
        method,
        message: transport_message(e),
    }
}

/// A transport error in words, without the URL's query (harmless here, but never needed).
fn transport_message(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the connection broke while reading the response"
    } else {
        "the request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

/// Removes the passcode from an error message, should a server ever echo it.
fn scrub(error: AmapiError, secret: Option<&str>) -> AmapiError {
    let Some(secret) = secret.filter(|s| !s.is_empty()) else {
        return error;
    };
    let clean = |m: String| m.replace(secret, "<redacted>");
    match error {
        AmapiError::Transient {
            method,
            status,
            rpc_status,
            message,
            retry_after,
        } => AmapiError::Transient {
            method,
            status,
            rpc_status,
            message: clean(message),
            retry_after,
        },
        AmapiError::Terminal {
            method,
            status,
            rpc_status,
            message,
        } => AmapiError::Terminal {
            method,
            status,
            rpc_status,
            message: clean(message),
        },
        AmapiError::Ambiguous { method, message } => AmapiError::Ambiguous {
            method,
            message: clean(message),
        },
        AmapiError::Auth(m) => AmapiError::Auth(clean(m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_cannot_escape_the_path() {
        assert!(checked_name("enterprises/E/devices/D").is_ok());
        assert!(checked_name("enterprises/E/devices/D/operations/17").is_ok());
        for bad in [
            "enterprises/E/devices/D?x=1",
            "enterprises/E/devices/../../x",
            "enterprises/E/devices/D#x",
            "devices/D",
            "enterprises/E/devices/D x",
            "",
        ] {
            assert!(checked_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scrub_removes_the_secret_everywhere() {
        let e = AmapiError::Terminal {
            method: "devices.issueCommand",
            status: 400,
            rpc_status: None,
            message: "bad password s3cr3t-CANARY".into(),
        };
        assert!(
            !scrub(e, Some("s3cr3t-CANARY"))
                .to_string()
                .contains("CANARY")
        );
    }
}
