//! A Pub/Sub pull client for AMAPI's notifications: `subscriptions.pull`, `.acknowledge` and
//! `.modifyAckDeadline` over Google's REST API, through the AMAPI client's machinery (same HTTP
//! client, service account, retries, error classes and observer), with its own token scope
//! (`https://www.googleapis.com/auth/pubsub`, one token cached beside AMAPI's) and not under
//! AMAPI's rate limiter (Pub/Sub's quota is another).
//!
//! Messages are decoded one by one: a malformed one is a [`MalformedMessage`] in the pull's
//! result, with its ack ID, never a failed pull. A COMMAND message's data is the Operation JSON
//! with the `newPassword` Google echoes: it is parsed into [`Operation`] (which has no field for
//! it) and nothing else of the data is kept, quoted in an error, or logged.
//!
//! Delivery is at least once: the same message (same `message_id`) can come again, with a new
//! ack ID, when it was not acknowledged within the subscription's ack deadline, or as a
//! duplicate; order is not kept. Handle each idempotently, then acknowledge it.

use std::collections::HashMap;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::AmapiError;
use super::base64::{self, DecodeError};
use super::client::{AmapiClient, Call};
use super::model::Operation;

/// Pub/Sub's endpoint.
pub const DEFAULT_BASE_URL: &str = "https://pubsub.googleapis.com/";
/// The OAuth scope the calls ask for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/pubsub";
/// The notification type of a completed device command.
pub const COMMAND: &str = "COMMAND";
/// The most ack IDs sent in one call (Google's request size limit allows about this many).
pub const MAX_ACK_IDS_PER_CALL: usize = 2500;

const SCOPES: &[&str] = &[SCOPE];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PubsubOptions {
    /// Pub/Sub's root URL, ending in `/` (added if missing).
    pub base_url: String,
    /// `projects/{project}/subscriptions/{subscription}`; see [`subscription_name`].
    pub subscription: String,
    /// Ask the server not to wait for messages (Google discourages it).
    pub return_immediately: bool,
}

impl PubsubOptions {
    /// Google's endpoint, waiting pulls.
    pub fn new(subscription: impl Into<String>) -> Self {
        PubsubOptions {
            base_url: DEFAULT_BASE_URL.to_owned(),
            subscription: subscription.into(),
            return_immediately: false,
        }
    }
}

/// `projects/{project}/subscriptions/{subscription}`, from a project and a subscription id; a
/// subscription already given as a full name is kept as it is.
pub fn subscription_name(project: &str, subscription: &str) -> String {
    if subscription.starts_with("projects/") {
        subscription.to_owned()
    } else {
        format!("projects/{project}/subscriptions/{subscription}")
    }
}

/// One notification pulled from the subscription.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// What [`PubsubClient::acknowledge`] takes; new at every delivery.
    pub ack_id: String,
    /// The same for every delivery of one message: redeliveries and duplicates share it.
    pub message_id: String,
    /// The `notificationType` attribute: `COMMAND`, `STATUS_REPORT`, `ENROLLMENT`, ...
    pub notification_type: String,
    /// RFC 3339, as Google sent it.
    pub publish_time: Option<String>,
    /// Set only on subscriptions with a dead-letter policy.
    pub delivery_attempt: Option<i32>,
    /// The Operation of a COMMAND notification (without `newPassword`); `None` for other types,
    /// whose data this client does not read.
    pub operation: Option<Operation>,
}

/// A pulled message that cannot be read. Acknowledge it (it will not get better) and count it;
/// nothing of its data is in here.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Pub/Sub message {} ({}) cannot be read: {error}", display_or(.message_id, "without id"), display_or(.notification_type, "no type"))]
pub struct MalformedMessage {
    /// Empty when the message came without one (it cannot be acknowledged then).
    pub ack_id: String,
    pub message_id: String,
    pub notification_type: String,
    pub error: MessageError,
}

fn display_or<'a>(value: &'a str, otherwise: &'a str) -> &'a str {
    if value.is_empty() { otherwise } else { value }
}

/// What is wrong with a message: where, never what (the data may carry a passcode).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("the received message does not have Pub/Sub's shape ({0})")]
    Envelope(String),
    #[error("no notificationType attribute")]
    NoType,
    #[error("a COMMAND notification without data")]
    NoData,
    #[error("data: {0}")]
    NotBase64(DecodeError),
    #[error("data is not an Operation: {class} error at line {line} column {column}")]
    NotAnOperation {
        class: &'static str,
        line: usize,
        column: usize,
    },
    #[error("data is an Operation without a name")]
    NoOperationName,
}

/// Pub/Sub's pull API for one subscription. Cheap to clone.
#[derive(Clone)]
pub struct PubsubClient {
    amapi: AmapiClient,
    base_url: String,
    subscription: String,
    return_immediately: bool,
}

impl std::fmt::Debug for PubsubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubsubClient")
            .field("base_url", &self.base_url)
            .field("subscription", &self.subscription)
            .finish_non_exhaustive()
    }
}

impl PubsubClient {
    /// A client sharing `amapi`'s HTTP client, service account, retry policy and observer. Build
    /// it after [`AmapiClient::with_observer`], which needs the AMAPI client unshared. A
    /// subscription name that is not `projects/P/subscriptions/S` is refused.
    pub fn new(amapi: &AmapiClient, options: PubsubOptions) -> Result<Self, AmapiError> {
        check_subscription(&options.subscription)?;
        let mut base_url = options.base_url;
        if !base_url.ends_with('/') {
            base_url.push('/');
        }
        Ok(PubsubClient {
            amapi: amapi.clone(),
            base_url,
            subscription: options.subscription,
            return_immediately: options.return_immediately,
        })
    }

    pub fn subscription(&self) -> &str {
        &self.subscription
    }

    fn call(&self, method: &'static str, verb: &str, body: Value) -> Call<'_> {
        let mut call = Call::new(
            method,
            Method::POST,
            format!("{}:{verb}", self.subscription),
        );
        call.base_url = Some(&self.base_url);
        call.scopes = SCOPES;
        call.rate_limited = false;
        call.body = Some(serde_json::to_vec(&body).expect("JSON encodes"));
        call
    }

    /// `subscriptions.pull`: up to `max` messages (at least 1), fewer or none when the server
    /// has fewer ready (Google may answer fewer even with a backlog). Without
    /// `return_immediately` the server may hold the call a while waiting for one. Each message
    /// is a [`Notification`] or a [`MalformedMessage`]; an error is the whole call's (404: no
    /// such subscription, 403: no permission or scope, both terminal with Google's message;
    /// 5xx and timeouts transient). A call that fails after the server handed messages out
    /// loses nothing: they come back after the ack deadline.
    pub async fn pull(
        &self,
        max: u32,
    ) -> Result<Vec<Result<Notification, MalformedMessage>>, AmapiError> {
        let body = json!({
            "maxMessages": max.max(1),
            "returnImmediately": self.return_immediately,
        });
        let response: PullResponse = self
            .amapi
            .call(self.call("pubsub.subscriptions.pull", "pull", body))
            .await?;
        let received: Vec<_> = response
            .received_messages
            .into_iter()
            .map(parse_received)
            .collect();
        let malformed = received.iter().filter(|r| r.is_err()).count();
        tracing::debug!(
            subscription = %self.subscription,
            received = received.len(),
            malformed,
            "pubsub pull"
        );
        Ok(received)
    }

    /// `subscriptions.acknowledge`: the messages are done with. Nothing to send is no call;
    /// many are sent [`MAX_ACK_IDS_PER_CALL`] at a time. An ack after the ack deadline may be
    /// accepted and yet the message come again.
    pub async fn acknowledge(&self, ack_ids: &[String]) -> Result<(), AmapiError> {
        for chunk in ack_ids.chunks(MAX_ACK_IDS_PER_CALL) {
            let body = json!({"ackIds": chunk});
            let _: Value = self
                .amapi
                .call(self.call("pubsub.subscriptions.acknowledge", "acknowledge", body))
                .await?;
        }
        Ok(())
    }

    /// `subscriptions.modifyAckDeadline`: the messages' leases end `seconds` (0 to 600) from
    /// now; 0 hands them back for redelivery at once (a nack).
    pub async fn modify_ack_deadline(
        &self,
        ack_ids: &[String],
        seconds: u32,
    ) -> Result<(), AmapiError> {
        if seconds > 600 {
            return Err(AmapiError::Terminal {
                method: "pubsub.subscriptions.modifyAckDeadline",
                status: 0,
                rpc_status: None,
                message: format!("an ack deadline of {seconds}s is over Pub/Sub's 600s"),
            });
        }
        for chunk in ack_ids.chunks(MAX_ACK_IDS_PER_CALL) {
            let body = json!({"ackIds": chunk, "ackDeadlineSeconds": seconds});
            let _: Value = self
                .amapi
                .call(self.call(
                    "pubsub.subscriptions.modifyAckDeadline",
                    "modifyAckDeadline",
                    body,
                ))
                .await?;
        }
        Ok(())
    }
}

/// The subscription goes into the URL path: only Pub/Sub's name characters, `%` excepted.
fn check_subscription(name: &str) -> Result<(), AmapiError> {
    let id_ok = |s: &str, extra: &[u8]| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b) || extra.contains(&b))
    };
    let ok = name
        .strip_prefix("projects/")
        .and_then(|rest| rest.split_once("/subscriptions/"))
        .is_some_and(|(project, id)| id_ok(project, b":") && id_ok(id, b"~+"));
    if ok {
        Ok(())
    } else {
        Err(AmapiError::Terminal {
            method: "pubsub",
            status: 0,
            rpc_status: None,
            message: format!(
                "{name:?} is not a Pub/Sub subscription name (projects/PROJECT/subscriptions/NAME)"
            ),
        })
    }
}

/// The reply, each message kept apart so one bad message does not sink the others.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PullResponse {
    #[serde(default)]
    received_messages: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReceivedMessage {
    #[serde(default)]
    ack_id: String,
    #[serde(default)]
    message: PubsubMessage,
    #[serde(default)]
    delivery_attempt: Option<i32>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PubsubMessage {
    #[serde(default)]
    data: Option<Zeroizing<String>>,
    #[serde(default)]
    attributes: HashMap<String, String>,
    #[serde(default)]
    message_id: String,
    #[serde(default)]
    publish_time: Option<String>,
}

fn parse_received(value: Value) -> Result<Notification, MalformedMessage> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let ack_id = text(&value["ackId"]);
    let message_id = text(&value["message"]["messageId"]);
    let notification_type = text(&value["message"]["attributes"]["notificationType"]);
    let malformed = |error| MalformedMessage {
        ack_id: ack_id.clone(),
        message_id: message_id.clone(),
        notification_type: notification_type.clone(),
        error,
    };
    let received: ReceivedMessage = serde_json::from_value(value).map_err(|e| {
        malformed(MessageError::Envelope(format!(
            "{} error",
            class(e.classify())
        )))
    })?;
    let message = received.message;
    let Some(notification_type) = message.attributes.get("notificationType").cloned() else {
        return Err(malformed(MessageError::NoType));
    };
    let operation = if notification_type == COMMAND {
        let data = message
            .data
            .as_deref()
            .filter(|d| !d.is_empty())
            .ok_or_else(|| malformed(MessageError::NoData))?;
        let bytes = Zeroizing::new(
            base64::decode(data).map_err(|e| malformed(MessageError::NotBase64(e)))?,
        );
        let operation: Operation = serde_json::from_slice(&bytes).map_err(|e| {
            malformed(MessageError::NotAnOperation {
                class: class(e.classify()),
                line: e.line(),
                column: e.column(),
            })
        })?;
        if operation.name.is_empty() {
            return Err(malformed(MessageError::NoOperationName));
        }
        Some(operation)
    } else {
        None
    };
    Ok(Notification {
        ack_id: received.ack_id,
        message_id: message.message_id,
        notification_type,
        publish_time: message.publish_time,
        delivery_attempt: received.delivery_attempt,
        operation,
    })
}

fn class(c: serde_json::error::Category) -> &'static str {
    match c {
        serde_json::error::Category::Io => "read",
        serde_json::error::Category::Syntax => "syntax",
        serde_json::error::Category::Data => "type",
        serde_json::error::Category::Eof => "truncation",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "CANARY-pass-5512";

    fn message(data: Option<&str>, kind: Option<&str>) -> Value {
        let mut attributes = serde_json::Map::new();
        if let Some(k) = kind {
            attributes.insert("notificationType".into(), json!(k));
        }
        let mut m = json!({"messageId": "17", "publishTime": "2026-01-01T00:00:00Z",
                           "attributes": attributes});
        if let Some(d) = data {
            m["data"] = json!(d);
        }
        json!({"ackId": "ack-1", "message": m})
    }

    fn operation_json() -> String {
        json!({
            "name": "enterprises/E/devices/D/operations/9",
            "done": true,
            "metadata": {"@type": "type.googleapis.com/google.android.devicemanagement.v1.Command",
                         "type": "RESET_PASSWORD", "newPassword": CANARY},
            "response": {"@type": "type.googleapis.com/google.android.devicemanagement.v1.IssueCommandResponse"},
        })
        .to_string()
    }

    #[test]
    fn a_command_notification_carries_its_operation_without_the_passcode() {
        let data = base64::encode(operation_json().as_bytes());
        let n = parse_received(message(Some(&data), Some(COMMAND))).unwrap();
        assert_eq!(n.ack_id, "ack-1");
        assert_eq!(n.message_id, "17");
        assert_eq!(n.notification_type, COMMAND);
        let op = n.operation.as_ref().unwrap();
        assert_eq!(op.name, "enterprises/E/devices/D/operations/9");
        assert!(op.done);
        assert!(!format!("{n:?}").contains(CANARY));
        assert!(!serde_json::to_string(op).unwrap().contains(CANARY));
    }

    #[test]
    fn other_types_are_passed_on_unread() {
        let n = parse_received(message(Some("not even base64!"), Some("STATUS_REPORT"))).unwrap();
        assert_eq!(n.notification_type, "STATUS_REPORT");
        assert_eq!(n.operation, None);
    }

    #[test]
    fn malformed_messages_say_where_never_what() {
        let secret_json =
            format!("{{\"name\": 7, \"metadata\": {{\"newPassword\": \"{CANARY}\"}}}}");
        let truncated = &operation_json()[..40];
        let cases = [
            (message(None, Some(COMMAND)), "without data"),
            (message(Some(""), Some(COMMAND)), "without data"),
            (
                message(Some(&format!("{CANARY}!")), Some(COMMAND)),
                "not base64",
            ),
            (
                message(Some(&base64::encode(secret_json.as_bytes())), Some(COMMAND)),
                "type error",
            ),
            (
                message(Some(&base64::encode(truncated.as_bytes())), Some(COMMAND)),
                "truncation error",
            ),
            (
                message(Some(&base64::encode(br#"{"done": true}"#)), Some(COMMAND)),
                "not an Operation",
            ),
            (
                message(Some(&base64::encode(br#"{"name": ""}"#)), Some(COMMAND)),
                "without a name",
            ),
            (
                message(Some(&base64::encode(operation_json().as_bytes())), None),
                "no notificationType",
            ),
            (
                json!({"ackId": "ack-1", "message": {"data": 5512, "note": CANARY,
                       "attributes": {"notificationType": COMMAND}}}),
                "shape",
            ),
        ];
        for (value, says) in cases {
            let e = parse_received(value).unwrap_err();
            let shown = format!("{e} {e:?}");
            assert!(shown.contains(says), "{shown}");
            assert!(!shown.contains("5512"), "{shown}");
            assert_eq!(e.ack_id, "ack-1");
        }
    }

    #[test]
    fn subscription_names() {
        assert!(check_subscription("projects/p-1/subscriptions/amapi.events_1").is_ok());
        assert!(check_subscription("projects/example.com:p/subscriptions/s~x+y").is_ok());
        for bad in [
            "subscriptions/s",
            "projects/p/subscriptions/",
            "projects/p/subscriptions/s?x=1",
            "projects/p/subscriptions/s%2Fx",
            "projects/p/subscriptions/a/b",
            "projects/p/topics/t",
            "",
        ] {
            assert!(check_subscription(bad).is_err(), "{bad}");
        }
        assert_eq!(
            subscription_name("p", "s"),
            "projects/p/subscriptions/s".to_owned()
        );
        assert_eq!(
            subscription_name("p", "projects/q/subscriptions/s"),
            "projects/q/subscriptions/s".to_owned()
        );
    }
}
