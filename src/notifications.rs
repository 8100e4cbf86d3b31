//! AMAPI COMMAND notifications, pulled from a Pub/Sub subscription: each finished operation is
//! handed to its reset (kept in `Pushed`, and a reconcile triggered), so completion is pushed and
//! polling is only a slow safety net. At least once and in any order, like Pub/Sub itself: a
//! duplicate finds its operation already taken and changes nothing. A message that cannot be used
//! (malformed, another type) is counted, logged without its body (AMAPI echoes the passcode in it)
//! and acknowledged. A finished operation no reset follows yet is kept all the same (bounded): the
//! reset that records it a moment later (its device was quicker) takes it at its next poll.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use kube::runtime::reflector::{ObjectRef, Store};
use tracing::{debug, error, warn};

use crate::amapi::PubsubClient;
use crate::amapi::pubsub::COMMAND;
use crate::api::PasscodeReset;
use crate::metrics::Metrics;
use crate::reconcile::reset::delivery::Delivery;
use crate::reconcile::reset::pushed::Pushed;

/// Messages pulled at once.
const BATCH: u32 = 100;

/// Pulls until the returned future is dropped. A COMMAND notification about an operation a reset
/// follows is evidence that its enterprise's notifications arrive (`delivery`); a failed pull
/// loses that evidence for all.
pub async fn follow(
    pubsub: PubsubClient,
    resets: Store<PasscodeReset>,
    pushed: Arc<Pushed>,
    trigger: UnboundedSender<ObjectRef<PasscodeReset>>,
    delivery: Arc<Delivery>,
    metrics: Arc<Metrics>,
) {
    metrics.notifications_configured();
    loop {
        let batch = match pubsub.pull(BATCH).await {
            Ok(batch) => batch,
            Err(e) => {
                delivery.lost_all();
                metrics.notification("pull_error");
                let pause = if e.is_not_found() || e.is_permission_denied() {
                    error!(subscription = pubsub.subscription(), error = %e,
                        "cannot pull AMAPI notifications; resets are polled instead (check the subscription name and that the operator's identity has roles/pubsub.subscriber on it)");
                    Duration::from_secs(60)
                } else {
                    warn!(error = %e, "pulling AMAPI notifications failed; trying again");
                    Duration::from_secs(5)
                };
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        if batch.is_empty() {
            continue;
        }
        // Operation → reset (and whether it has finished), for the resets that follow one; and
        // device → the unfinished resets with a claim there that follow no operation yet.
        let state = resets.state();
        let following: HashMap<String, (ObjectRef<PasscodeReset>, bool)> = state
            .iter()
            .filter_map(|r| {
                let op = r.status.as_ref()?.operation.clone()?;
                Some((
                    op,
                    (ObjectRef::from_obj(r.as_ref()), r.phase().is_terminal()),
                ))
            })
            .collect();
        let mut claiming: HashMap<&str, Vec<ObjectRef<PasscodeReset>>> = HashMap::new();
        for r in &state {
            if let Some(s) = r.status.as_ref().filter(|s| s.operation.is_none())
                && let Some(c) = &s.claimed_command
                && !r.phase().is_terminal()
            {
                claiming
                    .entry(c.device.as_str())
                    .or_default()
                    .push(ObjectRef::from_obj(r.as_ref()));
            }
        }
        let mut acks = Vec::with_capacity(batch.len());
        for message in batch {
            match message {
                Ok(n) => {
                    acks.push(n.ack_id.clone());
                    let outcome = match (&n.operation, n.notification_type == COMMAND) {
                        (Some(op), true) => match following.get(&op.name) {
                            // A poll saw the outcome first; the message still shows delivery.
                            Some((_, true)) => {
                                delivery.arrived(&op.name);
                                "already_finished"
                            }
                            Some((reset, false)) if op.done => {
                                delivery.arrived(&op.name);
                                pushed.put(op.clone());
                                let _ = trigger.unbounded_send(reset.clone());
                                "matched"
                            }
                            Some(_) => {
                                delivery.arrived(&op.name);
                                "pending"
                            }
                            // Perhaps a reset that has not recorded its operation yet (the
                            // device was quicker): kept, and the resets with a claim on that
                            // device looked at again, so the one it belongs to takes it at once.
                            None => {
                                pushed.put(op.clone());
                                let device = op.name.split("/operations/").next().unwrap_or("");
                                for reset in claiming.get(device).into_iter().flatten() {
                                    let _ = trigger.unbounded_send(reset.clone());
                                }
                                "unknown_operation"
                            }
                        },
                        _ => "other_type",
                    };
                    debug!(message = %n.message_id, outcome, "AMAPI notification");
                    metrics.notification(outcome);
                }
                Err(malformed) => {
                    acks.push(malformed.ack_id.clone());
                    warn!(error = %malformed, "malformed AMAPI notification; acknowledged and skipped");
                    metrics.notification("malformed");
                }
            }
        }
        if let Err(e) = pubsub.acknowledge(&acks).await {
            // Not acknowledged: they come again, and duplicates change nothing.
            warn!(error = %e, "could not acknowledge AMAPI notifications");
        }
    }
}
