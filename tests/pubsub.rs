//! AMAPI COMMAND notifications over the simulator's emulated Pub/Sub pull API, read with the
//! library's Pub/Sub client over real HTTP (tokens from the simulator, the Pub/Sub scope asked
//! for): publication when a command ends, at-least-once redelivery after the ack deadline (driven
//! by advancing the simulated clock), acks, faults, errors, malformed messages, and the passcode
//! never in anything the client shows.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use passcode_operator::amapi::model::{Command, CommandType};
use passcode_operator::amapi::pubsub::{COMMAND, MessageError};
use passcode_operator::amapi::retry::RetryPolicy;
use passcode_operator::amapi::{
    AmapiClient, AmapiError, ClientOptions, Credentials, MalformedMessage, Notification,
    PubsubClient, PubsubOptions,
};
use passcode_operator::simulator::{Fleet, Simulator, SimulatorConfig};
use reqwest::Method;
use serde_json::{Value, json};
use zeroize::Zeroizing;

const CANARY: &str = "839201";
const SUB: &str = "projects/sim-project/subscriptions/amapi-events";

fn fleet(extra_settings: &str) -> String {
    format!(
        r#"
settings:
  pubsub: {{subscription: {SUB}, ackDeadline: 10s{extra_settings}}}
enterprises:
  - id: E
    enabledNotificationTypes: [COMMAND]
    policies: [{{id: p, passwordPolicies: [{{passwordQuality: NUMERIC, passwordMinimumLength: 6}}]}}]
    devices:
      - {{id: d1, policy: p, syncDelay: 50ms}}
      - {{id: d2, policy: p, syncDelay: 50ms}}
      - {{id: off, policy: p, online: false}}
  - id: Quiet
    devices: [{{id: q, syncDelay: 50ms}}]
"#
    )
}

struct Setup {
    sim: Simulator,
    dir: PathBuf,
    amapi: AmapiClient,
}

impl Setup {
    async fn new(name: &str, fleet_yaml: &str) -> Setup {
        passcode_operator::install_crypto_provider();
        let dir = std::env::temp_dir().join(format!("pubsub-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sim = Simulator::start(SimulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            fleet: Fleet::from_yaml(fleet_yaml).unwrap(),
            credentials_path: Some(dir.join("sa.json")),
        })
        .await
        .unwrap();
        let auth = Credentials::from_file(&dir.join("sa.json"), None)
            .await
            .unwrap();
        let amapi = AmapiClient::new(
            auth,
            ClientOptions {
                base_url: sim.base_url(),
                requests_per_second: 200.0,
                burst: 50,
                retry: RetryPolicy {
                    max_attempts: 2,
                    base: Duration::from_millis(10),
                    max_delay: Duration::from_millis(50),
                },
                timeout: Duration::from_secs(5),
                ..ClientOptions::default()
            },
        )
        .unwrap();
        Setup { sim, dir, amapi }
    }

    /// A client that does not wait: each pull says what is pullable now.
    fn pubsub(&self) -> PubsubClient {
        self.pubsub_for(SUB, true)
    }

    fn pubsub_for(&self, subscription: &str, return_immediately: bool) -> PubsubClient {
        PubsubClient::new(
            &self.amapi,
            PubsubOptions {
                base_url: self.sim.base_url(),
                subscription: subscription.into(),
                return_immediately,
            },
        )
        .unwrap()
    }

    async fn admin(&self, method: Method, path: &str, body: Value) -> Value {
        self.sim
            .admin()
            .send(method, path, Some(body))
            .await
            .unwrap()
    }

    async fn counters(&self) -> Value {
        self.sim.admin().get("counters").await.unwrap()["pubsub"].clone()
    }

    async fn advance(&self, seconds: f64) {
        self.admin(Method::POST, "clock:advance", json!({"seconds": seconds}))
            .await;
    }

    async fn set_faults(&self, faults: Value) {
        self.sim.admin().put("pubsub/faults", faults).await.unwrap();
    }

    /// Issues a reset with the canary passcode; returns the operation name.
    async fn reset(&self, enterprise: &str, device: &str) -> String {
        let command = Command {
            type_: CommandType::ResetPassword,
            new_password: Some(Zeroizing::new(CANARY.into())),
            reset_password_flags: vec![],
            duration: Some("600s".into()),
        };
        self.amapi
            .issue_command(
                &format!("enterprises/{enterprise}/devices/{device}"),
                &command,
            )
            .await
            .unwrap()
            .name
    }

    /// Pulls until `n` messages came or `patience` ran out.
    async fn pull_until(
        &self,
        client: &PubsubClient,
        n: usize,
        patience: Duration,
    ) -> Vec<Result<Notification, MalformedMessage>> {
        let until = Instant::now() + patience;
        let mut got = Vec::new();
        while got.len() < n && Instant::now() < until {
            let batch = client.pull(100).await.unwrap();
            assert_clean(&batch);
            if batch.is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            got.extend(batch);
        }
        got
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Nothing the client shows holds the passcode.
fn assert_clean(shown: &impl std::fmt::Debug) {
    let text = format!("{shown:?}");
    assert!(!text.contains(CANARY), "the passcode leaked: {text}");
}

fn notifications(got: Vec<Result<Notification, MalformedMessage>>) -> Vec<Notification> {
    got.into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("malformed: {e}")))
        .collect()
}

fn ack_ids(got: &[Notification]) -> Vec<String> {
    got.iter().map(|n| n.ack_id.clone()).collect()
}

const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_command_that_ends_is_published_with_its_operation() {
    let s = Setup::new("publish", &fleet("")).await;
    let client = s.pubsub_for(SUB, false);
    let name = s.reset("E", "d1").await;
    let got = notifications(s.pull_until(&client, 1, PATIENCE).await);
    assert_eq!(got.len(), 1);
    let n = &got[0];
    assert_eq!(n.notification_type, COMMAND);
    assert_eq!(n.delivery_attempt, None, "no dead-letter policy");
    assert!(n.publish_time.is_some() && !n.message_id.is_empty());
    let op = n.operation.as_ref().unwrap();
    assert_eq!(op.name, name);
    assert!(op.done);
    assert_eq!(
        op.outcome(),
        passcode_operator::amapi::model::OperationOutcome::Succeeded
    );
    // The simulator sends what operations.get answers, passcode included (as Google does):
    // the admin view of the message never shows it, and neither does the parsed notification.
    let view = s.sim.admin().get("pubsub").await.unwrap();
    assert_eq!(view["messages"][0]["resource"], name);
    assert_eq!(view["messages"][0]["state"], "OUTSTANDING");
    assert!(!view.to_string().contains(CANARY));
    assert_clean(&got);

    client.acknowledge(&ack_ids(&got)).await.unwrap();
    client.acknowledge(&[]).await.unwrap();
    let c = s.counters().await;
    assert_eq!(
        (&c["published"], &c["pulled"], &c["acked"], &c["pending"]),
        (&json!(1), &json!(1), &json!(1), &json!(0))
    );
    // Its own token, with the Pub/Sub scope, beside AMAPI's.
    assert_eq!(s.sim.admin().get("counters").await.unwrap()["tokens"], 2);

    // An enterprise without COMMAND notifications publishes nothing; nor does an expiry go
    // unnoticed (a failed command, on an offline device after 600 s).
    s.reset("Quiet", "q").await;
    s.reset("E", "off").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(s.pubsub().pull(10).await.unwrap().is_empty());
    s.advance(600.0).await;
    let got = notifications(s.pull_until(&s.pubsub(), 1, PATIENCE).await);
    let op = got[0].operation.as_ref().unwrap();
    assert_eq!(op.error.as_ref().map(|e| e.code), Some(4), "expired");
    assert_eq!(s.counters().await["published"], 2);
}

#[tokio::test]
async fn a_message_not_acked_within_the_deadline_comes_again_until_acked() {
    let s = Setup::new("redeliver", &fleet("")).await;
    let client = s.pubsub();
    s.reset("E", "d1").await;
    let first = notifications(s.pull_until(&client, 1, PATIENCE).await);
    assert_eq!(first.len(), 1);
    // Leased: not again before the deadline, on the simulated clock.
    s.advance(9.0).await;
    assert!(client.pull(10).await.unwrap().is_empty());
    s.advance(1.5).await;
    let second = notifications(client.pull(10).await.unwrap());
    assert_eq!(second.len(), 1, "delivered again");
    assert_eq!(second[0].message_id, first[0].message_id);
    assert_ne!(second[0].ack_id, first[0].ack_id, "with a new ack ID");
    assert_eq!(second[0].operation, first[0].operation);
    // The first ack ID is stale: accepted, settles nothing.
    client.acknowledge(&ack_ids(&first)).await.unwrap();
    s.advance(11.0).await;
    let third = notifications(client.pull(10).await.unwrap());
    assert_eq!(third.len(), 1);
    // Acked in time: gone for good.
    client.acknowledge(&ack_ids(&third)).await.unwrap();
    s.advance(60.0).await;
    assert!(client.pull(10).await.unwrap().is_empty());
    let c = s.counters().await;
    assert_eq!(
        (
            &c["pulled"],
            &c["redelivered"],
            &c["acked"],
            &c["acksIgnored"]
        ),
        (&json!(3), &json!(2), &json!(1), &json!(1))
    );

    // A nack (deadline 0) hands it back at once; an extension keeps it leased.
    s.reset("E", "d2").await;
    let got = notifications(s.pull_until(&client, 1, PATIENCE).await);
    client.modify_ack_deadline(&ack_ids(&got), 0).await.unwrap();
    let again = notifications(client.pull(10).await.unwrap());
    assert_eq!(again.len(), 1);
    client
        .modify_ack_deadline(&ack_ids(&again), 120)
        .await
        .unwrap();
    s.advance(60.0).await;
    assert!(client.pull(10).await.unwrap().is_empty());
    assert!(
        client
            .modify_ack_deadline(&ack_ids(&again), 601)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_waiting_pull_returns_when_a_message_arrives_or_after_a_bounded_wait() {
    let s = Setup::new("wait", &fleet("")).await;
    let waiting = s.pubsub_for(SUB, false);
    let started = Instant::now();
    assert!(waiting.pull(10).await.unwrap().is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    let pull = tokio::spawn({
        let waiting = waiting.clone();
        async move { waiting.pull(10).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.reset("E", "d1").await;
    let got = pull.await.unwrap().unwrap();
    assert_eq!(got.len(), 1, "the completion 50 ms later ends the wait");
}

#[tokio::test]
async fn faults_drop_duplicate_and_delay_messages() {
    let s = Setup::new("faults", &fleet("")).await;
    let client = s.pubsub();

    s.set_faults(json!({"duplicateRate": 1.0})).await;
    s.reset("E", "d1").await;
    let got = notifications(s.pull_until(&client, 2, PATIENCE).await);
    assert_eq!(got.len(), 2, "two deliveries");
    assert_eq!(got[0].message_id, got[1].message_id);
    assert_ne!(got[0].ack_id, got[1].ack_id);
    client.acknowledge(&ack_ids(&got)).await.unwrap();

    s.set_faults(json!({"dropRate": 1.0})).await;
    s.reset("E", "d2").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.advance(60.0).await;
    assert!(client.pull(10).await.unwrap().is_empty(), "never delivered");

    s.set_faults(json!({"delayRate": 1.0, "delay": "30s"}))
        .await;
    s.reset("E", "d1").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(client.pull(10).await.unwrap().is_empty(), "held back");
    s.advance(30.0).await;
    let got = notifications(client.pull(10).await.unwrap());
    assert_eq!(got.len(), 1);
    client.acknowledge(&ack_ids(&got)).await.unwrap();

    let c = s.counters().await;
    assert_eq!(c["published"], 3);
    assert_eq!(
        c["faults"],
        json!({"dropped": 1, "duplicated": 1, "delayed": 1})
    );
    assert_eq!(c["pending"], 0);
}

#[tokio::test]
async fn out_of_order_under_the_reorder_fault() {
    let s = Setup::new("reorder", &fleet(", faults: {reorder: true}")).await;
    let client = s.pubsub();
    s.reset("E", "d1").await;
    s.reset("E", "d2").await;
    let got = notifications(s.pull_until(&client, 2, PATIENCE).await);
    assert_eq!(got.len(), 2);
    // Order is random: only that both arrive is certain.
    let mut ids: Vec<_> = got.iter().map(|n| n.message_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2);
}

#[tokio::test]
async fn missing_subscription_no_permission_and_outages_are_classified() {
    let s = Setup::new("errors", &fleet("")).await;
    let missing = "projects/sim-project/subscriptions/nope";
    let e = s.pubsub_for(missing, true).pull(10).await.unwrap_err();
    assert!(matches!(e, AmapiError::Terminal { status: 404, .. }), "{e}");
    assert!(e.is_not_found());
    assert_eq!(
        e.message(),
        format!("Resource not found (resource={missing}).")
    );
    let e = s
        .pubsub_for(missing, true)
        .acknowledge(&["x".into()])
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");

    s.set_faults(json!({"permissionDenied": true})).await;
    let e = s.pubsub().pull(10).await.unwrap_err();
    assert!(matches!(e, AmapiError::Terminal { status: 403, .. }), "{e}");
    assert!(e.is_permission_denied());
    assert_eq!(e.message(), "User not authorized to perform this action.");

    s.set_faults(json!({"errorRate": 1.0})).await;
    let e = s.pubsub().pull(10).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert_eq!(e.http_status(), Some(503));

    s.set_faults(json!({})).await;
    assert!(s.pubsub().pull(10).await.unwrap().is_empty());

    // Nothing listening: a transport failure, transient.
    let dead = PubsubClient::new(
        &s.amapi,
        PubsubOptions {
            base_url: "http://127.0.0.1:9/".into(),
            subscription: SUB.into(),
            return_immediately: true,
        },
    )
    .unwrap();
    assert!(dead.pull(1).await.unwrap_err().is_transient());

    // A name that is not a subscription is refused before any call.
    let bad = PubsubClient::new(&s.amapi, PubsubOptions::new("projects/p/topics/t"));
    assert!(bad.is_err());
}

#[tokio::test]
async fn a_token_without_a_pubsub_scope_is_refused() {
    let s = Setup::new("scope", &fleet("")).await;
    let auth = Credentials::from_file(&s.dir.join("sa.json"), None)
        .await
        .unwrap();
    let amapi_only = auth.token(false).await.unwrap();
    let reply = reqwest::Client::new()
        .post(format!("{}v1/{SUB}:pull", s.sim.base_url()))
        .bearer_auth(&amapi_only)
        .json(&json!({"maxMessages": 1, "returnImmediately": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 403);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(
        body["error"]["details"][0]["reason"],
        "ACCESS_TOKEN_SCOPE_INSUFFICIENT"
    );
    // And the other way round: a Pub/Sub token does not open AMAPI.
    let pubsub_only = auth
        .token_for(&[passcode_operator::amapi::pubsub::SCOPE], false)
        .await
        .unwrap();
    let reply = reqwest::Client::new()
        .get(format!("{}v1/enterprises/E/devices/d1", s.sim.base_url()))
        .bearer_auth(&pubsub_only)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 403);
    let no_token = reqwest::Client::new()
        .post(format!("{}v1/{SUB}:pull", s.sim.base_url()))
        .json(&json!({"maxMessages": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
}

#[tokio::test]
async fn a_malformed_message_is_an_error_of_its_own_and_never_shows_its_data() {
    let s = Setup::new("malformed", &fleet("")).await;
    let client = s.pubsub();
    let publish = |body: Value| s.admin(Method::POST, "pubsub/messages", body);
    let leaky = format!("{{\"name\": 1, \"metadata\": {{\"newPassword\": \"{CANARY}\"}}}}");
    publish(json!({"attributes": {"notificationType": "COMMAND"},
                   "data": passcode_operator::amapi::base64::encode(leaky.as_bytes())}))
    .await;
    publish(json!({"attributes": {"notificationType": "COMMAND"}, "data": format!("{CANARY}!!")}))
        .await;
    publish(json!({"attributes": {"notificationType": "COMMAND"}})).await;
    publish(json!({"data": "e30="})).await;
    // Well-formed ones among them still come through: another type (not read), and an
    // Operation of an enterprise this operator may not manage (for the caller to judge).
    publish(json!({"attributes": {"notificationType": "STATUS_REPORT"}, "json": {"name": "enterprises/E/devices/d1"}}))
        .await;
    publish(json!({"attributes": {"notificationType": "COMMAND"},
                   "json": {"name": "enterprises/Other/devices/x/operations/1", "done": true,
                            "metadata": {"newPassword": CANARY}}}))
    .await;

    let got = client.pull(100).await.unwrap();
    assert_eq!(got.len(), 6);
    assert_clean(&got);
    for r in &got {
        if let Err(e) = r {
            assert!(!e.to_string().contains(CANARY), "{e}");
        }
    }
    let errors: Vec<&MessageError> = got
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| &e.error))
        .collect();
    assert!(
        matches!(errors[0], MessageError::NotAnOperation { .. }),
        "{errors:?}"
    );
    assert!(
        matches!(errors[1], MessageError::NotBase64(_)),
        "{errors:?}"
    );
    assert_eq!(errors[2], &MessageError::NoData);
    assert_eq!(errors[3], &MessageError::NoType);
    let ok: Vec<&Notification> = got.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(ok[0].notification_type, "STATUS_REPORT");
    assert_eq!(ok[0].operation, None);
    assert_eq!(
        ok[1].operation.as_ref().unwrap().name,
        "enterprises/Other/devices/x/operations/1"
    );
    // Malformed or not, each can be acknowledged.
    let all: Vec<String> = got
        .iter()
        .map(|r| match r {
            Ok(n) => n.ack_id.clone(),
            Err(e) => e.ack_id.clone(),
        })
        .collect();
    assert!(all.iter().all(|a| !a.is_empty()));
    client.acknowledge(&all).await.unwrap();
    assert_eq!(s.counters().await["pending"], 0);
}
