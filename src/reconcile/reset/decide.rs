//! The decision for one PasscodeReset: what it observes → its next status, at most one effect,
//! and when to look again. Pure: no I/O, no clock, no randomness. Reads (the device, the Secret,
//! the operation) are effects too, so the shell is a small loop that performs what this asks and
//! asks again with the answer.
//!
//! The exactly-once rule lives here. A command is issued only right after this process wrote the
//! claim (`claimedAt`) with optimistic concurrency, in the same reconcile. A claim found without an
//! operation in any other situation means a command may already exist: the device's operations
//! are searched and the one match adopted. With none listed, the claim waits out its adoption
//! window (every command it could have created is listed by then) and is then released, so a new
//! claim sends the command. With several look-alikes, or no list, the reset ends `OutcomeUnknown`.
//! Never a second command.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::amapi::model::{
    CommandErrorCode, CommandType, Device, DeviceState, ManagementMode, Operation,
    OperationOutcome, ResetPasswordFlag, parse_google_duration, rpc_code,
};
use crate::api::validation::{
    DEFAULT_EXPIRES_AFTER_SECS, MAX_EXPIRES_AFTER_SECS, MIN_EXPIRES_AFTER_SECS, device_enterprise,
    parse_duration_secs,
};
use crate::api::{
    DeviceSnapshot, PasscodeReset, PasscodeResetStatus, Phase, Reason, RequirementCheck,
    WorkProfilePasscodePolicy, conditions,
};
use crate::passcode::{Passcode, PasscodeError, judge};
use crate::reconcile::govern::governed;
use crate::reconcile::reset::record::Recorded;

/// The finalizer present only while a command may be in flight, so deleting the reset cancels it.
pub const FINALIZER: &str = "amapi.passcode-operator.io/cancel-in-flight";

/// Android 8.0: the first release where a work-profile passcode can be reset with a token.
pub const MIN_API_LEVEL: i32 = 26;

/// After `expiresAt` the command is given this long before it is declared expired, for clock skew
/// between the operator and Google.
pub const EXPIRY_GRACE: Duration = Duration::from_secs(30);

/// A command created this long before its claim may still be the claim's (clock skew between the
/// operator and Google).
const ADOPTION_WINDOW_BEFORE: Duration = Duration::from_secs(30);

/// The default [`Config::adoption_window`].
pub const DEFAULT_ADOPTION_WINDOW: Duration = Duration::from_secs(180);

/// What the operator may act on.
#[derive(Clone, Debug)]
pub struct Config {
    /// Enterprise ids (`LC01abc`) the operator may act on; empty means any.
    pub enterprises: Vec<String>,
    /// Every command a claim can create exists within this long after the claim: the shell starts
    /// no issueCommand attempt after a third of it and gives each attempt at most a third (see
    /// [`Config::send_limits`]), which leaves a third for Google to finish. So once this process
    /// has known a claim for a whole window (by its own monotonic clock, which never runs ahead of
    /// real time since the claim), a claim with no command on the device sent nothing.
    pub adoption_window: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enterprises: Vec::new(),
            adoption_window: DEFAULT_ADOPTION_WINDOW,
        }
    }
}

impl Config {
    pub fn allows(&self, enterprise: &str) -> bool {
        self.enterprises.is_empty() || self.enterprises.iter().any(|e| e == enterprise)
    }

    /// For the command of a claim: how long after the claim an attempt may still start, and the
    /// longest an attempt may take.
    pub fn send_limits(&self) -> (Duration, Duration) {
        let third = self.adoption_window / 3;
        (third, third)
    }
}

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
    Value(Passcode),
}

/// The answer to `issueCommand`.
#[derive(Debug)]
pub enum Issued {
    Created(Box<Operation>),
    /// Certainly no command was created (429, connection refused, no token).
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
    /// This reconcile wrote the claim itself, so nothing has been sent yet.
    pub claimed_here: bool,
    pub issued: Option<Issued>,
    pub operation: Option<Read<Operation>>,
    pub operations: Option<Read<Vec<Operation>>>,
    /// A cancel was sent in this reconcile.
    pub cancelled: bool,
    /// The record written before the claim (see `record`).
    pub record: Option<Recorded>,
    /// A reset of the same device this process claimed and has not finished (fresher than the
    /// cache).
    pub claimed_in_process: Option<String>,
    /// How long this process had known the claim (its own monotonic clock, from when it wrote or
    /// first saw it) when it asked for the device's operations.
    pub claim_age_at_listing: Option<Duration>,
    /// Operations recorded by finished resets of the same device, which are no longer cached.
    pub settled_operations: Vec<String>,
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
    GetDevice,
    ReadSecret {
        name: String,
        key: String,
    },
    /// Write this reset's record in the operator's namespace, or find the earlier one there.
    Record,
    AddFinalizer,
    RemoveFinalizer,
    /// Write `Decision::status` with the observed resourceVersion as a precondition, then decide
    /// again. Used for the claim and for releasing a claim that certainly sent nothing.
    WriteStatus,
    /// Send the command (the shell adds the passcode from the Secret it read).
    IssueCommand(CommandParams),
    GetOperation(String),
    ListOperations,
    CancelOperation(String),
}

/// The parts of the RESET_PASSWORD command the spec decides.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandParams {
    pub flags: Vec<ResetPasswordFlag>,
    pub duration_secs: u64,
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
        return on_delete(o, &status, has_finalizer);
    }

    if phase.is_terminal() {
        // Final: never another AMAPI call.
        if has_finalizer {
            return Decision::effect(Effect::RemoveFinalizer);
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
        return Decision::default();
    }

    if claimed {
        return follow(o, &status);
    }
    prepare(o, &status, has_finalizer)
}

/// Before the claim: check everything, then claim.
fn prepare(o: &Observed, status: &PasscodeResetStatus, has_finalizer: bool) -> Decision {
    let spec = &o.reset.spec;
    let fail = |reason: Reason, message: String| transition(o, status, reason, message, None);

    // The spec, again: API servers without the schema or CEL let anything through.
    let Some(enterprise) = device_enterprise(&spec.device) else {
        return fail(
            Reason::SpecInvalid,
            format!(
                "spec.device {:?} is not an AMAPI device name (enterprises/ENTERPRISE/devices/DEVICE).",
                truncate(&spec.device, 80)
            ),
        );
    };
    if !o.config.allows(enterprise) {
        return fail(
            Reason::EnterpriseNotAllowed,
            format!(
                "This operator is not configured to act on enterprise {enterprise}; it may act on {}.",
                o.config.enterprises.join(", ")
            ),
        );
    }
    if let Some(text) = &spec.expires_after {
        match parse_duration_secs(text) {
            Some(s) if (MIN_EXPIRES_AFTER_SECS..=MAX_EXPIRES_AFTER_SECS).contains(&s) => {}
            _ => {
                return fail(
                    Reason::SpecInvalid,
                    format!(
                        "spec.expiresAfter {:?} must be a duration like 10m or 1h30m, between 1m and 168h.",
                        truncate(text, 40)
                    ),
                );
            }
        }
    }
    if spec.require_entry && spec.new_passcode.is_none() {
        return fail(
            Reason::SpecInvalid,
            "spec.requireEntry needs spec.newPasscode: there is nothing to enter after clearing the passcode.".into(),
        );
    }

    // The device.
    let Some(device) = &o.inputs.device else {
        return Decision::effect(Effect::GetDevice);
    };
    let device = match device {
        Read::Found(d) => d,
        Read::NotFound => {
            return fail(
                Reason::DeviceNotFound,
                format!(
                    "AMAPI has no device {}: check the name in the EMM console; a deleted device cannot be reset.",
                    spec.device
                ),
            );
        }
        Read::Denied(m) => {
            return fail(
                Reason::PermissionDenied,
                format!("AMAPI refused to show device {}: {m}", spec.device),
            );
        }
        Read::Unavailable(m) => {
            return retrying(o, status, format!("Could not look at the device: {m}"));
        }
    };
    let snapshot = snapshot(device);
    let with_device =
        |reason: Reason, message: String, checklist: Option<Vec<RequirementCheck>>| {
            let mut d = transition(o, status, reason, message, checklist);
            if let Some(s) = d.status.as_mut() {
                s.device = Some(snapshot.clone());
            }
            d
        };
    if device.state != Some(DeviceState::Active) {
        let state = device.state.as_ref().map_or("unknown", |s| s.as_str());
        return with_device(
            Reason::DeviceNotActive,
            format!("The device is {state}, not ACTIVE; only active devices can be reset."),
            None,
        );
    }
    let work_profile = match &device.management_mode {
        Some(ManagementMode::ProfileOwner) => true,
        Some(ManagementMode::DeviceOwner) => false,
        other => {
            let mode = other.as_ref().map_or("unknown", |m| m.as_str());
            return with_device(
                Reason::ManagementModeUnsupported,
                format!(
                    "The device's management mode is {mode}; only work profiles (PROFILE_OWNER) and fully managed devices (DEVICE_OWNER) can be reset."
                ),
                None,
            );
        }
    };
    let api_level = device.api_level.unwrap_or(0);
    if api_level < MIN_API_LEVEL {
        return with_device(
            Reason::ApiLevelUnsupported,
            format!(
                "The device runs API level {api_level}; passcode reset needs Android 8.0 (API level 26) or later."
            ),
            None,
        );
    }
    let what = if work_profile {
        "work-profile passcode"
    } else {
        "device passcode"
    };

    // The requirements and the passcode.
    let governed = governed(device, o.policies);
    let policy_names = (!governed.policies.is_empty()).then(|| governed.policies.join(","));
    let api = u32::try_from(api_level).ok();
    let checklist = match &spec.new_passcode {
        None => {
            let verdict = judge(None, &governed.governing, api);
            let checks = checks(&verdict.requirements);
            if !verdict.passes {
                let mut d = with_device(
                    Reason::PasscodeRequired,
                    format!(
                        "A passcode policy applies to this device ({}), so its {what} cannot be cleared; give spec.newPasscode.",
                        governed_by(&governed.policies, governed.device_reported)
                    ),
                    Some(checks),
                );
                set_policy(&mut d, &policy_names);
                return d;
            }
            checks
        }
        Some(source) => {
            let Some(secret) = &o.inputs.secret else {
                return Decision::effect(Effect::ReadSecret {
                    name: source.secret_key_ref.name.clone(),
                    key: source.secret_key_ref.key.clone(),
                });
            };
            let (name, key) = (&source.secret_key_ref.name, &source.secret_key_ref.key);
            let passcode = match secret {
                SecretRead::Value(p) => p,
                SecretRead::Missing => {
                    return waiting_for_secret(
                        o,
                        status,
                        format!(
                            "Waiting for Secret {name} (with key {key}) to exist in this namespace."
                        ),
                    );
                }
                SecretRead::KeyMissing => {
                    return waiting_for_secret(
                        o,
                        status,
                        format!("Secret {name} has no key {key}; waiting for it."),
                    );
                }
                SecretRead::Denied(m) => {
                    return retrying(
                        o,
                        status,
                        format!(
                            "The operator may not read Secret {name}: {m}. Check its RBAC (get on secrets)."
                        ),
                    );
                }
                SecretRead::Unavailable(m) => {
                    return retrying(o, status, format!("Could not read Secret {name}: {m}"));
                }
                SecretRead::Invalid(e) => {
                    return with_device(
                        Reason::SecretInvalid,
                        format!("Key {key} of Secret {name} cannot be a passcode: {e}."),
                        None,
                    );
                }
            };
            let verdict = judge(Some(passcode.as_bytes()), &governed.governing, api);
            let checks = checks(&verdict.requirements);
            if !verdict.passes {
                let unmet: Vec<&str> = verdict
                    .requirements
                    .iter()
                    .filter(|c| !c.met)
                    .map(|c| c.description.as_str())
                    .collect();
                let mut d = with_device(
                    Reason::PasscodeInvalid,
                    format!(
                        "The new passcode does not meet: {}. See status.requirements.",
                        unmet.join("; ")
                    ),
                    Some(checks),
                );
                set_policy(&mut d, &policy_names);
                return d;
            }
            checks
        }
    };

    // One command per device at a time, oldest first.
    if let Some(other) = turn_of_other(o) {
        let mut d = with_device(
            Reason::WaitingForDevice,
            format!("Reset {other} of the same device goes first; this one follows when it ends."),
            Some(checklist),
        );
        set_policy(&mut d, &policy_names);
        d.requeue = Some(Duration::from_secs(5));
        return d;
    }

    // Recorded before the claim, so a deleted and re-created twin never claims.
    match &o.inputs.record {
        None => return Decision::effect(Effect::Record),
        Some(Recorded::Ours) => {}
        Some(Recorded::Earlier {
            uid,
            claimed_at,
            record,
        }) => {
            let reset = format!(
                "{}/{}",
                o.reset.metadata.namespace.as_deref().unwrap_or(""),
                o.reset.metadata.name.as_deref().unwrap_or("")
            );
            let (record_namespace, record_name) = record.split_once('/').unwrap_or(("", record));
            return with_device(
                Reason::Recreated,
                format!(
                    "PasscodeReset {reset} was already acted on: an earlier object with this name and spec (uid {uid}) set out to send its command to the device at {claimed_at} and was then deleted. This one re-creates it (as GitOps self-heal does), so it does not run again. To reset the {what} again, create a PasscodeReset with a new name; to let this name run once more, delete ConfigMap {record_name} in namespace {record_namespace}."
                ),
                Some(checklist),
            );
        }
        Some(Recorded::Unavailable(m)) => {
            return retrying(o, status, format!("Could not record the reset: {m}."));
        }
    }

    if !has_finalizer {
        return Decision::effect(Effect::AddFinalizer);
    }

    // Claim, then act.
    let mut claim = with_device(
        Reason::Issuing,
        format!("Issuing the command to reset the {what}."),
        Some(checklist),
    );
    set_policy(&mut claim, &policy_names);
    if let Some(s) = claim.status.as_mut() {
        s.claimed_at = Some(Time(o.now));
    }
    claim.effect = Some(Effect::WriteStatus);
    claim
}

/// After the claim: issue (only right after our own claim), recover, or follow the operation.
fn follow(o: &Observed, status: &PasscodeResetStatus) -> Decision {
    let spec = &o.reset.spec;
    let spec_changed = status.observed_generation != o.reset.metadata.generation;
    let Some(operation_name) = status.operation.clone() else {
        return issue_or_recover(o, status);
    };

    let Some(read) = &o.inputs.operation else {
        return Decision::effect(Effect::GetOperation(operation_name));
    };
    let operation = match read {
        Read::Found(op) => op,
        Read::NotFound => {
            return finish(
                o,
                status,
                Reason::OutcomeUnknown,
                format!(
                    "AMAPI no longer knows operation {operation_name}, so whether the device acted cannot be told. Check the device before creating a new PasscodeReset."
                ),
                spec_changed,
            );
        }
        Read::Denied(m) => {
            return finish(
                o,
                status,
                Reason::PermissionDenied,
                format!("AMAPI refused to show the operation: {m}"),
                spec_changed,
            );
        }
        Read::Unavailable(m) => {
            let mut d = transition(
                o,
                status,
                Reason::AwaitingDevice,
                format!("Command issued; could not check on it just now ({m}); looking again."),
                None,
            );
            d.requeue = Some(poll_interval(o.now, status));
            return d;
        }
    };
    match operation.outcome() {
        OperationOutcome::Pending => {
            if past_expiry(o.now, status) {
                if o.inputs.cancelled {
                    return finish(
                        o,
                        status,
                        Reason::CommandExpired,
                        expired_message(status),
                        spec_changed,
                    );
                }
                return Decision::effect(Effect::CancelOperation(operation_name));
            }
            let mut d = transition(
                o,
                status,
                Reason::AwaitingDevice,
                "Command issued; waiting for the device to sync and carry it out.".into(),
                None,
            );
            d.requeue = Some(poll_interval(o.now, status));
            d
        }
        OperationOutcome::Succeeded => {
            let (reason, message) = if spec.new_passcode.is_some() {
                let lock = if spec.lock_now { " and locked" } else { "" };
                (
                    Reason::PasscodeReset,
                    format!("The device set the new passcode{lock}."),
                )
            } else {
                (
                    Reason::PasscodeCleared,
                    "The device cleared its passcode.".to_owned(),
                )
            };
            finish(o, status, reason, message, spec_changed)
        }
        OperationOutcome::CommandError(code) => {
            // The device's state explains a refusal (reset token, history): look at it first.
            if o.inputs.device.is_none() {
                return Decision::effect(Effect::GetDevice);
            }
            let (reason, message) = command_error(&code, o);
            finish(o, status, reason, message, spec_changed)
        }
        OperationOutcome::Cancelled => finish(
            o,
            status,
            Reason::CommandCancelled,
            "The command was cancelled before the device acted; the passcode was not changed."
                .into(),
            spec_changed,
        ),
        OperationOutcome::Failed { code, .. } if code == rpc_code::DEADLINE_EXCEEDED => finish(
            o,
            status,
            Reason::CommandExpired,
            expired_message(status),
            spec_changed,
        ),
        OperationOutcome::Failed { code, message } => finish(
            o,
            status,
            Reason::DeviceRejected,
            format!("The command failed (code {code}): {message}"),
            spec_changed,
        ),
    }
}

/// Claimed, no operation recorded.
fn issue_or_recover(o: &Observed, status: &PasscodeResetStatus) -> Decision {
    let spec = &o.reset.spec;
    if o.inputs.claimed_here {
        let Some(issued) = &o.inputs.issued else {
            let mut flags = Vec::new();
            if spec.require_entry {
                flags.push(ResetPasswordFlag::RequireEntry);
            }
            if spec.lock_now {
                flags.push(ResetPasswordFlag::LockNow);
            }
            let duration_secs = spec
                .expires_after
                .as_deref()
                .and_then(parse_duration_secs)
                .unwrap_or(DEFAULT_EXPIRES_AFTER_SECS);
            return Decision::effect(Effect::IssueCommand(CommandParams {
                flags,
                duration_secs,
                with_passcode: spec.new_passcode.is_some(),
            }));
        };
        match issued {
            Issued::Created(op) => {
                return adopt(
                    o,
                    status,
                    op,
                    "Command issued; waiting for the device to sync and carry it out.",
                );
            }
            Issued::NotCreated(m) => {
                // Certain that nothing was sent: release the claim and try again later.
                let mut d = transition(
                    o,
                    status,
                    Reason::Retrying,
                    format!("AMAPI did not take the command ({m}); trying again."),
                    None,
                );
                if let Some(s) = d.status.as_mut() {
                    s.claimed_at = None;
                }
                d.effect = Some(Effect::WriteStatus);
                d.requeue = Some(Duration::from_secs(5));
                return d;
            }
            Issued::Refused {
                status: code,
                message,
            } => {
                let reason = match code {
                    403 | 401 => Reason::PermissionDenied,
                    404 => Reason::DeviceNotFound,
                    _ => Reason::DeviceRejected,
                };
                return finish(
                    o,
                    status,
                    reason,
                    format!("AMAPI refused the command (HTTP {code}): {message}"),
                    false,
                );
            }
            Issued::Ambiguous(_) => {} // fall through to recovery
        }
    }

    // Recovery: a command may exist. Find it among the device's operations.
    let Some(read) = &o.inputs.operations else {
        return Decision::effect(Effect::ListOperations);
    };
    let unknown = |detail: String| {
        finish(
            o,
            status,
            Reason::OutcomeUnknown,
            format!(
                "{detail} The operator will not send a second command. Check the device; if its passcode was not changed, create a new PasscodeReset."
            ),
            false,
        )
    };
    let operations = match read {
        Read::Found(ops) => ops,
        Read::Unavailable(m) => {
            let mut d = transition(
                o,
                status,
                Reason::Issuing,
                format!(
                    "Checking whether the command reached AMAPI; could not list the device's operations ({m})."
                ),
                None,
            );
            d.requeue = Some(Duration::from_secs(5));
            return d;
        }
        Read::NotFound | Read::Denied(_) => {
            return unknown("The command may have been sent, and the device's operations cannot be listed to tell.".into());
        }
    };
    let claimed_at = status.claimed_at.as_ref().map(|t| t.0).unwrap_or(o.now);
    let taken: Vec<&str> = o
        .others
        .iter()
        .filter_map(|r| r.status.as_ref()?.operation.as_deref())
        .chain(o.inputs.settled_operations.iter().map(String::as_str))
        .collect();
    let candidates: Vec<&Operation> = operations
        .iter()
        .filter(|op| !taken.contains(&op.name.as_str()))
        .filter(|op| matches_claim(op, spec, claimed_at, o.config.adoption_window))
        .collect();
    match candidates.as_slice() {
        [op] => adopt(
            o,
            status,
            op,
            "Found the command sent before the operator restarted; following it.",
        ),
        [] => nothing_listed(o, status, operations, claimed_at),
        _ => unknown(format!(
            "{} commands on the device could be this reset's, so it cannot be told which.",
            candidates.len()
        )),
    }
}

/// How far Google's clock may be from the operator's, for deciding that no command on the device
/// could be this reset's.
const CLOCK_SKEW: Duration = Duration::from_secs(600);

/// A claim with no matching command on the device. Until this process has known the claim for a
/// whole adoption window a command may still appear. After it, with no passcode reset command at
/// all on the device since shortly before the reset was created (whoever's, whatever its flags),
/// none was created: the claim is released and a new claim sends the command. Any such command
/// leaves it open, so the reset ends OutcomeUnknown.
fn nothing_listed(
    o: &Observed,
    status: &PasscodeResetStatus,
    operations: &[Operation],
    claimed_at: Timestamp,
) -> Decision {
    let window = o.config.adoption_window;
    let age = o.inputs.claim_age_at_listing.unwrap_or_default();
    if age < window {
        let left = window - age;
        let mut d = transition(
            o,
            status,
            Reason::Issuing,
            format!(
                "It is not known yet whether AMAPI created the command: none is listed on the device so far. Looking again in {}; if none is listed by then, nothing was sent and the command is issued again.",
                humanize(left)
            ),
            None,
        );
        d.requeue = Some(left + Duration::from_millis(500));
        return d;
    }
    let created = o.reset.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let floor = created.map_or(claimed_at, |c| c.min(claimed_at))
        - SignedDuration::try_from(CLOCK_SKEW).unwrap_or_default();
    let nearby = operations
        .iter()
        .filter(|op| {
            // An operation that does not say what it is could be anything: it counts.
            let Some(meta) = &op.metadata else {
                return true;
            };
            let created = meta
                .create_time
                .as_deref()
                .and_then(|t| t.parse::<Timestamp>().ok());
            meta.type_ == Some(CommandType::ResetPassword) && created.is_none_or(|c| c >= floor)
        })
        .count();
    if nearby > 0 {
        return finish(
            o,
            status,
            Reason::OutcomeUnknown,
            format!(
                "No command on the device matches this reset, but {nearby} other passcode reset command(s) reached it around the time of the claim, so it cannot be told that none was sent. The operator will not send a second command. Check the device; if its passcode was not changed, create a new PasscodeReset."
            ),
            false,
        );
    }
    let mut d = transition(
        o,
        status,
        Reason::Retrying,
        format!(
            "No command from the claim at {} reached the device in the {} since, so none was created; issuing it again.",
            claimed_at,
            humanize(window)
        ),
        None,
    );
    if let Some(s) = d.status.as_mut() {
        s.claimed_at = None;
    }
    d.effect = Some(Effect::WriteStatus);
    d.requeue = Some(Duration::from_secs(1));
    d
}

fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{} s", d.as_secs_f64().ceil())
    }
}

fn matches_claim(
    op: &Operation,
    spec: &crate::api::PasscodeResetSpec,
    claimed_at: Timestamp,
    window: Duration,
) -> bool {
    let Some(meta) = &op.metadata else {
        return false;
    };
    if meta.type_ != Some(CommandType::ResetPassword) {
        return false;
    }
    let Some(created) = meta
        .create_time
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok())
    else {
        return false;
    };
    let from = claimed_at - SignedDuration::try_from(ADOPTION_WINDOW_BEFORE).unwrap_or_default();
    let to = claimed_at + SignedDuration::try_from(window).unwrap_or_default();
    let flags_match = meta
        .reset_password_flags
        .contains(&ResetPasswordFlag::LockNow)
        == spec.lock_now
        && meta
            .reset_password_flags
            .contains(&ResetPasswordFlag::RequireEntry)
            == spec.require_entry;
    (from..=to).contains(&created) && flags_match
}

/// Records an operation as this reset's command.
fn adopt(o: &Observed, status: &PasscodeResetStatus, op: &Operation, message: &str) -> Decision {
    let issued = op
        .metadata
        .as_ref()
        .and_then(|m| m.create_time.as_deref())
        .and_then(|t| t.parse::<Timestamp>().ok())
        .unwrap_or(o.now);
    let duration = op
        .metadata
        .as_ref()
        .and_then(|m| m.duration.as_deref())
        .and_then(parse_google_duration)
        .unwrap_or(DEFAULT_EXPIRES_AFTER_SECS);
    let mut d = transition(o, status, Reason::AwaitingDevice, message.to_owned(), None);
    if let Some(s) = d.status.as_mut() {
        s.operation = Some(op.name.clone());
        s.issued_at = Some(Time(issued));
        s.expires_at = Some(Time(issued + SignedDuration::from_secs(duration as i64)));
        d.requeue = Some(poll_interval(o.now, s));
    }
    d
}

fn on_delete(o: &Observed, status: &PasscodeResetStatus, has_finalizer: bool) -> Decision {
    if !has_finalizer {
        return Decision::default();
    }
    let in_flight =
        status.claimed_at.is_some() && !status.phase.unwrap_or(Phase::Pending).is_terminal();
    if in_flight && !o.inputs.cancelled {
        if let Some(op) = &status.operation {
            return Decision::effect(Effect::CancelOperation(op.clone()));
        }
        // Claimed without a recorded operation: find it to cancel it.
        match &o.inputs.operations {
            None => return Decision::effect(Effect::ListOperations),
            Some(Read::Found(ops)) => {
                let claimed_at = status.claimed_at.as_ref().map(|t| t.0).unwrap_or(o.now);
                let found: Vec<&Operation> = ops
                    .iter()
                    .filter(|op| {
                        !op.done
                            && matches_claim(
                                op,
                                &o.reset.spec,
                                claimed_at,
                                o.config.adoption_window,
                            )
                    })
                    .collect();
                if let [op] = found.as_slice() {
                    return Decision::effect(Effect::CancelOperation(op.name.clone()));
                }
            }
            Some(_) => {}
        }
    }
    Decision::effect(Effect::RemoveFinalizer)
}

/// Another reset of the same device that goes first, if any.
fn turn_of_other(o: &Observed) -> Option<String> {
    if let Some(name) = &o.inputs.claimed_in_process {
        return Some(name.clone());
    }
    let me = o.reset;
    let my_key = (me.metadata.creation_timestamp.clone().map(|t| t.0), key(me));
    o.others
        .iter()
        .filter(|r| key(r) != key(me) && r.spec.device == me.spec.device)
        .filter(|r| r.metadata.deletion_timestamp.is_none() && !r.phase().is_terminal())
        .filter(|r| {
            let st = r.status.as_ref();
            let claimed = st.is_some_and(|s| s.claimed_at.is_some());
            let waiting_for_secret = st.and_then(|s| s.reason) == Some(Reason::WaitingForSecret);
            let older = (r.metadata.creation_timestamp.clone().map(|t| t.0), key(r)) < my_key;
            claimed || (older && !waiting_for_secret)
        })
        .map(|r| key(r))
        .min()
}

fn key(r: &PasscodeReset) -> String {
    format!(
        "{}/{}",
        r.metadata.namespace.as_deref().unwrap_or(""),
        r.metadata.name.as_deref().unwrap_or("")
    )
}

fn command_error(code: &CommandErrorCode, o: &Observed) -> (Reason, String) {
    let history = o
        .inputs
        .device
        .as_ref()
        .and_then(|d| match d {
            Read::Found(d) => Some(governed(d, o.policies).history_length),
            _ => None,
        })
        .flatten();
    let token_unconfirmed = match &o.inputs.device {
        Some(Read::Found(d)) => d.non_compliance_details.iter().any(|n| {
            n.specific_non_compliance_reason.as_deref()
                == Some("PASSWORD_POLICIES_USER_CREDENTIALS_CONFIRMATION_REQUIRED")
        }),
        _ => false,
    };
    match code {
        CommandErrorCode::ApiLevel => (
            Reason::ApiLevelUnsupported,
            "The device refused: its Android version cannot reset this passcode (API level).".into(),
        ),
        CommandErrorCode::ManagementMode => (
            Reason::ManagementModeUnsupported,
            "The device refused: its management mode does not allow this reset.".into(),
        ),
        CommandErrorCode::InvalidValue => {
            let mut m = String::from("The device refused the new passcode as not meeting its password requirements");
            if let Some(h) = history {
                m.push_str(&format!(", or it matches one of the last {h} passcodes (the policy keeps a history the operator cannot check)"));
            }
            m.push_str(". Choose another passcode and create a new PasscodeReset.");
            (Reason::DeviceRejected, m)
        }
        _ if token_unconfirmed => (
            Reason::DeviceRejected,
            "The device could not use its reset token: the user has not confirmed their current lock since enrollment. Ask them to unlock the work profile once with their current passcode, or re-enroll.".into(),
        ),
        other => (
            Reason::DeviceRejected,
            format!("The device could not carry out the command ({}). A common cause on work profiles: the reset token was never activated because the user has not confirmed their lock since enrollment.", other.as_str()),
        ),
    }
}

fn expired_message(status: &PasscodeResetStatus) -> String {
    let at = status
        .expires_at
        .as_ref()
        .map(|t| t.0.to_string())
        .unwrap_or_else(|| "its deadline".into());
    format!(
        "The device did not carry out the command before it expired at {at} (it was probably offline); it was cancelled. Create a new PasscodeReset when the device is online."
    )
}

fn past_expiry(now: Timestamp, status: &PasscodeResetStatus) -> bool {
    status
        .expires_at
        .as_ref()
        .is_some_and(|t| now > t.0 + SignedDuration::try_from(EXPIRY_GRACE).unwrap_or_default())
}

/// Polling: fast while a device typically answers, slower later, never past expiry.
pub fn poll_interval(now: Timestamp, status: &PasscodeResetStatus) -> Duration {
    let since = status
        .issued_at
        .as_ref()
        .map(|t| now.duration_since(t.0).as_secs().max(0) as u64)
        .unwrap_or(0);
    let base = match since {
        0..10 => Duration::from_millis(500),
        10..60 => Duration::from_secs(2),
        60..300 => Duration::from_secs(10),
        _ => Duration::from_secs(30),
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
        return transition(
            o,
            status,
            Reason::SpecChanged,
            format!(
                "The spec changed after the command was issued; the change was not acted on. The command ended: {message}"
            ),
            None,
        );
    }
    transition(o, status, reason, message, None)
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

fn set_policy(d: &mut Decision, names: &Option<String>) {
    if let Some(s) = d.status.as_mut() {
        s.policy = names.clone();
    }
}

fn snapshot(d: &Device) -> DeviceSnapshot {
    DeviceSnapshot {
        management_mode: d.management_mode.as_ref().map(|m| m.as_str().to_owned()),
        state: d.state.as_ref().map(|s| s.as_str().to_owned()),
        api_level: d.api_level,
        policy_name: d.policy_name.clone(),
        applied_policy_version: d.applied_policy_version,
    }
}

fn checks(requirements: &[crate::passcode::Check]) -> Vec<RequirementCheck> {
    requirements
        .iter()
        .map(|c| RequirementCheck {
            rule: c.rule.to_owned(),
            description: c.description.clone(),
            met: c.met,
        })
        .collect()
}

fn governed_by(policies: &[String], device_reported: bool) -> String {
    match (policies.is_empty(), device_reported) {
        (false, true) => format!(
            "WorkProfilePasscodePolicy {} and the device's applied password policy",
            policies.join(", ")
        ),
        (false, false) => format!("WorkProfilePasscodePolicy {}", policies.join(", ")),
        _ => "the device's applied password policy".into(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}
