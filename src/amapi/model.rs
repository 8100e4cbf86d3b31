//! AMAPI's JSON shapes (discovery document `androidmanagement.v1.json`), the subset this operator
//! uses. Shared by the client and the simulator. Unknown fields are ignored and unknown enum values
//! are kept as [`Other`](ManagementMode::Other), so a newer API never breaks parsing.
//!
//! `Command.newPassword` exists only on [`Command`] as the client sends it; the Operation metadata
//! that AMAPI echoes it back in is parsed into [`CommandMetadata`], which has no such field, so it
//! is dropped on parsing and can never be logged, stored or shown.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An AMAPI string enum that keeps values it does not know.
macro_rules! amapi_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $wire:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)*
            /// A value this version does not know.
            Other(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)*
                    Self::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($wire => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok(Self::from(String::deserialize(d)?.as_str()))
            }
        }
    };
}

amapi_enum!(
    /// Device.managementMode.
    ManagementMode {
        Unspecified = "MANAGEMENT_MODE_UNSPECIFIED",
        DeviceOwner = "DEVICE_OWNER",
        ProfileOwner = "PROFILE_OWNER",
    }
);

amapi_enum!(
    /// Device.state / appliedState.
    DeviceState {
        Unspecified = "DEVICE_STATE_UNSPECIFIED",
        Active = "ACTIVE",
        Disabled = "DISABLED",
        Deleted = "DELETED",
        Provisioning = "PROVISIONING",
        Lost = "LOST",
        PreparingForMigration = "PREPARING_FOR_MIGRATION",
        DeactivatedByDeviceFinance = "DEACTIVATED_BY_DEVICE_FINANCE",
    }
);

amapi_enum!(
    /// Device.ownership.
    Ownership {
        Unspecified = "OWNERSHIP_UNSPECIFIED",
        CompanyOwned = "COMPANY_OWNED",
        PersonallyOwned = "PERSONALLY_OWNED",
    }
);

amapi_enum!(
    /// Command.type.
    CommandType {
        Unspecified = "COMMAND_TYPE_UNSPECIFIED",
        Lock = "LOCK",
        ResetPassword = "RESET_PASSWORD",
        Reboot = "REBOOT",
    }
);

amapi_enum!(
    /// Command.resetPasswordFlags items.
    ResetPasswordFlag {
        Unspecified = "RESET_PASSWORD_FLAG_UNSPECIFIED",
        RequireEntry = "REQUIRE_ENTRY",
        DoNotAskCredentialsOnBoot = "DO_NOT_ASK_CREDENTIALS_ON_BOOT",
        LockNow = "LOCK_NOW",
    }
);

amapi_enum!(
    /// Command.errorCode.
    CommandErrorCode {
        Unspecified = "COMMAND_ERROR_CODE_UNSPECIFIED",
        Unknown = "UNKNOWN",
        ApiLevel = "API_LEVEL",
        ManagementMode = "MANAGEMENT_MODE",
        InvalidValue = "INVALID_VALUE",
        Unsupported = "UNSUPPORTED",
    }
);

amapi_enum!(
    /// PasswordRequirements.passwordScope.
    PasswordScope {
        Unspecified = "SCOPE_UNSPECIFIED",
        Device = "SCOPE_DEVICE",
        Profile = "SCOPE_PROFILE",
    }
);

/// int64 fields travel as JSON strings in Google's APIs.
mod int64_string {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&v.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Text(String),
            Number(i64),
        }
        match Option::<Wire>::deserialize(d)? {
            None => Ok(None),
            Some(Wire::Number(n)) => Ok(Some(n)),
            Some(Wire::Text(t)) => t.parse().map(Some).map_err(D::Error::custom),
        }
    }
}

/// AMAPI PasswordRequirements (as in Policy.passwordPolicies and Device.appliedPasswordPolicies).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PasswordRequirements {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_scope: Option<PasswordScope>,
    /// Kept as text: an unknown quality must not make a device unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_quality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_minimum_length: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_minimum_letters: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_minimum_lower_case: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_minimum_upper_case: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_minimum_non_letter: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_minimum_numeric: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_minimum_symbols: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_history_length: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_failed_passwords_for_wipe: Option<i32>,
    /// A google-duration such as `"7776000s"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_expiration_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_password_unlock: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unified_lock_settings: Option<String>,
}

/// Device.hardwareInfo (the fields people recognise a phone by).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HardwareInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
}

/// Device.nonComplianceDetails item.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NonComplianceDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setting_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_compliance_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specific_non_compliance_reason: Option<String>,
}

/// An AMAPI Device.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_mode: Option<ManagementMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership: Option<Ownership>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<DeviceState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_state: Option<DeviceState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_level: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_policy_name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "int64_string"
    )]
    pub applied_policy_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applied_password_policies: Vec<PasswordRequirements>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub non_compliance_details: Vec<NonComplianceDetail>,
    /// RFC 3339 timestamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_policy_sync_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status_report_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_info: Option<HardwareInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
}

/// A Command as the client sends it to `devices.issueCommand`. The only type holding the new
/// passcode; it is built just before the request and dropped right after.
#[derive(Serialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Command {
    #[serde(rename = "type")]
    pub type_: CommandType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_password: Option<zeroize::Zeroizing<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reset_password_flags: Vec<ResetPasswordFlag>,
    /// A google-duration such as `"600s"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Command")
            .field("type", &self.type_)
            .field(
                "newPassword",
                &self.new_password.as_ref().map(|_| "<redacted>"),
            )
            .field("resetPasswordFlags", &self.reset_password_flags)
            .field("duration", &self.duration)
            .finish()
    }
}

/// Operation.metadata for a command: the Command as AMAPI echoes it, WITHOUT `newPassword`
/// (unknown fields are dropped by serde, which is the redaction).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CommandMetadata {
    #[serde(rename = "@type", default, skip_serializing_if = "Option::is_none")]
    pub at_type: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<CommandType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<CommandErrorCode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reset_password_flags: Vec<ResetPasswordFlag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
}

/// google.rpc.Status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    #[serde(default)]
    pub code: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<serde_json::Value>,
}

/// google.rpc.Code values that matter here.
pub mod rpc_code {
    pub const CANCELLED: i32 = 1;
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const NOT_FOUND: i32 = 5;
    pub const PERMISSION_DENIED: i32 = 7;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const FAILED_PRECONDITION: i32 = 9;
    pub const UNIMPLEMENTED: i32 = 12;
    pub const UNAVAILABLE: i32 = 14;
}

/// A long-running Operation for a command (metadata parsed without `newPassword`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<CommandMetadata>,
    #[serde(default)]
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<serde_json::Value>,
}

/// How an operation ended, by AMAPI's precedence: `metadata.errorCode`, then `error`, then success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperationOutcome {
    /// The device has not acted yet.
    Pending,
    Succeeded,
    /// The device refused it (`metadata.errorCode`).
    CommandError(CommandErrorCode),
    /// Cancelled by the caller (`error.code` 1).
    Cancelled,
    /// Failed with a google.rpc status.
    Failed {
        code: i32,
        message: String,
    },
}

impl Operation {
    pub fn outcome(&self) -> OperationOutcome {
        if !self.done {
            return OperationOutcome::Pending;
        }
        if let Some(code) = self.metadata.as_ref().and_then(|m| m.error_code.clone())
            && code != CommandErrorCode::Unspecified
        {
            return OperationOutcome::CommandError(code);
        }
        match &self.error {
            Some(e) if e.code == rpc_code::CANCELLED => OperationOutcome::Cancelled,
            Some(e) => OperationOutcome::Failed {
                code: e.code,
                message: e.message.clone(),
            },
            None => OperationOutcome::Succeeded,
        }
    }
}

/// An AMAPI Policy: only the fields this operator reads or writes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "int64_string"
    )]
    pub version: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub password_policies: Vec<PasswordRequirements>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListDevicesResponse {
    #[serde(default)]
    pub devices: Vec<Device>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListOperationsResponse {
    #[serde(default)]
    pub operations: Vec<Operation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Google's error body: `{"error": {"code", "message", "status", "details"}}`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ErrorDetail {
    /// The HTTP status code.
    #[serde(default)]
    pub code: u16,
    #[serde(default)]
    pub message: String,
    /// The google.rpc.Code name, e.g. `RESOURCE_EXHAUSTED`.
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<serde_json::Value>,
}

/// Formats seconds as a google-duration (`"600s"`).
pub fn google_duration(secs: u64) -> String {
    format!("{secs}s")
}

/// Parses a google-duration (`"600s"`, `"1.5s"`) into whole seconds.
pub fn parse_google_duration(text: &str) -> Option<u64> {
    let number = text.strip_suffix('s')?;
    let whole = number.split_once('.').map_or(number, |(w, _)| w);
    whole.parse().ok()
}

const NANOS_PER_SEC: u32 = 1_000_000_000;

/// Formats whole seconds plus nanoseconds as protobuf's JSON writes a Duration, which is how
/// Google echoes `Command.duration`: `"600s"`, else 3, 6 or 9 fractional digits (`"1.500s"`,
/// `"600.000123s"`, `"600.000123456s"`). Nanoseconds of a second or more carry into the seconds.
pub fn google_duration_nanos(secs: u64, nanos: u32) -> String {
    let secs = secs.saturating_add(u64::from(nanos / NANOS_PER_SEC));
    let nanos = nanos % NANOS_PER_SEC;
    if nanos == 0 {
        format!("{secs}s")
    } else if nanos.is_multiple_of(1_000_000) {
        format!("{secs}.{:03}s", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!("{secs}.{:06}s", nanos / 1_000)
    } else {
        format!("{secs}.{nanos:09}s")
    }
}

/// Parses a google-duration exactly into nanoseconds: digits, an optional fraction of 1 to 9
/// digits, then `s` (`"600.000123456s"` is 600_000_123_456). Negative or malformed text is
/// `None`. Any number of fractional digits up to 9 is accepted, so `"1.5s"` and `"1.500s"` are
/// equal: compare durations by value, never as text.
pub fn parse_google_duration_nanos(text: &str) -> Option<u128> {
    let number = text.strip_suffix('s')?;
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) if !f.is_empty() => (w, f),
        Some(_) => return None,
        None => (number, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 9 {
        return None;
    }
    let secs: u64 = whole.parse().ok()?;
    // Right-padded to 9 digits: ".5" is 500_000_000 ns.
    let nanos: u32 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().ok()?
    };
    Some(u128::from(secs) * u128::from(NANOS_PER_SEC) + u128::from(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_enum_values_and_fields_are_tolerated() {
        let d: Device = serde_json::from_value(json!({
            "name": "enterprises/E/devices/D",
            "managementMode": "SOMETHING_NEW",
            "state": "ACTIVE",
            "appliedPolicyVersion": "42",
            "brandNewField": {"x": 1},
        }))
        .unwrap();
        assert_eq!(
            d.management_mode,
            Some(ManagementMode::Other("SOMETHING_NEW".into()))
        );
        assert_eq!(d.state, Some(DeviceState::Active));
        assert_eq!(d.applied_policy_version, Some(42));
        let back = serde_json::to_value(&d).unwrap();
        assert_eq!(
            back["appliedPolicyVersion"], "42",
            "int64 travels as a string"
        );
    }

    #[test]
    fn echoed_new_password_is_dropped_when_parsing() {
        let canary = "CANARY-839201";
        let op: Operation = serde_json::from_value(json!({
            "name": "enterprises/E/devices/D/operations/1",
            "done": true,
            "metadata": {"@type": "type.googleapis.com/google.android.devicemanagement.v1.Command",
                         "type": "RESET_PASSWORD", "newPassword": canary, "errorCode": "INVALID_VALUE"},
        }))
        .unwrap();
        assert!(!format!("{op:?}").contains(canary));
        assert!(!serde_json::to_string(&op).unwrap().contains(canary));
        assert_eq!(
            op.outcome(),
            OperationOutcome::CommandError(CommandErrorCode::InvalidValue)
        );
    }

    #[test]
    fn command_debug_redacts_the_passcode() {
        let c = Command {
            type_: CommandType::ResetPassword,
            new_password: Some(zeroize::Zeroizing::new("CANARY-839201".into())),
            reset_password_flags: vec![ResetPasswordFlag::LockNow],
            duration: Some(google_duration(600)),
        };
        assert!(!format!("{c:?}").contains("CANARY"));
        let wire = serde_json::to_value(&c).unwrap();
        assert_eq!(
            wire["newPassword"], "CANARY-839201",
            "the request body carries it"
        );
        assert_eq!(wire["resetPasswordFlags"], json!(["LOCK_NOW"]));
    }

    #[test]
    fn outcome_precedence() {
        let op = |v: serde_json::Value| serde_json::from_value::<Operation>(v).unwrap().outcome();
        assert_eq!(op(json!({"name": "o"})), OperationOutcome::Pending);
        assert_eq!(
            op(json!({"name": "o", "done": true})),
            OperationOutcome::Succeeded
        );
        assert_eq!(
            op(
                json!({"name": "o", "done": true, "metadata": {"errorCode": "COMMAND_ERROR_CODE_UNSPECIFIED"}})
            ),
            OperationOutcome::Succeeded
        );
        assert_eq!(
            op(json!({"name": "o", "done": true, "error": {"code": 1, "message": "cancelled"}})),
            OperationOutcome::Cancelled
        );
        assert_eq!(
            op(
                json!({"name": "o", "done": true, "metadata": {"errorCode": "API_LEVEL"}, "error": {"code": 1}})
            ),
            OperationOutcome::CommandError(CommandErrorCode::ApiLevel)
        );
        assert_eq!(
            op(json!({"name": "o", "done": true, "error": {"code": 4, "message": "expired"}})),
            OperationOutcome::Failed {
                code: 4,
                message: "expired".into()
            }
        );
    }

    #[test]
    fn durations() {
        assert_eq!(google_duration(600), "600s");
        assert_eq!(parse_google_duration("600s"), Some(600));
        assert_eq!(parse_google_duration("1.5s"), Some(1));
        assert_eq!(parse_google_duration("600"), None);
        assert_eq!(parse_google_duration("600.000123456s"), Some(600));
    }

    #[test]
    fn durations_with_nanoseconds_are_exact() {
        for (secs, nanos, text) in [
            (600, 0, "600s"),
            (600, 123_456, "600.000123456s"),
            (600, 123_000, "600.000123s"),
            (1, 500_000_000, "1.500s"),
            (0, 1, "0.000000001s"),
            (0, 999_999_999, "0.999999999s"),
            (1, 1_000_000_000, "2s"),
        ] {
            let formatted = google_duration_nanos(secs, nanos);
            assert_eq!(formatted, text);
            let total = u128::from(secs) * 1_000_000_000 + u128::from(nanos);
            assert_eq!(
                parse_google_duration_nanos(&formatted),
                Some(total),
                "{text}"
            );
        }
        assert_eq!(
            google_duration_nanos(600, 0),
            google_duration(600),
            "whole seconds look the same either way"
        );
        assert_eq!(
            parse_google_duration_nanos("600.000123456s"),
            Some(600_000_123_456)
        );
        assert_eq!(parse_google_duration_nanos("1.5s"), Some(1_500_000_000));
        assert_eq!(
            parse_google_duration_nanos("1.5s"),
            parse_google_duration_nanos("1.500000000s")
        );
        // Protobuf's largest Duration, in nanoseconds, fits.
        assert_eq!(
            parse_google_duration_nanos("315576000000.999999999s"),
            Some(315_576_000_000_999_999_999)
        );
        assert_eq!(
            google_duration_nanos(u64::MAX, 999_999_999),
            format!("{}.999999999s", u64::MAX)
        );
        for bad in [
            "600",
            "s",
            "-5s",
            "1.s",
            ".5s",
            "1e3s",
            "10m",
            "1.0000000001s",
            "1.5",
            " 1s",
            "1,5s",
            "+1s",
        ] {
            assert_eq!(parse_google_duration_nanos(bad), None, "{bad}");
        }
    }
}
