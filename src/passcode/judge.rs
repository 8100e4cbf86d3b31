//! The verdict on a proposed passcode, with one checklist line per rule that
//! applies, so a refusal can say exactly what to change
//! (`PasswordMetrics.validateCredential` turned into a checklist).

use schemars::JsonSchema;
use serde::Serialize;

use super::complexity::{Complexity, CredentialType, PasswordMetrics};
use super::requirements::{Governing, RequiredCredential};
use super::{
    ANDROID_14_API_LEVEL, ANDROID_14_MIN_NUMERIC_LENGTH, MAX_ALLOWED_SEQUENCE, MAX_PASSWORD_LENGTH,
};

/// Every rule id the checklist can contain, in checklist order, with what it
/// means (for the README and for `kubectl explain`-style help).
pub const RULES: &[(&str, &str)] = &[
    (
        "clearingAllowed",
        "Clearing the passcode: no requirement in force asks for one, so it may be removed.",
    ),
    (
        "passcodeRequired",
        "A requirement in force (a quality other than PASSWORD_QUALITY_UNSPECIFIED) asks for a passcode, so it cannot be cleared.",
    ),
    (
        "allowedCharacters",
        "Only ASCII characters from space to DEL: no accents, emoji, tabs or line breaks.",
    ),
    (
        "minimumLength",
        "At least the required number of characters: never fewer than Android's 4, the policy's minimum length (capped at 16), and at high complexity 8 for a PIN or 6 for a password.",
    ),
    (
        "maximumLength",
        "At most 16 characters, stock Android's limit (some devices accept more; this check is strict).",
    ),
    (
        "android14Numeric",
        "On Android 14 and later (API level 34+) a digits-only passcode needs at least 6 digits; listed only when the other rules would allow a shorter PIN.",
    ),
    (
        "notDigitsOnly",
        "The policy asks for a password (ALPHABETIC, ALPHANUMERIC or COMPLEX): at least one character that is not a digit.",
    ),
    (
        "noSequence",
        "No repeating or ordered run of more than 3 characters, like 1111, 1234, 1357 or abcd (NUMERIC_COMPLEX, COMPLEXITY_MEDIUM, COMPLEXITY_HIGH).",
    ),
    (
        "minimumLetters",
        "At least the required number of letters (COMPLEX; dropped when the upper- and lower-case minimums imply it).",
    ),
    (
        "minimumUpperCase",
        "At least the required number of upper-case letters A-Z (COMPLEX).",
    ),
    (
        "minimumLowerCase",
        "At least the required number of lower-case letters a-z (COMPLEX).",
    ),
    (
        "minimumNumeric",
        "At least the required number of digits (COMPLEX, and one for ALPHANUMERIC).",
    ),
    (
        "minimumSymbols",
        "At least the required number of symbols: characters that are neither letters nor digits (COMPLEX).",
    ),
    (
        "minimumNonLetter",
        "At least the required number of digits or symbols (COMPLEX; dropped when the digit and symbol minimums imply it).",
    ),
    (
        "minimumNonNumeric",
        "At least the required number of letters or symbols (dropped when implied by other minimums or by notDigitsOnly).",
    ),
    (
        "complexity",
        "At least the required Android complexity band (COMPLEXITY_LOW/MEDIUM/HIGH); a summary of the length and sequence lines above.",
    ),
];

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// Stable camelCase id, one of [`RULES`].
    pub rule: &'static str,
    /// What is required, for people; never contains the passcode.
    pub description: String,
    /// Whether the passcode satisfies this line.
    pub met: bool,
}

/// Whether the device is expected to accept the passcode, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// True exactly when every line of `requirements` is met.
    pub passes: bool,
    /// What was measured (counts only, never the characters).
    pub metrics: PasswordMetrics,
    /// The checklist, in the order of [`RULES`].
    pub requirements: Vec<Check>,
}

impl Verdict {
    /// The lines that are not met, in checklist order.
    pub fn unmet(&self) -> impl Iterator<Item = &Check> {
        self.requirements.iter().filter(|check| !check.met)
    }
}

/// Judges a proposed passcode against the governing requirements.
///
/// `None` (or an empty passcode) means clearing the lock: it passes only when
/// nothing requires a passcode. `api_level` is the device's; `None` means
/// unknown, and then the Android 14 rule is not applied.
pub fn judge(passcode: Option<&[u8]>, governing: &Governing, api_level: Option<u32>) -> Verdict {
    let metrics = PasswordMetrics::measure(passcode.unwrap_or_default());
    let requirements = if metrics.credential_type == CredentialType::None {
        clearing_checklist(governing)
    } else {
        checklist(&metrics, governing, api_level)
    };
    Verdict {
        passes: requirements.iter().all(|check| check.met),
        metrics,
        requirements,
    }
}

fn clearing_checklist(governing: &Governing) -> Vec<Check> {
    if governing.requires_passcode() {
        vec![Check {
            rule: "passcodeRequired",
            description: "a passcode is required; the policy does not allow clearing it".into(),
            met: false,
        }]
    } else {
        vec![Check {
            rule: "clearingAllowed",
            description: "no passcode is required, so it may be cleared".into(),
            met: true,
        }]
    }
}

fn checklist(
    metrics: &PasswordMetrics,
    governing: &Governing,
    api_level: Option<u32>,
) -> Vec<Check> {
    let digits_only = metrics.credential_type == CredentialType::Pin;
    let minimums = governing.minimums(digits_only);
    let mut checks = Vec::new();
    let mut add = |rule: &'static str, description: String, met: bool| {
        checks.push(Check {
            rule,
            description,
            met,
        });
    };

    if governing.requires_passcode() {
        // A non-empty passcode is always a PIN or password, which every
        // requirement accepts once the lines below are met.
        add("passcodeRequired", "a passcode is required".into(), true);
    }
    add(
        "allowedCharacters",
        "only ASCII characters from space to DEL (no accents, emoji, tabs or line breaks)".into(),
        !metrics.invalid_characters,
    );
    add(
        "minimumLength",
        format!(
            "at least {}",
            count(minimums.length, "character", "characters")
        ),
        metrics.length >= minimums.length,
    );
    add(
        "maximumLength",
        format!("at most {MAX_PASSWORD_LENGTH} characters (stock Android's limit)"),
        metrics.length <= MAX_PASSWORD_LENGTH,
    );
    let pins_allowed = governing.credential() <= RequiredCredential::Pin;
    if api_level.is_some_and(|level| level >= ANDROID_14_API_LEVEL)
        && pins_allowed
        && governing.minimums(true).length < ANDROID_14_MIN_NUMERIC_LENGTH
    {
        add(
            "android14Numeric",
            format!(
                "at least {ANDROID_14_MIN_NUMERIC_LENGTH} digits if it is digits only (Android 14 and later)"
            ),
            !digits_only || metrics.length >= ANDROID_14_MIN_NUMERIC_LENGTH,
        );
    }
    if !pins_allowed {
        add(
            "notDigitsOnly",
            "not digits only: a password is required, not a PIN".into(),
            !digits_only,
        );
    }
    if minimums.no_sequence {
        add(
            "noSequence",
            format!(
                "no repeating or ordered sequence of more than {MAX_ALLOWED_SEQUENCE} (like 1111 or 1234)"
            ),
            metrics.max_length_sequence <= MAX_ALLOWED_SEQUENCE,
        );
    }
    let counters: [(&'static str, u32, u32, &str, &str); 7] = [
        (
            "minimumLetters",
            minimums.letters,
            metrics.letters,
            "letter",
            "letters",
        ),
        (
            "minimumUpperCase",
            minimums.upper_case,
            metrics.upper_case,
            "upper-case letter",
            "upper-case letters",
        ),
        (
            "minimumLowerCase",
            minimums.lower_case,
            metrics.lower_case,
            "lower-case letter",
            "lower-case letters",
        ),
        (
            "minimumNumeric",
            minimums.numeric,
            metrics.numeric,
            "digit",
            "digits",
        ),
        (
            "minimumSymbols",
            minimums.symbols,
            metrics.symbols,
            "symbol",
            "symbols",
        ),
        (
            "minimumNonLetter",
            minimums.non_letter,
            metrics.non_letter,
            "digit or symbol",
            "digits or symbols",
        ),
        (
            "minimumNonNumeric",
            minimums.non_numeric,
            metrics.non_numeric,
            "letter or symbol",
            "letters or symbols",
        ),
    ];
    for (rule, required, actual, one, many) in counters {
        if required > 0 {
            add(
                rule,
                format!("at least {}", count(required, one, many)),
                actual >= required,
            );
        }
    }
    let band = governing.complexity();
    if band > Complexity::None {
        add(
            "complexity",
            complexity_description(band),
            metrics.complexity >= band,
        );
    }
    checks
}

fn count(n: u32, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn complexity_description(band: Complexity) -> String {
    let detail = match band {
        Complexity::High => {
            "at least 8 characters if digits only, otherwise at least 6, and no repeating or ordered sequence of more than 3"
        }
        Complexity::Medium => {
            "at least 4 characters and no repeating or ordered sequence of more than 3"
        }
        Complexity::Low | Complexity::None => "any PIN or password",
    };
    format!("complexity at least {} ({detail})", band.label())
}

#[cfg(test)]
mod tests {
    use super::super::requirements::tests::any_requirements;
    use super::super::{MIN_LOCK_LENGTH, PasswordQuality, Requirements};
    use super::*;
    use proptest::prelude::*;

    fn quality(quality: PasswordQuality) -> Requirements {
        Requirements {
            quality,
            ..Requirements::default()
        }
    }

    fn governing(rs: &[Requirements]) -> Governing {
        Governing::from_requirements(rs)
    }

    fn unmet(verdict: &Verdict) -> Vec<(&'static str, String)> {
        verdict
            .unmet()
            .map(|c| (c.rule, c.description.clone()))
            .collect()
    }

    fn rules(verdict: &Verdict) -> Vec<&'static str> {
        verdict.requirements.iter().map(|c| c.rule).collect()
    }

    // AOSP PasswordMetricsTest#testValidatePasswordMetrics_credentialTypes and
    // #testValidateCredential_none. Admin "pattern" is SOMETHING, "pin" is
    // NUMERIC, "password" is ALPHABETIC; actual "none" is clearing, "pin" is a
    // digits-only passcode, "password" a passcode with a letter. Patterns
    // cannot be set through AMAPI, so their rows are left out.
    #[test]
    fn validate_password_metrics_credential_types() {
        let none: Option<&[u8]> = None;
        let pin: Option<&[u8]> = Some(b"2580");
        let password: Option<&[u8]> = Some(b"pa$s");
        let admin_none = governing(&[]);
        let admin_pattern = governing(&[quality(PasswordQuality::Something)]);
        let admin_pin = governing(&[quality(PasswordQuality::Numeric)]);
        let admin_password = governing(&[quality(PasswordQuality::Alphabetic)]);
        type Case<'a> = (&'a Governing, Option<&'a [u8]>, Option<&'a str>);
        let cases: &[Case] = &[
            (&admin_none, none, None),
            (&admin_none, password, None),
            (&admin_none, pin, None),
            (&admin_pattern, password, None),
            (&admin_password, password, None),
            (&admin_pin, pin, None),
            (&admin_pattern, none, Some("passcodeRequired")),
            (&admin_password, none, Some("passcodeRequired")),
            (&admin_password, pin, Some("notDigitsOnly")),
            (&admin_pin, none, Some("passcodeRequired")),
        ];
        for (admin, actual, error) in cases {
            let verdict = judge(*actual, admin, None);
            let failed: Vec<_> = verdict.unmet().map(|c| c.rule).collect();
            assert_eq!(
                failed,
                error.iter().copied().collect::<Vec<_>>(),
                "{admin:?} {actual:?}"
            );
            assert_eq!(verdict.passes, error.is_none());
        }
        assert_eq!(rules(&judge(None, &admin_none, None)), ["clearingAllowed"]);
        assert_eq!(
            rules(&judge(Some(b""), &admin_pin, None)),
            ["passcodeRequired"]
        );
    }

    // AOSP PasswordMetricsTest#testValidatePasswordMetrics_pinAndComplexityHigh:
    // a 6-digit PIN without sequences at high complexity is TOO_SHORT (8).
    #[test]
    fn validate_password_metrics_pin_and_complexity_high() {
        let g = governing(&[
            quality(PasswordQuality::Numeric),
            quality(PasswordQuality::ComplexityHigh),
        ]);
        let verdict = judge(Some(b"150382"), &g, None);
        assert!(verdict.metrics.max_length_sequence <= MAX_ALLOWED_SEQUENCE);
        assert_eq!(
            unmet(&verdict),
            [
                ("minimumLength", "at least 8 characters".to_string()),
                ("complexity", complexity_description(Complexity::High)),
            ]
        );
        assert!(judge(Some(b"15038264"), &g, None).passes);
    }

    // AOSP PasswordMetricsTest#testValidatePasswordMetrics_nonAllNumberPasswordAndComplexityHigh:
    // a 5-character password at high complexity is TOO_SHORT (6).
    #[test]
    fn validate_password_metrics_non_all_number_password_and_complexity_high() {
        let g = governing(&[
            quality(PasswordQuality::Alphabetic),
            quality(PasswordQuality::ComplexityHigh),
        ]);
        let verdict = judge(Some(b"k3x9m"), &g, None);
        assert_eq!(
            unmet(&verdict)[0],
            ("minimumLength", "at least 6 characters".to_string())
        );
        assert_eq!(verdict.unmet().count(), 2);
        assert!(judge(Some(b"k3x9m7"), &g, None).passes);
    }

    // AOSP PasswordMetricsTest#testValidatePasswordMetrics_allNumberPasswordAndComplexityHigh:
    // Android's TOO_SHORT_WHEN_ALL_NUMERIC (8). Through AMAPI a digits-only
    // passcode is always a PIN, so the 8 shows up as the PIN's minimum length.
    #[test]
    fn validate_password_metrics_all_number_password_and_complexity_high() {
        let g = governing(&[quality(PasswordQuality::ComplexityHigh)]);
        let verdict = judge(Some(b"150382"), &g, None);
        assert_eq!(
            unmet(&verdict)[0],
            ("minimumLength", "at least 8 characters".to_string())
        );
        assert!(!verdict.passes);
    }

    // AOSP PasswordMetricsTest#testValidatePasswordMetrics_allNumberPasswordAndRequireNonNumeric:
    // Android reports NOT_ENOUGH_NON_DIGITS; here that is the notDigitsOnly line
    // (plus the PIN's minimum length of 8, since a digits-only value is a PIN).
    #[test]
    fn validate_password_metrics_all_number_password_and_require_non_numeric() {
        let g = governing(&[
            quality(PasswordQuality::Alphabetic),
            quality(PasswordQuality::ComplexityHigh),
        ]);
        let verdict = judge(Some(b"150382"), &g, None);
        let failed: Vec<_> = verdict.unmet().map(|c| c.rule).collect();
        assert!(failed.contains(&"notDigitsOnly"), "{failed:?}");
        assert!(!failed.contains(&"minimumNonNumeric"));
    }

    // AOSP PasswordMetricsTest#testValidateCredential_password. Android's admin
    // metrics there have only a length of 6; in AMAPI terms that is NUMERIC
    // with passwordMinimumLength 6.
    #[test]
    fn validate_credential_password() {
        let low = quality(PasswordQuality::ComplexityLow);
        assert!(
            judge(
                Some(b"password"),
                &governing(std::slice::from_ref(&low)),
                None
            )
            .passes
        );

        let verdict = judge(
            Some("\u{2122}\u{2122}\u{2122}\u{2122}".as_bytes()),
            &governing(std::slice::from_ref(&low)),
            None,
        );
        assert_eq!(verdict.unmet().next().unwrap().rule, "allowedCharacters");

        let six = Requirements {
            quality: PasswordQuality::Numeric,
            minimum_length: Some(6),
            ..Requirements::default()
        };
        let verdict = judge(Some(b"pass"), &governing(&[six, low]), None);
        assert_eq!(
            unmet(&verdict),
            [("minimumLength", "at least 6 characters".to_string())]
        );
    }

    #[test]
    fn android_minimums_apply_without_any_policy() {
        let g = Governing::none();
        let short = judge(Some(b"abc"), &g, None);
        assert_eq!(
            unmet(&short),
            [("minimumLength", "at least 4 characters".to_string())]
        );
        let long = judge(Some(b"abcdefghijklmnopq"), &g, None);
        assert_eq!(
            long.unmet().map(|c| c.rule).collect::<Vec<_>>(),
            ["maximumLength"]
        );
        assert!(judge(Some(b"abcdefghijklmnop"), &g, None).passes);
        assert_eq!(
            rules(&judge(Some(b"1111"), &g, None)),
            ["allowedCharacters", "minimumLength", "maximumLength"]
        );
    }

    #[test]
    fn android_14_numeric_rule() {
        let g = Governing::none();
        for level in [None, Some(33)] {
            assert!(judge(Some(b"2580"), &g, level).passes);
        }
        for level in [34, 35] {
            let verdict = judge(Some(b"2580"), &g, Some(level));
            assert_eq!(
                verdict.unmet().map(|c| c.rule).collect::<Vec<_>>(),
                ["android14Numeric"]
            );
            assert!(judge(Some(b"258025"), &g, Some(level)).passes);
            // Passwords are not concerned, but the line stays for a stable checklist.
            let password = judge(Some(b"25a0"), &g, Some(level));
            assert!(password.passes);
            assert!(rules(&password).contains(&"android14Numeric"));
        }
        // Implied by a longer minimum, or moot when a password is required.
        let longer = governing(&[Requirements {
            quality: PasswordQuality::Numeric,
            minimum_length: Some(6),
            ..Requirements::default()
        }]);
        assert!(!rules(&judge(Some(b"2580"), &longer, Some(34))).contains(&"android14Numeric"));
        let alpha = governing(&[quality(PasswordQuality::Alphabetic)]);
        assert!(!rules(&judge(Some(b"ab12"), &alpha, Some(34))).contains(&"android14Numeric"));
    }

    #[test]
    fn alphanumeric_and_complex() {
        let alnum = governing(&[quality(PasswordQuality::Alphanumeric)]);
        assert_eq!(
            rules(&judge(Some(b"abcd"), &alnum, None)),
            [
                "passcodeRequired",
                "allowedCharacters",
                "minimumLength",
                "maximumLength",
                "notDigitsOnly",
                "minimumNumeric",
            ]
        );
        assert_eq!(
            unmet(&judge(Some(b"abcd"), &alnum, None)),
            [("minimumNumeric", "at least 1 digit".to_string())]
        );
        assert!(judge(Some(b"abc1"), &alnum, None).passes);

        let complex = governing(&[quality(PasswordQuality::Complex)]);
        let verdict = judge(Some(b"abc1"), &complex, None);
        assert_eq!(
            unmet(&verdict),
            [("minimumSymbols", "at least 1 symbol".to_string())]
        );
        assert!(judge(Some(b"ab!1"), &complex, None).passes);

        let strict = governing(&[Requirements {
            quality: PasswordQuality::Complex,
            minimum_upper_case: Some(2),
            minimum_lower_case: Some(2),
            minimum_symbols: Some(0),
            minimum_numeric: Some(2),
            ..Requirements::default()
        }]);
        let verdict = judge(Some(b"Ab12"), &strict, None);
        assert_eq!(
            unmet(&verdict),
            [
                (
                    "minimumUpperCase",
                    "at least 2 upper-case letters".to_string()
                ),
                (
                    "minimumLowerCase",
                    "at least 2 lower-case letters".to_string()
                ),
            ]
        );
        assert!(!rules(&verdict).contains(&"minimumLetters"));
    }

    // Modern AOSP keeps NUMERIC_COMPLEX's sequence limit for passwords too.
    #[test]
    fn numeric_complex_sequence_limit_applies_to_passwords() {
        let g = governing(&[
            quality(PasswordQuality::NumericComplex),
            quality(PasswordQuality::Alphanumeric),
        ]);
        let verdict = judge(Some(b"abcd1234"), &g, None);
        assert_eq!(
            verdict.unmet().map(|c| c.rule).collect::<Vec<_>>(),
            ["noSequence"]
        );
        assert!(judge(Some(b"ab3cd1x2"), &g, None).passes);
        let pin = governing(&[quality(PasswordQuality::NumericComplex)]);
        assert!(!judge(Some(b"1111"), &pin, None).passes);
        assert!(!judge(Some(b"13579"), &pin, None).passes);
        assert!(judge(Some(b"1593"), &pin, None).passes);
    }

    #[test]
    fn medium_complexity() {
        let g = governing(&[quality(PasswordQuality::ComplexityMedium)]);
        let verdict = judge(Some(b"4444"), &g, None);
        assert_eq!(
            verdict.unmet().map(|c| c.rule).collect::<Vec<_>>(),
            ["noSequence", "complexity"]
        );
        assert!(judge(Some(b"1238"), &g, None).passes);
    }

    #[test]
    fn every_rule_is_documented_once_and_verdicts_serialize() {
        let mut ids: Vec<&str> = RULES.iter().map(|(id, _)| *id).collect();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len());
        let value =
            serde_json::to_value(judge(Some(b"ab!1"), &Governing::none(), Some(34))).unwrap();
        assert_eq!(value["passes"], true);
        assert_eq!(value["requirements"][0]["rule"], "allowedCharacters");
        assert_eq!(value["metrics"]["credentialType"], "PASSWORD");
    }

    fn position(rule: &str) -> usize {
        RULES.iter().position(|(id, _)| *id == rule).unwrap()
    }

    /// Android's `validatePasswordMetrics` decision restated step by step
    /// (early refusals, band folded into the minimums, length clamp,
    /// `removeOverlapping` including the length, the all-numeric minimum), as an
    /// independent oracle for the checklist. The Android 14 rule is AMAPI's and
    /// is left out (callers pass `api_level: None`).
    fn android_accepts(g: &Governing, m: &PasswordMetrics) -> bool {
        if m.invalid_characters {
            return false;
        }
        let actual = m.credential_type;
        if !g.credential().accepts(actual) || !g.complexity().allows(actual) {
            return false;
        }
        if actual == CredentialType::None {
            return true;
        }
        if m.length > MAX_PASSWORD_LENGTH {
            return false;
        }
        let band = g.complexity();
        let is_pin = actual == CredentialType::Pin;
        let mut length = g.minimum_length.max(band.minimum_length(!is_pin));
        length = length.clamp(MIN_LOCK_LENGTH, MAX_PASSWORD_LENGTH);
        let (mut letters, upper, lower) = (
            g.minimum_letters,
            g.minimum_upper_case,
            g.minimum_lower_case,
        );
        let (numeric, symbols) = (g.minimum_numeric, g.minimum_symbols);
        let (mut non_letter, mut non_numeric) = (g.minimum_non_letter, g.minimum_non_numeric);
        let ind_letters = upper + lower;
        let ind_non_letter = numeric + symbols;
        let eff_letters = letters.max(ind_letters);
        let ind_non_numeric = eff_letters + symbols;
        let eff_non_letter = non_letter.max(ind_non_letter);
        let eff_non_numeric = non_numeric.max(ind_non_numeric);
        let ind_length = (eff_letters + eff_non_letter).max(numeric + eff_non_numeric);
        if ind_letters >= letters {
            letters = 0;
        }
        if ind_non_letter >= non_letter {
            non_letter = 0;
        }
        if ind_non_numeric >= non_numeric {
            non_numeric = 0;
        }
        if ind_length >= length {
            length = 0;
        }
        if m.length < length {
            return false;
        }
        if m.non_numeric == 0
            && non_numeric == 0
            && letters == 0
            && lower == 0
            && upper == 0
            && symbols == 0
        {
            let all_numeric = band.minimum_length(false);
            if all_numeric > length && all_numeric > numeric && m.length < all_numeric {
                return false;
            }
        }
        let seq_limit = if g.forbids_sequences() {
            MAX_ALLOWED_SEQUENCE
        } else {
            u32::MAX
        };
        m.letters >= letters
            && m.upper_case >= upper
            && m.lower_case >= lower
            && m.numeric >= numeric
            && m.symbols >= symbols
            && m.non_letter >= non_letter
            && m.non_numeric >= non_numeric
            && m.max_length_sequence <= seq_limit
    }

    fn any_passcode() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            "[0-9]{0,18}".prop_map(String::into_bytes),
            "[0-9a-cA-C!~ ]{0,18}".prop_map(String::into_bytes),
            "[ -~]{0,18}".prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..6),
        ]
    }

    fn any_api_level() -> impl Strategy<Value = Option<u32>> {
        prop::option::of(28u32..37)
    }

    proptest! {
        #[test]
        fn adding_a_requirement_never_turns_a_failure_into_a_pass(
            passcode in any_passcode(),
            rs in proptest::collection::vec(any_requirements(), 0..3),
            extra in any_requirements(),
            level in any_api_level(),
        ) {
            let before = judge(Some(&passcode), &Governing::from_requirements(&rs), level);
            let mut more = rs.clone();
            more.push(extra);
            let after = judge(Some(&passcode), &Governing::from_requirements(&more), level);
            prop_assert!(before.passes || !after.passes);
            let cleared_before = judge(None, &Governing::from_requirements(&rs), level);
            let cleared_after = judge(None, &Governing::from_requirements(&more), level);
            prop_assert!(cleared_before.passes || !cleared_after.passes);
        }

        #[test]
        fn agrees_with_android_validation(
            passcode in any_passcode(),
            rs in proptest::collection::vec(any_requirements(), 0..3),
        ) {
            let g = Governing::from_requirements(&rs);
            let verdict = judge(Some(&passcode), &g, None);
            prop_assert_eq!(verdict.passes, android_accepts(&g, &verdict.metrics));
        }

        #[test]
        fn passes_is_all_checks_met_and_order_is_stable(
            first in any_passcode(),
            second in any_passcode(),
            rs in proptest::collection::vec(any_requirements(), 0..3),
            level in any_api_level(),
        ) {
            let g = Governing::from_requirements(&rs);
            let a = judge(Some(&first), &g, level);
            let b = judge(Some(&second), &g, level);
            for verdict in [&a, &b] {
                prop_assert_eq!(verdict.passes, verdict.requirements.iter().all(|c| c.met));
                let positions: Vec<usize> = verdict.requirements.iter().map(|c| position(c.rule)).collect();
                prop_assert!(positions.windows(2).all(|w| w[0] < w[1]), "{:?}", positions);
            }
            if !first.is_empty() && !second.is_empty() {
                prop_assert_eq!(rules(&a), rules(&b));
            }
        }

        #[test]
        fn descriptions_never_contain_the_passcode(
            before in "[ -~]{0,5}",
            after in "[ -~]{0,5}",
            rs in proptest::collection::vec(any_requirements(), 0..3),
            level in any_api_level(),
        ) {
            let canary = "Qx7~";
            let passcode = format!("{before}{canary}{after}");
            let verdict = judge(Some(passcode.as_bytes()), &Governing::from_requirements(&rs), level);
            let text = serde_json::to_string(&verdict).unwrap();
            prop_assert!(!text.contains(canary));
            prop_assert!(!text.contains(&passcode));
            for check in &verdict.requirements {
                prop_assert!(!check.description.contains(canary));
            }
        }
    }
}
