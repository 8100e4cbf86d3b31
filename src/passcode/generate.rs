//! A passcode made to meet the governing requirements, easy to read out over the phone: a PIN
//! when PINs are allowed (digits are the easiest to dictate), else lower-case letters and digits,
//! with upper-case letters and symbols only as many as the rules ask for. In a password, letters
//! and digits that look alike (0/O/o, 1/l/I/i) are never used. The randomness comes from the
//! caller (`pick(n)` draws uniformly from `0..n`; the plugin uses the operating system's CSPRNG),
//! so this stays pure; every result is checked with [`judge()`] before it is returned.

use zeroize::Zeroizing;

use super::judge::judge;
use super::requirements::{Governing, RequiredCredential};
use super::{ANDROID_14_MIN_NUMERIC_LENGTH, MAX_PASSWORD_LENGTH, Passcode};

/// Digits of a PIN: there are no letters to mistake them for.
const PIN_DIGITS: &[u8] = b"0123456789";
/// Letters and digits of a password, without look-alikes (no i, l, o, I, O, 0, 1).
const LOWER: &[u8] = b"abcdefghjkmnpqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const DIGITS: &[u8] = b"23456789";
/// Symbols with a short spoken name and no look-alike.
const SYMBOLS: &[u8] = b"#%+=@?*&";

/// Shortest PIN made: what Android 14 asks for whatever the policy, so it fits every device.
const PIN_LENGTH: u32 = ANDROID_14_MIN_NUMERIC_LENGTH;
/// Shortest password made.
const PASSWORD_LENGTH: u32 = 8;
/// Draws until one passes; a sequence (1234, abcd) is the only way a draw can fail, and rare.
const ATTEMPTS: usize = 1000;

/// Why no passcode can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    #[error(
        "the requirements ask for {0} characters of particular kinds, more than Android's {MAX_PASSWORD_LENGTH}"
    )]
    TooLong(u32),
    #[error("no passcode meeting the requirements was found")]
    NotFound,
}

/// A passcode that meets `governing` (on a device of `api_level`, if known).
pub fn generate(
    governing: &Governing,
    api_level: Option<u32>,
    pick: &mut dyn FnMut(usize) -> usize,
) -> Result<Passcode, GenerateError> {
    let pin = governing.credential() <= RequiredCredential::Pin;
    for _ in 0..ATTEMPTS {
        let bytes = if pin {
            let length = governing.minimums(true).length.max(PIN_LENGTH);
            (0..length).map(|_| draw(PIN_DIGITS, pick)).collect()
        } else {
            password(governing, pick)?
        };
        let bytes = Zeroizing::new(bytes);
        if judge(Some(&bytes), governing, api_level).passes {
            return Passcode::from_secret_data(bytes.to_vec()).map_err(|_| GenerateError::NotFound);
        }
    }
    Err(GenerateError::NotFound)
}

fn password(
    governing: &Governing,
    pick: &mut dyn FnMut(usize) -> usize,
) -> Result<Vec<u8>, GenerateError> {
    let m = governing.minimums(false);
    let upper = m.upper_case;
    let mut lower = m.lower_case;
    // Letters beyond the upper- and lower-case minimums are lower case.
    lower += m.letters.saturating_sub(upper + lower);
    let symbols = m.symbols;
    let mut digits = m.numeric;
    digits += m.non_letter.saturating_sub(digits + symbols);
    lower += m.non_numeric.saturating_sub(upper + lower + symbols);
    // A password: at least one character that is not a digit.
    if upper + lower + symbols == 0 {
        lower = 1;
    }
    let required = upper + lower + symbols + digits;
    if required > MAX_PASSWORD_LENGTH {
        return Err(GenerateError::TooLong(required));
    }
    let length = m
        .length
        .max(PASSWORD_LENGTH)
        .max(required)
        .min(MAX_PASSWORD_LENGTH);
    let mut chars = Vec::with_capacity(length as usize);
    for (set, n) in [
        (UPPER, upper),
        (LOWER, lower),
        (SYMBOLS, symbols),
        (DIGITS, digits),
    ] {
        chars.extend((0..n).map(|_| draw(set, pick)));
    }
    // The rest alternates letters and digits, which read out well.
    while chars.len() < length as usize {
        let set = if chars.len() % 2 == 0 { LOWER } else { DIGITS };
        chars.push(draw(set, pick));
    }
    // Fisher-Yates, so the required kinds are not always first.
    for i in (1..chars.len()).rev() {
        chars.swap(i, pick(i + 1));
    }
    Ok(chars)
}

fn draw(set: &[u8], pick: &mut dyn FnMut(usize) -> usize) -> u8 {
    set[pick(set.len()) % set.len()]
}

/// Whether `c` is one of the characters a password made here avoids.
pub fn is_look_alike(c: char) -> bool {
    matches!(c, '0' | 'O' | 'o' | '1' | 'l' | 'I' | 'i')
}

#[cfg(test)]
mod tests {
    use super::super::requirements::tests::any_requirements;
    use super::super::{PasswordQuality, Requirements};
    use super::*;
    use proptest::prelude::*;

    fn seeded(seed: u64) -> impl FnMut(usize) -> usize {
        let mut rng = fastrand::Rng::with_seed(seed);
        move |n| rng.usize(0..n)
    }

    fn of(quality: PasswordQuality, f: impl FnOnce(&mut Requirements)) -> Governing {
        let mut r = Requirements {
            quality,
            ..Requirements::default()
        };
        f(&mut r);
        Governing::from_requirement(&r)
    }

    #[test]
    fn pins_when_allowed_passwords_otherwise() {
        let pin = generate(
            &of(PasswordQuality::NumericComplex, |r| {
                r.minimum_length = Some(6)
            }),
            Some(34),
            &mut seeded(1),
        )
        .unwrap();
        assert!(pin.expose().bytes().all(|b| b.is_ascii_digit()) && pin.expose().len() == 6);
        let none = generate(&Governing::none(), None, &mut seeded(2)).unwrap();
        assert_eq!(
            none.expose().len(),
            6,
            "fits Android 14 without a policy too"
        );
        let password = generate(
            &of(PasswordQuality::Alphanumeric, |_| {}),
            Some(34),
            &mut seeded(3),
        )
        .unwrap();
        let p = password.expose();
        assert_eq!(p.len(), 8);
        assert!(p.chars().any(|c| c.is_ascii_digit()) && p.chars().any(|c| c.is_ascii_lowercase()));
        assert!(
            !p.chars()
                .any(|c| c.is_ascii_uppercase() || !c.is_ascii_alphanumeric()),
            "only what is asked for"
        );
    }

    #[test]
    fn complex_requirements_get_each_kind_they_ask_for() {
        let g = of(PasswordQuality::Complex, |r| {
            r.minimum_length = Some(12);
            r.minimum_upper_case = Some(2);
            r.minimum_symbols = Some(2);
            r.minimum_numeric = Some(3);
        });
        let p = generate(&g, Some(34), &mut seeded(4)).unwrap();
        let p = p.expose();
        assert_eq!(p.len(), 12);
        assert!(p.chars().filter(|c| c.is_ascii_uppercase()).count() >= 2);
        assert!(p.chars().filter(|c| !c.is_ascii_alphanumeric()).count() >= 2);
        assert!(!p.chars().any(is_look_alike), "{}", p.len());
    }

    #[test]
    fn impossible_requirements_say_so() {
        let g = of(PasswordQuality::Complex, |r| {
            r.minimum_letters = Some(12);
            r.minimum_symbols = Some(8);
        });
        assert_eq!(
            generate(&g, None, &mut seeded(5)).unwrap_err(),
            GenerateError::TooLong(21),
            "12 letters, 8 symbols and COMPLEX's one digit"
        );
    }

    proptest! {
        /// Whatever the requirements (merged, any API level), what is made passes the judge, and
        /// a password has no look-alike characters.
        #[test]
        fn what_is_made_meets_the_requirements(
            rs in proptest::collection::vec(any_requirements(), 0..3),
            api_level in proptest::option::of(26u32..36),
            seed in any::<u64>(),
        ) {
            let g = Governing::from_requirements(&rs);
            match generate(&g, api_level, &mut seeded(seed)) {
                Ok(p) => {
                    let v = judge(Some(p.as_bytes()), &g, api_level);
                    prop_assert!(v.passes, "{:?}", v.unmet().collect::<Vec<_>>());
                    if !p.expose().bytes().all(|b| b.is_ascii_digit()) {
                        prop_assert!(!p.expose().chars().any(is_look_alike));
                    }
                }
                Err(GenerateError::TooLong(n)) => prop_assert!(n > MAX_PASSWORD_LENGTH),
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }
}
