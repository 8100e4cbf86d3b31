//! Measuring a passcode exactly as Android's `PasswordMetrics` does, so that
//! counts, sequences and the complexity band match what the device computes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::MAX_ALLOWED_SEQUENCE;

/// What the passcode becomes on the device: AMAPI's reset turns a digits-only
/// value into a PIN and anything else non-empty into a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CredentialType {
    /// No passcode: the lock screen credential is cleared.
    None,
    /// Digits only; Android stores it as a PIN.
    Pin,
    /// Contains at least one character that is not a digit.
    Password,
}

/// Android's password complexity bands (`DevicePolicyManager.PASSWORD_COMPLEXITY_*`),
/// ordered from weakest to strongest so a requirement is met by any band at
/// least as high.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Complexity {
    /// No passcode, or no band required.
    #[default]
    None,
    /// Any PIN or password.
    Low,
    /// A PIN or password of at least 4 characters without a sequence longer than 3.
    Medium,
    /// As medium, and at least 8 characters for a PIN or 6 for a password.
    High,
}

impl Complexity {
    /// Whether the band tolerates repeating or ordered sequences.
    pub(super) fn allows_sequences(self) -> bool {
        matches!(self, Complexity::None | Complexity::Low)
    }

    /// Shortest passcode the band accepts; a PIN needs more at high complexity
    /// because digits alone are easier to guess.
    pub(super) fn minimum_length(self, has_non_digit: bool) -> u32 {
        match self {
            Complexity::High if has_non_digit => 6,
            Complexity::High => 8,
            Complexity::Medium => 4,
            Complexity::Low | Complexity::None => 0,
        }
    }

    /// Whether the band accepts this kind of credential at all.
    pub(super) fn allows(self, credential: CredentialType) -> bool {
        match self {
            Complexity::None => true,
            Complexity::Low | Complexity::Medium | Complexity::High => {
                credential != CredentialType::None
            }
        }
    }

    /// Lower-case name for human text.
    pub(super) fn label(self) -> &'static str {
        match self {
            Complexity::None => "none",
            Complexity::Low => "low",
            Complexity::Medium => "medium",
            Complexity::High => "high",
        }
    }
}

/// What was measured in a passcode. Serialized with the field names of
/// Android's `PasswordMetrics` so that results can be compared side by side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordMetrics {
    /// Number of characters (bytes: anything outside ASCII counts per byte).
    pub length: u32,
    /// `a-z` and `A-Z`.
    pub letters: u32,
    /// `A-Z`.
    pub upper_case: u32,
    /// `a-z`.
    pub lower_case: u32,
    /// `0-9`.
    pub numeric: u32,
    /// Everything that is neither a letter nor a digit.
    pub symbols: u32,
    /// Digits and symbols.
    pub non_letter: u32,
    /// Letters and symbols.
    pub non_numeric: u32,
    /// Longest run of repeated or evenly stepped characters (see [`max_length_sequence`]).
    pub max_length_sequence: u32,
    /// PIN when digits only, NONE when empty, PASSWORD otherwise.
    pub credential_type: CredentialType,
    /// Highest complexity band the passcode reaches.
    pub complexity: Complexity,
    /// Some byte lies outside ASCII 32..=127; Android refuses such a credential.
    pub invalid_characters: bool,
}

impl PasswordMetrics {
    /// Measures `bytes` as Android measures a new PIN or password; empty means
    /// no credential.
    pub fn measure(bytes: &[u8]) -> PasswordMetrics {
        let mut metrics = PasswordMetrics {
            length: saturate(bytes.len()),
            letters: 0,
            upper_case: 0,
            lower_case: 0,
            numeric: 0,
            symbols: 0,
            non_letter: 0,
            non_numeric: 0,
            max_length_sequence: max_length_sequence(bytes),
            credential_type: CredentialType::None,
            complexity: Complexity::None,
            invalid_characters: false,
        };
        for &byte in bytes {
            match Category::of(byte) {
                Category::Lower => {
                    metrics.letters += 1;
                    metrics.lower_case += 1;
                    metrics.non_numeric += 1;
                }
                Category::Upper => {
                    metrics.letters += 1;
                    metrics.upper_case += 1;
                    metrics.non_numeric += 1;
                }
                Category::Digit => {
                    metrics.numeric += 1;
                    metrics.non_letter += 1;
                }
                Category::Symbol => {
                    metrics.symbols += 1;
                    metrics.non_letter += 1;
                    metrics.non_numeric += 1;
                }
            }
            if !is_allowed_byte(byte) {
                metrics.invalid_characters = true;
            }
        }
        metrics.credential_type = if bytes.is_empty() {
            CredentialType::None
        } else if metrics.non_numeric == 0 {
            CredentialType::Pin
        } else {
            CredentialType::Password
        };
        metrics.complexity = metrics.determine_complexity();
        metrics
    }

    /// Highest band whose rules these metrics satisfy
    /// (`PasswordMetrics.determineComplexity`).
    pub fn determine_complexity(&self) -> Complexity {
        [Complexity::High, Complexity::Medium, Complexity::Low]
            .into_iter()
            .find(|&band| self.satisfies(band))
            .unwrap_or(Complexity::None)
    }

    fn satisfies(&self, band: Complexity) -> bool {
        if !band.allows(self.credential_type) {
            return false;
        }
        if self.credential_type == CredentialType::None {
            return true;
        }
        (band.allows_sequences() || self.max_length_sequence <= MAX_ALLOWED_SEQUENCE)
            && self.length >= band.minimum_length(self.non_numeric > 0)
    }
}

/// Android accepts only ASCII 32..=127 (space and DEL included) in a new
/// credential; everything else once got silently truncated, so it is refused.
fn is_allowed_byte(byte: u8) -> bool {
    (32..=127).contains(&byte)
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    Lower,
    Upper,
    Digit,
    Symbol,
}

impl Category {
    fn of(byte: u8) -> Category {
        match byte {
            b'a'..=b'z' => Category::Lower,
            b'A'..=b'Z' => Category::Upper,
            b'0'..=b'9' => Category::Digit,
            _ => Category::Symbol,
        }
    }

    /// Largest step between neighbours that still continues a run: letters go
    /// one by one (`abc`, `cba`), digits may jump (`13579`), symbols only repeat.
    fn max_step(self) -> i32 {
        match self {
            Category::Lower | Category::Upper => 1,
            Category::Digit => 10,
            Category::Symbol => 0,
        }
    }
}

/// Length of the longest run of same-category characters that repeat or move
/// by a constant step (`PasswordMetrics.maxLengthSequence`).
///
/// A change of category or a too-large step ends the run; a change of step
/// starts a new run at the previous character, so `aabc` is 3 (`abc`), not 4.
pub fn max_length_sequence(bytes: &[u8]) -> u32 {
    let Some((&first, _)) = bytes.split_first() else {
        return 0;
    };
    let mut longest = 0usize;
    let mut run_start = 0usize;
    let mut run_category = Category::of(first);
    let mut step: Option<i32> = None;
    let mut previous = first;
    for (index, &byte) in bytes.iter().enumerate().skip(1) {
        let category = Category::of(byte);
        let delta = i32::from(byte) - i32::from(previous);
        if category != run_category || delta.abs() > run_category.max_step() {
            longest = longest.max(index - run_start);
            run_start = index;
            run_category = category;
            step = None;
        } else {
            if step.is_some_and(|current| current != delta) {
                longest = longest.max(index - run_start);
                run_start = index - 1;
            }
            step = Some(delta);
        }
        previous = byte;
    }
    saturate(longest.max(bytes.len() - run_start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // AOSP PasswordMetricsTest#testMaxLengthSequence, plus the extra examples of
    // password-rules.md ("4321", "2468").
    #[test]
    fn max_length_sequence_matches_aosp() {
        let cases: &[(&str, u32)] = &[
            ("1234", 4),
            ("13579", 5),
            ("1234abd", 4),
            ("aabc", 3),
            ("qwertyuio", 1),
            ("@ABC", 3),
            (";;;;", 4),
            (":;<=>", 1),
            // password-rules.md
            ("4321", 4),
            ("2468", 4),
            ("", 0),
            ("7", 1),
        ];
        for &(input, expected) in cases {
            assert_eq!(max_length_sequence(input.as_bytes()), expected, "{input}");
        }
    }

    // AOSP PasswordMetricsTest#testComputeForPassword_metrics.
    #[test]
    fn compute_for_password_metrics() {
        let m = PasswordMetrics::measure(b"6B~0z1Z3*8A");
        assert_eq!(m.length, 11);
        assert_eq!(m.letters, 4);
        assert_eq!(m.upper_case, 3);
        assert_eq!(m.lower_case, 1);
        assert_eq!(m.numeric, 5);
        assert_eq!(m.symbols, 2);
        assert_eq!(m.non_letter, 7);
        assert_eq!(m.non_numeric, 6);
        assert_eq!(m.credential_type, CredentialType::Password);
        assert!(!m.invalid_characters);
    }

    // AOSP PasswordMetricsTest#testComputeForPassword_quality (pre-Android 11
    // version): quality is now credential type plus the sequence length.
    #[test]
    fn compute_for_password_quality() {
        let cases: &[(&str, CredentialType, bool)] = &[
            // (input, credential type, within the NUMERIC_COMPLEX sequence limit)
            ("a1", CredentialType::Password, true),
            ("a", CredentialType::Password, true),
            ("*~&%$", CredentialType::Password, true),
            ("1", CredentialType::Pin, true),
            ("1234", CredentialType::Pin, false),
            ("", CredentialType::None, true),
        ];
        for &(input, credential, complex) in cases {
            let m = PasswordMetrics::measure(input.as_bytes());
            assert_eq!(m.credential_type, credential, "{input}");
            assert_eq!(
                m.max_length_sequence <= MAX_ALLOWED_SEQUENCE,
                complex,
                "{input}"
            );
        }
    }

    // AOSP PasswordMetricsTest#testDetermineComplexity_none, _lowNumeric,
    // _lowNumericComplex, _lowAlphabetic, _lowAlphanumeric, _mediumNumericComplex,
    // _mediumAlphabetic, _mediumAlphanumeric, _highNumericComplex, _highAlphabetic,
    // _highAlphanumeric. (_lowSomething is a pattern, which AMAPI cannot set.)
    #[test]
    fn determine_complexity_matches_aosp() {
        let cases: &[(&str, Complexity)] = &[
            ("", Complexity::None),
            ("1234", Complexity::Low),
            ("124", Complexity::Low),
            ("a!", Complexity::Low),
            ("a!1", Complexity::Low),
            ("1238", Complexity::Medium),
            ("ab!c", Complexity::Medium),
            ("ab!1", Complexity::Medium),
            ("12389647!", Complexity::High),
            ("alphabetic!", Complexity::High),
            ("alphanumeric123!", Complexity::High),
            // password-rules.md: an all-digit passcode needs 8 for high.
            ("1238964", Complexity::Medium),
            ("12389640", Complexity::High),
        ];
        for &(input, expected) in cases {
            assert_eq!(
                PasswordMetrics::measure(input.as_bytes()).complexity,
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn characters_outside_ascii_32_to_127_are_invalid() {
        for input in [
            "\u{2122}\u{2122}\u{2122}\u{2122}",
            "caf\u{e9}1234",
            "ab\tcd",
            "ab\ncd",
        ] {
            assert!(
                PasswordMetrics::measure(input.as_bytes()).invalid_characters,
                "{input:?}"
            );
        }
        for input in ["a b c d", "~~~~", "abc\u{7f}"] {
            assert!(
                !PasswordMetrics::measure(input.as_bytes()).invalid_characters,
                "{input:?}"
            );
        }
        // Multi-byte UTF-8 is measured per byte, each a symbol.
        let m = PasswordMetrics::measure("\u{e9}".as_bytes());
        assert_eq!((m.length, m.symbols), (2, 2));
        assert_eq!(m.credential_type, CredentialType::Password);
    }

    #[test]
    fn serializes_with_android_field_names() {
        let value = serde_json::to_value(PasswordMetrics::measure(b"1357")).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "complexity",
                "credentialType",
                "invalidCharacters",
                "length",
                "letters",
                "lowerCase",
                "maxLengthSequence",
                "nonLetter",
                "nonNumeric",
                "numeric",
                "symbols",
                "upperCase",
            ]
        );
        assert_eq!(value["credentialType"], "PIN");
        assert_eq!(value["complexity"], "LOW");
        let empty = serde_json::to_value(PasswordMetrics::measure(b"")).unwrap();
        assert_eq!(empty["credentialType"], "NONE");
        assert_eq!(empty["complexity"], "NONE");
        let password = serde_json::to_value(PasswordMetrics::measure(b"alphabetic!")).unwrap();
        assert_eq!(password["credentialType"], "PASSWORD");
        assert_eq!(password["complexity"], "HIGH");
    }

    proptest! {
        #[test]
        fn counts_add_up(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let m = PasswordMetrics::measure(&bytes);
            prop_assert_eq!(m.length as usize, bytes.len());
            prop_assert_eq!(m.letters, m.upper_case + m.lower_case);
            prop_assert_eq!(m.non_letter, m.numeric + m.symbols);
            prop_assert_eq!(m.non_numeric, m.letters + m.symbols);
            prop_assert_eq!(m.length, m.letters + m.numeric + m.symbols);
            prop_assert!(m.max_length_sequence <= m.length);
            prop_assert_eq!(m.max_length_sequence == 0, bytes.is_empty());
            let digits_only = !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit);
            prop_assert_eq!(m.credential_type == CredentialType::Pin, digits_only);
            prop_assert_eq!(m.credential_type == CredentialType::None, bytes.is_empty());
            prop_assert_eq!(m.invalid_characters, bytes.iter().any(|b| !(32..=127).contains(b)));
        }

        #[test]
        fn a_run_never_exceeds_its_proof(text in "[0-9a-cA-C;:]{1,24}") {
            // Every passcode has a run of at least 1, and a constant string is one run.
            let m = PasswordMetrics::measure(text.as_bytes());
            prop_assert!(m.max_length_sequence >= 1);
            let repeated = text.as_bytes()[0..1].repeat(text.len());
            prop_assert_eq!(max_length_sequence(&repeated) as usize, text.len());
        }
    }
}
