//! Who may: which PasscodeResetScopes cover a reset's namespace, and whether they allow its
//! enterprise and its device's AMAPI policy. Pure.
//!
//! With no scopes at all (and scopes not made mandatory) nothing is restricted beyond
//! `--enterprises`, so installs without scopes keep working. Once scopes are in use, a namespace
//! no scope covers may reset nothing. Several scopes may cover one namespace: a reset is allowed
//! when one of them allows its enterprise and policy, and needs approval when any scope that
//! allows it requires approval (the strictest wins, with the shortest approval time).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::core::{Selector, SelectorExt};

use crate::api::PasscodeResetScope;
use crate::api::scope::DEFAULT_APPROVAL_SECS;
use crate::api::validation::parse_duration_secs;

/// The answer of the scope check.
#[derive(Debug, Clone, PartialEq)]
pub enum ScopeCheck {
    /// No scopes in use: only `--enterprises` applies.
    Unscoped,
    /// Scopes are in use and none covers the namespace.
    NoScope,
    /// The scopes covering the namespace (named) do not allow the enterprise.
    EnterpriseOutOfScope { scopes: Vec<String> },
    /// The enterprise is allowed; the device's policy is not known yet and some allowing scope
    /// restricts policies.
    NeedsPolicy,
    /// The scopes allowing the enterprise (named) do not allow the device's policy.
    PolicyOutOfScope { scopes: Vec<String> },
    /// Allowed by the named scopes; `approval` is how long a decision may take, when one is
    /// required.
    Allowed {
        scopes: Vec<String>,
        approval: Option<Duration>,
    },
}

/// What is known about the reset when checking.
pub struct Subject<'a> {
    pub namespace: &'a str,
    /// The namespace's labels (only read when a scope selects by label).
    pub labels: &'a BTreeMap<String, String>,
    pub enterprise: &'a str,
    /// The device's AMAPI policy, once the device was read (`Some(None)`: it has none).
    pub policy: Option<Option<&'a str>>,
}

/// Whether `scope` covers `namespace`. A selector that cannot be evaluated covers nothing.
pub fn covers(
    scope: &PasscodeResetScope,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    if scope.spec.namespaces.iter().any(|n| n == namespace) {
        return true;
    }
    scope
        .spec
        .namespace_selector
        .clone()
        .and_then(|s| Selector::try_from(s).ok())
        .is_some_and(|s| s.matches(labels))
}

/// Whether any scope selects namespaces by label (so the namespace's labels must be read).
pub fn needs_labels(scopes: &[Arc<PasscodeResetScope>]) -> bool {
    scopes.iter().any(|s| s.spec.namespace_selector.is_some())
}

/// The scope check. `required`: scopes are mandatory even when none exist.
pub fn check(scopes: &[Arc<PasscodeResetScope>], required: bool, subject: &Subject) -> ScopeCheck {
    if scopes.is_empty() && !required {
        return ScopeCheck::Unscoped;
    }
    let mut covering: Vec<&PasscodeResetScope> = scopes
        .iter()
        .map(|s| s.as_ref())
        .filter(|s| covers(s, subject.namespace, subject.labels))
        .collect();
    covering.sort_by_key(|s| s.name_any());
    if covering.is_empty() {
        return ScopeCheck::NoScope;
    }
    let names = |list: &[&PasscodeResetScope]| list.iter().map(|s| s.name_any()).collect();
    let by_enterprise: Vec<&PasscodeResetScope> = covering
        .iter()
        .copied()
        .filter(|s| s.spec.enterprises.iter().any(|e| e == subject.enterprise))
        .collect();
    if by_enterprise.is_empty() {
        return ScopeCheck::EnterpriseOutOfScope {
            scopes: names(&covering),
        };
    }
    let allowing: Vec<&PasscodeResetScope> = match subject.policy {
        None if by_enterprise
            .iter()
            .any(|s| !s.spec.amapi_policies.is_empty()) =>
        {
            return ScopeCheck::NeedsPolicy;
        }
        None => by_enterprise.clone(),
        Some(policy) => by_enterprise
            .iter()
            .copied()
            .filter(|s| {
                s.spec.amapi_policies.is_empty()
                    || policy.is_some_and(|p| s.spec.amapi_policies.iter().any(|a| a == p))
            })
            .collect(),
    };
    if allowing.is_empty() {
        return ScopeCheck::PolicyOutOfScope {
            scopes: names(&by_enterprise),
        };
    }
    let approval = allowing
        .iter()
        .filter_map(|s| s.spec.approval.as_ref().filter(|a| a.required))
        .map(|a| {
            let secs = a
                .expires_after
                .as_deref()
                .and_then(parse_duration_secs)
                .filter(|s| *s > 0)
                .unwrap_or(DEFAULT_APPROVAL_SECS);
            Duration::from_secs(secs)
        })
        .min();
    ScopeCheck::Allowed {
        scopes: names(&allowing),
        approval,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Approval, PasscodeResetScopeSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use proptest::prelude::*;

    fn scope(name: &str, spec: PasscodeResetScopeSpec) -> Arc<PasscodeResetScope> {
        Arc::new(PasscodeResetScope::new(name, spec))
    }

    fn spec(namespaces: &[&str], enterprises: &[&str]) -> PasscodeResetScopeSpec {
        PasscodeResetScopeSpec {
            namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            namespace_selector: None,
            enterprises: enterprises.iter().map(|s| s.to_string()).collect(),
            amapi_policies: Vec::new(),
            approval: None,
        }
    }

    fn subject<'a>(
        ns: &'a str,
        labels: &'a BTreeMap<String, String>,
        enterprise: &'a str,
        policy: Option<Option<&'a str>>,
    ) -> Subject<'a> {
        Subject {
            namespace: ns,
            labels,
            enterprise,
            policy,
        }
    }

    #[test]
    fn no_scopes_is_todays_behaviour_unless_required() {
        let l = BTreeMap::new();
        assert_eq!(
            check(&[], false, &subject("a", &l, "E", None)),
            ScopeCheck::Unscoped
        );
        assert_eq!(
            check(&[], true, &subject("a", &l, "E", None)),
            ScopeCheck::NoScope
        );
    }

    #[test]
    fn a_namespace_no_scope_covers_may_reset_nothing() {
        let l = BTreeMap::new();
        let s = [scope("team-a", spec(&["team-a"], &["E"]))];
        assert_eq!(
            check(&s, false, &subject("team-b", &l, "E", None)),
            ScopeCheck::NoScope
        );
        assert!(matches!(
            check(&s, false, &subject("team-a", &l, "E", Some(None))),
            ScopeCheck::Allowed { .. }
        ));
    }

    #[test]
    fn selectors_cover_by_label() {
        let mut s = spec(&[], &["E"]);
        s.namespace_selector = Some(LabelSelector {
            match_labels: Some([("team".to_string(), "a".to_string())].into()),
            ..Default::default()
        });
        let s = [scope("by-label", s)];
        let a: BTreeMap<_, _> = [("team".to_string(), "a".to_string())].into();
        let b: BTreeMap<_, _> = [("team".to_string(), "b".to_string())].into();
        assert!(needs_labels(&s));
        assert!(matches!(
            check(&s, false, &subject("x", &a, "E", Some(None))),
            ScopeCheck::Allowed { .. }
        ));
        assert_eq!(
            check(&s, false, &subject("x", &b, "E", None)),
            ScopeCheck::NoScope
        );
    }

    #[test]
    fn enterprise_and_policy_are_checked_in_turn() {
        let l = BTreeMap::new();
        let mut a = spec(&["ns"], &["E1"]);
        a.amapi_policies = vec!["enterprises/E1/policies/team-a".into()];
        let s = [scope("team-a", a)];
        assert_eq!(
            check(&s, false, &subject("ns", &l, "E2", None)),
            ScopeCheck::EnterpriseOutOfScope {
                scopes: vec!["team-a".into()]
            }
        );
        assert_eq!(
            check(&s, false, &subject("ns", &l, "E1", None)),
            ScopeCheck::NeedsPolicy
        );
        assert_eq!(
            check(
                &s,
                false,
                &subject("ns", &l, "E1", Some(Some("enterprises/E1/policies/other")))
            ),
            ScopeCheck::PolicyOutOfScope {
                scopes: vec!["team-a".into()]
            }
        );
        assert_eq!(
            check(&s, false, &subject("ns", &l, "E1", Some(None))),
            ScopeCheck::PolicyOutOfScope {
                scopes: vec!["team-a".into()]
            }
        );
        assert_eq!(
            check(
                &s,
                false,
                &subject("ns", &l, "E1", Some(Some("enterprises/E1/policies/team-a")))
            ),
            ScopeCheck::Allowed {
                scopes: vec!["team-a".into()],
                approval: None
            }
        );
    }

    #[test]
    fn the_strictest_approval_of_the_allowing_scopes_wins() {
        let l = BTreeMap::new();
        let mut strict = spec(&["ns"], &["E"]);
        strict.approval = Some(Approval {
            required: true,
            expires_after: Some("30m".into()),
        });
        let mut lax = spec(&["ns"], &["E"]);
        lax.approval = Some(Approval {
            required: true,
            expires_after: None,
        });
        let open = spec(&["ns"], &["E"]);
        let s = [scope("a", open), scope("b", lax), scope("c", strict)];
        assert_eq!(
            check(&s, false, &subject("ns", &l, "E", Some(None))),
            ScopeCheck::Allowed {
                scopes: vec!["a".into(), "b".into(), "c".into()],
                approval: Some(Duration::from_secs(1800))
            }
        );
    }

    proptest! {
        /// Allowed only if some covering scope lists the enterprise and (when it restricts
        /// policies) the policy; approval only if an allowing scope requires it.
        #[test]
        fn allowed_exactly_when_one_scope_allows(
            scopes in prop::collection::vec(
                (prop::collection::vec(0..3u8, 0..3), prop::collection::vec(0..3u8, 1..3),
                 prop::collection::vec(0..3u8, 0..3), any::<bool>()), 1..5),
            ns in 0..3u8, ent in 0..3u8, pol in prop::option::of(0..3u8),
        ) {
            let built: Vec<Arc<PasscodeResetScope>> = scopes.iter().enumerate().map(|(i, (n, e, p, approve))| {
                let mut s = spec(&[], &[]);
                s.namespaces = n.iter().map(|n| format!("ns{n}")).collect();
                s.enterprises = e.iter().map(|e| format!("E{e}")).collect();
                s.amapi_policies = p.iter().map(|p| format!("enterprises/E/policies/p{p}")).collect();
                s.approval = approve.then(|| Approval { required: true, expires_after: None });
                scope(&format!("s{i}"), s)
            }).collect();
            let l = BTreeMap::new();
            let (ns, ent) = (format!("ns{ns}"), format!("E{ent}"));
            let pol = pol.map(|p| format!("enterprises/E/policies/p{p}"));
            let answer = check(&built, false, &subject(&ns, &l, &ent, Some(pol.as_deref())));
            let allowing: Vec<_> = built.iter().filter(|s| s.spec.namespaces.contains(&ns)
                && s.spec.enterprises.contains(&ent)
                && (s.spec.amapi_policies.is_empty() || pol.as_ref().is_some_and(|p| s.spec.amapi_policies.contains(p)))).collect();
            match answer {
                ScopeCheck::Allowed { scopes, approval } => {
                    prop_assert_eq!(scopes.len(), allowing.len());
                    prop_assert_eq!(approval.is_some(), allowing.iter().any(|s| s.spec.approval.is_some()));
                }
                _ => prop_assert!(allowing.is_empty()),
            }
        }
    }
}
