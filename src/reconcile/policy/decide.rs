//! The decision for one WorkProfilePasscodePolicy: its previous status, its spec and what AMAPI
//! answered for each AMAPI policy it lists → the AMAPI writes to make, the next status, the Events
//! to emit and when to look again. Pure: no I/O, no clock.
//!
//! One shot, not a step loop: no read depends on another, so the shell reads every listed AMAPI
//! policy first, asks, makes the patches asked for, then asks once more with their answers. The
//! status is decided only once every write has been answered, so it never reports a write that
//! failed.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::events::EventType;

use super::entry::{corrected, desired_entry};
use crate::amapi::model::{PasswordRequirements, Policy};
use crate::api::conditions::{self, READY, SYNCED};
use crate::api::{
    AmapiPolicyStatus, Enforcement, WorkProfilePasscodePolicy, WorkProfilePasscodePolicyStatus,
};

/// Only `passwordPolicies` is written: without a mask AMAPI would clear every other field.
pub const UPDATE_MASK: &[&str] = &["passwordPolicies"];

/// What AMAPI answered about one AMAPI policy in this reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The AMAPI policy name.
    pub name: String,
    /// `policies.get`: the policy, or why it could not be read.
    pub get: Result<Policy, String>,
    /// `policies.patch`, once made: the policy as written, or why it was not.
    pub patch: Option<Result<Policy, String>>,
}

/// Everything one decision may look at.
pub struct Observed<'a> {
    pub policy: &'a WorkProfilePasscodePolicy,
    /// Every WorkProfilePasscodePolicy (from the cache), to find the other claimants.
    pub all: &'a [Arc<WorkProfilePasscodePolicy>],
    /// One answer per name [`amapi_policies`] gave, in that order.
    pub answers: &'a [Answer],
    pub now: Timestamp,
    /// How often the AMAPI policies are compared again.
    pub resync: Duration,
}

/// A `policies.patch` to make.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyPatch {
    pub name: String,
    pub policy: Policy,
    pub update_mask: &'static [&'static str],
}

/// An Event about the policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyEvent {
    pub type_: EventType,
    pub reason: &'static str,
    pub action: &'static str,
    pub note: String,
}

#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    /// Make these, then decide again with their answers. Nothing else is decided before.
    pub patches: Vec<PolicyPatch>,
    /// The next status, when it differs from the previous one in more than its sync times.
    pub status: Option<WorkProfilePasscodePolicyStatus>,
    /// Published after the status is written.
    pub events: Vec<PolicyEvent>,
    /// Look again after this long; `None`: only when something changes.
    pub requeue: Option<Duration>,
}

/// The AMAPI policies this operator looks after for `policy`: those of enterprises it may act on;
/// another operator (or none) looks after the rest.
pub fn amapi_policies(
    policy: &WorkProfilePasscodePolicy,
    allows: impl Fn(&str) -> bool,
) -> Vec<&str> {
    policy
        .spec
        .amapi_policies
        .iter()
        .filter(|name| policy_enterprise(name).is_some_and(&allows))
        .map(String::as_str)
        .collect()
}

/// The enterprise id of an AMAPI policy name (`enterprises/E/policies/P`).
pub fn policy_enterprise(name: &str) -> Option<&str> {
    let mut parts = name.split('/');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("enterprises"), Some(e), Some("policies"), Some(p), None)
            if !e.is_empty() && !p.is_empty() =>
        {
            Some(e)
        }
        _ => None,
    }
}

/// Other policies (by name) that list the same AMAPI policy.
pub fn conflicts(
    me: &WorkProfilePasscodePolicy,
    all: &[Arc<WorkProfilePasscodePolicy>],
    amapi_policy: &str,
) -> Vec<String> {
    let mut names: Vec<String> = all
        .iter()
        .filter(|p| p.name_any() != me.name_any() && p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.spec.amapi_policies.iter().any(|a| a == amapi_policy))
        .map(|p| p.name_any())
        .collect();
    names.sort();
    names
}

/// Where one AMAPI policy stands against the requirements, before any write.
enum Standing<'a> {
    Unreadable(&'a str),
    InSync(&'a Policy),
    /// Differs, and Observe never writes.
    Observed(&'a Policy),
    /// Differs, and another policy claims it too, so neither writes.
    Contested(&'a Policy),
    /// Differs; these `passwordPolicies` correct it.
    Drifted(&'a Policy, Vec<PasswordRequirements>),
}

fn standing<'a>(
    get: &'a Result<Policy, String>,
    entry: &PasswordRequirements,
    enforce: bool,
    contested: bool,
) -> Standing<'a> {
    let current = match get {
        Err(e) => return Standing::Unreadable(e),
        Ok(current) => current,
    };
    match corrected(current, entry) {
        None => Standing::InSync(current),
        Some(_) if !enforce => Standing::Observed(current),
        Some(_) if contested => Standing::Contested(current),
        Some(next) => Standing::Drifted(current, next),
    }
}

/// The decision. See the module documentation.
pub fn decide(o: &Observed) -> Decision {
    if o.answers.is_empty() {
        return Decision::default();
    }
    let entry = desired_entry(&o.policy.spec.requirements);
    let enforce = o.policy.spec.enforcement == Enforcement::Enforce;
    let claimants = |a: &Answer| conflicts(o.policy, o.all, &a.name);
    let standings: Vec<(&Answer, Vec<String>, Standing)> = o
        .answers
        .iter()
        .map(|a| {
            let others = claimants(a);
            let s = standing(&a.get, &entry, enforce, !others.is_empty());
            (a, others, s)
        })
        .collect();

    let patches: Vec<PolicyPatch> = standings
        .iter()
        .filter_map(|(a, _, s)| match s {
            Standing::Drifted(_, next) if a.patch.is_none() => Some(PolicyPatch {
                name: a.name.clone(),
                policy: Policy {
                    password_policies: next.clone(),
                    ..Default::default()
                },
                update_mask: UPDATE_MASK,
            }),
            _ => None,
        })
        .collect();
    if !patches.is_empty() {
        return Decision {
            patches,
            ..Default::default()
        };
    }

    let previous = o.policy.status.clone().unwrap_or_default();
    let now = Time(o.now);
    let mut events = Vec::new();
    let entries: Vec<AmapiPolicyStatus> = standings
        .into_iter()
        .map(|(a, conflicts_with, s)| {
            let (status, event) = entry_status(a, conflicts_with, s, &previous, &now);
            events.extend(event);
            status
        })
        .collect();

    let all_synced = entries.iter().all(|e| e.synced);
    let any_conflict = entries.iter().any(|e| !e.conflicts_with.is_empty());
    let (synced_reason, synced_message) = match (enforce, all_synced, any_conflict) {
        (_, _, true) => (
            "Conflict",
            "Another WorkProfilePasscodePolicy claims one of these AMAPI policies; see status.amapiPolicies.",
        ),
        (true, true, _) => ("UpToDate", "Every AMAPI policy carries these requirements."),
        (true, false, _) => (
            "UpdateFailed",
            "Some AMAPI policies could not be read or written; see status.amapiPolicies.",
        ),
        (false, true, _) => (
            "Observing",
            "Observe: every AMAPI policy already carries these requirements.",
        ),
        (false, false, _) => (
            "Observing",
            "Observe: resets are judged against these requirements; AMAPI policies are not written.",
        ),
    };
    let ready = !any_conflict && (!enforce || all_synced);
    let ready_reason = if ready { "Ready" } else { synced_reason };
    let generation = o.policy.metadata.generation;
    let mut conds = previous.conditions.clone();
    conditions::set(
        &mut conds,
        SYNCED,
        all_synced,
        synced_reason,
        synced_message,
        generation,
        &now,
    );
    conditions::set(
        &mut conds,
        READY,
        ready,
        ready_reason,
        synced_message,
        generation,
        &now,
    );
    let next = WorkProfilePasscodePolicyStatus {
        observed_generation: generation,
        conditions: conds,
        amapi_policies: entries,
    };

    // A conflict is announced when it appears, not on every resync.
    if any_conflict
        && previous
            .amapi_policies
            .iter()
            .all(|p| p.conflicts_with.is_empty())
    {
        events.push(PolicyEvent {
            type_: EventType::Warning,
            reason: "Conflict",
            action: "Reconcile",
            note: synced_message.into(),
        });
    }
    Decision {
        patches: Vec::new(),
        status: changed(&previous, &next).then_some(next),
        events,
        requeue: Some(o.resync),
    }
}

/// The status of one AMAPI policy, and the Event when this reconcile wrote it.
fn entry_status(
    answer: &Answer,
    conflicts_with: Vec<String>,
    standing: Standing,
    previous: &WorkProfilePasscodePolicyStatus,
    now: &Time,
) -> (AmapiPolicyStatus, Option<PolicyEvent>) {
    let mut status = AmapiPolicyStatus {
        name: answer.name.clone(),
        last_sync_time: Some(now.clone()),
        ..Default::default()
    };
    let mut event = None;
    match standing {
        Standing::Unreadable(e) => {
            status.message = Some(format!("Could not read the AMAPI policy: {e}"));
            // Keep what was known.
            status.version = previous
                .amapi_policies
                .iter()
                .find(|p| p.name == answer.name)
                .and_then(|p| p.version);
        }
        Standing::InSync(current) => {
            status.version = current.version;
            status.synced = true;
        }
        Standing::Observed(current) => {
            status.version = current.version;
            status.message = Some("Observe: the AMAPI policy's work-profile password policy differs from these requirements; not written.".into());
        }
        Standing::Contested(current) => {
            status.version = current.version;
            status.message = Some(format!(
                "Not written: WorkProfilePasscodePolicy {} also claims this AMAPI policy. Resets on its devices use the strictest combination.",
                conflicts_with.join(", ")
            ));
        }
        Standing::Drifted(current, _) => {
            status.version = current.version;
            match &answer.patch {
                Some(Ok(written)) => {
                    status.version = written.version;
                    status.synced = true;
                    event = Some(PolicyEvent {
                        type_: EventType::Normal,
                        reason: "Synced",
                        action: "WriteAmapiPolicy",
                        note: format!(
                            "Wrote the work-profile password policy of {} (version {}).",
                            answer.name,
                            written.version.unwrap_or_default()
                        ),
                    });
                }
                Some(Err(e)) => {
                    status.message = Some(format!("Could not write the AMAPI policy: {e}"));
                }
                // Asked for above; a shell that did not make it leaves the policy unsynced.
                None => {}
            }
        }
    }
    status.conflicts_with = conflicts_with;
    (status, event)
}

/// Whether `next` is worth writing: something other than the sync and transition times changed
/// (a first sync always is).
fn changed(
    previous: &WorkProfilePasscodePolicyStatus,
    next: &WorkProfilePasscodePolicyStatus,
) -> bool {
    let strip = |s: &WorkProfilePasscodePolicyStatus| {
        let mut s = s.clone();
        for p in &mut s.amapi_policies {
            p.last_sync_time = None;
        }
        for c in &mut s.conditions {
            c.last_transition_time = Time(Timestamp::UNIX_EPOCH);
        }
        s
    };
    strip(previous) != strip(next)
}
