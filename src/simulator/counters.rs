//! What the simulator was asked, for tests that must prove a client made exactly the calls it
//! should (no duplicate issueCommand, retries after faults, one token per hour).

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// The AMAPI methods the simulator serves, by their discovery-document names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    DevicesGet,
    DevicesList,
    DevicesIssueCommand,
    OperationsGet,
    OperationsList,
    OperationsCancel,
    PoliciesGet,
    PoliciesPatch,
}

impl Method {
    pub const ALL: [Method; 8] = [
        Method::DevicesGet,
        Method::DevicesList,
        Method::DevicesIssueCommand,
        Method::OperationsGet,
        Method::OperationsList,
        Method::OperationsCancel,
        Method::PoliciesGet,
        Method::PoliciesPatch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::DevicesGet => "devices.get",
            Method::DevicesList => "devices.list",
            Method::DevicesIssueCommand => "devices.issueCommand",
            Method::OperationsGet => "operations.get",
            Method::OperationsList => "operations.list",
            Method::OperationsCancel => "operations.cancel",
            Method::PoliciesGet => "policies.get",
            Method::PoliciesPatch => "policies.patch",
        }
    }
}

/// Counts since start. `methods` counts every call routed to a method, whatever its outcome.
#[derive(Debug, Default)]
pub struct Counters {
    methods: BTreeMap<Method, u64>,
    pub tokens: u64,
    pub unauthenticated: u64,
    pub quota_rejected: u64,
    pub fault_errors: u64,
    pub fault_throttled: u64,
    pub fault_dropped: u64,
    pub fault_garbled: u64,
    /// issueCommand calls answered 504 whose command is created later.
    pub fault_late: u64,
    /// STS token exchanges granted and refused, and the fingerprint of the last subject token
    /// exchanged (which of two tokens a client sent, never the token).
    pub sts_exchanges: u64,
    pub sts_refused: u64,
    pub sts_last_subject: Option<String>,
    /// IAM Credentials generateAccessToken calls granted.
    pub impersonations: u64,
    /// Tokens the metadata server handed out.
    pub metadata_tokens: u64,
}

impl Counters {
    pub fn called(&mut self, method: Method) {
        *self.methods.entry(method).or_default() += 1;
    }

    pub fn to_json(&self) -> Value {
        let methods: serde_json::Map<String, Value> = Method::ALL
            .iter()
            .map(|m| {
                (
                    m.as_str().to_owned(),
                    json!(self.methods.get(m).copied().unwrap_or(0)),
                )
            })
            .collect();
        json!({
            "methods": methods,
            "tokens": self.tokens,
            "sts": {
                "exchanges": self.sts_exchanges,
                "refused": self.sts_refused,
                "lastSubjectFingerprint": self.sts_last_subject,
            },
            "impersonations": self.impersonations,
            "metadataTokens": self.metadata_tokens,
            "unauthenticated": self.unauthenticated,
            "quotaRejected": self.quota_rejected,
            "faults": {
                "errors": self.fault_errors,
                "throttled": self.fault_throttled,
                "dropped": self.fault_dropped,
                "garbled": self.fault_garbled,
                "lateCreations": self.fault_late,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_is_listed_even_when_never_called() {
        let mut c = Counters::default();
        c.called(Method::DevicesIssueCommand);
        c.called(Method::DevicesIssueCommand);
        let v = c.to_json();
        assert_eq!(v["methods"].as_object().unwrap().len(), 8);
        assert_eq!(v["methods"]["devices.issueCommand"], 2);
        assert_eq!(v["methods"]["policies.patch"], 0);
        assert_eq!(v["faults"]["dropped"], 0);
        assert_eq!(v["faults"]["lateCreations"], 0);
    }
}
