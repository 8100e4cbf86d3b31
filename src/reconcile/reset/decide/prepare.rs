//! Before the claim: the spec, the device, the requirements and the passcode, the device's turn,
//! the record, the finalizer; then the claim. Each gate either lets the reset through or answers
//! with the decision that stops it here.

#![allow(clippy::result_large_err)] // Gate errors are the decision itself, built once per reconcile.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::admit::{check_approval, check_requester, check_scope, namespace_labels};
use super::recover::claimed_command;
use super::{
    Decision, Effect, MIN_API_LEVEL, Observed, Read, SecretRead, key, retrying, transition,
    truncate, waiting_for_secret,
};
use crate::amapi::model::{Device, DeviceState, ManagementMode};
use crate::api::validation::{
    MAX_EXPIRES_AFTER_SECS, MIN_EXPIRES_AFTER_SECS, device_enterprise, parse_duration_secs,
};
use crate::api::{DeviceSnapshot, PasscodeResetStatus, Reason, RequirementCheck};
use crate::passcode::judge;
use crate::reconcile::govern::governed;
use crate::reconcile::reset::record::Recorded;
use crate::reconcile::scopes::ScopeCheck;

/// A gate's answer: through, or the decision that stops the reset here.
type Gate<T> = Result<T, Decision>;

/// Before the claim: check everything, then claim.
pub(super) fn prepare(o: &Observed, status: &PasscodeResetStatus, has_finalizer: bool) -> Decision {
    match claim(o, status, has_finalizer) {
        Ok(d) | Err(d) => d,
    }
}

fn claim(o: &Observed, status: &PasscodeResetStatus, has_finalizer: bool) -> Gate<Decision> {
    check_spec(o, status)?;
    // Who asked and who may, before the device is looked at.
    check_requester(o, status)?;
    let labels = namespace_labels(o, status)?;
    let enterprise = device_enterprise(&o.reset.spec.device).unwrap_or_default();
    let fail = |reason: Reason, message: String| transition(o, status, reason, message, None);
    let scope = check_scope(o, status, &labels, enterprise, None, &fail)?;
    let device = check_device(o, status)?;
    let mut at = At {
        o,
        status,
        snapshot: snapshot(device),
        what: if device.management_mode == Some(ManagementMode::ProfileOwner) {
            "work-profile passcode"
        } else {
            "device passcode"
        },
        policies: None,
        scope: None,
    };
    // A scope that restricts AMAPI policies needs the device's (devices.get is a read).
    let scope = match scope {
        ScopeCheck::NeedsPolicy => {
            let stop = |reason: Reason, message: String| at.stop(reason, message, None);
            let policy = Some(device.policy_name.as_deref());
            check_scope(o, status, &labels, enterprise, policy, &stop)?
        }
        other => other,
    };
    let approval = match scope {
        ScopeCheck::Allowed { scopes, approval } => {
            at.scope = Some(scopes.join(","));
            approval
        }
        _ => None,
    };
    // Who approved, before the Secret is read: nothing moves for an unapproved reset.
    {
        let stop = |reason: Reason, message: String| at.stop(reason, message, None);
        check_approval(o, approval, at.scope.as_deref().unwrap_or_default(), &stop)?;
    }
    let (checklist, policies) = check_passcode(&at, device)?;
    let at = At { policies, ..at };
    wait_for_turn(&at, &checklist)?;
    // The finalizer first: from here on a deletion passes through `on_delete`, which takes the
    // run out of the record again when nothing was claimed.
    if !has_finalizer {
        return Err(Decision::effect(Effect::AddFinalizer));
    }
    // Recorded before the claim, so a deleted and re-created twin never claims.
    check_record(&at, &checklist)?;

    let mut claim = at.stop(
        Reason::Issuing,
        format!("Issuing the command to reset the {}.", at.what),
        Some(checklist),
    );
    if let Some(s) = claim.status.as_mut() {
        // To the second, as the API server stores it: the claim reads back exactly as written.
        let now = o.now.round(jiff::Unit::Second).unwrap_or(o.now);
        s.claimed_at = Some(Time(now));
        // The Secret read for this claim is the one its command carries, and the one deleted later.
        let secret_uid = match &o.inputs.secret {
            Some(SecretRead::Value(_, uid)) => uid.clone(),
            _ => None,
        };
        s.claimed_command = Some(crate::api::ClaimedCommand {
            secret_uid,
            ..claimed_command(&o.reset.spec, o.inputs.claim_nonce)
        });
    }
    claim.effect = Some(Effect::Claim);
    Ok(claim)
}

/// What the gates after the device lookup know.
struct At<'a> {
    o: &'a Observed<'a>,
    status: &'a PasscodeResetStatus,
    snapshot: DeviceSnapshot,
    /// "work-profile passcode" or "device passcode".
    what: &'static str,
    /// The WorkProfilePasscodePolicies that govern the device, comma-separated.
    policies: Option<String>,
    /// The PasscodeResetScopes that allow the reset, comma-separated.
    scope: Option<String>,
}

impl At<'_> {
    /// A transition that also records the device as seen and the governing policies.
    fn stop(
        &self,
        reason: Reason,
        message: String,
        checklist: Option<Vec<RequirementCheck>>,
    ) -> Decision {
        let mut d = transition(self.o, self.status, reason, message, checklist);
        if let Some(s) = d.status.as_mut() {
            s.device = Some(self.snapshot.clone());
            if self.policies.is_some() {
                s.policy = self.policies.clone();
            }
            if self.scope.is_some() {
                s.scope = self.scope.clone();
            }
        }
        d
    }
}

/// The spec, again: API servers without the schema or CEL let anything through.
fn check_spec(o: &Observed, status: &PasscodeResetStatus) -> Gate<()> {
    let spec = &o.reset.spec;
    let fail = |reason: Reason, message: String| Err(transition(o, status, reason, message, None));
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
    Ok(())
}

/// The device: exists, active, a work profile or fully managed, Android 8.0 or later.
fn check_device<'a>(o: &'a Observed, status: &PasscodeResetStatus) -> Gate<&'a Device> {
    let spec = &o.reset.spec;
    let device = match &o.inputs.device {
        None => return Err(Decision::effect(Effect::GetDevice(spec.device.clone()))),
        Some(Read::Found(d)) => d,
        Some(Read::NotFound) => {
            return Err(transition(
                o,
                status,
                Reason::DeviceNotFound,
                format!(
                    "AMAPI has no device {}: check the name in the EMM console; a deleted device cannot be reset.",
                    spec.device
                ),
                None,
            ));
        }
        Some(Read::Denied(m)) => {
            return Err(transition(
                o,
                status,
                Reason::PermissionDenied,
                format!("AMAPI refused to show device {}: {m}", spec.device),
                None,
            ));
        }
        Some(Read::Unavailable(m)) => {
            return Err(retrying(
                o,
                status,
                format!("Could not look at the device: {m}"),
            ));
        }
    };
    let fail = |reason: Reason, message: String| {
        let mut d = transition(o, status, reason, message, None);
        if let Some(s) = d.status.as_mut() {
            s.device = Some(snapshot(device));
        }
        Err(d)
    };
    if device.state != Some(DeviceState::Active) {
        let state = device.state.as_ref().map_or("unknown", |s| s.as_str());
        return fail(
            Reason::DeviceNotActive,
            format!("The device is {state}, not ACTIVE; only active devices can be reset."),
        );
    }
    match &device.management_mode {
        Some(ManagementMode::ProfileOwner | ManagementMode::DeviceOwner) => {}
        other => {
            let mode = other.as_ref().map_or("unknown", |m| m.as_str());
            return fail(
                Reason::ManagementModeUnsupported,
                format!(
                    "The device's management mode is {mode}; only work profiles (PROFILE_OWNER) and fully managed devices (DEVICE_OWNER) can be reset."
                ),
            );
        }
    }
    let api_level = device.api_level.unwrap_or(0);
    if api_level < MIN_API_LEVEL {
        return fail(
            Reason::ApiLevelUnsupported,
            format!(
                "The device runs API level {api_level}; passcode reset needs Android 8.0 (API level 26) or later."
            ),
        );
    }
    Ok(device)
}

/// The requirements that govern the device, and the passcode against them: the checklist, and
/// the governing WorkProfilePasscodePolicies.
fn check_passcode(at: &At, device: &Device) -> Gate<(Vec<RequirementCheck>, Option<String>)> {
    let o = at.o;
    let governed = governed(device, o.policies);
    let policy_names = (!governed.policies.is_empty()).then(|| governed.policies.join(","));
    let with_policy = At {
        policies: policy_names.clone(),
        snapshot: at.snapshot.clone(),
        scope: at.scope.clone(),
        ..*at
    };
    let api = device.api_level.and_then(|l| u32::try_from(l).ok());
    let Some(source) = &o.reset.spec.new_passcode else {
        let verdict = judge(None, &governed.governing, api);
        let checks = checks(&verdict.requirements);
        if !verdict.passes {
            return Err(with_policy.stop(
                Reason::PasscodeRequired,
                format!(
                    "A passcode policy applies to this device ({}), so its {} cannot be cleared; give spec.newPasscode.",
                    governed_by(&governed.policies, governed.device_reported),
                    at.what
                ),
                Some(checks),
            ));
        }
        return Ok((checks, policy_names));
    };
    let (name, key) = (&source.secret_key_ref.name, &source.secret_key_ref.key);
    let Some(secret) = &o.inputs.secret else {
        return Err(Decision::effect(Effect::ReadSecret {
            name: name.clone(),
            key: key.clone(),
        }));
    };
    let passcode = match secret {
        SecretRead::Value(p, _) => p,
        SecretRead::Missing => {
            return Err(waiting_for_secret(
                o,
                at.status,
                format!("Waiting for Secret {name} (with key {key}) to exist in this namespace."),
            ));
        }
        SecretRead::KeyMissing => {
            return Err(waiting_for_secret(
                o,
                at.status,
                format!("Secret {name} has no key {key}; waiting for it."),
            ));
        }
        SecretRead::Denied(m) => {
            return Err(retrying(
                o,
                at.status,
                format!(
                    "The operator may not read Secret {name}: {m}. Check its RBAC (get on secrets)."
                ),
            ));
        }
        SecretRead::Unavailable(m) => {
            return Err(retrying(
                o,
                at.status,
                format!("Could not read Secret {name}: {m}"),
            ));
        }
        SecretRead::Invalid(e) => {
            return Err(at.stop(
                Reason::SecretInvalid,
                format!("Key {key} of Secret {name} cannot be a passcode: {e}."),
                None,
            ));
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
        return Err(with_policy.stop(
            Reason::PasscodeInvalid,
            format!(
                "The new passcode does not meet: {}. See status.requirements.",
                unmet.join("; ")
            ),
            Some(checks),
        ));
    }
    Ok((checks, policy_names))
}

/// One command per device at a time, oldest first.
fn wait_for_turn(at: &At, checklist: &[RequirementCheck]) -> Gate<()> {
    let Some(other) = turn_of_other(at.o) else {
        return Ok(());
    };
    let mut d = at.stop(
        Reason::WaitingForDevice,
        format!("Reset {other} of the same device goes first; this one follows when it ends."),
        Some(checklist.to_vec()),
    );
    d.requeue = Some(Duration::from_secs(5));
    Err(d)
}

/// The record of this name: a first run, or a twin of an earlier one.
fn check_record(at: &At, checklist: &[RequirementCheck]) -> Gate<()> {
    let o = at.o;
    let reset = key(o.reset);
    match &o.inputs.record {
        None => Err(Decision::effect(Effect::Record)),
        Some(Recorded::Ours) => Ok(()),
        Some(Recorded::Earlier {
            uid,
            claimed_at,
            record,
        }) => {
            let (record_namespace, record_name) = record.split_once('/').unwrap_or(("", record));
            Err(at.stop(
                Reason::Recreated,
                format!(
                    "PasscodeReset {reset} was already acted on: an earlier object with this name and spec (uid {uid}) set out to send its command to the device at {claimed_at} and was then deleted. This one re-creates it (as GitOps self-heal does), so it does not run again. To reset the {} again, create a PasscodeReset with a new name; to let this name run once more, delete ConfigMap {record_name} in namespace {record_namespace}.",
                    at.what
                ),
                Some(checklist.to_vec()),
            ))
        }
        Some(Recorded::Full { record }) => {
            let (record_namespace, record_name) = record.split_once('/').unwrap_or(("", record));
            Err(at.stop(
                Reason::RecordFull,
                format!(
                    "The name {reset} has already been used for {} different resets, the most its record keeps; it is not used for another, so none of them can run twice. Create a PasscodeReset with a new name, or delete ConfigMap {record_name} in namespace {record_namespace} to start this name's record afresh.",
                    crate::reconcile::reset::record::MAX_RUNS
                ),
                Some(checklist.to_vec()),
            ))
        }
        Some(Recorded::Unavailable(m)) => Err(retrying(
            o,
            at.status,
            format!("Could not record the reset: {m}."),
        )),
    }
}

/// Another reset of the same device that goes first, if any: one whose claim this process wrote
/// and the cache may not show, one claimed (per the cache), or an older one ready to claim.
/// Resets waiting for their Secret or retrying a failure take no turn, so they block nobody.
fn turn_of_other(o: &Observed) -> Option<String> {
    if let Some(name) = &o.inputs.claimed_in_process {
        return Some(name.clone());
    }
    let me = o.reset;
    let my_key = (me.metadata.creation_timestamp.clone().map(|t| t.0), key(me));
    o.others
        .iter()
        .filter(|r| key(r) != key(me) && !r.phase().is_terminal())
        .filter(|r| {
            let st = r.status.as_ref();
            let claimed = st.is_some_and(|s| s.claimed_at.is_some());
            // A claim holds the device it was made for, whatever the spec says since; and it
            // holds it while the reset is deleted, until its command is cancelled.
            let device = st
                .and_then(|s| s.claimed_command.as_ref())
                .map_or(&r.spec.device, |c| &c.device);
            *device == me.spec.device && (claimed || r.metadata.deletion_timestamp.is_none())
        })
        .filter(|r| {
            let st = r.status.as_ref();
            let claimed = st.is_some_and(|s| s.claimed_at.is_some());
            let stalled = matches!(
                st.and_then(|s| s.reason),
                Some(Reason::WaitingForSecret | Reason::Retrying | Reason::AwaitingApproval)
            );
            let older = (r.metadata.creation_timestamp.clone().map(|t| t.0), key(r)) < my_key;
            claimed || (older && !stalled)
        })
        .map(|r| key(r))
        .min()
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
