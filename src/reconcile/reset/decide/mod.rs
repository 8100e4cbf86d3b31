//! The decision for one PasscodeReset: what it observes → its next status, at most one effect,
//! and when to look again. Pure: no I/O, no clock, no randomness. Reads (the device, the Secret,
//! the operation) are effects too, so the shell is a small loop that performs what this asks and
//! asks again with the answer.
//!
//! The exactly-once rule lives here. A command is issued only by the process that wrote the claim
//! (`claimedAt` and `claimedCommand`, with optimistic concurrency) and never sent one for it. The
//! claim fixes the device and the command, with a fingerprint in `Command.duration` drawn per
//! claim. A claim found without an operation in any other situation means a command may exist: the
//! claimed device's operations are searched for the fingerprint and that one command adopted.
//! A claim is released (so a new one may send) only when it is certain that nothing was created;
//! when it cannot be known, the reset ends `OutcomeUnknown`. Never a second command.
//!
//! The stages, one file each: `prepare` (spec, device, requirements, Secret, turn, record, claim),
//! with `admit` (who asked, who may, who approved) among its gates, `recover` (issue, or find what
//! a claim created), `follow` (poll, expiry, cancel), `delete`.

mod admit;
mod delete;
mod follow;
mod prepare;
mod recover;
mod secret_lifetime;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::admission::seal::{Admission, Approval};
use crate::amapi::model::{Device, Operation, ResetPasswordFlag};
use crate::api::{
    PasscodeReset, PasscodeResetScope, PasscodeResetStatus, Phase, Reason, RequirementCheck,
    WorkProfilePasscodePolicy, conditions,
};
use crate::passcode::{Passcode, PasscodeError};
use crate::reconcile::reset::record::Recorded;

pub use crate::reconcile::Config;
pub use recover::{claim_fingerprint, claimed_command, fingerprint_nanos};
pub use secret_lifetime::{after_end_pending, secret_to_delete};

/// The finalizer present only while a command may be in flight, so deleting the reset cancels it.
pub const FINALIZER: &str = "amapi.passcode-operator.io/cancel-in-flight";

/// Android 8.0: the first release where a work-profile passcode can be reset with a token.
pub const MIN_API_LEVEL: i32 = 26;

/// After `expiresAt` the command is given this long before it is declared expired, for clock skew
/// between the operator and Google.
pub const EXPIRY_GRACE: Duration = Duration::from_secs(30);

/// The answer to a read.
#[derive(Debug, Clone)]
pub enum Read<T> {
    Found(T),
    NotFound,
    /// Refused for lack of permission; the message says by whom and why.
    Denied(String),
    /// A transient failure; looking again later may work.
    Unavailable(String),
}

/// The answer to reading the passcode's Secret.
pub enum SecretRead {
    Missing,
    KeyMissing,
    Denied(String),
    Unavailable(String),
    Invalid(PasscodeError),
    /// The passcode, and the Secret's uid (recorded in the claim, so only that Secret is ever
    /// deleted).
    Value(Passcode, Option<String>),
}

/// The answer to `issueCommand`.
#[derive(Debug)]
pub enum Issued {
    Created(Box<Operation>),
    /// Certainly no command was created (429, 408, ABORTED, connection refused, no token, too
    /// late to start).
    NotCreated(String),
    /// AMAPI refused it (4xx): no command.
    Refused {
        status: u16,
        message: String,
    },
    /// It may or may not exist.
    Ambiguous(String),
}

/// What the shell has read or done so far in this reconcile.
#[derive(Default)]
pub struct Inputs {
    pub device: Option<Read<Device>>,
    pub secret: Option<SecretRead>,
    /// This process wrote the reset's current claim and has not sent a command for it, so it
    /// may send one.
    pub may_send: bool,
    pub issued: Option<Issued>,
    pub operation: Option<Read<Operation>>,
    pub operations: Option<Read<Vec<Operation>>>,
    /// A cancel was sent in this reconcile.
    pub cancelled: bool,
    /// ...and AMAPI did not take it (a transient failure).
    pub cancel_failed: bool,
    /// The record written before the claim (see `record`).
    pub record: Option<Recorded>,
    /// The run of this reset was removed from its record in this reconcile.
    pub forgotten: bool,
    /// A reset of the same device whose claim this process wrote and the cache may not show yet.
    pub claimed_in_process: Option<String>,
    /// Operations recorded by finished resets of the same device, which are no longer cached.
    pub settled_operations: Vec<String>,
    /// Drawn by the shell for a new claim's fingerprint (1 to 999,999,999 nanoseconds); also
    /// spreads follow-up polls.
    pub claim_nonce: u32,
    /// A follow-up poll was not made: the AMAPI rate is taken by fresh work or the follow-up
    /// budget is spent.
    pub poll_deferred: bool,
    /// The finished reset's Secret was deleted (or found gone), or why not.
    pub secret_deleted: Option<Result<(), String>>,
    /// The reset's admission records (requester, decision), their seals checked.
    pub admission: Admission,
    /// Every PasscodeResetScope (from the cache).
    pub scopes: Vec<std::sync::Arc<PasscodeResetScope>>,
    /// The labels of the reset's namespace, read when a scope selects namespaces by label.
    pub namespace_labels: Option<Read<std::collections::BTreeMap<String, String>>>,
}

/// Everything one decision may look at.
pub struct Observed<'a> {
    pub reset: &'a PasscodeReset,
    pub now: Timestamp,
    pub config: &'a Config,
    /// Every WorkProfilePasscodePolicy (from the cache).
    pub policies: &'a [std::sync::Arc<WorkProfilePasscodePolicy>],
    /// Other resets of the same device (from the cache).
    pub others: &'a [std::sync::Arc<PasscodeReset>],
    pub inputs: &'a Inputs,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Look at this device.
    GetDevice(String),
    /// Read this namespace's labels (for PasscodeResetScope selectors).
    ReadNamespace(String),
    ReadSecret {
        name: String,
        key: String,
    },
    /// Add this reset's run to the record of its name, or find the earlier one there.
    Record,
    /// Remove this reset's run from its record: it is deleted before any claim.
    Forget,
    AddFinalizer,
    RemoveFinalizer,
    /// Write `Decision::status`, which holds a new claim, with the observed resourceVersion as a
    /// precondition; then decide again.
    Claim,
    /// Write `Decision::status`, which drops a claim that certainly sent nothing, with the
    /// observed resourceVersion as a precondition.
    Release,
    /// Send the claimed command (the shell adds the passcode from the Secret it read).
    IssueCommand(CommandParams),
    GetOperation(String),
    /// List the operations of this device.
    ListOperations(String),
    CancelOperation(String),
    /// Delete the passcode's Secret (in the reset's namespace), on condition that it is still the
    /// one with `uid` when known: the reset is final (or deleted after its command went out) and
    /// asked for it.
    DeleteSecret {
        name: String,
        uid: Option<String>,
    },
}

/// The RESET_PASSWORD command a claim stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandParams {
    pub device: String,
    pub flags: Vec<ResetPasswordFlag>,
    /// `Command.duration`, with the claim's fingerprint.
    pub duration: String,
    pub with_passcode: bool,
}

#[derive(Debug, Default)]
pub struct Decision {
    /// The next status; written (with the resourceVersion precondition) when it differs.
    pub status: Option<PasscodeResetStatus>,
    pub effect: Option<Effect>,
    /// Look again after this long.
    pub requeue: Option<Duration>,
}

impl Decision {
    fn effect(effect: Effect) -> Self {
        Decision {
            effect: Some(effect),
            ..Default::default()
        }
    }
}

/// The decision. See the module documentation.
pub fn decide(o: &Observed) -> Decision {
    let reset = o.reset;
    let status = reset.status.clone().unwrap_or_default();
    let generation = reset.metadata.generation;
    let has_finalizer = reset
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER));
    let claimed = status.claimed_at.is_some();
    let phase = status.phase.unwrap_or(Phase::Pending);

    if reset.metadata.deletion_timestamp.is_some() {
        return delete::on_delete(o, &status, has_finalizer);
    }

    if phase.is_terminal() {
        // Final: never another AMAPI call.
        if has_finalizer {
            // The Secret goes first: a reset deleted once its finalizer is gone would leave it.
            return secret_lifetime::after_finished(o, &status)
                .unwrap_or_else(|| Decision::effect(Effect::RemoveFinalizer));
        }
        if status.observed_generation != generation {
            let note = "The spec was changed after the reset ended; the change was ignored. Create a new PasscodeReset to act again.";
            let mut next = status.clone();
            next.observed_generation = generation;
            let message = status.message.clone().unwrap_or_default();
            if !message.contains(note) {
                next.message = Some(format!("{message} {note}").trim().to_owned());
            }
            return Decision {
                status: Some(next),
                ..Default::default()
            };
        }
        return secret_lifetime::after_finished(o, &status).unwrap_or_default();
    }

    if claimed {
        return follow::follow(o, &status);
    }
    prepare::prepare(o, &status, has_finalizer)
}

fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{} s", d.as_secs_f64().ceil())
    }
}

fn key(r: &PasscodeReset) -> String {
    format!(
        "{}/{}",
        r.metadata.namespace.as_deref().unwrap_or(""),
        r.metadata.name.as_deref().unwrap_or("")
    )
}

/// The first status of a new reset, written on sight before any AMAPI call (so nothing a user
/// applies stays without a status, however long AMAPI's rate limit makes the queue).
pub fn accepted(reset: &PasscodeReset, now: Timestamp, waiting: usize) -> PasscodeResetStatus {
    let (inputs, config) = (Inputs::default(), Config::default());
    let o = Observed {
        reset,
        now,
        config: &config,
        policies: &[],
        others: &[],
        inputs: &inputs,
    };
    let message = match waiting {
        0 => "Accepted; looking at the device.".to_owned(),
        n => format!(
            "Accepted; waiting for the AMAPI rate limit to look at the device ({n} calls ahead)."
        ),
    };
    transition(
        &o,
        &PasscodeResetStatus::default(),
        Reason::Validating,
        message,
        None,
    )
    .status
    .unwrap_or_default()
}

/// Polls in the first seconds after issuing move a reset forward (an online device answers
/// then); later ones are follow-ups of a pending command, made within their share of the AMAPI
/// rate and never ahead of fresh work.
pub const FRESH_POLLS: Duration = Duration::from_secs(10);

/// Whether the next poll of the reset's operation is a follow-up. Not once the command is past
/// its expiry and grace: that poll decides how the reset ends, so it never waits for a budget.
pub fn is_followup(now: Timestamp, status: &PasscodeResetStatus) -> bool {
    let expired = status
        .expires_at
        .as_ref()
        .is_some_and(|t| now >= t.0 + SignedDuration::try_from(EXPIRY_GRACE).unwrap_or_default());
    !expired
        && status
            .issued_at
            .as_ref()
            .is_some_and(|t| now.duration_since(t.0).as_secs() >= FRESH_POLLS.as_secs() as i64)
}

/// Polling: fast while a device typically answers (from every 0.5 s, half the time since issuing,
/// for 10 s), then every 5 s to a minute, 30 s to five, a minute to ten, and then every 5 minutes
/// (12 calls an hour). Never past expiry.
pub fn poll_interval(now: Timestamp, status: &PasscodeResetStatus) -> Duration {
    poll_interval_with(now, status, false)
}

/// How long a lost notification can go unnoticed once completion is pushed: 1.5 polls an hour.
pub const SAFETY_NET: Duration = Duration::from_secs(40 * 60);

/// [`poll_interval`], knowing whether completion is pushed (notifications are known to arrive):
/// then polls are only a safety net for a lost notification: at 30 s (a device that acted at once
/// is found then), then every [`SAFETY_NET`].
pub fn poll_interval_with(now: Timestamp, status: &PasscodeResetStatus, pushed: bool) -> Duration {
    let since_ms = status
        .issued_at
        .as_ref()
        .map(|t| now.duration_since(t.0).as_millis().max(0) as u64)
        .unwrap_or(0);
    let until = |secs: u64| Duration::from_millis((secs * 1000).saturating_sub(since_ms).max(500));
    let base = match (pushed, since_ms / 1000) {
        (true, 0..30) => until(30),
        (true, _) => SAFETY_NET,
        // Half the time since issuing, at least 0.5 s: about 8 polls in the first 10 s, soon
        // after an online device acts, without spending the quota on an offline one.
        (false, 0..10) => Duration::from_millis((since_ms / 2).max(500)),
        (false, 10..60) => Duration::from_secs(5),
        (false, 60..300) => Duration::from_secs(30),
        (false, 300..600) => Duration::from_secs(60),
        (false, _) => Duration::from_secs(300),
    };
    match &status.expires_at {
        Some(t) => {
            let until = t.0 + SignedDuration::try_from(EXPIRY_GRACE).unwrap_or_default();
            let left = until.duration_since(now).as_millis().max(0) as u64;
            base.min(Duration::from_millis(left + 100))
        }
        None => base,
    }
}

/// Waiting for a Secret: look again soon at first (GitOps tools create it within seconds), then
/// back off.
pub fn secret_backoff(age: Duration) -> Duration {
    match age.as_secs() {
        0..10 => Duration::from_secs(1),
        10..60 => Duration::from_secs(5),
        60..600 => Duration::from_secs(30),
        _ => Duration::from_secs(120),
    }
}

fn age(o: &Observed) -> Duration {
    o.reset
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| Duration::from_secs(o.now.duration_since(t.0).as_secs().max(0) as u64))
        .unwrap_or_default()
}

fn waiting_for_secret(o: &Observed, status: &PasscodeResetStatus, message: String) -> Decision {
    let mut d = transition(o, status, Reason::WaitingForSecret, message, None);
    d.requeue = Some(secret_backoff(age(o)));
    d
}

fn retrying(o: &Observed, status: &PasscodeResetStatus, message: String) -> Decision {
    let mut d = transition(o, status, Reason::Retrying, message, None);
    d.requeue = Some(secret_backoff(age(o)).max(Duration::from_secs(2)));
    d
}

fn finish(
    o: &Observed,
    status: &PasscodeResetStatus,
    reason: Reason,
    message: String,
    spec_changed: bool,
) -> Decision {
    if spec_changed {
        let device = status
            .claimed_command
            .as_ref()
            .map_or(o.reset.spec.device.as_str(), |c| c.device.as_str());
        return transition(
            o,
            status,
            Reason::SpecChanged,
            format!(
                "The spec changed after the reset was claimed; the change was not acted on and no other command was sent. The claimed command to {device} ended: {message}"
            ),
            None,
        );
    }
    transition(o, status, reason, message, None)
}

/// Whether the spec changed since the claim (possible on API servers without CEL).
fn spec_changed(o: &Observed, status: &PasscodeResetStatus) -> bool {
    status.observed_generation != o.reset.metadata.generation
}

/// The next status for `reason`, keeping what the status already records.
fn transition(
    o: &Observed,
    status: &PasscodeResetStatus,
    reason: Reason,
    message: String,
    checklist: Option<Vec<RequirementCheck>>,
) -> Decision {
    let phase = reason.phase();
    let now = Time(o.now);
    let mut next = status.clone();
    // Before the claim the status describes the current spec; after it, the spec that was acted on.
    if status.claimed_at.is_none() || phase.is_terminal() {
        next.observed_generation = o.reset.metadata.generation;
    }
    let same = next.phase == Some(phase)
        && next.reason == Some(reason)
        && next.message.as_deref() == Some(message.as_str());
    if !same {
        next.conditions = conditions::for_phase(
            &status.conditions,
            phase,
            reason.as_str(),
            &message,
            next.observed_generation,
            &now,
        );
    }
    next.phase = Some(phase);
    next.reason = Some(reason);
    next.message = Some(message);
    // The records only the webhook writes, as their seals hold (never what a status says).
    next.requester = admit::verified_requester(o).cloned();
    match &o.inputs.admission.approval {
        Approval::Decided(d) => next.approval = Some(d.clone()),
        _ if status.claimed_at.is_none() => next.approval = None,
        _ => {}
    }
    if let Some(c) = checklist {
        next.requirements = c;
    }
    if phase.is_terminal() && next.completed_at.is_none() {
        next.completed_at = Some(now);
    }
    Decision {
        status: Some(next),
        ..Default::default()
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}
