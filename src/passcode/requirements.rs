//! What AMAPI password requirements mean on the device, and how several of
//! them combine. Each requirement is translated the way Android translates an
//! admin's policy (`PasswordPolicy.getMinMetrics` plus the complexity band),
//! then all are merged field by field, strictest wins (`PasswordMetrics.merge`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::complexity::{Complexity, CredentialType};
use super::{MAX_PASSWORD_LENGTH, MIN_LOCK_LENGTH};

/// AMAPI `passwordQuality`: the kind of passcode a policy asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PasswordQuality {
    /// No requirement: any passcode, or none at all (the passcode may be cleared).
    #[default]
    #[serde(rename = "PASSWORD_QUALITY_UNSPECIFIED")]
    Unspecified,
    /// Some passcode is required (on the device, weak biometrics also count); it cannot be cleared.
    BiometricWeak,
    /// Some passcode is required; it cannot be cleared.
    Something,
    /// A PIN or password of at least `passwordMinimumLength` characters.
    Numeric,
    /// As NUMERIC, and no repeating or ordered sequence longer than 3 (like 1111 or 1234).
    NumericComplex,
    /// A password (at least one non-digit) of at least `passwordMinimumLength` characters.
    Alphabetic,
    /// A password with at least one digit and one non-digit, of at least `passwordMinimumLength` characters.
    Alphanumeric,
    /// A password meeting every `passwordMinimum*` count; unset counts default to 1 letter, 1 digit and 1 symbol.
    Complex,
    /// Android's low complexity band: any PIN or password.
    ComplexityLow,
    /// Android's medium complexity band: at least 4 characters, no sequence longer than 3.
    ComplexityMedium,
    /// Android's high complexity band: no sequence longer than 3, at least 8 digits for a PIN or 6 characters for a password.
    ComplexityHigh,
}

impl PasswordQuality {
    /// Every quality AMAPI defines, in its order.
    pub const ALL: [PasswordQuality; 11] = [
        PasswordQuality::Unspecified,
        PasswordQuality::BiometricWeak,
        PasswordQuality::Something,
        PasswordQuality::Numeric,
        PasswordQuality::NumericComplex,
        PasswordQuality::Alphabetic,
        PasswordQuality::Alphanumeric,
        PasswordQuality::Complex,
        PasswordQuality::ComplexityLow,
        PasswordQuality::ComplexityMedium,
        PasswordQuality::ComplexityHigh,
    ];

    /// The complexity band a `COMPLEXITY_*` quality asks for; other qualities
    /// are expressed as minimum metrics instead.
    fn complexity(self) -> Complexity {
        match self {
            PasswordQuality::ComplexityLow => Complexity::Low,
            PasswordQuality::ComplexityMedium => Complexity::Medium,
            PasswordQuality::ComplexityHigh => Complexity::High,
            _ => Complexity::None,
        }
    }
}

/// The part of one AMAPI `PasswordRequirements` that a passcode can be judged
/// against. `None` means the field is absent from the policy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Requirements {
    /// `passwordQuality`.
    pub quality: PasswordQuality,
    /// `passwordMinimumLength`; enforced from NUMERIC up to COMPLEX only.
    pub minimum_length: Option<u32>,
    /// `passwordMinimumLetters`; COMPLEX only (default 1).
    pub minimum_letters: Option<u32>,
    /// `passwordMinimumLowerCase`; COMPLEX only (default 0).
    pub minimum_lower_case: Option<u32>,
    /// `passwordMinimumUpperCase`; COMPLEX only (default 0).
    pub minimum_upper_case: Option<u32>,
    /// `passwordMinimumNonLetter`; COMPLEX only (default 0).
    pub minimum_non_letter: Option<u32>,
    /// `passwordMinimumNumeric`; COMPLEX only (default 1).
    pub minimum_numeric: Option<u32>,
    /// `passwordMinimumSymbols`; COMPLEX only (default 1).
    pub minimum_symbols: Option<u32>,
    /// `passwordHistoryLength`. Only the device knows the history, so this is
    /// never judged; it is carried so a refusal can mention possible reuse.
    pub history_length: Option<u32>,
}

/// The weakest kind of credential the merged requirements accept, ordered from
/// weakest to strongest (Android's credential types without the pattern).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RequiredCredential {
    /// Nothing required; the passcode may be cleared.
    #[default]
    None,
    /// Any credential (SOMETHING, BIOMETRIC_WEAK).
    Something,
    /// A PIN or a password (NUMERIC, NUMERIC_COMPLEX).
    Pin,
    /// A password, i.e. not digits only (ALPHABETIC and up).
    Password,
}

impl RequiredCredential {
    /// Whether a credential of this type is strong enough.
    pub fn accepts(self, actual: CredentialType) -> bool {
        match self {
            RequiredCredential::None => true,
            RequiredCredential::Something => actual != CredentialType::None,
            RequiredCredential::Pin => {
                matches!(actual, CredentialType::Pin | CredentialType::Password)
            }
            RequiredCredential::Password => actual == CredentialType::Password,
        }
    }
}

/// The combined effect of every requirement that governs one device: Android's
/// minimum metrics plus a minimum complexity band, each field the strictest of
/// all inputs. Merging is commutative, associative and idempotent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Governing {
    pub(super) credential: RequiredCredential,
    pub(super) minimum_length: u32,
    pub(super) minimum_letters: u32,
    pub(super) minimum_upper_case: u32,
    pub(super) minimum_lower_case: u32,
    pub(super) minimum_numeric: u32,
    pub(super) minimum_symbols: u32,
    pub(super) minimum_non_letter: u32,
    pub(super) minimum_non_numeric: u32,
    /// Sequences longer than [`super::MAX_ALLOWED_SEQUENCE`] are forbidden by the
    /// metrics themselves (NUMERIC_COMPLEX), independently of the band.
    pub(super) no_sequence: bool,
    pub(super) complexity: Complexity,
    pub(super) history_length: Option<u32>,
}

/// Minimums to compare a particular passcode with, after the complexity band
/// is folded in, the length is clamped to what Android can enforce, and
/// counters implied by other counters are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Minimums {
    pub length: u32,
    pub letters: u32,
    pub upper_case: u32,
    pub lower_case: u32,
    pub numeric: u32,
    pub symbols: u32,
    pub non_letter: u32,
    pub non_numeric: u32,
    pub no_sequence: bool,
}

impl Governing {
    /// No requirement at all: clearing is allowed and only Android's own
    /// minimums apply to a new passcode.
    pub fn none() -> Governing {
        Governing::default()
    }

    /// Android's reading of one requirement (`PasswordPolicy.getMinMetrics`,
    /// and the complexity band for `COMPLEXITY_*`).
    pub fn from_requirement(requirement: &Requirements) -> Governing {
        let length = requirement.minimum_length.unwrap_or(0);
        let mut governing = Governing {
            history_length: requirement.history_length.filter(|&n| n > 0),
            complexity: requirement.quality.complexity(),
            ..Governing::none()
        };
        match requirement.quality {
            PasswordQuality::Unspecified
            | PasswordQuality::ComplexityLow
            | PasswordQuality::ComplexityMedium
            | PasswordQuality::ComplexityHigh => {}
            PasswordQuality::BiometricWeak | PasswordQuality::Something => {
                governing.credential = RequiredCredential::Something;
            }
            PasswordQuality::Numeric | PasswordQuality::NumericComplex => {
                governing.credential = RequiredCredential::Pin;
                governing.minimum_length = length;
                governing.no_sequence = requirement.quality == PasswordQuality::NumericComplex;
            }
            PasswordQuality::Alphabetic => {
                governing.credential = RequiredCredential::Password;
                governing.minimum_length = length;
                governing.minimum_non_numeric = 1;
            }
            PasswordQuality::Alphanumeric => {
                governing.credential = RequiredCredential::Password;
                governing.minimum_length = length;
                governing.minimum_numeric = 1;
                governing.minimum_non_numeric = 1;
            }
            PasswordQuality::Complex => {
                governing.credential = RequiredCredential::Password;
                governing.minimum_length = length;
                governing.minimum_letters = requirement.minimum_letters.unwrap_or(1);
                governing.minimum_upper_case = requirement.minimum_upper_case.unwrap_or(0);
                governing.minimum_lower_case = requirement.minimum_lower_case.unwrap_or(0);
                governing.minimum_numeric = requirement.minimum_numeric.unwrap_or(1);
                governing.minimum_symbols = requirement.minimum_symbols.unwrap_or(1);
                governing.minimum_non_letter = requirement.minimum_non_letter.unwrap_or(0);
            }
        }
        governing
    }

    /// Merges every requirement in force; an empty slice is [`Governing::none`].
    pub fn from_requirements(requirements: &[Requirements]) -> Governing {
        requirements
            .iter()
            .map(Governing::from_requirement)
            .fold(Governing::none(), |acc, next| acc.merge(&next))
    }

    /// The weakest requirements that are at least as strict as both inputs.
    pub fn merge(&self, other: &Governing) -> Governing {
        Governing {
            credential: self.credential.max(other.credential),
            minimum_length: self.minimum_length.max(other.minimum_length),
            minimum_letters: self.minimum_letters.max(other.minimum_letters),
            minimum_upper_case: self.minimum_upper_case.max(other.minimum_upper_case),
            minimum_lower_case: self.minimum_lower_case.max(other.minimum_lower_case),
            minimum_numeric: self.minimum_numeric.max(other.minimum_numeric),
            minimum_symbols: self.minimum_symbols.max(other.minimum_symbols),
            minimum_non_letter: self.minimum_non_letter.max(other.minimum_non_letter),
            minimum_non_numeric: self.minimum_non_numeric.max(other.minimum_non_numeric),
            no_sequence: self.no_sequence || other.no_sequence,
            complexity: self.complexity.max(other.complexity),
            history_length: self.history_length.max(other.history_length),
        }
    }

    /// True when clearing the passcode (or setting an empty one) would be refused.
    pub fn requires_passcode(&self) -> bool {
        self.credential > RequiredCredential::None || self.complexity > Complexity::None
    }

    /// The weakest credential type accepted by the metrics part.
    pub fn credential(&self) -> RequiredCredential {
        self.credential
    }

    /// The minimum complexity band.
    pub fn complexity(&self) -> Complexity {
        self.complexity
    }

    /// The longest `passwordHistoryLength` in force, if any: the device may
    /// refuse a reused passcode that this engine cannot detect.
    pub fn history_length(&self) -> Option<u32> {
        self.history_length
    }

    /// Whether any rule forbids sequences longer than [`super::MAX_ALLOWED_SEQUENCE`].
    pub(super) fn forbids_sequences(&self) -> bool {
        self.no_sequence || !self.complexity.allows_sequences()
    }

    /// Minimums for a PIN (`digits_only`) or a password, as Android derives
    /// them before comparing (`applyComplexity`, the length clamp between 4
    /// and 16, and `removeOverlapping` for the counters).
    ///
    /// The length is kept even when counters imply it, so the checklist always
    /// shows a length line; that never changes the verdict.
    pub(super) fn minimums(&self, digits_only: bool) -> Minimums {
        let length = self
            .minimum_length
            .max(self.complexity.minimum_length(!digits_only))
            .clamp(MIN_LOCK_LENGTH, MAX_PASSWORD_LENGTH);

        let indirect_letters = self
            .minimum_upper_case
            .saturating_add(self.minimum_lower_case);
        let indirect_non_letter = self.minimum_numeric.saturating_add(self.minimum_symbols);
        let indirect_non_numeric = self
            .minimum_letters
            .max(indirect_letters)
            .saturating_add(self.minimum_symbols);
        let drop_if_implied = |required: u32, implied: u32| {
            if implied >= required { 0 } else { required }
        };
        let mut non_numeric = drop_if_implied(self.minimum_non_numeric, indirect_non_numeric);
        // One non-digit is what "not digits only" means, already its own line.
        if self.credential == RequiredCredential::Password && non_numeric <= 1 {
            non_numeric = 0;
        }

        Minimums {
            length,
            letters: drop_if_implied(self.minimum_letters, indirect_letters),
            upper_case: self.minimum_upper_case,
            lower_case: self.minimum_lower_case,
            numeric: self.minimum_numeric,
            symbols: self.minimum_symbols,
            non_letter: drop_if_implied(self.minimum_non_letter, indirect_non_letter),
            non_numeric,
            no_sequence: self.forbids_sequences(),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    const TEST_VALUE: u32 = 10;

    /// AOSP PasswordPolicyTest's `testPolicy`: every field set to 10.
    fn test_policy(quality: PasswordQuality) -> Requirements {
        Requirements {
            quality,
            minimum_length: Some(TEST_VALUE),
            minimum_letters: Some(TEST_VALUE),
            minimum_lower_case: Some(TEST_VALUE),
            minimum_upper_case: Some(TEST_VALUE),
            minimum_non_letter: Some(TEST_VALUE),
            minimum_numeric: Some(TEST_VALUE),
            minimum_symbols: Some(TEST_VALUE),
            history_length: None,
        }
    }

    /// (credential, length, letters, upper, lower, numeric, symbols, nonLetter, nonNumeric, no_sequence)
    type Expected = (
        RequiredCredential,
        u32,
        u32,
        u32,
        u32,
        u32,
        u32,
        u32,
        u32,
        bool,
    );

    fn fields(g: &Governing) -> Expected {
        (
            g.credential,
            g.minimum_length,
            g.minimum_letters,
            g.minimum_upper_case,
            g.minimum_lower_case,
            g.minimum_numeric,
            g.minimum_symbols,
            g.minimum_non_letter,
            g.minimum_non_numeric,
            g.no_sequence,
        )
    }

    // AOSP PasswordPolicyTest#testGetMinMetrics_unspecified, _something,
    // _biometricWeak, _numeric, _numericComplex, _alphabetic, _alphanumeric, _complex.
    #[test]
    fn get_min_metrics_per_quality() {
        use RequiredCredential as C;
        let t = TEST_VALUE;
        let cases: &[(PasswordQuality, Expected)] = &[
            (
                PasswordQuality::Unspecified,
                (C::None, 0, 0, 0, 0, 0, 0, 0, 0, false),
            ),
            (
                PasswordQuality::Something,
                (C::Something, 0, 0, 0, 0, 0, 0, 0, 0, false),
            ),
            (
                PasswordQuality::BiometricWeak,
                (C::Something, 0, 0, 0, 0, 0, 0, 0, 0, false),
            ),
            (
                PasswordQuality::Numeric,
                (C::Pin, t, 0, 0, 0, 0, 0, 0, 0, false),
            ),
            (
                PasswordQuality::NumericComplex,
                (C::Pin, t, 0, 0, 0, 0, 0, 0, 0, true),
            ),
            (
                PasswordQuality::Alphabetic,
                (C::Password, t, 0, 0, 0, 0, 0, 0, 1, false),
            ),
            (
                PasswordQuality::Alphanumeric,
                (C::Password, t, 0, 0, 0, 1, 0, 0, 1, false),
            ),
            (
                PasswordQuality::Complex,
                (C::Password, t, t, t, t, t, t, t, 0, false),
            ),
        ];
        for &(quality, expected) in cases {
            let g = Governing::from_requirement(&test_policy(quality));
            assert_eq!(fields(&g), expected, "{quality:?}");
            assert_eq!(g.complexity, Complexity::None, "{quality:?}");
        }
    }

    // AOSP PasswordPolicyTest#testGetMinMetrics_numericDefaultLength.
    #[test]
    fn get_min_metrics_numeric_default_length() {
        let g = Governing::from_requirement(&Requirements {
            minimum_length: None,
            ..test_policy(PasswordQuality::Numeric)
        });
        assert_eq!(g.minimum_length, 0);
    }

    // AOSP PasswordPolicyTest#testGetMinMetrics_complexDefault.
    #[test]
    fn get_min_metrics_complex_default() {
        let g = Governing::from_requirement(&Requirements {
            quality: PasswordQuality::Complex,
            ..Requirements::default()
        });
        assert_eq!(
            fields(&g),
            (RequiredCredential::Password, 0, 1, 0, 0, 1, 1, 0, 0, false)
        );
    }

    #[test]
    fn complexity_qualities_give_a_band_and_ignore_length() {
        for (quality, band) in [
            (PasswordQuality::ComplexityLow, Complexity::Low),
            (PasswordQuality::ComplexityMedium, Complexity::Medium),
            (PasswordQuality::ComplexityHigh, Complexity::High),
        ] {
            let g = Governing::from_requirement(&test_policy(quality));
            assert_eq!(g.complexity, band);
            assert_eq!(fields(&g), fields(&Governing::none()));
            assert!(g.requires_passcode());
        }
    }

    // AOSP PasswordMetricsTest#testMerge_single and #testMerge_credentialTypes
    // (a pattern is AMAPI's SOMETHING; a bare password type is ALPHABETIC here).
    #[test]
    fn merge_credential_types() {
        let of = |quality| Requirements {
            quality,
            ..Requirements::default()
        };
        let none = of(PasswordQuality::Unspecified);
        let pattern = of(PasswordQuality::Something);
        let password = of(PasswordQuality::Alphabetic);
        let merged = |rs: &[Requirements]| Governing::from_requirements(rs).credential;
        assert_eq!(
            merged(std::slice::from_ref(&password)),
            RequiredCredential::Password
        );
        assert_eq!(
            merged(&[none.clone(), pattern.clone()]),
            RequiredCredential::Something
        );
        assert_eq!(
            merged(&[none, password.clone()]),
            RequiredCredential::Password
        );
        assert_eq!(merged(&[password, pattern]), RequiredCredential::Password);
        assert_eq!(merged(&[]), RequiredCredential::None);
    }

    #[test]
    fn requires_passcode() {
        assert!(!Governing::none().requires_passcode());
        let of = |quality| {
            Governing::from_requirement(&Requirements {
                quality,
                ..Requirements::default()
            })
        };
        assert!(!of(PasswordQuality::Unspecified).requires_passcode());
        assert!(of(PasswordQuality::BiometricWeak).requires_passcode());
        assert!(of(PasswordQuality::Numeric).requires_passcode());
        assert!(of(PasswordQuality::ComplexityLow).requires_passcode());
    }

    #[test]
    fn counters_implied_by_others_are_dropped() {
        // removeOverlapping: upper + lower imply letters, numeric + symbols imply
        // nonLetter, letters + symbols imply nonNumeric.
        let g = Governing::from_requirement(&Requirements {
            quality: PasswordQuality::Complex,
            minimum_letters: Some(4),
            minimum_upper_case: Some(2),
            minimum_lower_case: Some(2),
            minimum_numeric: Some(1),
            minimum_symbols: Some(1),
            minimum_non_letter: Some(2),
            ..Requirements::default()
        });
        let m = g.minimums(false);
        assert_eq!((m.letters, m.non_letter), (0, 0));
        assert_eq!(
            (m.upper_case, m.lower_case, m.numeric, m.symbols),
            (2, 2, 1, 1)
        );
        // Not implied: 5 letters needs more than 2 + 2.
        let g = Governing::from_requirement(&Requirements {
            quality: PasswordQuality::Complex,
            minimum_letters: Some(5),
            minimum_upper_case: Some(2),
            minimum_lower_case: Some(2),
            minimum_non_letter: Some(3),
            ..Requirements::default()
        });
        let m = g.minimums(false);
        assert_eq!((m.letters, m.non_letter), (5, 3));
    }

    #[test]
    fn length_is_clamped_between_4_and_16_and_follows_the_band() {
        let numeric = |length| Requirements {
            quality: PasswordQuality::Numeric,
            minimum_length: Some(length),
            ..Requirements::default()
        };
        assert_eq!(
            Governing::from_requirement(&numeric(0))
                .minimums(true)
                .length,
            4
        );
        assert_eq!(
            Governing::from_requirement(&numeric(20))
                .minimums(true)
                .length,
            16
        );
        let high = Governing::from_requirements(&[
            numeric(0),
            Requirements {
                quality: PasswordQuality::ComplexityHigh,
                ..Requirements::default()
            },
        ]);
        assert_eq!(high.minimums(true).length, 8);
        assert_eq!(high.minimums(false).length, 6);
        assert!(high.minimums(true).no_sequence);
    }

    #[test]
    fn history_is_carried_not_judged() {
        let g = Governing::from_requirements(&[
            Requirements {
                history_length: Some(3),
                ..Requirements::default()
            },
            Requirements {
                history_length: Some(5),
                ..Requirements::default()
            },
        ]);
        assert_eq!(g.history_length(), Some(5));
        assert!(!g.requires_passcode());
    }

    #[test]
    fn quality_serde_uses_amapi_names() {
        let cases = [
            (PasswordQuality::Unspecified, "PASSWORD_QUALITY_UNSPECIFIED"),
            (PasswordQuality::BiometricWeak, "BIOMETRIC_WEAK"),
            (PasswordQuality::Something, "SOMETHING"),
            (PasswordQuality::Numeric, "NUMERIC"),
            (PasswordQuality::NumericComplex, "NUMERIC_COMPLEX"),
            (PasswordQuality::Alphabetic, "ALPHABETIC"),
            (PasswordQuality::Alphanumeric, "ALPHANUMERIC"),
            (PasswordQuality::Complex, "COMPLEX"),
            (PasswordQuality::ComplexityLow, "COMPLEXITY_LOW"),
            (PasswordQuality::ComplexityMedium, "COMPLEXITY_MEDIUM"),
            (PasswordQuality::ComplexityHigh, "COMPLEXITY_HIGH"),
        ];
        for (quality, name) in cases {
            assert_eq!(serde_json::to_value(quality).unwrap(), name);
            let back: PasswordQuality = serde_json::from_value(name.into()).unwrap();
            assert_eq!(back, quality);
        }
        assert_eq!(PasswordQuality::default(), PasswordQuality::Unspecified);
        let schema = serde_json::to_string(&schemars::schema_for!(PasswordQuality)).unwrap();
        assert!(schema.contains("PASSWORD_QUALITY_UNSPECIFIED"));
        assert!(schema.contains("weak biometrics"));
    }

    /// ALL names every variant exactly once: the schema's enum has the same values.
    #[test]
    fn all_lists_every_quality() {
        let schema = serde_json::to_value(schemars::schema_for!(PasswordQuality)).unwrap();
        let mut listed: Vec<String> = PasswordQuality::ALL
            .iter()
            .map(|q| {
                serde_json::to_value(q)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let mut schema_values: Vec<String> = schema
            .to_string()
            .split('"')
            .filter(|t| t.chars().all(|c| c.is_ascii_uppercase() || c == '_') && t.len() > 3)
            .map(str::to_owned)
            .collect();
        listed.sort();
        listed.dedup();
        schema_values.sort();
        schema_values.dedup();
        assert_eq!(listed.len(), 11);
        assert_eq!(listed, schema_values);
    }

    pub(in super::super) fn any_quality() -> impl Strategy<Value = PasswordQuality> {
        prop::sample::select(PasswordQuality::ALL.to_vec())
    }

    fn small() -> impl Strategy<Value = Option<u32>> {
        prop::option::of(0u32..8)
    }

    pub(in super::super) fn any_requirements() -> impl Strategy<Value = Requirements> {
        (
            any_quality(),
            prop::option::of(0u32..20),
            (small(), small(), small(), small(), small(), small()),
            prop::option::of(0u32..10),
        )
            .prop_map(|(quality, minimum_length, counters, history_length)| {
                let (letters, lower, upper, non_letter, numeric, symbols) = counters;
                Requirements {
                    quality,
                    minimum_length,
                    minimum_letters: letters,
                    minimum_lower_case: lower,
                    minimum_upper_case: upper,
                    minimum_non_letter: non_letter,
                    minimum_numeric: numeric,
                    minimum_symbols: symbols,
                    history_length,
                }
            })
    }

    proptest! {
        #[test]
        fn merge_is_commutative_associative_and_idempotent(
            a in any_requirements(), b in any_requirements(), c in any_requirements()
        ) {
            let (ga, gb, gc) = (
                Governing::from_requirement(&a),
                Governing::from_requirement(&b),
                Governing::from_requirement(&c),
            );
            prop_assert_eq!(ga.merge(&gb), gb.merge(&ga));
            prop_assert_eq!(ga.merge(&ga), ga.clone());
            prop_assert_eq!(ga.merge(&gb).merge(&gc), ga.merge(&gb.merge(&gc)));
            prop_assert_eq!(ga.merge(&Governing::none()), ga.clone());
            prop_assert_eq!(
                Governing::from_requirements(&[a.clone(), b.clone(), c.clone()]),
                Governing::from_requirements(&[c.clone(), a.clone(), b.clone()])
            );
            prop_assert_eq!(
                Governing::from_requirements(&[a.clone(), a.clone(), b.clone()]),
                Governing::from_requirements(&[b, a])
            );
        }
    }
}
