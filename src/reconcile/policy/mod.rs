//! WorkProfilePasscodePolicy: Observe reports how each AMAPI policy stands; Enforce writes the
//! requirements as its SCOPE_PROFILE password policy (other scopes kept, always with an
//! updateMask) and corrects drift on every resync. Two policies claiming one AMAPI policy are
//! both reported in conflict and neither writes it.
//!
//! The shell: reads every AMAPI policy in scope, asks [`decide`], makes the patches it asks for
//! and asks again with their answers, then writes the status and publishes the Events.

pub mod decide;
pub mod entry;

#[cfg(test)]
mod decide_tests;

use std::sync::Arc;
use std::time::Instant;

use jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::Event;
use kube::{Resource, ResourceExt};
use tracing::{Instrument, info, warn};

use self::decide::{Answer, Decision, Observed, amapi_policies, decide};
use super::{Context, Error};
use crate::api::WorkProfilePasscodePolicy;

// Where the Google discovery contract test (tests/amapi_client.rs) finds it.
pub use self::entry::desired_entry;

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
    let now = Timestamp::now();
    let mut answers = Vec::new();
    for name in amapi_policies(&policy, |e| ctx.config.allows(e)) {
        answers.push(Answer {
            name: name.to_owned(),
            get: ctx.amapi.get_policy(name).await.map_err(|e| e.to_string()),
            patch: None,
        });
    }
    let ask = |answers: &[Answer]| {
        decide(&Observed {
            policy: &policy,
            all: &all,
            answers,
            now,
            resync: ctx.config.policy_resync,
        })
    };
    let mut decision = ask(&answers);
    if !decision.patches.is_empty() {
        for patch in decision.patches {
            let written = ctx
                .amapi
                .patch_policy(&patch.name, &patch.policy, patch.update_mask)
                .await;
            if let Ok(w) = &written {
                info!(amapi_policy = %patch.name, version = w.version, "corrected AMAPI password policy");
            }
            if let Some(answer) = answers.iter_mut().find(|a| a.name == patch.name) {
                answer.patch = Some(written.map_err(|e| e.to_string()));
            }
        }
        decision = ask(&answers);
    }
    let Decision {
        status,
        events,
        requeue,
        ..
    } = decision;
    if let Some(next) = status {
        let api: Api<WorkProfilePasscodePolicy> = Api::all(ctx.client.clone());
        let mut object = (*policy).clone();
        object.status = Some(next);
        object.metadata.managed_fields = None;
        api.replace_status(&policy.name_any(), &PostParams::default(), &object)
            .await?;
    }
    for e in events {
        let event = Event {
            type_: e.type_,
            reason: e.reason.into(),
            note: Some(e.note),
            action: e.action.into(),
            secondary: None,
        };
        if let Err(e) = ctx.events.publish(&event, &policy.object_ref(&())).await {
            warn!(error = %e, "could not publish an Event");
        }
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}
