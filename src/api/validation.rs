//! Shapes and bounds shared by the schema (enforced by the API server) and the operator's own
//! checks (for servers that predate CEL, and for clear messages).

/// AMAPI device resource name: `enterprises/{enterprise}/devices/{device}`.
pub const DEVICE_NAME_PATTERN: &str =
    r"^enterprises/[A-Za-z0-9_-]{1,64}/devices/[A-Za-z0-9_-]{1,64}$";
/// AMAPI policy resource name: `enterprises/{enterprise}/policies/{policy}`.
pub const POLICY_NAME_PATTERN: &str =
    r"^enterprises/[A-Za-z0-9_-]{1,64}/policies/[A-Za-z0-9_.-]{1,100}$";
/// A Go-style duration made of hours, minutes and seconds, e.g. `10m`, `1h30m`, `600s`.
pub const DURATION_PATTERN: &str = r"^([0-9]{1,7}(h|m|s))+$";
/// A Secret name (DNS-1123 subdomain).
pub const SECRET_NAME_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// A key in a Secret's data.
pub const SECRET_KEY_PATTERN: &str = r"^[-._a-zA-Z0-9]+$";

/// Android's longest passcode (`MAX_PASSWORD_LENGTH` on stock Android); longer minimums can never
/// be met.
pub const ANDROID_MAX_LENGTH: u32 = 16;
/// Bounds of a command's validity (`expiresAfter`).
pub const MIN_EXPIRES_AFTER_SECS: u64 = 60;
pub const MAX_EXPIRES_AFTER_SECS: u64 = 7 * 24 * 3600;
/// AMAPI's default command validity.
pub const DEFAULT_EXPIRES_AFTER_SECS: u64 = 600;

/// Parses a duration in the shape of [`DURATION_PATTERN`] into seconds.
pub fn parse_duration_secs(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 32 {
        return None;
    }
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in text.chars() {
        match c {
            '0'..='9' => {
                let digit = u64::from(c as u8 - b'0');
                number = Some(number.unwrap_or(0).checked_mul(10)?.checked_add(digit)?);
            }
            'h' | 'm' | 's' => {
                let unit = match c {
                    'h' => 3600,
                    'm' => 60,
                    _ => 1,
                };
                total = total.checked_add(number.take()?.checked_mul(unit)?)?;
            }
            _ => return None,
        }
    }
    if number.is_some() { None } else { Some(total) }
}

/// Whether `name` is an AMAPI device resource name; returns its enterprise part when it is.
pub fn device_enterprise(name: &str) -> Option<&str> {
    let mut parts = name.split('/');
    let (Some("enterprises"), Some(enterprise), Some("devices"), Some(device), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let ok = |s: &str| {
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    (ok(enterprise) && ok(device)).then_some(enterprise)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("10m"), Some(600));
        assert_eq!(parse_duration_secs("1h30m"), Some(5400));
        assert_eq!(parse_duration_secs("600s"), Some(600));
        assert_eq!(parse_duration_secs("1h0m5s"), Some(3605));
        for bad in [
            "",
            "10",
            "m",
            "10x",
            "1.5h",
            "-1m",
            "10 m",
            "99999999999999999999h",
        ] {
            assert_eq!(parse_duration_secs(bad), None, "{bad}");
        }
    }

    #[test]
    fn device_names() {
        assert_eq!(
            device_enterprise("enterprises/LC01abc/devices/3a8f0c2d"),
            Some("LC01abc")
        );
        for bad in [
            "",
            "enterprises/LC01abc/devices/",
            "enterprises//devices/x",
            "enterprises/a/devices/b/operations/1",
            "enterprises/a/policies/b",
            "Enterprises/a/devices/b",
            "enterprises/a b/devices/c",
        ] {
            assert_eq!(device_enterprise(bad), None, "{bad}");
        }
    }
}
