//! What can go wrong talking to AMAPI, sorted by what the caller should do about it.

use std::time::Duration;

/// An AMAPI call that failed. Messages carry Google's error message and status, never a
/// request or response body (the passcode travels in one).
#[derive(Debug, Clone, thiserror::Error)]
pub enum AmapiError {
    /// Worth retrying later: 429, 408, 5xx, timeouts, connection failures, and for
    /// `issueCommand` a 409 ABORTED; also a listing stopped on purpose (no status). The call was
    /// not (or, for safe calls, need not be known to have been) carried out.
    #[error("{method}: temporarily unavailable ({}): {message}", status_text(*.status, .rpc_status))]
    Transient {
        method: &'static str,
        status: Option<u16>,
        rpc_status: Option<String>,
        message: String,
        retry_after: Option<Duration>,
    },
    /// Will fail the same way again: 400, 403, 404, 409 (but see `Transient`) and other 4xx.
    #[error("{method}: refused ({}): {message}", status_text(Some(*.status), .rpc_status))]
    Terminal {
        method: &'static str,
        status: u16,
        rpc_status: Option<String>,
        message: String,
    },
    /// `issueCommand` may or may not have created a command (timeout, 5xx or a dropped
    /// connection after the request was sent). Never retried: look at the device's operations.
    #[error("{method}: outcome unknown, the command may have been created: {message}")]
    Ambiguous {
        method: &'static str,
        message: String,
    },
    /// No access token: the service-account key or the token endpoint refused.
    #[error("cannot get an AMAPI access token: {0}")]
    Auth(String),
}

fn status_text(status: Option<u16>, rpc: &Option<String>) -> String {
    match (status, rpc) {
        (Some(s), Some(r)) => format!("HTTP {s} {r}"),
        (Some(s), None) => format!("HTTP {s}"),
        (None, _) => "no response".to_owned(),
    }
}

impl AmapiError {
    pub fn is_transient(&self) -> bool {
        matches!(self, AmapiError::Transient { .. })
    }

    pub fn http_status(&self) -> Option<u16> {
        match self {
            AmapiError::Transient { status, .. } => *status,
            AmapiError::Terminal { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.http_status() == Some(404)
    }

    pub fn is_permission_denied(&self) -> bool {
        matches!(self.http_status(), Some(401 | 403))
    }

    /// Google's message, for status messages shown to people.
    pub fn message(&self) -> &str {
        match self {
            AmapiError::Transient { message, .. }
            | AmapiError::Terminal { message, .. }
            | AmapiError::Ambiguous { message, .. }
            | AmapiError::Auth(message) => message,
        }
    }

    /// The `outcome` label of `passcode_operator_amapi_calls_total`: the class, with the two
    /// answers a help desk alerts on apart: `quota` (429: the project's quota is spent) and
    /// `denied` (401/403: the identity may not do this).
    pub fn metric_outcome(&self) -> &'static str {
        match self {
            AmapiError::Transient {
                status: Some(429), ..
            } => "quota",
            AmapiError::Terminal {
                status: 401 | 403, ..
            } => "denied",
            _ => self.outcome(),
        }
    }

    /// The class of the failure: what it says about retrying and about a command.
    pub fn outcome(&self) -> &'static str {
        match self {
            AmapiError::Transient { .. } => "transient",
            AmapiError::Terminal { .. } => "terminal",
            AmapiError::Ambiguous { .. } => "ambiguous",
            AmapiError::Auth(_) => "auth",
        }
    }
}
