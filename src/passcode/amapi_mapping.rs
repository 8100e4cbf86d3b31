//! The one mapping between AMAPI's `PasswordRequirements` and the engine's [`Requirements`], both
//! ways. The reconcilers and the simulated device all read a policy through it, so the operator
//! and the device it predicts never disagree about what a policy asks for.

use super::requirements::{PasswordQuality, Requirements};
use crate::amapi::model::PasswordRequirements;

/// What a `passwordQuality` this build does not know means: some passcode is required, its shape
/// left to the device. Never UNSPECIFIED, which would let a reset clear the passcode of a device
/// whose policy requires one. Not the strictest known rules either: AMAPI has added weak values
/// before (BIOMETRIC_WEAK), and refusing passcodes the device accepts would only mislead.
pub const UNKNOWN_QUALITY: PasswordQuality = PasswordQuality::Something;

impl PasswordQuality {
    /// AMAPI's name for the quality (`NUMERIC_COMPLEX`), as serde writes it.
    pub fn amapi_name(self) -> &'static str {
        match self {
            PasswordQuality::Unspecified => "PASSWORD_QUALITY_UNSPECIFIED",
            PasswordQuality::BiometricWeak => "BIOMETRIC_WEAK",
            PasswordQuality::Something => "SOMETHING",
            PasswordQuality::Numeric => "NUMERIC",
            PasswordQuality::NumericComplex => "NUMERIC_COMPLEX",
            PasswordQuality::Alphabetic => "ALPHABETIC",
            PasswordQuality::Alphanumeric => "ALPHANUMERIC",
            PasswordQuality::Complex => "COMPLEX",
            PasswordQuality::ComplexityLow => "COMPLEXITY_LOW",
            PasswordQuality::ComplexityMedium => "COMPLEXITY_MEDIUM",
            PasswordQuality::ComplexityHigh => "COMPLEXITY_HIGH",
        }
    }

    /// The quality AMAPI calls `name`, if this build knows it.
    pub fn from_amapi_name(name: &str) -> Option<PasswordQuality> {
        PasswordQuality::ALL
            .into_iter()
            .find(|q| q.amapi_name() == name)
    }

    /// A `passwordQuality` field as the engine reads it: absent is UNSPECIFIED (AMAPI's default),
    /// unknown is [`UNKNOWN_QUALITY`].
    pub fn from_amapi(name: Option<&str>) -> PasswordQuality {
        name.map_or(PasswordQuality::Unspecified, |n| {
            PasswordQuality::from_amapi_name(n).unwrap_or(UNKNOWN_QUALITY)
        })
    }
}

impl Requirements {
    /// The judged part of an AMAPI `PasswordRequirements`. A negative count means nothing to
    /// Android, so it reads as absent.
    pub fn from_amapi(r: &PasswordRequirements) -> Requirements {
        let count = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok());
        Requirements {
            quality: PasswordQuality::from_amapi(r.password_quality.as_deref()),
            minimum_length: count(r.password_minimum_length),
            minimum_letters: count(r.password_minimum_letters),
            minimum_lower_case: count(r.password_minimum_lower_case),
            minimum_upper_case: count(r.password_minimum_upper_case),
            minimum_non_letter: count(r.password_minimum_non_letter),
            minimum_numeric: count(r.password_minimum_numeric),
            minimum_symbols: count(r.password_minimum_symbols),
            history_length: count(r.password_history_length),
        }
    }

    /// These requirements in AMAPI's words. Only the judged fields are set (the scope and the
    /// rest are the caller's); the quality is always named, UNSPECIFIED included.
    pub fn to_amapi(&self) -> PasswordRequirements {
        // AMAPI counts are int32; past that, the strictest value it can carry.
        let count = |v: Option<u32>| v.map(|v| i32::try_from(v).unwrap_or(i32::MAX));
        PasswordRequirements {
            password_quality: Some(self.quality.amapi_name().to_owned()),
            password_minimum_length: count(self.minimum_length),
            password_minimum_letters: count(self.minimum_letters),
            password_minimum_lower_case: count(self.minimum_lower_case),
            password_minimum_upper_case: count(self.minimum_upper_case),
            password_minimum_non_letter: count(self.minimum_non_letter),
            password_minimum_numeric: count(self.minimum_numeric),
            password_minimum_symbols: count(self.minimum_symbols),
            password_history_length: count(self.history_length),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::passcode::requirements::tests::any_quality;
    use crate::passcode::{Governing, judge};

    #[test]
    fn names_are_serdes() {
        for q in PasswordQuality::ALL {
            assert_eq!(serde_json::to_value(q).unwrap(), q.amapi_name(), "{q:?}");
            assert_eq!(PasswordQuality::from_amapi_name(q.amapi_name()), Some(q));
        }
        assert_eq!(PasswordQuality::from_amapi_name("numeric"), None);
    }

    #[test]
    fn absent_quality_is_unspecified() {
        assert_eq!(
            PasswordQuality::from_amapi(None),
            PasswordQuality::Unspecified
        );
        let r = Requirements::from_amapi(&PasswordRequirements::default());
        assert_eq!(r, Requirements::default());
        assert!(!Governing::from_requirement(&r).requires_passcode());
    }

    #[test]
    fn unknown_quality_requires_a_passcode() {
        let applied = PasswordRequirements {
            password_quality: Some("QUANTUM_RESISTANT".into()),
            password_minimum_length: Some(4),
            ..Default::default()
        };
        let r = Requirements::from_amapi(&applied);
        assert_eq!(r.quality, PasswordQuality::Something);
        let governing = Governing::from_requirement(&r);
        assert!(governing.requires_passcode());
        assert!(
            !judge(None, &governing, Some(34)).passes,
            "clearing is refused"
        );
        assert!(judge(Some(b"Kq7!canary#Zx"), &governing, Some(34)).passes);
    }

    #[test]
    fn out_of_range_counts() {
        let negative = PasswordRequirements {
            password_minimum_length: Some(-1),
            password_history_length: Some(i32::MIN),
            ..Default::default()
        };
        let r = Requirements::from_amapi(&negative);
        assert_eq!((r.minimum_length, r.history_length), (None, None));
        let huge = Requirements {
            minimum_length: Some(u32::MAX),
            ..Default::default()
        };
        assert_eq!(huge.to_amapi().password_minimum_length, Some(i32::MAX));
    }

    fn count() -> impl Strategy<Value = Option<u32>> {
        prop::option::of(prop_oneof![0u32..=20, 0..=i32::MAX as u32])
    }

    fn any_requirements() -> impl Strategy<Value = Requirements> {
        (
            any_quality(),
            (count(), count(), count(), count()),
            (count(), count(), count(), count()),
        )
            .prop_map(|(quality, a, b)| Requirements {
                quality,
                minimum_length: a.0,
                minimum_letters: a.1,
                minimum_lower_case: a.2,
                minimum_upper_case: a.3,
                minimum_non_letter: b.0,
                minimum_numeric: b.1,
                minimum_symbols: b.2,
                history_length: b.3,
            })
    }

    /// An AMAPI entry with only judged fields: a known quality and counts AMAPI accepts.
    fn any_judged_entry() -> impl Strategy<Value = PasswordRequirements> {
        let count = || prop::option::of(prop_oneof![0i32..=20, 0..=i32::MAX]);
        (
            any_quality(),
            (count(), count(), count(), count()),
            (count(), count(), count(), count()),
        )
            .prop_map(|(quality, a, b)| PasswordRequirements {
                password_quality: Some(quality.amapi_name().to_owned()),
                password_minimum_length: a.0,
                password_minimum_letters: a.1,
                password_minimum_lower_case: a.2,
                password_minimum_upper_case: a.3,
                password_minimum_non_letter: b.0,
                password_minimum_numeric: b.1,
                password_minimum_symbols: b.2,
                password_history_length: b.3,
                ..Default::default()
            })
    }

    proptest! {
        #[test]
        fn engine_to_amapi_and_back(r in any_requirements()) {
            let wire = r.to_amapi();
            prop_assert_eq!(wire.password_scope.clone(), None);
            prop_assert_eq!(Requirements::from_amapi(&wire), r);
        }

        #[test]
        fn amapi_to_engine_and_back(wire in any_judged_entry()) {
            prop_assert_eq!(Requirements::from_amapi(&wire).to_amapi(), wire);
        }

        #[test]
        fn unknown_names_read_as_unknown_quality(name in "[A-Z_]{1,24}") {
            let expected = PasswordQuality::from_amapi_name(&name).unwrap_or(UNKNOWN_QUALITY);
            prop_assert_eq!(PasswordQuality::from_amapi(Some(&name)), expected);
            let read = Requirements {
                quality: PasswordQuality::from_amapi(Some(&name)),
                ..Default::default()
            };
            let known = PasswordQuality::from_amapi_name(&name).is_some();
            prop_assert!(known || Governing::from_requirement(&read).requires_passcode());
        }
    }
}
