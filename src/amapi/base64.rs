//! Base64 for Pub/Sub message data (`bytes` fields in Google's JSON): standard alphabet with
//! padding when writing; either alphabet, padded or not, when reading (Google's JSON parser
//! accepts both). Errors say where, never what: the data may carry a passcode.

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes `bytes` with the standard alphabet and `=` padding.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(STANDARD[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Why data is not base64: only a position, never the offending text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("not base64: invalid character at offset {0}")]
    InvalidCharacter(usize),
    #[error("not base64: a length of {0} characters cannot be base64")]
    InvalidLength(usize),
}

fn value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    } as u32)
}

/// Decodes standard or URL-safe base64, with or without padding.
pub fn decode(text: &str) -> Result<Vec<u8>, DecodeError> {
    let bytes = text.as_bytes();
    let unpadded = text.trim_end_matches('=');
    let padding = bytes.len() - unpadded.len();
    if padding > 2 || (padding > 0 && !bytes.len().is_multiple_of(4)) {
        return Err(DecodeError::InvalidLength(bytes.len()));
    }
    let data = unpadded.as_bytes();
    if data.len() % 4 == 1 {
        return Err(DecodeError::InvalidLength(bytes.len()));
    }
    let mut out = Vec::with_capacity(data.len() / 4 * 3 + 2);
    for (chunk_index, chunk) in data.chunks(4).enumerate() {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            let v = value(c).ok_or(DecodeError::InvalidCharacter(chunk_index * 4 + i))?;
            n |= v << (18 - 6 * i);
        }
        let produced = chunk.len() - 1; // 4 chars → 3 bytes, 3 → 2, 2 → 1
        for i in 0..produced {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc4648_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(plain.as_bytes()), coded);
            assert_eq!(decode(coded).unwrap(), plain.as_bytes());
            assert_eq!(
                decode(coded.trim_end_matches('=')).unwrap(),
                plain.as_bytes()
            );
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&all)).unwrap(), all);
        assert_eq!(decode("-_8=").unwrap(), decode("+/8=").unwrap());
    }

    #[test]
    fn errors_name_a_position_only() {
        assert_eq!(decode("Zm9v!mFy"), Err(DecodeError::InvalidCharacter(4)));
        assert_eq!(decode("Zm9vY"), Err(DecodeError::InvalidLength(5)));
        assert_eq!(decode("Zg==="), Err(DecodeError::InvalidLength(5)));
        assert_eq!(decode("Zg="), Err(DecodeError::InvalidLength(3)));
        assert!(
            !decode("secret!")
                .unwrap_err()
                .to_string()
                .contains("secret")
        );
    }
}
