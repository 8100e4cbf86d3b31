//! The decision, case by case along its stages, and the exactly-once invariants as properties.
//!
//! One file per stage of `decide`: `terminal` (a reset that ended), `prepare` (the gates and the
//! claim), `recover` (issue the claimed command, or find what the claim created), `follow` (poll,
//! expiry, cancel), `delete`; `properties` holds the invariants over arbitrary inputs. This file
//! holds the fixtures they share.

mod admit;
mod delete;
mod follow;
mod prepare;
mod properties;
mod recover;
mod terminal;

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::json;

use super::decide::*;
use super::record::Recorded;
use crate::amapi::model::{Device, Operation};
use crate::api::{
    ClaimedCommand, PasscodeReset, PasscodeResetStatus, Phase, Reason, WorkProfilePasscodePolicy,
};
use crate::passcode::Passcode;

/// The device of the fixtures' specs, and of their claims.
const DEVICE: &str = "enterprises/LC01/devices/d1";
/// Another device of the same enterprise: where a spec edited after its claim points.
const DEVICE_B: &str = "enterprises/LC01/devices/d2";
const CANARY: &str = "Kq7!canary#Zx";
/// The operation of [`issued`].
const OP: &str = "enterprises/LC01/devices/d1/operations/1";
/// The nonce of [`claimed`], and the one every [`Case`] draws for a new claim.
const NONCE: u32 = 42;
/// `Command.duration` of a claim of the default 10 minutes with [`NONCE`].
const FINGERPRINT: &str = "600.000000042s";
/// The command [`claimed`]'s claim created, as listed on the device.
const MINE: &str = "enterprises/LC01/devices/d1/operations/mine";

/// A whole second, as claims are written.
fn now() -> Timestamp {
    "2026-11-23T10:00:00Z".parse().unwrap()
}

fn secs(s: i64) -> SignedDuration {
    SignedDuration::from_secs(s)
}

/// When [`claimed`] claims: a second before [`now`].
fn claimed_at() -> Timestamp {
    now() - secs(1)
}

fn reset(spec: serde_json::Value) -> PasscodeReset {
    serde_json::from_value(json!({
        "apiVersion": "amapi.passcode-operator.io/v1alpha1",
        "kind": "PasscodeReset",
        "metadata": {"name": "r", "namespace": "ns", "generation": 1,
                     "creationTimestamp": "2026-11-23T09:59:58Z", "resourceVersion": "7"},
        "spec": spec,
    }))
    .unwrap()
}

fn with_passcode() -> PasscodeReset {
    reset(
        json!({"device": DEVICE, "newPasscode": {"secretKeyRef": {"name": "s", "key": "k"}}, "lockNow": true}),
    )
}

fn clearing() -> PasscodeReset {
    reset(json!({"device": DEVICE}))
}

fn with_status(mut r: PasscodeReset, f: impl FnOnce(&mut PasscodeResetStatus)) -> PasscodeReset {
    let mut s = r.status.clone().unwrap_or_default();
    f(&mut s);
    r.status = Some(s);
    r
}

fn finalized(mut r: PasscodeReset) -> PasscodeReset {
    r.metadata.finalizers = Some(vec![FINALIZER.into()]);
    r
}

/// Claimed a second ago with [`NONCE`], no operation recorded yet.
fn claimed(r: PasscodeReset) -> PasscodeReset {
    let claim = claimed_command(&r.spec, NONCE);
    with_status(legacy_claimed(r), |s| s.claimed_command = Some(claim))
}

/// Claimed by an operator from before claims carried their command: `claimedAt` only.
fn legacy_claimed(r: PasscodeReset) -> PasscodeReset {
    finalized(with_status(r, |s| {
        s.phase = Some(Phase::Pending);
        s.reason = Some(Reason::Issuing);
        s.claimed_at = Some(Time(claimed_at()));
        s.observed_generation = Some(1);
    }))
}

fn issued(r: PasscodeReset, op: &str) -> PasscodeReset {
    with_status(claimed(r), |s| {
        s.reason = Some(Reason::AwaitingDevice);
        s.operation = Some(op.into());
        s.issued_at = Some(Time(now() - secs(5)));
        s.expires_at = Some(Time(now() + secs(595)));
    })
}

/// The spec replaced after the status was written (possible on API servers without CEL).
fn edited(mut r: PasscodeReset, spec: serde_json::Value) -> PasscodeReset {
    r.spec = serde_json::from_value(spec).unwrap();
    r.metadata.generation = Some(r.metadata.generation.unwrap_or(1) + 1);
    r
}

/// [`with_passcode`]'s spec for [`DEVICE_B`].
fn on_device_b() -> serde_json::Value {
    json!({"device": DEVICE_B, "newPasscode": {"secretKeyRef": {"name": "s", "key": "k"}}, "lockNow": true})
}

fn deleting(mut r: PasscodeReset) -> PasscodeReset {
    r.metadata.deletion_timestamp = Some(Time(now()));
    r
}

fn device(v: serde_json::Value) -> Device {
    let mut base = json!({"name": DEVICE, "managementMode": "PROFILE_OWNER", "state": "ACTIVE",
                          "apiLevel": 34, "policyName": "enterprises/LC01/policies/wp"});
    for (k, val) in v.as_object().unwrap() {
        base[k] = val.clone();
    }
    serde_json::from_value(base).unwrap()
}

fn policy(requirements: serde_json::Value) -> Arc<WorkProfilePasscodePolicy> {
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "amapi.passcode-operator.io/v1alpha1",
            "kind": "WorkProfilePasscodePolicy",
            "metadata": {"name": "corp"},
            "spec": {"amapiPolicies": ["enterprises/LC01/policies/wp"], "requirements": requirements},
        }))
        .unwrap(),
    )
}

fn op(v: serde_json::Value) -> Operation {
    let mut base = json!({"name": OP});
    for (k, val) in v.as_object().unwrap() {
        base[k] = val.clone();
    }
    serde_json::from_value(base).unwrap()
}

/// A pending RESET_PASSWORD command as listed on the device, without a `duration` (as a legacy
/// claim sees any command).
fn reset_op(name: &str, created: &str, flags: &[&str]) -> Operation {
    op(
        json!({"name": name, "metadata": {"type": "RESET_PASSWORD", "createTime": created, "resetPasswordFlags": flags}}),
    )
}

/// A pending RESET_PASSWORD command with LOCK_NOW created at the claim, with this `duration`.
fn command(name: &str, duration: &str) -> Operation {
    let mut o = reset_op(name, &claimed_at().to_string(), &["LOCK_NOW"]);
    if let Some(m) = o.metadata.as_mut() {
        m.duration = Some(duration.into());
    }
    o
}

/// The command [`claimed`]'s claim created.
fn mine() -> Operation {
    command(MINE, FINGERPRINT)
}

fn secret(p: &str) -> SecretRead {
    SecretRead::Value(
        Passcode::from_secret_data(p.as_bytes().to_vec()).unwrap(),
        None,
    )
}

/// Another reset of [`DEVICE`], created at `created`.
fn other(
    name: &str,
    created: &str,
    f: impl FnOnce(&mut PasscodeResetStatus),
) -> Arc<PasscodeReset> {
    let mut r = with_status(with_passcode(), f);
    r.metadata.name = Some(name.into());
    r.metadata.creation_timestamp = Some(Time(created.parse().unwrap()));
    Arc::new(r)
}

struct Case {
    reset: PasscodeReset,
    config: Config,
    policies: Vec<Arc<WorkProfilePasscodePolicy>>,
    others: Vec<Arc<PasscodeReset>>,
    inputs: Inputs,
    now: Timestamp,
}

impl Case {
    fn new(reset: PasscodeReset) -> Self {
        Case {
            reset,
            config: Config::default(),
            policies: vec![],
            others: vec![],
            inputs: Inputs {
                claim_nonce: NONCE,
                ..Default::default()
            },
            now: now(),
        }
    }
    fn device(mut self, d: Device) -> Self {
        self.inputs.device = Some(Read::Found(d));
        self
    }
    fn active(self) -> Self {
        self.device(device(json!({})))
    }
    fn secret(mut self, s: SecretRead) -> Self {
        self.inputs.secret = Some(s);
        self
    }
    fn recorded(mut self, r: Recorded) -> Self {
        self.inputs.record = Some(r);
        self
    }
    /// This process wrote the claim and has not sent for it.
    fn may_send(mut self) -> Self {
        self.inputs.may_send = true;
        self
    }
    /// The answer to issueCommand.
    fn issued(mut self, i: Issued) -> Self {
        self.inputs.issued = Some(i);
        self
    }
    /// The claimed device's operations were listed.
    fn listed(mut self, ops: Vec<Operation>) -> Self {
        self.inputs.operations = Some(Read::Found(ops));
        self
    }
    /// The recorded operation was read.
    fn polled(mut self, v: serde_json::Value) -> Self {
        self.inputs.operation = Some(Read::Found(op(v)));
        self
    }
    /// Decided `s` seconds after the claim of [`claimed`].
    fn since_claim(mut self, s: i64) -> Self {
        self.now = claimed_at() + secs(s);
        self
    }
    fn decide(&self) -> Decision {
        decide(&Observed {
            reset: &self.reset,
            now: self.now,
            config: &self.config,
            policies: &self.policies,
            others: &self.others,
            inputs: &self.inputs,
        })
    }
}

fn reason(d: &Decision) -> Option<Reason> {
    d.status.as_ref().and_then(|s| s.reason)
}

fn message(d: &Decision) -> String {
    d.status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_default()
}

/// The operation the decision records, if any.
fn adopted(d: &Decision) -> Option<&str> {
    d.status.as_ref().and_then(|s| s.operation.as_deref())
}
