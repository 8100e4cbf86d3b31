//! WorkProfilePasscodePolicy: Observe reports how each AMAPI policy stands; Enforce writes the
//! requirements as its SCOPE_PROFILE password policy (other scopes kept, always with an
//! updateMask) and corrects drift on every resync. Two policies claiming one AMAPI policy are
//! both reported in conflict and neither writes it.

use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use tracing::{Instrument, info, warn};

use super::{Context, Error};
use crate::amapi::model::{PasswordRequirements, PasswordScope, Policy, google_duration};
use crate::api::conditions::{self, READY, SYNCED};
use crate::api::validation::parse_duration_secs;
use crate::api::{
    AmapiPolicyStatus, Enforcement, PolicyRequirements, WorkProfilePasscodePolicy,
    WorkProfilePasscodePolicyStatus,
};

/// The SCOPE_PROFILE entry that expresses `r` in AMAPI's vocabulary.
pub fn desired_entry(r: &PolicyRequirements) -> PasswordRequirements {
    let count = |v: Option<u32>| v.map(|v| v as i32);
    let quality = serde_json::to_value(r.quality)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned));
    PasswordRequirements {
        password_scope: Some(PasswordScope::Profile),
        password_quality: quality,
        password_minimum_length: count(r.minimum_length),
        password_minimum_letters: count(r.minimum_letters),
        password_minimum_lower_case: count(r.minimum_lower_case),
        password_minimum_upper_case: count(r.minimum_upper_case),
        password_minimum_non_letter: count(r.minimum_non_letter),
        password_minimum_numeric: count(r.minimum_numeric),
        password_minimum_symbols: count(r.minimum_symbols),
        password_history_length: count(r.history_length),
        maximum_failed_passwords_for_wipe: count(r.maximum_failed_passwords_for_wipe),
        password_expiration_timeout: r
            .expiration_timeout
            .as_deref()
            .and_then(parse_duration_secs)
            .map(google_duration),
        require_password_unlock: r
            .require_password_unlock
            .and_then(|v| serde_json::to_value(v).ok())
            .and_then(|v| v.as_str().map(str::to_owned)),
        unified_lock_settings: r
            .unified_lock_settings
            .and_then(|v| serde_json::to_value(v).ok())
            .and_then(|v| v.as_str().map(str::to_owned)),
    }
}

/// The policy's passwordPolicies with its SCOPE_PROFILE entry replaced by `entry`, or `None` when
/// it already matches (no drift). Entries of other scopes are kept in place.
pub fn corrected(
    policy: &Policy,
    entry: &PasswordRequirements,
) -> Option<Vec<PasswordRequirements>> {
    let is_profile = |p: &PasswordRequirements| p.password_scope == Some(PasswordScope::Profile);
    let current: Vec<&PasswordRequirements> = policy
        .password_policies
        .iter()
        .filter(|p| is_profile(p))
        .collect();
    if current.len() == 1 && same(current[0], entry) {
        return None;
    }
    let mut next: Vec<PasswordRequirements> =
        Vec::with_capacity(policy.password_policies.len() + 1);
    let mut placed = false;
    for p in &policy.password_policies {
        if is_profile(p) {
            if !placed {
                next.push(entry.clone());
                placed = true;
            }
        } else {
            next.push(p.clone());
        }
    }
    if !placed {
        next.push(entry.clone());
    }
    Some(next)
}

/// Equal as AMAPI means them: an unset counter is the same as its default.
fn same(a: &PasswordRequirements, b: &PasswordRequirements) -> bool {
    let norm = |p: &PasswordRequirements| {
        let mut p = p.clone();
        let zero = |v: &mut Option<i32>| {
            if *v == Some(0) {
                *v = None;
            }
        };
        zero(&mut p.password_minimum_length);
        zero(&mut p.password_history_length);
        zero(&mut p.maximum_failed_passwords_for_wipe);
        p
    };
    norm(a) == norm(b)
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

pub async fn reconcile(
    policy: Arc<WorkProfilePasscodePolicy>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let span = tracing::info_span!(
        "reconcile",
        kind = "WorkProfilePasscodePolicy",
        name = policy.name_any()
    );
    let result = run(policy, &ctx).instrument(span).await;
    ctx.metrics.reconciled(
        "workprofilepasscodepolicy",
        result.is_ok(),
        started.elapsed(),
    );
    result
}

async fn run(policy: Arc<WorkProfilePasscodePolicy>, ctx: &Context) -> Result<Action, Error> {
    let all = ctx.policies.state();
    let entry = desired_entry(&policy.spec.requirements);
    let enforce = policy.spec.enforcement == Enforcement::Enforce;
    let now = Time(Timestamp::now());
    let previous = policy.status.clone().unwrap_or_default();
    let mut entries = Vec::new();
    let mut events = Vec::new();
    // Only AMAPI policies of enterprises this operator may act on; another operator (or none)
    // looks after the rest.
    let ours: Vec<&String> = policy
        .spec
        .amapi_policies
        .iter()
        .filter(|name| policy_enterprise(name).is_some_and(|e| ctx.config.allows(e)))
        .collect();
    if ours.is_empty() {
        return Ok(Action::await_change());
    }
    for name in ours {
        let conflicts_with = conflicts(&policy, &all, name);
        let mut status = AmapiPolicyStatus {
            name: name.clone(),
            conflicts_with: conflicts_with.clone(),
            last_sync_time: Some(now.clone()),
            ..Default::default()
        };
        match ctx.amapi.get_policy(name).await {
            Err(e) => {
                status.message = Some(format!("Could not read the AMAPI policy: {e}"));
                // Keep what was known.
                status.version = previous
                    .amapi_policies
                    .iter()
                    .find(|p| &p.name == name)
                    .and_then(|p| p.version);
            }
            Ok(current) => {
                status.version = current.version;
                let drift = corrected(&current, &entry);
                match (drift, enforce, conflicts_with.is_empty()) {
                    (None, _, _) => status.synced = true,
                    (Some(_), false, _) => {
                        status.message = Some("Observe: the AMAPI policy's work-profile password policy differs from these requirements; not written.".into());
                    }
                    (Some(_), true, false) => {
                        status.message = Some(format!(
                            "Not written: WorkProfilePasscodePolicy {} also claims this AMAPI policy. Resets on its devices use the strictest combination.",
                            conflicts_with.join(", ")
                        ));
                    }
                    (Some(password_policies), true, true) => {
                        let patch = Policy {
                            password_policies,
                            ..Default::default()
                        };
                        match ctx
                            .amapi
                            .patch_policy(name, &patch, &["passwordPolicies"])
                            .await
                        {
                            Ok(written) => {
                                status.version = written.version;
                                status.synced = true;
                                events.push(format!("Wrote the work-profile password policy of {name} (version {}).", written.version.unwrap_or_default()));
                                info!(amapi_policy = %name, version = written.version, "corrected AMAPI password policy");
                            }
                            Err(e) => {
                                status.message =
                                    Some(format!("Could not write the AMAPI policy: {e}"))
                            }
                        }
                    }
                }
            }
        }
        entries.push(status);
    }

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
    let mut conds = previous.conditions.clone();
    let generation = policy.metadata.generation;
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
    // Only write when something other than the sync time changed, or on a first sync.
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
    if strip(&next) != strip(&previous) {
        let api: Api<WorkProfilePasscodePolicy> = Api::all(ctx.client.clone());
        let mut object = (*policy).clone();
        object.status = Some(next);
        object.metadata.managed_fields = None;
        api.replace_status(&policy.name_any(), &PostParams::default(), &object)
            .await?;
    }
    for note in events {
        let event = Event {
            type_: EventType::Normal,
            reason: "Synced".into(),
            note: Some(note),
            action: "WriteAmapiPolicy".into(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &policy.object_ref(&())).await {
            warn!(error = %e, "could not publish an Event");
        }
    }
    if any_conflict
        && previous
            .amapi_policies
            .iter()
            .all(|p| p.conflicts_with.is_empty())
    {
        let event = Event {
            type_: EventType::Warning,
            reason: "Conflict".into(),
            note: Some(synced_message.into()),
            action: "Reconcile".into(),
            secondary: None,
        };
        let _ = ctx.recorder.publish(&event, &policy.object_ref(&())).await;
    }
    Ok(Action::requeue(ctx.policy_resync))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passcode::PasswordQuality;

    fn req(quality: PasswordQuality, min: Option<u32>) -> PolicyRequirements {
        PolicyRequirements {
            quality,
            minimum_length: min,
            ..Default::default()
        }
    }

    #[test]
    fn entry_speaks_amapi() {
        let mut r = req(PasswordQuality::NumericComplex, Some(6));
        r.expiration_timeout = Some("2160h".into());
        let e = desired_entry(&r);
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["passwordScope"], "SCOPE_PROFILE");
        assert_eq!(json["passwordQuality"], "NUMERIC_COMPLEX");
        assert_eq!(json["passwordMinimumLength"], 6);
        assert_eq!(json["passwordExpirationTimeout"], "7776000s");
    }

    #[test]
    fn drift_is_corrected_and_other_scopes_kept() {
        let entry = desired_entry(&req(PasswordQuality::Numeric, Some(6)));
        let device_scope = PasswordRequirements {
            password_scope: Some(PasswordScope::Device),
            password_quality: Some("SOMETHING".into()),
            ..Default::default()
        };
        let mut drifted = entry.clone();
        drifted.password_minimum_length = Some(4);
        let policy = Policy {
            password_policies: vec![device_scope.clone(), drifted],
            ..Default::default()
        };
        let next = corrected(&policy, &entry).expect("drift found");
        assert_eq!(next, vec![device_scope.clone(), entry.clone()]);
        let synced = Policy {
            password_policies: next,
            ..Default::default()
        };
        assert_eq!(corrected(&synced, &entry), None, "no drift, no write");
        let empty = Policy::default();
        assert_eq!(corrected(&empty, &entry), Some(vec![entry.clone()]));
    }

    #[test]
    fn zero_and_unset_are_the_same() {
        let mut a = desired_entry(&req(PasswordQuality::Something, None));
        let b = a.clone();
        a.password_history_length = Some(0);
        assert!(same(&a, &b));
    }

    #[test]
    fn conflicts_name_the_other_claimants() {
        use crate::api::WorkProfilePasscodePolicySpec;
        let mk = |name: &str, amapi: &[&str]| {
            Arc::new(WorkProfilePasscodePolicy::new(
                name,
                WorkProfilePasscodePolicySpec {
                    amapi_policies: amapi.iter().map(|s| s.to_string()).collect(),
                    enforcement: Enforcement::Enforce,
                    requirements: req(PasswordQuality::Numeric, None),
                },
            ))
        };
        let all = vec![
            mk("a", &["enterprises/E/policies/p"]),
            mk(
                "b",
                &["enterprises/E/policies/p", "enterprises/E/policies/q"],
            ),
            mk("c", &["enterprises/E/policies/q"]),
        ];
        assert_eq!(conflicts(&all[0], &all, "enterprises/E/policies/p"), ["b"]);
        assert_eq!(conflicts(&all[1], &all, "enterprises/E/policies/q"), ["c"]);
        assert!(conflicts(&all[2], &all, "enterprises/E/policies/x").is_empty());
    }
}
