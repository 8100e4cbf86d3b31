//! The SCOPE_PROFILE password policy a WorkProfilePasscodePolicy asks of an AMAPI policy, and the
//! AMAPI policy's `passwordPolicies` corrected to carry it. Pure.

use crate::amapi::model::{PasswordRequirements, PasswordScope, Policy, google_duration};
use crate::api::PolicyRequirements;
use crate::api::validation::parse_duration_secs;
use crate::passcode::Requirements;

/// The SCOPE_PROFILE entry that expresses `r` in AMAPI's vocabulary: the judged fields through
/// the rules engine's mapping, the rest (wipe, expiry, unlock, unified lock) as declared.
pub fn desired_entry(r: &PolicyRequirements) -> PasswordRequirements {
    let name = |v: serde_json::Value| v.as_str().map(str::to_owned);
    PasswordRequirements {
        password_scope: Some(PasswordScope::Profile),
        maximum_failed_passwords_for_wipe: r
            .maximum_failed_passwords_for_wipe
            .map(|v| i32::try_from(v).unwrap_or(i32::MAX)),
        password_expiration_timeout: r
            .expiration_timeout
            .as_deref()
            .and_then(parse_duration_secs)
            .map(google_duration),
        require_password_unlock: r
            .require_password_unlock
            .and_then(|v| serde_json::to_value(v).ok())
            .and_then(name),
        unified_lock_settings: r
            .unified_lock_settings
            .and_then(|v| serde_json::to_value(v).ok())
            .and_then(name),
        ..Requirements::from(r).to_amapi()
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::api::{RequirePasswordUnlock, UnifiedLockSettings};
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
    fn entry_carries_every_declared_field() {
        let r = PolicyRequirements {
            quality: PasswordQuality::Complex,
            minimum_length: Some(8),
            minimum_letters: Some(2),
            minimum_lower_case: Some(1),
            minimum_upper_case: Some(1),
            minimum_non_letter: Some(2),
            minimum_numeric: Some(1),
            minimum_symbols: Some(1),
            history_length: Some(5),
            maximum_failed_passwords_for_wipe: Some(10),
            expiration_timeout: Some("90m".into()),
            require_password_unlock: Some(RequirePasswordUnlock::RequireEveryDay),
            unified_lock_settings: Some(UnifiedLockSettings::RequireSeparateWorkLock),
        };
        let json = serde_json::to_value(desired_entry(&r)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "passwordScope": "SCOPE_PROFILE",
                "passwordQuality": "COMPLEX",
                "passwordMinimumLength": 8,
                "passwordMinimumLetters": 2,
                "passwordMinimumLowerCase": 1,
                "passwordMinimumUpperCase": 1,
                "passwordMinimumNonLetter": 2,
                "passwordMinimumNumeric": 1,
                "passwordMinimumSymbols": 1,
                "passwordHistoryLength": 5,
                "maximumFailedPasswordsForWipe": 10,
                "passwordExpirationTimeout": "5400s",
                "requirePasswordUnlock": "REQUIRE_EVERY_DAY",
                "unifiedLockSettings": "REQUIRE_SEPARATE_WORK_LOCK",
            })
        );
        let bare = serde_json::to_value(desired_entry(&req(PasswordQuality::Unspecified, None)));
        assert_eq!(
            bare.unwrap(),
            serde_json::json!({"passwordScope": "SCOPE_PROFILE", "passwordQuality": "PASSWORD_QUALITY_UNSPECIFIED"}),
            "the quality is always named"
        );
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

    fn scope() -> impl Strategy<Value = Option<PasswordScope>> {
        prop::sample::select(vec![
            None,
            Some(PasswordScope::Unspecified),
            Some(PasswordScope::Device),
            Some(PasswordScope::Profile),
        ])
    }

    fn any_entry() -> impl Strategy<Value = PasswordRequirements> {
        (
            scope(),
            prop::sample::select(vec!["NUMERIC", "SOMETHING", "COMPLEX"]),
            prop::option::of(0i32..8),
        )
            .prop_map(|(password_scope, quality, length)| PasswordRequirements {
                password_scope,
                password_quality: Some(quality.into()),
                password_minimum_length: length,
                ..Default::default()
            })
    }

    proptest! {
        /// A correction holds exactly one SCOPE_PROFILE entry, the desired one, keeps every other
        /// entry in its order, and is itself in sync.
        #[test]
        fn a_correction_is_in_sync_and_keeps_other_scopes(
            entries in prop::collection::vec(any_entry(), 0..5),
            length in prop::option::of(0u32..8),
        ) {
            let entry = desired_entry(&req(PasswordQuality::Numeric, length));
            let policy = Policy { password_policies: entries.clone(), ..Default::default() };
            let others = |l: &[PasswordRequirements]| -> Vec<PasswordRequirements> {
                l.iter().filter(|p| p.password_scope != Some(PasswordScope::Profile)).cloned().collect()
            };
            match corrected(&policy, &entry) {
                None => {
                    let profile: Vec<_> = entries.iter().filter(|p| p.password_scope == Some(PasswordScope::Profile)).collect();
                    prop_assert_eq!(profile.len(), 1);
                    prop_assert!(same(profile[0], &entry));
                }
                Some(next) => {
                    let profile: Vec<_> = next.iter().filter(|p| p.password_scope == Some(PasswordScope::Profile)).collect();
                    prop_assert_eq!(profile, vec![&entry]);
                    prop_assert_eq!(others(&next), others(&entries));
                    let fixed = Policy { password_policies: next, ..Default::default() };
                    prop_assert_eq!(corrected(&fixed, &entry), None);
                }
            }
        }
    }
}
