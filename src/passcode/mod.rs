//! Passcode rules engine: predicts whether an Android device will accept a new
//! work-profile passcode before the operator asks AMAPI to set it.
//!
//! The device is the final judge (it answers `INVALID_VALUE` when it refuses),
//! so this module follows AOSP's own rules (`PasswordMetrics`, `PasswordPolicy`,
//! `LockscreenCredential`) rather than inventing stricter or looser ones. There
//! is no I/O anywhere in here.
//!
//! The pipeline:
//!
//! 1. [`Requirements`] is the judged part of one AMAPI `PasswordRequirements`
//!    ([`Requirements::from_amapi`] and [`Requirements::to_amapi`] are the one
//!    mapping between the two; an unknown quality reads as [`UNKNOWN_QUALITY`]).
//! 2. [`Governing::from_requirements`] turns each into Android's minimum metrics
//!    (`PasswordPolicy.getMinMetrics`) plus a minimum complexity band, and merges
//!    them field by field, strictest wins.
//! 3. [`PasswordMetrics::measure`] measures a candidate passcode
//!    (`PasswordMetrics.computeForPasswordOrPin`).
//! 4. [`judge()`] compares the two (`PasswordMetrics.validateCredential`) and
//!    returns a [`Verdict`] with a checklist of [`Check`]s.
//!
//! # The checklist
//!
//! One line per requirement that applies, always in this order (see [`RULES`]):
//!
//! | rule id | listed when |
//! |---|---|
//! | `clearingAllowed` | clearing, and nothing requires a passcode |
//! | `passcodeRequired` | something requires a passcode |
//! | `allowedCharacters` | a passcode is given |
//! | `minimumLength` | a passcode is given (never below Android's 4, never above 16) |
//! | `maximumLength` | a passcode is given (stock Android's 16) |
//! | `android14Numeric` | API level >= 34 is known, PINs are allowed and the other lines allow a PIN shorter than 6 |
//! | `notDigitsOnly` | a password (not a PIN) is required |
//! | `noSequence` | `NUMERIC_COMPLEX`, `COMPLEXITY_MEDIUM` or `COMPLEXITY_HIGH` applies |
//! | `minimumLetters` .. `minimumNonNumeric` | `COMPLEX` counters, minus those implied by others (as Android drops them) |
//! | `complexity` | a `COMPLEXITY_*` band applies (summary line, implied by the lines above it) |
//!
//! For a given [`Governing`] and API level the set of lines is the same for
//! every non-empty passcode; only `met` and the number in `minimumLength` (a
//! PIN needs 8 at high complexity, a password 6) depend on the passcode.
//! Descriptions are built from the requirements alone and never contain the
//! passcode or any part of it.
//!
//! # Where this deliberately follows modern AOSP
//!
//! Android 11 and later keep a sequence limit that came from `NUMERIC_COMPLEX`
//! even when the new credential is a password, so `abcd1234` fails a merged
//! `NUMERIC_COMPLEX` requirement. Older releases compared qualities instead and
//! let any password through; being strict here only costs a refused request,
//! never a failed command.

mod amapi_mapping;
mod complexity;
mod generate;
mod judge;
mod requirements;
mod secret;

pub use amapi_mapping::UNKNOWN_QUALITY;
pub use complexity::{Complexity, CredentialType, PasswordMetrics, max_length_sequence};
pub use generate::{GenerateError, generate, is_look_alike};
pub use judge::{Check, RULES, Verdict, judge};
pub use requirements::{Governing, PasswordQuality, RequiredCredential, Requirements};
pub use secret::{Passcode, PasscodeError};

/// Android refuses any PIN or password shorter than this, whatever the policy
/// says (`LockPatternUtils.MIN_LOCK_PASSWORD_SIZE`).
pub const MIN_LOCK_LENGTH: u32 = 4;

/// Longest PIN or password stock Android accepts
/// (`DevicePolicyManager.MAX_PASSWORD_LENGTH`); some vendors accept more, but
/// predicting the stock limit never issues a command the device refuses.
pub const MAX_PASSWORD_LENGTH: u32 = 16;

/// A run of repeated or evenly stepped characters longer than this is a
/// "sequence" (`PasswordMetrics.MAX_ALLOWED_SEQUENCE`).
pub const MAX_ALLOWED_SEQUENCE: u32 = 3;

/// From this API level (Android 14) AMAPI refuses a numeric new password
/// shorter than [`ANDROID_14_MIN_NUMERIC_LENGTH`].
pub const ANDROID_14_API_LEVEL: u32 = 34;

/// Minimum length of a digits-only passcode from Android 14 on (AMAPI's rule).
pub const ANDROID_14_MIN_NUMERIC_LENGTH: u32 = 6;
