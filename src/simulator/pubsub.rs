//! A Pub/Sub topic with one pull subscription, as Google runs them for AMAPI notifications: the
//! state and its rules, no HTTP (that is [`super::pubsub_api`]) and no clock of its own (every
//! method takes the simulated time it happens at).
//!
//! Delivery is Google's: at least once. A pulled message is leased to the puller for the
//! subscription's ack deadline; acknowledged within it, it is gone; not acknowledged in time (or
//! nacked with `modifyAckDeadline` 0), it can be pulled again, with a new ack ID. An ack that
//! comes after its deadline, or for an ack ID that is no longer the message's latest, is accepted
//! and does nothing (Google: "may succeed, yet the message can come again"). Faults drop,
//! duplicate (same `messageId`, settled separately), delay and reorder messages.
//!
//! The message data is the notification's JSON (for COMMAND, the Operation exactly as
//! `operations.get` returns it, echoed `newPassword` included, as Google does). It is kept only
//! base64-encoded, zeroized on drop, and never shown by the admin view or `Debug`.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::clock;
use super::errors::ApiError;
use super::faults::PubsubFaults;
use super::fleet::{MAX_ACK_DEADLINE, PubsubSettings};
use crate::amapi::base64;

/// The notification type of completed device commands.
pub const COMMAND: &str = "COMMAND";

/// Pub/Sub's message: Google's error when a subscription does not exist.
pub fn not_found(subscription: &str) -> ApiError {
    ApiError::not_found(format!("Resource not found (resource={subscription})."))
}

/// The subscription, its messages and what happened to them.
pub struct PubSub {
    subscription: Option<Subscription>,
    pub faults: PubsubFaults,
    next_message_id: u64,
    next_key: u64,
    pub counters: PubsubCounters,
}

struct Subscription {
    name: String,
    topic: String,
    ack_deadline: Duration,
    /// Published, not acknowledged yet (copies of duplicated messages apart), in publish order.
    messages: Vec<Message>,
}

struct Message {
    /// Tells copies of a duplicated message apart.
    key: u64,
    message_id: String,
    /// Base64 of the notification JSON.
    data: Zeroizing<String>,
    attributes: BTreeMap<String, String>,
    /// For the admin view: which operation and enterprise it is about.
    resource: String,
    enterprise: String,
    publish_time: Timestamp,
    /// Before this, a (delayed) message cannot be pulled.
    available_at: Timestamp,
    lease: Option<Lease>,
    deliveries: u32,
}

/// A pulled message's current ack ID and until when it is leased.
struct Lease {
    ack_id: String,
    deadline: Timestamp,
}

impl Message {
    /// When it can be pulled (again).
    fn pullable_from(&self) -> Timestamp {
        match &self.lease {
            Some(lease) => lease.deadline,
            None => self.available_at,
        }
    }

    fn state(&self, now: Timestamp) -> &'static str {
        match &self.lease {
            Some(l) if l.deadline > now => "OUTSTANDING",
            _ if self.available_at > now => "DELAYED",
            _ => "AVAILABLE",
        }
    }
}

impl std::fmt::Debug for PubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSub")
            .field(
                "subscription",
                &self.subscription.as_ref().map(|s| s.name.as_str()),
            )
            .field(
                "messages",
                &self.subscription.as_ref().map_or(0, |s| s.messages.len()),
            )
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// Counts since start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PubsubCounters {
    /// Messages published to the subscription's topic (before faults).
    pub published: u64,
    /// Notifications for a topic no subscription here is attached to: lost, as on Google.
    pub unrouted: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub delayed: u64,
    /// Calls per method, whatever their outcome.
    pub pull_calls: u64,
    pub acknowledge_calls: u64,
    pub modify_ack_deadline_calls: u64,
    /// Messages handed out by pulls, redeliveries included.
    pub pulled: u64,
    /// Deliveries of a message (copy) already delivered before.
    pub redelivered: u64,
    pub acked: u64,
    /// Acks that settled nothing: late, superseded or unknown ack IDs.
    pub acks_ignored: u64,
    /// Leases given back with `ackDeadlineSeconds: 0`.
    pub nacked: u64,
    /// Leases extended or shortened with a non-zero deadline.
    pub deadlines_modified: u64,
    /// Calls refused before processing: 503 faults, 403, 404.
    pub errors: u64,
}

impl PubsubCounters {
    pub fn to_json(&self) -> Value {
        json!({
            "published": self.published,
            "unrouted": self.unrouted,
            "pulled": self.pulled,
            "redelivered": self.redelivered,
            "acked": self.acked,
            "acksIgnored": self.acks_ignored,
            "nacked": self.nacked,
            "deadlinesModified": self.deadlines_modified,
            "errors": self.errors,
            "methods": {
                "subscriptions.pull": self.pull_calls,
                "subscriptions.acknowledge": self.acknowledge_calls,
                "subscriptions.modifyAckDeadline": self.modify_ack_deadline_calls,
            },
            "faults": {
                "dropped": self.dropped,
                "duplicated": self.duplicated,
                "delayed": self.delayed,
            },
        })
    }
}

/// One message handed out by a pull.
pub struct Received<'a> {
    pub ack_id: String,
    pub message_id: &'a str,
    pub data: &'a str,
    pub attributes: &'a BTreeMap<String, String>,
    pub publish_time: Timestamp,
}

impl PubSub {
    pub fn new(settings: Option<&PubsubSettings>) -> PubSub {
        PubSub {
            subscription: settings.map(|s| Subscription {
                name: s.subscription.clone(),
                topic: s.topic(),
                ack_deadline: s.ack_deadline,
                messages: Vec::new(),
            }),
            faults: settings.map(|s| s.faults.clone()).unwrap_or_default(),
            next_message_id: 1,
            next_key: 1,
            counters: PubsubCounters::default(),
        }
    }

    /// Publishes one notification to `topic` at `at`. `data` is the notification JSON;
    /// `resource` and `enterprise` only label it for the admin view. `draw` decides faults.
    #[allow(clippy::too_many_arguments)]
    pub fn publish(
        &mut self,
        topic: &str,
        notification_type: &str,
        data: &[u8],
        resource: &str,
        enterprise: &str,
        at: Timestamp,
        draw: impl FnMut() -> f64,
    ) {
        let attributes =
            BTreeMap::from([("notificationType".to_owned(), notification_type.into())]);
        let data = Zeroizing::new(base64::encode(data));
        self.publish_encoded(topic, attributes, data, resource, enterprise, at, draw);
    }

    /// The subscription's topic, if there is one.
    pub fn topic(&self) -> Option<&str> {
        self.subscription.as_ref().map(|s| s.topic.as_str())
    }

    /// Publishes a message as given: `data` is sent as it is (base64, or not: the admin API
    /// uses this to publish malformed messages).
    #[allow(clippy::too_many_arguments)]
    pub fn publish_encoded(
        &mut self,
        topic: &str,
        attributes: BTreeMap<String, String>,
        data: Zeroizing<String>,
        resource: &str,
        enterprise: &str,
        at: Timestamp,
        draw: impl FnMut() -> f64,
    ) {
        let Some(sub) = self.subscription.as_mut().filter(|s| s.topic == topic) else {
            self.counters.unrouted += 1;
            return;
        };
        self.counters.published += 1;
        let fate = self.faults.fate(draw);
        if fate.dropped {
            self.counters.dropped += 1;
            tracing::info!(resource, "pubsub fault: message dropped");
            return;
        }
        let message_id = self.next_message_id.to_string();
        self.next_message_id += 1;
        let available_at = match fate.delay {
            Some(delay) => {
                self.counters.delayed += 1;
                clock::add(at, delay)
            }
            None => at,
        };
        let copies = if fate.duplicated {
            self.counters.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let key = self.next_key;
            self.next_key += 1;
            sub.messages.push(Message {
                key,
                message_id: message_id.clone(),
                data: data.clone(),
                attributes: attributes.clone(),
                resource: resource.to_owned(),
                enterprise: enterprise.to_owned(),
                publish_time: at,
                available_at,
                lease: None,
                deliveries: 0,
            });
        }
        tracing::debug!(resource, message_id, "notification published");
    }

    /// The subscription named `name`, or Pub/Sub's 404.
    fn subscription(&mut self, name: &str) -> Result<&mut Subscription, ApiError> {
        self.subscription
            .as_mut()
            .filter(|s| s.name == name)
            .ok_or_else(|| not_found(name))
    }

    /// Whether `name` is the subscription served here, or why not (403 before 404, as IAM is
    /// checked first).
    pub fn check(&mut self, name: &str) -> Result<(), ApiError> {
        let result = if self.faults.permission_denied {
            Err(ApiError::permission_denied(
                "User not authorized to perform this action.",
            ))
        } else {
            self.subscription(name).map(|_| ())
        };
        if result.is_err() {
            self.counters.errors += 1;
        }
        result
    }

    /// Leases up to `max` pullable messages, oldest first (any order under the reorder fault).
    pub fn pull(
        &mut self,
        name: &str,
        max: usize,
        now: Timestamp,
        shuffle: impl FnOnce(&mut [usize]),
    ) -> Result<Vec<Received<'_>>, ApiError> {
        let reorder = self.faults.reorder;
        let sub = self.subscription.as_mut().filter(|s| s.name == name);
        let Some(sub) = sub else {
            return Err(not_found(name));
        };
        let mut ready: Vec<usize> = (0..sub.messages.len())
            .filter(|&i| sub.messages[i].pullable_from() <= now)
            .collect();
        if reorder {
            shuffle(&mut ready);
        } else {
            ready.sort_by_key(|&i| (sub.messages[i].pullable_from(), sub.messages[i].key));
        }
        ready.truncate(max);
        let deadline = clock::add(now, sub.ack_deadline);
        for &i in &ready {
            let m = &mut sub.messages[i];
            m.deliveries += 1;
            if m.deliveries > 1 {
                self.counters.redelivered += 1;
            }
            let ack_id = format!(
                "sim-ack-{}-{}-{}",
                m.key,
                m.deliveries,
                fastrand::u64(..) & 0xffff_ffff
            );
            m.lease = Some(Lease { ack_id, deadline });
        }
        self.counters.pulled += ready.len() as u64;
        Ok(ready
            .into_iter()
            .map(|i| {
                let m = &sub.messages[i];
                Received {
                    ack_id: m.lease.as_ref().expect("just leased").ack_id.clone(),
                    message_id: &m.message_id,
                    data: m.data.as_str(),
                    attributes: &m.attributes,
                    publish_time: m.publish_time,
                }
            })
            .collect())
    }

    /// Acknowledges: each ack ID that is its message's current one, within its deadline,
    /// removes the message; any other is accepted and ignored.
    pub fn acknowledge(
        &mut self,
        name: &str,
        ack_ids: &[String],
        now: Timestamp,
    ) -> Result<(), ApiError> {
        let sub = self.subscription(name)?;
        let mut acked = 0;
        for id in ack_ids {
            let current = sub.messages.iter().position(|m| {
                m.lease
                    .as_ref()
                    .is_some_and(|l| &l.ack_id == id && l.deadline > now)
            });
            if let Some(i) = current {
                sub.messages.remove(i);
                acked += 1;
            }
        }
        self.counters.acked += acked;
        self.counters.acks_ignored += ack_ids.len() as u64 - acked;
        Ok(())
    }

    /// Sets the lease of each current ack ID to end `seconds` from now; 0 gives it back for
    /// redelivery at once. Ack IDs no longer current are ignored.
    pub fn modify_ack_deadline(
        &mut self,
        name: &str,
        ack_ids: &[String],
        seconds: u64,
        now: Timestamp,
    ) -> Result<(), ApiError> {
        if Duration::from_secs(seconds) > MAX_ACK_DEADLINE {
            return Err(ApiError::invalid_argument(format!(
                "Invalid ack deadline given: {seconds}. The ack deadline must be between 0 and 600 seconds."
            )));
        }
        let sub = self.subscription(name)?;
        let deadline = clock::add(now, Duration::from_secs(seconds));
        let mut changed = 0;
        for id in ack_ids {
            if let Some(lease) = sub
                .messages
                .iter_mut()
                .filter_map(|m| m.lease.as_mut())
                .find(|l| &l.ack_id == id && l.deadline > now)
            {
                lease.deadline = deadline;
                changed += 1;
            }
        }
        if seconds == 0 {
            self.counters.nacked += changed;
        } else {
            self.counters.deadlines_modified += changed;
        }
        Ok(())
    }

    /// How many messages wait for an ack (copies counted), for the admin counters.
    pub fn pending(&self) -> usize {
        self.subscription.as_ref().map_or(0, |s| s.messages.len())
    }

    /// The admin view: settings, counters and every unacknowledged message, never its data.
    pub fn view(&self, now: Timestamp) -> Value {
        let Some(sub) = &self.subscription else {
            return json!({
                "subscription": null,
                "faults": self.faults,
                "counters": self.counters.to_json(),
                "messages": [],
            });
        };
        let messages: Vec<Value> = sub
            .messages
            .iter()
            .map(|m| {
                let mut v = Map::new();
                v.insert("messageId".into(), json!(m.message_id));
                v.insert("attributes".into(), json!(m.attributes));
                v.insert("resource".into(), json!(m.resource));
                v.insert("enterprise".into(), json!(m.enterprise));
                v.insert("publishTime".into(), json!(clock::rfc3339(m.publish_time)));
                v.insert("state".into(), json!(m.state(now)));
                v.insert("deliveries".into(), json!(m.deliveries));
                v.insert(
                    "pullableFrom".into(),
                    json!(clock::rfc3339(m.pullable_from())),
                );
                if let Some(lease) = m.lease.as_ref().filter(|l| l.deadline > now) {
                    v.insert("ackId".into(), json!(lease.ack_id));
                }
                Value::Object(v)
            })
            .collect();
        json!({
            "subscription": sub.name,
            "topic": sub.topic,
            "ackDeadline": clock::google_duration(sub.ack_deadline),
            "faults": self.faults,
            "counters": self.counters.to_json(),
            "messages": messages,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "projects/p/subscriptions/s";
    const TOPIC: &str = "projects/p/topics/s";

    fn pubsub(faults: PubsubFaults) -> PubSub {
        PubSub::new(Some(&PubsubSettings {
            subscription: SUB.into(),
            topic: None,
            ack_deadline: Duration::from_secs(10),
            faults,
        }))
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn publish(p: &mut PubSub, n: u32, secs: i64) {
        let data = format!("{{\"name\": \"op-{n}\"}}");
        p.publish(
            TOPIC,
            COMMAND,
            data.as_bytes(),
            &format!("op-{n}"),
            "E",
            at(secs),
            fastrand::f64,
        );
    }

    /// (ackId, decoded data) of a pull of up to 10.
    fn pull(p: &mut PubSub, secs: i64) -> Vec<(String, String)> {
        p.pull(SUB, 10, at(secs), |_| {})
            .unwrap()
            .into_iter()
            .map(|r| {
                let data = String::from_utf8(base64::decode(r.data).unwrap()).unwrap();
                (r.ack_id, data)
            })
            .collect()
    }

    #[test]
    fn unacked_messages_come_back_with_a_new_ack_id() {
        let mut p = pubsub(PubsubFaults::default());
        publish(&mut p, 1, 0);
        publish(&mut p, 2, 1);
        let first = pull(&mut p, 2);
        assert_eq!(first.len(), 2);
        assert!(first[0].1.contains("op-1") && first[1].1.contains("op-2"));
        assert!(pull(&mut p, 11).is_empty(), "leased until 12");
        p.acknowledge(SUB, &[first[0].0.clone()], at(11)).unwrap();
        let again = pull(&mut p, 12);
        assert_eq!(again.len(), 1, "the unacked one only");
        assert!(again[0].1.contains("op-2"));
        assert_ne!(again[0].0, first[1].0, "a new ack ID");
        // The old ack ID no longer settles it; the new one does.
        p.acknowledge(SUB, &[first[1].0.clone()], at(13)).unwrap();
        assert_eq!(p.pending(), 1);
        p.acknowledge(SUB, &[again[0].0.clone(), again[0].0.clone()], at(13))
            .unwrap();
        assert_eq!(p.pending(), 0);
        assert!(pull(&mut p, 100).is_empty());
        let c = &p.counters;
        assert_eq!((c.published, c.pulled, c.redelivered), (2, 3, 1));
        assert_eq!((c.acked, c.acks_ignored), (2, 2));
    }

    #[test]
    fn a_late_ack_settles_nothing() {
        let mut p = pubsub(PubsubFaults::default());
        publish(&mut p, 1, 0);
        let got = pull(&mut p, 0);
        p.acknowledge(SUB, &[got[0].0.clone()], at(10)).unwrap();
        assert_eq!(p.pending(), 1);
        assert_eq!(pull(&mut p, 10).len(), 1);
    }

    #[test]
    fn modify_ack_deadline_extends_or_gives_back() {
        let mut p = pubsub(PubsubFaults::default());
        publish(&mut p, 1, 0);
        publish(&mut p, 2, 0);
        let got = pull(&mut p, 0);
        p.modify_ack_deadline(SUB, &[got[0].0.clone()], 60, at(5))
            .unwrap();
        p.modify_ack_deadline(SUB, &[got[1].0.clone()], 0, at(5))
            .unwrap();
        let back = pull(&mut p, 5);
        assert_eq!(back.len(), 1);
        assert!(back[0].1.contains("op-2"), "the nacked one");
        p.acknowledge(SUB, &[back[0].0.clone()], at(5)).unwrap();
        assert!(pull(&mut p, 30).is_empty(), "op-1 is leased until 65");
        assert_eq!(pull(&mut p, 65).len(), 1);
        assert_eq!(
            p.modify_ack_deadline(SUB, &[], 601, at(70))
                .unwrap_err()
                .status,
            "INVALID_ARGUMENT"
        );
        assert_eq!((p.counters.nacked, p.counters.deadlines_modified), (1, 1));
    }

    #[test]
    fn faults_drop_duplicate_delay_and_reorder() {
        let mut p = pubsub(PubsubFaults {
            drop_rate: 1.0,
            ..PubsubFaults::default()
        });
        publish(&mut p, 1, 0);
        assert!(pull(&mut p, 100).is_empty());
        assert_eq!(p.counters.dropped, 1);

        p.faults = PubsubFaults {
            duplicate_rate: 1.0,
            ..PubsubFaults::default()
        };
        publish(&mut p, 2, 0);
        let got = p.pull(SUB, 10, at(0), |_| {}).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].message_id, got[1].message_id, "same messageId");
        let first_ack = got[0].ack_id.clone();
        p.acknowledge(SUB, &[first_ack], at(1)).unwrap();
        assert_eq!(p.pending(), 1, "the copy is settled separately");

        let mut p = pubsub(PubsubFaults {
            delay_rate: 1.0,
            delay: Duration::from_secs(30),
            ..PubsubFaults::default()
        });
        publish(&mut p, 3, 0);
        assert!(pull(&mut p, 29).is_empty());
        assert_eq!(p.view(at(29))["messages"][0]["state"], "DELAYED");
        assert_eq!(pull(&mut p, 30).len(), 1);

        let mut p = pubsub(PubsubFaults {
            reorder: true,
            ..PubsubFaults::default()
        });
        for n in 0..3 {
            publish(&mut p, n, 0);
        }
        let got = p.pull(SUB, 10, at(0), |ids| ids.reverse()).unwrap();
        let data = base64::decode(got[0].data).unwrap();
        assert!(String::from_utf8(data).unwrap().contains("op-2"));
    }

    #[test]
    fn other_topics_and_subscriptions() {
        let mut p = pubsub(PubsubFaults::default());
        p.publish(
            "projects/p/topics/other",
            COMMAND,
            b"{}",
            "op",
            "E",
            at(0),
            fastrand::f64,
        );
        assert_eq!((p.counters.published, p.counters.unrouted), (0, 1));
        let e = p.check("projects/p/subscriptions/nope").unwrap_err();
        assert_eq!(e.status, "NOT_FOUND");
        assert_eq!(
            e.message,
            "Resource not found (resource=projects/p/subscriptions/nope)."
        );
        p.faults.permission_denied = true;
        assert_eq!(p.check(SUB).unwrap_err().status, "PERMISSION_DENIED");
        assert_eq!(p.counters.errors, 2);
        let none = PubSub::new(None);
        assert!(none.view(at(0))["subscription"].is_null());
    }

    #[test]
    fn the_view_and_debug_never_show_the_data() {
        let mut p = pubsub(PubsubFaults::default());
        let secret = br#"{"metadata": {"newPassword": "CANARY-4412"}}"#;
        p.publish(TOPIC, COMMAND, secret, "op", "E", at(0), fastrand::f64);
        let view = p.view(at(0)).to_string();
        assert!(!view.contains("CANARY") && !view.contains(&base64::encode(secret)));
        assert!(view.contains("AVAILABLE"));
        assert!(!format!("{p:?}").contains(&base64::encode(secret)));
    }
}
