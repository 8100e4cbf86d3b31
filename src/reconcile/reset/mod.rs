//! The PasscodeReset shell: asks [`decide`] what to do, does it, and asks again with the answer.
//! Every status write carries the resourceVersion it was decided on, so a stale view (an old
//! cache, a second replica) fails with a conflict instead of acting twice.

pub mod cached;
pub mod decide;
pub mod record;

#[cfg(test)]
mod decide_tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use tracing::{Instrument, info, warn};

use self::decide::{
    Decision, Effect, FINALIZER, Inputs, Issued, Observed, Read, SecretRead, decide,
};
use super::{Context, Error};
use crate::amapi::AmapiError;
use crate::amapi::model::{Command, CommandType, google_duration};
use crate::api::{PasscodeReset, PasscodeResetStatus, Phase};
use crate::metrics::TransitionLabels;
use crate::passcode::Passcode;

/// More steps than any path needs (read device, read Secret, finalizer, claim, issue, record).
const MAX_STEPS: usize = 12;

pub async fn reconcile(reset: Arc<PasscodeReset>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let span = tracing::info_span!(
        "reconcile",
        kind = "PasscodeReset",
        namespace = reset.namespace().unwrap_or_default(),
        name = reset.name_any()
    );
    let result = run(reset, &ctx).instrument(span).await;
    ctx.metrics
        .reconciled("passcodereset", result.is_ok(), started.elapsed());
    result
}

async fn run(reset: Arc<PasscodeReset>, ctx: &Context) -> Result<Action, Error> {
    let namespace = reset.namespace().unwrap_or_default();
    let api: Api<PasscodeReset> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut current: PasscodeReset = (*reset).clone();
    let mut last = status_key(&current);
    let policies = ctx.policies.state();
    // Finished resets need neither the other resets nor anything else: skip the scan of the cache,
    // which would make a restart with many stored resets quadratic.
    let others: Vec<Arc<PasscodeReset>> = if current.phase().is_terminal() {
        Vec::new()
    } else {
        ctx.resets
            .state()
            .into_iter()
            .filter(|r| r.spec.device == current.spec.device && reset_key(r) != reset_key(&current))
            .collect()
    };
    let mut inputs = Inputs {
        claimed_in_process: in_flight_other(ctx, &current),
        settled_operations: if current.phase().is_terminal() {
            Vec::new()
        } else {
            ctx.settled_operations.of(&current.spec.device)
        },
        ..Default::default()
    };
    for _ in 0..MAX_STEPS {
        let decision = {
            let observed = Observed {
                reset: &current,
                now: Timestamp::now(),
                config: &ctx.config,
                policies: &policies,
                others: &others,
                inputs: &inputs,
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
                current = write_status(&api, &current, status).await?;
                forget_if_nothing_sent(ctx, &before, &current).await;
                transitioned(ctx, &current, &mut last).await;
                // A final status may leave a finalizer to drop: decide once more now, since the
                // operator's own writes do not trigger a reconcile.
                if current.phase().is_terminal()
                    && current.finalizers().iter().any(|f| f == FINALIZER)
                {
                    continue;
                }
            }
            if current.phase().is_terminal() {
                release(ctx, &current);
            }
            return Ok(requeue.map_or_else(Action::await_change, Action::requeue));
        };
        match effect {
            Effect::GetDevice => {
                inputs.device = Some(read(ctx.amapi.get_device(&current.spec.device).await));
            }
            Effect::ReadSecret { name, key } => {
                inputs.secret = Some(read_secret(ctx, &namespace, &name, &key).await);
            }
            Effect::Record => {
                let now = Timestamp::now();
                let claimed_at = now.round(jiff::Unit::Second).unwrap_or(now).to_string();
                inputs.record = Some(
                    record::record(&ctx.client, &ctx.operator_namespace, &current, &claimed_at)
                        .await,
                );
                crate::failpoint::hit("after-record");
            }
            Effect::AddFinalizer => {
                current = set_finalizer(&api, &current, true).await?;
                crate::failpoint::hit("after-finalizer");
            }
            Effect::RemoveFinalizer => {
                crate::failpoint::hit("before-finalizer-removal");
                let _ = set_finalizer(&api, &current, false).await?;
                release(ctx, &current);
                return Ok(Action::await_change());
            }
            Effect::WriteStatus => {
                let status = status.expect("WriteStatus comes with a status");
                let claiming = status.claimed_at.is_some();
                if claiming {
                    // Registered before the write: another reset of this device must not slip in.
                    if !claim_device(ctx, &current) {
                        return Ok(Action::requeue(Duration::from_secs(2)));
                    }
                }
                let written_at = Instant::now();
                match write_status(&api, &current, status).await {
                    Ok(updated) => {
                        current = updated;
                        if claiming {
                            // This process's own claim: its instant, whatever was seen before.
                            ctx.claims_seen
                                .lock()
                                .expect("claims seen")
                                .remove(&reset_key(&current));
                            claim_seen(ctx, &current, written_at);
                        }
                        transitioned(ctx, &current, &mut last).await;
                    }
                    Err(e) => {
                        if claiming {
                            release(ctx, &current);
                        }
                        return Err(e);
                    }
                }
                if claiming {
                    inputs.claimed_here = true;
                    inputs.issued = None;
                    ctx.metrics.commands_in_flight.inc();
                } else {
                    // A released claim (nothing was sent): look again later, not in this loop,
                    // which would claim and release again with the same stale answer.
                    release(ctx, &current);
                    return Ok(requeue.map_or_else(Action::await_change, Action::requeue));
                }
            }
            Effect::IssueCommand(params) => {
                let new_password = match (&inputs.secret, params.with_passcode) {
                    (Some(SecretRead::Value(p)), true) => {
                        Some(zeroize::Zeroizing::new(p.expose().to_owned()))
                    }
                    (_, false) => None,
                    _ => {
                        return Err(Error::Other(
                            "the passcode was not read before issuing".into(),
                        ));
                    }
                };
                let command = Command {
                    type_: CommandType::ResetPassword,
                    new_password,
                    reset_password_flags: params.flags,
                    duration: Some(google_duration(params.duration_secs)),
                };
                // Sent within the claim's limits (on this process's monotonic clock, from just
                // before the claim was written), so any command it creates is listed on the device
                // before the adoption window closes.
                let (start_within, attempt_timeout) = ctx.config.send_limits();
                let start_by = claim_seen(ctx, &current, Instant::now()) + start_within;
                crate::failpoint::hit("before-issue");
                let result = ctx
                    .amapi
                    .issue_command_within(
                        &current.spec.device,
                        &command,
                        Some((start_by, attempt_timeout)),
                    )
                    .await;
                drop(command);
                crate::failpoint::hit("after-issue");
                inputs.issued = Some(match result {
                    Ok(op) => Issued::Created(Box::new(op)),
                    Err(AmapiError::Terminal {
                        status, message, ..
                    }) => Issued::Refused { status, message }, // 4xx, or the client refused to send: no command
                    Err(AmapiError::Ambiguous { message, .. }) => Issued::Ambiguous(message),
                    Err(e) => Issued::NotCreated(e.to_string()),
                });
                // The passcode is not needed any more.
                inputs.secret = None;
            }
            Effect::GetOperation(name) => {
                inputs.operation = Some(read(ctx.amapi.get_operation(&name).await));
            }
            Effect::ListOperations => {
                let seen = claim_seen(ctx, &current, Instant::now());
                inputs.claim_age_at_listing = Some(seen.elapsed());
                inputs.operations =
                    Some(read(ctx.amapi.list_operations(&current.spec.device).await));
            }
            Effect::CancelOperation(name) => {
                if let Err(e) = ctx.amapi.cancel_operation(&name).await {
                    warn!(operation = %name, error = %e, "cancel failed");
                }
                inputs.cancelled = true;
            }
        }
    }
    Err(Error::Other(
        "the decision did not settle; looking again".into(),
    ))
}

fn read<T>(result: Result<T, AmapiError>) -> Read<T> {
    match result {
        Ok(v) => Read::Found(v),
        // A 400 on a read means AMAPI takes the name for no resource of its own.
        Err(e) if e.is_not_found() || e.http_status() == Some(400) => Read::NotFound,
        Err(e) if e.is_permission_denied() => Read::Denied(e.message().to_owned()),
        Err(e) if e.http_status() == Some(501) => Read::Denied(format!(
            "AMAPI does not offer this call here (UNIMPLEMENTED): {}",
            e.message()
        )),
        Err(e) => Read::Unavailable(e.to_string()),
    }
}

/// A direct GET of one Secret: the operator may not list or watch Secrets.
async fn read_secret(ctx: &Context, namespace: &str, name: &str, key: &str) -> SecretRead {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(None) => SecretRead::Missing,
        Ok(Some(mut secret)) => {
            let Some(value) = secret.data.as_mut().and_then(|d| d.remove(key)) else {
                return SecretRead::KeyMissing;
            };
            // Drop every other key's bytes now; keep only this one, zeroized on drop.
            drop(secret);
            match Passcode::from_secret_data(value.0) {
                Ok(p) => SecretRead::Value(p),
                Err(e) => SecretRead::Invalid(e),
            }
        }
        Err(kube::Error::Api(s)) if s.is_forbidden() => SecretRead::Denied(s.message.clone()),
        Err(e) => SecretRead::Unavailable(e.to_string()),
    }
}

/// Replaces the status, conditional on the resourceVersion `current` was read at.
async fn write_status(
    api: &Api<PasscodeReset>,
    current: &PasscodeReset,
    status: PasscodeResetStatus,
) -> Result<PasscodeReset, Error> {
    let mut next = current.clone();
    next.status = Some(status);
    next.metadata.managed_fields = None;
    crate::failpoint::hit("before-status-write");
    let updated = api
        .replace_status(&current.name_any(), &PostParams::default(), &next)
        .await?;
    Ok(updated)
}

/// Adds or removes the in-flight finalizer with a JSON patch that tests the resourceVersion.
async fn set_finalizer(
    api: &Api<PasscodeReset>,
    current: &PasscodeReset,
    present: bool,
) -> Result<PasscodeReset, Error> {
    let mut finalizers: Vec<String> = current.finalizers().to_vec();
    finalizers.retain(|f| f != FINALIZER);
    if present {
        finalizers.push(FINALIZER.to_owned());
    }
    let patch = serde_json::json!({
        "metadata": {
            "resourceVersion": current.resource_version(),
            "finalizers": finalizers,
        }
    });
    Ok(api
        .patch(
            &current.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?)
}

fn reset_key(r: &PasscodeReset) -> String {
    format!("{}/{}", r.namespace().unwrap_or_default(), r.name_any())
}

fn in_flight_other(ctx: &Context, r: &PasscodeReset) -> Option<String> {
    let map = ctx.in_flight.lock().expect("in-flight map");
    map.get(&r.spec.device)
        .filter(|k| **k != reset_key(r))
        .cloned()
}

fn claim_device(ctx: &Context, r: &PasscodeReset) -> bool {
    let mut map = ctx.in_flight.lock().expect("in-flight map");
    let me = reset_key(r);
    match map.get(&r.spec.device) {
        Some(other) if *other != me => false,
        _ => {
            map.insert(r.spec.device.clone(), me);
            true
        }
    }
}

/// Removes the reset's record when its final status proves no command was created.
async fn forget_if_nothing_sent(ctx: &Context, before: &PasscodeResetStatus, r: &PasscodeReset) {
    let after = r.status.clone().unwrap_or_default();
    if record::nothing_sent(before, &after) {
        record::forget(&ctx.client, &ctx.operator_namespace, r).await;
    }
}

/// When this process wrote or first saw the claim `r` holds (on its monotonic clock): `at` the
/// first time it is asked about this claim.
fn claim_seen(ctx: &Context, r: &PasscodeReset, at: Instant) -> Instant {
    let claimed_at = r
        .status
        .as_ref()
        .and_then(|s| s.claimed_at.as_ref())
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    let mut map = ctx.claims_seen.lock().expect("claims seen");
    let entry = map
        .entry(reset_key(r))
        .or_insert_with(|| (claimed_at.clone(), at));
    if entry.0 != claimed_at {
        *entry = (claimed_at, at);
    }
    entry.1
}

fn release(ctx: &Context, r: &PasscodeReset) {
    ctx.claims_seen
        .lock()
        .expect("claims seen")
        .remove(&reset_key(r));
    let mut map = ctx.in_flight.lock().expect("in-flight map");
    if map.get(&r.spec.device) == Some(&reset_key(r)) {
        map.remove(&r.spec.device);
        ctx.metrics.commands_in_flight.dec();
    }
}

fn status_key(r: &PasscodeReset) -> (Option<Phase>, Option<crate::api::Reason>) {
    r.status
        .as_ref()
        .map_or((None, None), |s| (s.phase, s.reason))
}

/// After a status write: for a transition (a new phase or reason), an Event, a metric and an
/// audit log line (never the passcode).
async fn transitioned(
    ctx: &Context,
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
    ctx.metrics
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
        note: Some(truncate_note(&message)),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &r.object_ref(&())).await {
        warn!(error = %e, "could not publish an Event");
    }
}

fn truncate_note(message: &str) -> String {
    message.chars().take(1000).collect()
}
