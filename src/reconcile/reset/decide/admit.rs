//! Before anything is sent: who asked (a requester the webhook recorded), who may (the
//! PasscodeResetScopes covering the namespace) and who approved (when a scope requires it). Each
//! gate either lets the reset through or stops it with a precise reason; all come before the
//! claim, so a refused or unapproved reset never sends AMAPI anything.

#![allow(clippy::result_large_err)] // Gate errors are the decision itself, built once per reconcile.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Decision, Effect, Observed, Read, age, humanize, key, retrying, transition};
use crate::admission::review::same_person;
use crate::admission::seal::{APPROVAL_ANNOTATION, Approval, DECISION_ANNOTATION, Requester};
use crate::api::{Decision as Verdict, PasscodeResetStatus, Reason, UserInfo};
use crate::reconcile::UnknownRequester;
use crate::reconcile::scopes::{self, ScopeCheck, Subject};

type Gate<T> = Result<T, Decision>;

/// Look again this often while waiting for approval: a scope edited meanwhile is noticed.
const APPROVAL_RECHECK: Duration = Duration::from_secs(30);

/// The requester the webhook recorded, if its seal holds.
pub(super) fn verified_requester<'a>(o: &'a Observed) -> Option<&'a UserInfo> {
    match &o.inputs.admission.requester {
        Requester::Verified(u) => Some(u),
        _ => None,
    }
}

/// Who asked: without a recorded requester, refused or run marked unknown (`--unknown-requester`).
pub(super) fn check_requester(o: &Observed, status: &PasscodeResetStatus) -> Gate<()> {
    let why = match &o.inputs.admission.requester {
        Requester::Verified(_) => return Ok(()),
        _ if o.config.unknown_requester == UnknownRequester::Run => return Ok(()),
        Requester::NotRecorded => {
            "the operator runs without its admission webhook, so it cannot know who created this PasscodeReset"
        }
        Requester::Missing => {
            "no requester was recorded for this PasscodeReset: it was created before passcode-operator's admission webhook was registered, or while it was not"
        }
        Requester::Unsealed => {
            "the requester recorded in its annotations was not written by passcode-operator's admission webhook (forged, edited, or copied from another reset)"
        }
    };
    Err(transition(
        o,
        status,
        Reason::RequesterUnknown,
        format!(
            "Refused: {why}. The operator refuses resets without a recorded requester; create the PasscodeReset again while the webhook runs. Nothing was sent."
        ),
        None,
    ))
}

/// The namespace's labels, when a scope selects namespaces by label.
pub(super) fn namespace_labels(
    o: &Observed,
    status: &PasscodeResetStatus,
) -> Gate<BTreeMap<String, String>> {
    if !scopes::needs_labels(&o.inputs.scopes) {
        return Ok(BTreeMap::new());
    }
    let namespace = o.reset.metadata.namespace.clone().unwrap_or_default();
    match &o.inputs.namespace_labels {
        None => Err(Decision::effect(Effect::ReadNamespace(namespace))),
        Some(Read::Found(labels)) => Ok(labels.clone()),
        Some(Read::NotFound) => Ok(BTreeMap::new()),
        Some(Read::Denied(m)) => Err(retrying(
            o,
            status,
            format!(
                "The operator may not read namespace {namespace} to match PasscodeResetScope selectors: {m}. Check its RBAC (get on namespaces)."
            ),
        )),
        Some(Read::Unavailable(m)) => Err(retrying(
            o,
            status,
            format!("Could not read namespace {namespace}: {m}"),
        )),
    }
}

/// Who may: the scope check for the enterprise (`policy` unknown yet) or for the device's AMAPI
/// policy too. Passes `Unscoped`, `NeedsPolicy` and `Allowed`.
pub(super) fn check_scope(
    o: &Observed,
    status: &PasscodeResetStatus,
    labels: &BTreeMap<String, String>,
    enterprise: &str,
    policy: Option<Option<&str>>,
    stop: &dyn Fn(Reason, String) -> Decision,
) -> Gate<ScopeCheck> {
    let namespace = o.reset.metadata.namespace.as_deref().unwrap_or_default();
    let subject = Subject {
        namespace,
        labels,
        enterprise,
        policy,
    };
    let answer = scopes::check(&o.inputs.scopes, o.config.require_scopes, &subject);
    let _ = status;
    match &answer {
        ScopeCheck::NoScope => Err(stop(
            Reason::NoScope,
            format!(
                "No PasscodeResetScope covers namespace {namespace}, so resets created here may touch no device. Ask the platform team for a scope listing this namespace. Nothing was sent."
            ),
        )),
        ScopeCheck::EnterpriseOutOfScope { scopes } => Err(stop(
            Reason::EnterpriseOutOfScope,
            format!(
                "The PasscodeResetScopes covering namespace {namespace} ({}) do not allow enterprise {enterprise}. Nothing was sent.",
                scopes.join(", ")
            ),
        )),
        ScopeCheck::PolicyOutOfScope { scopes } => Err(stop(
            Reason::PolicyOutOfScope,
            format!(
                "The device is on AMAPI policy {}, which the PasscodeResetScopes covering namespace {namespace} and enterprise {enterprise} ({}) do not allow. Nothing was sent.",
                policy.flatten().unwrap_or("(none)"),
                scopes.join(", ")
            ),
        )),
        ScopeCheck::Unscoped | ScopeCheck::NeedsPolicy | ScopeCheck::Allowed { .. } => Ok(answer),
    }
}

/// Who approved: when the scope requires it, a second person's sealed approval of this exact
/// spec; a denial ends the reset, and so does waiting longer than `window`.
pub(super) fn check_approval(
    o: &Observed,
    window: Option<Duration>,
    scope: &str,
    stop: &dyn Fn(Reason, String) -> Decision,
) -> Gate<()> {
    let Some(window) = window else {
        return Ok(());
    };
    let Some(requester) = verified_requester(o) else {
        return Err(stop(
            Reason::RequesterUnknown,
            format!(
                "PasscodeResetScope {scope} requires a second person's approval, and this reset has no recorded requester to tell the second person from; it is refused. Create it again while the admission webhook runs. Nothing was sent."
            ),
        ));
    };
    let created = o
        .reset
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(o.now, |t| t.0);
    let deadline = created + jiff::SignedDuration::try_from(window).unwrap_or_default();
    let mut note = String::new();
    match &o.inputs.admission.approval {
        // Decided after the deadline (the reset was not looked at in between): too late.
        Approval::Decided(d) if d.decided_at.0 > deadline => {
            note = format!(
                " The decision by {} came after the deadline.",
                d.approver.username
            );
        }
        // A denial is final, also of an earlier spec: it is no request to decide again.
        Approval::Decided(d) | Approval::Stale(d) if d.decision == Verdict::Denied => {
            return Err(stop(
                Reason::Denied,
                format!(
                    "Denied by {} at {}. Nothing was sent.",
                    d.approver.username, d.decided_at.0
                ),
            ));
        }
        Approval::Decided(d) if !same_person(&d.approver, requester) => return Ok(()),
        Approval::Decided(_) => {}
        Approval::Stale(d) => {
            note = format!(
                " The approval by {} was for an earlier spec and does not count for this one.",
                d.approver.username
            );
        }
        Approval::Unsealed => {
            note = format!(
                " metadata.annotations[{APPROVAL_ANNOTATION}] was not written by the admission webhook and does not count."
            );
        }
        Approval::None => {}
    }
    let waited = age(o);
    if waited >= window {
        return Err(stop(
            Reason::ApprovalExpired,
            format!(
                "Nobody approved the reset within {} (PasscodeResetScope {scope} requires approval).{note} Nothing was sent; create a new PasscodeReset to ask again.",
                humanize(window)
            ),
        ));
    }
    let (namespace, name) = key(o.reset)
        .split_once('/')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap_or_default();
    let mut d = stop(
        Reason::AwaitingApproval,
        format!(
            "PasscodeResetScope {scope} requires approval by a person other than {} with the verb approve on passcoderesets: kubectl annotate passcodereset {name} -n {namespace} {DECISION_ANNOTATION}=approve (or =deny). Waiting until {}.{note}",
            requester.username,
            deadline.round(jiff::Unit::Second).unwrap_or(deadline)
        ),
    );
    let left = window.saturating_sub(waited);
    d.requeue = Some(left.min(APPROVAL_RECHECK).max(Duration::from_secs(1)));
    Err(d)
}
