//! The PasscodeReset shell: asks [`decide`] what to do, does it, and asks again with the answer.
//! Every status write carries the resourceVersion it was decided on, so a stale view (an old
//! cache, a second replica) fails with a conflict instead of acting twice.

pub mod accepting;
pub mod cached;
pub mod claims;
pub mod decide;
pub mod delivery;
pub mod edges;
pub mod pushed;
pub mod record;

#[cfg(test)]
mod decide_tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::SignedDuration;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use tracing::{Instrument, info, warn};

use self::claims::{Claims, Known, Written};
use self::decide::{Config, Decision, Effect, FINALIZER, Inputs, Issued, Observed, Read, decide};
use self::edges::{Amapi, Cluster};
use super::{Context, Error};
use crate::amapi::AmapiError;
use crate::amapi::model::{Command, CommandType};
use crate::api::{PasscodeReset, Phase};
use crate::metrics::{Metrics, TransitionLabels};

/// More steps than any path needs (read device, read Secret, finalizer, record, claim, issue,
/// record the operation, and a re-read after a cancel).
const MAX_STEPS: usize = 14;

/// What one reset's reconcile works with: the two edges and this process's own state.
pub struct Shell<'a, C, A> {
    pub cluster: &'a C,
    pub amapi: &'a A,
    pub config: &'a Config,
    pub claims: &'a Claims,
    pub metrics: &'a Metrics,
    /// Completions AMAPI pushed, taken instead of polling.
    pub pushed: &'a pushed::Pushed,
    /// Where completion is pushed; told when a safety-net poll finds what a notification missed.
    pub delivery: &'a delivery::Delivery,
    /// Draws a claim's fingerprint nonce (1 to 999,999,999).
    pub nonce: &'a (dyn Fn() -> u32 + Send + Sync),
    /// Who writes a new reset's first status: this reconcile or the acceptor.
    pub accepting: &'a accepting::Accepting,
}

pub async fn reconcile(reset: Arc<PasscodeReset>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let span = tracing::info_span!(
        "reconcile",
        kind = "PasscodeReset",
        namespace = reset.namespace().unwrap_or_default(),
        name = reset.name_any()
    );
    let nonce = || fastrand::u32(1..1_000_000_000);
    // Polls are a safety net only while notifications about this enterprise's commands arrive.
    let mut config = ctx.config.clone();
    let status = reset.status.as_ref();
    let followed = status
        .and_then(|s| s.operation.as_deref())
        .or_else(|| status?.claimed_command.as_ref().map(|c| c.device.as_str()))
        .unwrap_or(&reset.spec.device);
    config.notifications = ctx.delivery.is_pushed(followed);
    let shell = Shell {
        cluster: &ctx.cluster,
        amapi: &ctx.amapi,
        config: &config,
        claims: &ctx.claims,
        metrics: &ctx.metrics,
        pushed: &ctx.pushed,
        delivery: &ctx.delivery,
        nonce: &nonce,
        accepting: &ctx.accepting,
    };
    let result = run(reset, &shell).instrument(span).await;
    ctx.metrics
        .reconciled("passcodereset", result.is_ok(), started.elapsed());
    result.map(|requeue| requeue.map_or_else(Action::await_change, Action::requeue))
}

/// Conflicts taken within one reconcile before it gives up and requeues.
const CONFLICT_ROUNDS: usize = 3;

/// One reconcile: decide, perform the effect, decide again with the answer. Returns when to
/// look again (`None`: on the next change).
///
/// A write that loses a race (a conflict: the first-status acceptor, a user's edit, another
/// replica) starts over from a fresh read at once instead of a requeue; what AMAPI and the
/// Secret answered is carried over while the spec is the same and no command went out, so a lost
/// race costs a GET, not a second `devices.get` from the quota. issueCommand's answer is carried
/// while the fresh reset still shows the claim it answers (by fingerprint), without an operation
/// and not finished: it is that claim's answer, and without it a refused command would be searched
/// for and end `OutcomeUnknown`.
pub async fn run<C: Cluster, A: Amapi>(
    reset: Arc<PasscodeReset>,
    shell: &Shell<'_, C, A>,
) -> Result<Option<Duration>, Error> {
    let mut current: PasscodeReset = (*reset).clone();
    let mut carried = (None, None);
    let mut carried_issued = None;
    let mut round = 0;
    loop {
        round += 1;
        let generation = current.metadata.generation;
        let mut inputs = Inputs {
            claim_nonce: (shell.nonce)(),
            ..Default::default()
        };
        (inputs.device, inputs.secret) = carried;
        // The state right after the send, as before the conflict: its answer in hand (so
        // never another send), to be recorded.
        inputs.issued = carried_issued.take();
        inputs.may_send = inputs.issued.is_some();
        match attempt(current.clone(), shell, &mut inputs).await {
            Err(Error::Kube(kube::Error::Api(s))) if s.is_conflict() && round < CONFLICT_ROUNDS => {
                match shell.cluster.get(&current).await? {
                    Some(fresh) if fresh.uid() == current.uid() => current = fresh,
                    _ => return Ok(None),
                }
                carried = if current.metadata.generation == generation && inputs.issued.is_none() {
                    (inputs.device.take(), inputs.secret.take())
                } else {
                    (None, None)
                };
                carried_issued = inputs
                    .issued
                    .take()
                    .filter(|_| shows_own_unrecorded_claim(shell.claims, &current));
            }
            other => return other,
        }
    }
}

/// Whether `reset` shows the claim this process wrote (same fingerprint), with no operation
/// recorded, and is not finished: an answer to issueCommand for that claim still applies.
fn shows_own_unrecorded_claim(claims: &Claims, reset: &PasscodeReset) -> bool {
    let (Known::Sent { fingerprint } | Known::Unsent { fingerprint }) = claims.known(reset) else {
        return false;
    };
    let status = reset.status.as_ref();
    status
        .and_then(|s| s.claimed_command.as_ref())
        .is_some_and(|c| c.duration == fingerprint)
        && status.is_some_and(|s| s.operation.is_none())
        && !reset.phase().is_terminal()
}

/// One pass of [`run`] over one view of the reset.
async fn attempt<C: Cluster, A: Amapi>(
    mut current: PasscodeReset,
    shell: &Shell<'_, C, A>,
    inputs: &mut Inputs,
) -> Result<Option<Duration>, Error> {
    let Shell {
        cluster,
        amapi,
        config,
        claims,
        ..
    } = *shell;
    // A claim this process wrote: when it has not sent for it, or the cache does not show it, a
    // fresh read tells where it stands (the cache may be behind; a write's answer may have been
    // lost). A landed, unsent claim may still be sent for, by this process only; a claim the
    // reset no longer holds (released, refuted, finished) is forgotten here.
    let (fingerprint, unsent) = match claims.known(&current) {
        Known::Unsent { fingerprint } => (Some(fingerprint), true),
        Known::Sent { fingerprint } => (Some(fingerprint), false),
        Known::Nothing => (None, false),
    };
    if let Some(fingerprint) = fingerprint {
        let shown = |r: &PasscodeReset| {
            r.status
                .as_ref()
                .and_then(|s| s.claimed_command.as_ref())
                .is_some_and(|c| c.duration == fingerprint)
        };
        if unsent || !shown(&current) {
            match cluster.get(&current).await? {
                Some(fresh) if fresh.uid() == current.uid() => current = fresh,
                _ => {
                    claims.end(&current);
                    return Ok(None);
                }
            }
        }
        let pending = current
            .status
            .as_ref()
            .is_some_and(|s| s.operation.is_none())
            && !current.phase().is_terminal();
        if !shown(&current) || current.phase().is_terminal() {
            claims.end(&current);
        } else if unsent && pending {
            // Confirmed: it landed, at this version.
            let rv = current.resource_version().unwrap_or_default();
            claims.written(&current, Written::Landed(rv));
            inputs.may_send = true;
        }
    }
    // A new reset's first status, before anything that may wait for AMAPI's rate limit: the
    // acceptor's if it landed (the cache may not show it yet), else written here unless the
    // acceptor is writing it right now (see `accepting`).
    if current.status.is_none() && current.metadata.deletion_timestamp.is_none() {
        let (uid, version) = (
            current.uid().unwrap_or_default(),
            current.resource_version().unwrap_or_default(),
        );
        match shell.accepting.first_status(&uid, &version) {
            accepting::FirstStatus::Landed(landed) => current = (*landed).clone(),
            accepting::FirstStatus::Write(writing) => {
                let status = decide::accepted(&current, cluster.now(), amapi.waiting());
                current = cluster.accept(&current, status).await?;
                writing.landed(&current);
            }
            accepting::FirstStatus::Busy => {}
        }
    }
    let mut last = status_key(&current);
    let policies = cluster.policies();
    inputs.admission = cluster.admission(&current);
    // Finished resets need neither the other resets nor anything else: skip the scan of the cache,
    // which would make a restart with many stored resets quadratic.
    let others = if current.phase().is_terminal() {
        Vec::new()
    } else {
        inputs.settled_operations = cluster.settled_operations(&current.spec.device);
        inputs.claimed_in_process = claims.holder(&current, |ns, n| cluster.cached(ns, n));
        inputs.scopes = cluster.scopes();
        cluster.others(&current)
    };
    for _ in 0..MAX_STEPS {
        let decision = {
            let observed = Observed {
                reset: &current,
                now: cluster.now(),
                config,
                policies: &policies,
                others: &others,
                inputs,
            };
            decide(&observed)
        };
        let Decision {
            status,
            effect,
            requeue,
        } = decision;
        let Some(effect) = effect else {
            if let Some(status) = status
                && current.status.as_ref() != Some(&status)
            {
                let before = current.status.clone().unwrap_or_default();
                current = cluster.replace_status(&current, status).await?;
                if record::nothing_sent(&before, current.status.as_ref().unwrap_or(&before)) {
                    cluster.forget(&current).await;
                }
                transitioned(shell, &current, &mut last).await;
                // A final status may leave a finalizer to drop or a Secret to delete: decide once
                // more now, since the operator's own writes do not trigger a reconcile.
                if current.phase().is_terminal()
                    && (current.finalizers().iter().any(|f| f == FINALIZER)
                        || (decide::after_end_pending(&current) && inputs.secret_deleted.is_none()))
                {
                    continue;
                }
            }
            if current.phase().is_terminal() {
                claims.end(&current);
            }
            return Ok(requeue);
        };
        match effect {
            Effect::GetDevice(name) => {
                inputs.device = Some(read(amapi.get_device(&name).await, Reading::Device));
            }
            Effect::ReadNamespace(namespace) => {
                inputs.namespace_labels = Some(cluster.namespace_labels(&namespace).await);
            }
            Effect::ReadSecret { name, key } => {
                let namespace = current.namespace().unwrap_or_default();
                inputs.secret = Some(cluster.read_secret(&namespace, &name, &key).await);
            }
            Effect::Record => {
                let now = cluster.now();
                let claimed_at = now.round(jiff::Unit::Second).unwrap_or(now).to_string();
                inputs.record = Some(cluster.record(&current, &claimed_at).await);
                crate::failpoint::hit("after-record");
            }
            Effect::Forget => {
                cluster.forget(&current).await;
                inputs.forgotten = true;
            }
            Effect::AddFinalizer => {
                current = cluster.set_finalizer(&current, true).await?;
                crate::failpoint::hit("after-finalizer");
            }
            Effect::RemoveFinalizer => {
                crate::failpoint::hit("before-finalizer-removal");
                let deleting = current.metadata.deletion_timestamp.is_some();
                current = cluster.set_finalizer(&current, false).await?;
                claims.end(&current);
                if deleting {
                    return Ok(None);
                }
                // A finished reset may still have a spec edit to note: decide once more, since
                // the operator's own writes do not trigger a reconcile.
            }
            Effect::Claim => {
                let status = status.ok_or(Error::Invariant("a claim comes with a status"))?;
                let fingerprint = status
                    .claimed_command
                    .as_ref()
                    .map(|c| c.duration.clone())
                    .ok_or(Error::Invariant("a claim names its command"))?;
                // Registered before the write: no other reset of the device may slip in, also
                // when the answer to this write is lost.
                // A reconcile from a cache that does not show this reset's own earlier claim yet
                // is refused here too: it waits for the cache instead of claiming again.
                if !claims.begin(&current, &fingerprint, |ns, n| cluster.cached(ns, n)) {
                    return Ok(Some(Duration::from_secs(2)));
                }
                match cluster.replace_status(&current, status).await {
                    Ok(updated) => {
                        let rv = updated.resource_version().unwrap_or_default();
                        claims.written(&updated, Written::Landed(rv));
                        current = updated;
                        transitioned(shell, &current, &mut last).await;
                        inputs.may_send = true;
                        inputs.issued = None;
                    }
                    // The API server answered no (a conflict, a refusal): nothing landed. A 5xx
                    // (an etcd timeout, say) does not say, like a lost answer.
                    Err(Error::Kube(kube::Error::Api(s))) if (400..500).contains(&s.code) => {
                        claims.end(&current);
                        return Err(Error::Kube(kube::Error::Api(s)));
                    }
                    Err(e) => {
                        claims.written(&current, Written::Unknown);
                        return Err(e);
                    }
                }
            }
            Effect::Release => {
                let status = status.ok_or(Error::Invariant("a release comes with a status"))?;
                current = cluster.replace_status(&current, status).await?;
                claims.end(&current);
                transitioned(shell, &current, &mut last).await;
                // Look again later, not in this loop, which would claim and release again with
                // the same answers.
                return Ok(requeue);
            }
            Effect::IssueCommand(params) => {
                let new_password = match (&inputs.secret, params.with_passcode) {
                    (Some(decide::SecretRead::Value(p, _)), true) => {
                        Some(zeroize::Zeroizing::new(p.expose().to_owned()))
                    }
                    (_, false) => None,
                    // The Secret is read in this reconcile before a claim; a claim confirmed by a
                    // fresh read was not: read it now, and decide again.
                    _ => {
                        let Some(source) = &current.spec.new_passcode else {
                            return Err(Error::Invariant("a passcode without a Secret"));
                        };
                        let claimed = current
                            .status
                            .as_ref()
                            .and_then(|s| s.claimed_command.as_ref());
                        let namespace = current.namespace().unwrap_or_default();
                        let name = claimed
                            .and_then(|c| c.secret_name.as_ref())
                            .unwrap_or(&source.secret_key_ref.name);
                        let key = &source.secret_key_ref.key;
                        // Only the Secret the claim read: one re-created since is not it.
                        let read_uid = claimed.and_then(|c| c.secret_uid.clone());
                        match cluster.read_secret(&namespace, name, key).await {
                            decide::SecretRead::Value(p, uid)
                                if read_uid.is_none() || uid == read_uid =>
                            {
                                inputs.secret = Some(decide::SecretRead::Value(p, uid));
                                continue;
                            }
                            _ => {
                                // Nothing was sent: let the claim go; the next reconcile starts over.
                                inputs.issued = Some(Issued::NotCreated(
                                    "the passcode's Secret could not be read again".into(),
                                ));
                                continue;
                            }
                        }
                    }
                };
                let command = Command {
                    type_: CommandType::ResetPassword,
                    new_password,
                    reset_password_flags: params.flags,
                    duration: Some(params.duration),
                };
                // Started within the claim's limits, so any command it creates is listed on the
                // device before the adoption window closes.
                let (start_within, attempt_timeout) = config.send_limits();
                let claimed_at = current
                    .status
                    .as_ref()
                    .and_then(|s| s.claimed_at.as_ref())
                    .map_or_else(|| cluster.now(), |t| t.0);
                let start_by =
                    claimed_at + SignedDuration::try_from(start_within).unwrap_or_default();
                claims.sending(&current);
                crate::failpoint::hit("before-issue");
                let result = amapi
                    .issue_command(&params.device, &command, start_by, attempt_timeout)
                    .await;
                drop(command);
                crate::failpoint::hit("after-issue");
                if result.as_ref().is_err_and(|e| {
                    !matches!(
                        e,
                        AmapiError::Terminal { .. } | AmapiError::Ambiguous { .. }
                    )
                }) {
                    // Certainly nothing was created: the claim is unsent again.
                    claims.not_sent(&current);
                }
                inputs.issued = Some(match result {
                    Ok(op) => Issued::Created(Box::new(op)),
                    // 4xx, or the client refused to send: no command.
                    Err(AmapiError::Terminal {
                        status, message, ..
                    }) => Issued::Refused { status, message },
                    Err(AmapiError::Ambiguous { message, .. }) => Issued::Ambiguous(message),
                    Err(e) => Issued::NotCreated(e.to_string()),
                });
                // The passcode is not needed any more.
                inputs.secret = None;
            }
            Effect::GetOperation(name) => {
                if let Some(op) = shell.pushed.take(&name) {
                    shell.delivery.arrived(&name);
                    inputs.operation = Some(Read::Found(op));
                    continue;
                }
                let status = current.status.clone().unwrap_or_default();
                let followup = decide::is_followup(cluster.now(), &status);
                if followup && !amapi.followup_allowed() {
                    inputs.poll_deferred = true;
                    continue;
                }
                let operation = read(amapi.get_operation(&name).await, Reading::Other);
                // A safety-net poll that finds the command finished with no notification about
                // it (not even one that came in during the poll): lost or late, so this
                // enterprise's commands are polled on schedule again.
                if followup
                    && shell.config.notifications
                    && matches!(&operation, Read::Found(op) if op.done)
                {
                    match shell.pushed.take(&name) {
                        Some(_) => shell.delivery.arrived(&name),
                        None => shell.delivery.missed(&name),
                    }
                }
                inputs.operation = Some(operation);
            }
            Effect::ListOperations(device) => {
                inputs.operations =
                    Some(read(amapi.list_operations(&device).await, Reading::Other));
            }
            Effect::DeleteSecret { name, uid } => {
                let namespace = current.namespace().unwrap_or_default();
                inputs.secret_deleted = Some(
                    cluster
                        .delete_secret(&namespace, &name, uid.as_deref())
                        .await,
                );
            }
            Effect::CancelOperation(name) => {
                if let Err(e) = amapi.cancel_operation(&name).await {
                    warn!(operation = %name, error = %e, "cancel failed");
                    inputs.cancel_failed = true;
                }
                inputs.cancelled = true;
                // What the cancel did is read again: the device may have won the race.
                inputs.operation = None;
            }
        }
    }
    Err(Error::Unsettled)
}

/// What was read, for how a 400 is taken.
enum Reading {
    Device,
    Other,
}

fn read<T>(result: Result<T, AmapiError>, reading: Reading) -> Read<T> {
    match result {
        Ok(v) => Read::Found(v),
        Err(e) if e.is_not_found() => Read::NotFound,
        // A 400 on devices.get: AMAPI takes the name for no device of its own. Elsewhere (an
        // expired page token, say) it is a failure to retry, not an answer.
        Err(e) if e.http_status() == Some(400) && matches!(reading, Reading::Device) => {
            Read::NotFound
        }
        Err(e) if e.is_permission_denied() => Read::Denied(e.message().to_owned()),
        Err(e) if e.http_status() == Some(501) => Read::Denied(format!(
            "AMAPI does not offer this call here (UNIMPLEMENTED): {}",
            e.message()
        )),
        Err(e) => Read::Unavailable(e.to_string()),
    }
}

fn status_key(r: &PasscodeReset) -> (Option<Phase>, Option<crate::api::Reason>) {
    r.status
        .as_ref()
        .map_or((None, None), |s| (s.phase, s.reason))
}

/// After a status write: for a transition (a new phase or reason), an Event, a metric and an
/// audit log line (never the passcode).
async fn transitioned<C: Cluster, A: Amapi>(
    shell: &Shell<'_, C, A>,
    r: &PasscodeReset,
    last: &mut (Option<Phase>, Option<crate::api::Reason>),
) {
    let now = status_key(r);
    if now == *last {
        return;
    }
    *last = now;
    let (Some(phase), Some(reason)) = now else {
        return;
    };
    let status = r.status.as_ref();
    let message = status.and_then(|s| s.message.clone()).unwrap_or_default();
    // Who asked, and who approved, are part of every record of a transition.
    let requester = status
        .and_then(|s| s.requester.as_ref())
        .map(|u| u.username.as_str());
    let approver = status
        .and_then(|s| s.approval.as_ref())
        .map(|a| a.approver.username.as_str());
    shell
        .metrics
        .reset_transitions
        .get_or_create(&TransitionLabels {
            phase: phase.as_str(),
            reason: reason.as_str(),
        })
        .inc();
    info!(
        audit = true,
        namespace = r.namespace().unwrap_or_default(),
        name = r.name_any(),
        device = %r.spec.device,
        phase = phase.as_str(),
        reason = reason.as_str(),
        operation = status.and_then(|s| s.operation.as_deref()).unwrap_or(""),
        requester = requester.unwrap_or(""),
        requester_known = requester.is_some(),
        approver = approver.unwrap_or(""),
        "passcode reset {}",
        phase.as_str().to_lowercase()
    );
    let event = Event {
        type_: if phase == Phase::Failed {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.as_str().to_owned(),
        note: Some(note(&message, requester, approver)),
        action: "Reconcile".into(),
        secondary: None,
    };
    shell.cluster.publish(r, event).await;
}

/// An Event's note: the message, then who asked (and approved); at most 1,000 characters.
fn note(message: &str, requester: Option<&str>, approver: Option<&str>) -> String {
    let mut who = match requester {
        Some(u) => format!(" Requested by {u}."),
        None => " Requester unknown.".to_owned(),
    };
    if let Some(a) = approver {
        who.push_str(&format!(" Decided by {a}."));
    }
    let who: String = who.chars().take(500).collect();
    let room = 1000 - who.chars().count();
    let mut note: String = message.chars().take(room).collect();
    note.push_str(&who);
    note
}
