//! The passcode itself: a secret that is wiped from memory when dropped and
//! that cannot be printed, logged or serialized by accident.

use zeroize::Zeroizing;

/// Why a value cannot be used as a passcode. Never carries the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasscodeError {
    /// Nothing left after reading (an empty Secret key, or an empty line).
    #[error("the passcode is empty")]
    Empty,
    /// AMAPI takes the passcode as a JSON string, so it must be text.
    #[error("the passcode is not valid UTF-8")]
    NotUtf8,
}

/// A proposed passcode. Its bytes are zeroed on drop; it has no `Clone`,
/// `Display` or `Serialize`, and its `Debug` prints `Passcode(<redacted>)`.
pub struct Passcode(Zeroizing<Vec<u8>>);

impl Passcode {
    /// Takes the raw value of a Kubernetes Secret key, byte for byte (a
    /// trailing newline is part of the passcode: Secret data is exact).
    pub fn from_secret_data(data: Vec<u8>) -> Result<Passcode, PasscodeError> {
        Passcode::validated(Zeroizing::new(data))
    }

    /// Takes what a person typed or piped on standard input: exactly one
    /// trailing `"\n"` or `"\r\n"` is the end of the line, not the passcode.
    pub fn from_stdin(input: Vec<u8>) -> Result<Passcode, PasscodeError> {
        let mut bytes = Zeroizing::new(input);
        let ending = if bytes.ends_with(b"\r\n") {
            2
        } else {
            usize::from(bytes.ends_with(b"\n"))
        };
        let kept = bytes.len() - ending;
        bytes.truncate(kept);
        Passcode::validated(bytes)
    }

    fn validated(bytes: Zeroizing<Vec<u8>>) -> Result<Passcode, PasscodeError> {
        if bytes.is_empty() {
            return Err(PasscodeError::Empty);
        }
        if std::str::from_utf8(&bytes).is_err() {
            return Err(PasscodeError::NotUtf8);
        }
        Ok(Passcode(bytes))
    }

    /// The passcode as text. Only two places may call this: building the AMAPI
    /// `RESET_PASSWORD` request body, and the judge. Anything else (logs,
    /// status, events, errors, metrics) must never see it.
    pub fn expose(&self) -> &str {
        // Checked to be UTF-8 at construction, so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The raw bytes, for [`super::judge()`].
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Passcode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passcode(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "canary-7Kq2";

    #[test]
    fn secret_data_is_taken_byte_for_byte() {
        let p = Passcode::from_secret_data(format!("{CANARY}\n").into_bytes()).unwrap();
        assert_eq!(p.expose(), format!("{CANARY}\n"));
        assert_eq!(p.as_bytes(), format!("{CANARY}\n").as_bytes());
    }

    #[test]
    fn stdin_strips_exactly_one_line_ending() {
        let cases: &[(&[u8], &str)] = &[
            (b"1357\n", "1357"),
            (b"1357\r\n", "1357"),
            (b"1357\n\n", "1357\n"),
            (b"1357\r\n\r\n", "1357\r\n"),
            (b"1357\r", "1357\r"),
            (b"1357", "1357"),
            (b" 1357 \n", " 1357 "),
        ];
        for &(input, expected) in cases {
            assert_eq!(
                Passcode::from_stdin(input.to_vec()).unwrap().expose(),
                expected
            );
        }
    }

    #[test]
    fn empty_and_non_utf8_are_refused() {
        assert_eq!(
            Passcode::from_secret_data(Vec::new()).unwrap_err(),
            PasscodeError::Empty
        );
        for input in [&b""[..], b"\n", b"\r\n"] {
            assert_eq!(
                Passcode::from_stdin(input.to_vec()).unwrap_err(),
                PasscodeError::Empty
            );
        }
        let mut bad = CANARY.as_bytes().to_vec();
        bad.push(0xff);
        let error = Passcode::from_secret_data(bad.clone()).unwrap_err();
        assert_eq!(error, PasscodeError::NotUtf8);
        assert!(error.to_string().contains("is not valid UTF-8"));
        assert_eq!(
            Passcode::from_stdin(bad).unwrap_err(),
            PasscodeError::NotUtf8
        );
    }

    #[test]
    fn debug_and_errors_never_show_the_value() {
        let p = Passcode::from_secret_data(CANARY.as_bytes().to_vec()).unwrap();
        for text in [
            format!("{p:?}"),
            format!("{p:#?}"),
            format!("{:?}", Some(&p)),
        ] {
            assert!(!text.contains(CANARY), "{text}");
            assert!(text.contains("Passcode(<redacted>)"), "{text}");
        }
        let mut bad = CANARY.as_bytes().to_vec();
        bad.push(0xc3);
        let results = [
            Passcode::from_secret_data(bad.clone()),
            Passcode::from_stdin(bad),
            Passcode::from_secret_data(CANARY.as_bytes().to_vec()),
        ];
        for result in &results {
            let shown = format!("{result:?}");
            assert!(!shown.contains(CANARY), "{shown}");
            if let Err(error) = result {
                assert!(!error.to_string().contains(CANARY));
            }
        }
    }
}
