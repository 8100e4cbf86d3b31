//! A command as `devices.issueCommand` receives it, and the record the simulator keeps of it: the
//! source of both the AMAPI Operation and the admin API's command history.
//!
//! The new passcode is kept on the record for one reason only: Google echoes it back in the
//! Operation metadata, and clients must be tested against that. It is zeroized on drop, redacted
//! from `Debug`, never logged, and the admin view only says whether one was sent.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::clock;
use crate::amapi::model::{
    CommandErrorCode, CommandMetadata, CommandType, Operation, ResetPasswordFlag, Status,
    google_duration_nanos, rpc_code,
};

/// `@type` of the Operation metadata for a command.
pub const COMMAND_TYPE_URL: &str = "type.googleapis.com/google.android.devicemanagement.v1.Command";
/// `@type` of the Operation response when a command succeeded.
pub const RESPONSE_TYPE_URL: &str =
    "type.googleapis.com/google.android.devicemanagement.v1.IssueCommandResponse";

/// The validity of a command when the caller does not say (Google's documented default).
pub const DEFAULT_DURATION: Duration = Duration::from_secs(600);

/// The longest protobuf Duration (10,000 years); Google refuses longer ones.
const MAX_DURATION_SECS: u64 = 315_576_000_000;

/// Command types in the discovery document that the simulated devices do not carry out; they are
/// accepted and end with `UNSUPPORTED`.
const OTHER_KNOWN_TYPES: &[&str] = &[
    "RELINQUISH_OWNERSHIP",
    "CLEAR_APP_DATA",
    "START_LOST_MODE",
    "STOP_LOST_MODE",
    "ADD_ESIM",
    "REMOVE_ESIM",
    "REQUEST_DEVICE_INFO",
    "WIPE",
];

/// Every field of the discovery document's `Command`; anything else is refused like Google does.
const COMMAND_FIELDS: &[&str] = &[
    "addEsimParams",
    "clearAppsDataParams",
    "clearAppsDataStatus",
    "createTime",
    "duration",
    "errorCode",
    "esimStatus",
    "newPassword",
    "removeEsimParams",
    "requestDeviceInfoParams",
    "requestDeviceInfoStatus",
    "resetPasswordFlags",
    "startLostModeParams",
    "startLostModeStatus",
    "stopLostModeParams",
    "stopLostModeStatus",
    "type",
    "userName",
    "wipeParams",
];

/// A validated `devices.issueCommand` body.
pub struct CommandRequest {
    pub type_: CommandType,
    pub new_password: Option<Zeroizing<String>>,
    pub flags: Vec<ResetPasswordFlag>,
    pub duration: Duration,
}

/// Parses and checks a request body. Error messages name fields, never their values (a badly
/// typed `newPassword` must not end up in an error or a log).
pub fn parse_request(body: &[u8]) -> Result<CommandRequest, String> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("Invalid JSON payload received: {}", syntax_only(&e)))?;
    let Value::Object(mut fields) = value else {
        return Err("Invalid JSON payload received: the Command must be a JSON object".into());
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !COMMAND_FIELDS.contains(&k.as_str()))
    {
        return Err(format!(
            "Invalid JSON payload received. Unknown name {unknown:?}: cannot find field"
        ));
    }
    let type_ = match fields.get("type") {
        Some(Value::String(t)) => CommandType::from(t.as_str()),
        Some(_) => return Err("Invalid value at 'command.type': expected a string".into()),
        None => return Err("command.type is required".into()),
    };
    match &type_ {
        CommandType::Unspecified => {
            return Err("Invalid value at 'command.type': a command type is required".into());
        }
        CommandType::Other(t) if !OTHER_KNOWN_TYPES.contains(&t.as_str()) => {
            return Err(format!("Invalid value at 'command.type' ({t:?})"));
        }
        _ => {}
    }
    let new_password = match fields.remove("newPassword") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(Zeroizing::new(p)),
        Some(_) => return Err("Invalid value at 'command.new_password': expected a string".into()),
    };
    let flags = match fields.get("resetPasswordFlags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(
                |(i, item)| match item.as_str().map(ResetPasswordFlag::from) {
                    Some(ResetPasswordFlag::Other(v)) => Err(format!(
                        "Invalid value at 'command.reset_password_flags[{i}]' ({v:?})"
                    )),
                    Some(flag) => Ok(flag),
                    None => Err(format!(
                        "Invalid value at 'command.reset_password_flags[{i}]': expected a string"
                    )),
                },
            )
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err("Invalid value at 'command.reset_password_flags': expected a list".into());
        }
    };
    let duration = match fields.get("duration") {
        None | Some(Value::Null) => DEFAULT_DURATION,
        Some(Value::String(text)) => match clock::parse_google_duration(text) {
            Some(d) if !d.is_zero() && d.as_secs() <= MAX_DURATION_SECS => d,
            _ => {
                return Err(format!(
                    "Invalid value at 'command.duration' ({text:?}): expected a positive duration like \"600s\""
                ));
            }
        },
        Some(_) => return Err("Invalid value at 'command.duration': expected a string".into()),
    };
    Ok(CommandRequest {
        type_,
        new_password,
        flags,
        duration,
    })
}

/// serde_json's message for a syntax error, which points at a position; for other errors (a
/// value of the wrong type) its message may quote the value, so only the position is kept.
fn syntax_only(e: &serde_json::Error) -> String {
    format!("line {} column {}", e.line(), e.column())
}

/// Where a command is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandState {
    /// Waiting for the device to sync.
    Pending,
    Succeeded,
    /// The device refused it (`metadata.errorCode`).
    Failed,
    /// Cancelled by the caller before the device acted.
    Cancelled,
    /// Not carried out within its duration.
    Expired,
}

impl CommandState {
    pub fn as_str(self) -> &'static str {
        match self {
            CommandState::Pending => "PENDING",
            CommandState::Succeeded => "SUCCEEDED",
            CommandState::Failed => "FAILED",
            CommandState::Cancelled => "CANCELLED",
            CommandState::Expired => "EXPIRED",
        }
    }
}

/// Every command a device received, with its outcome.
pub struct CommandRecord {
    /// The Operation name, `enterprises/{e}/devices/{d}/operations/{id}`.
    pub name: String,
    pub type_: CommandType,
    pub create_time: Timestamp,
    pub duration: Duration,
    pub flags: Vec<ResetPasswordFlag>,
    /// Only to echo it in the Operation metadata, as Google does.
    pub new_password: Option<Zeroizing<String>>,
    pub user_name: Option<String>,
    pub state: CommandState,
    pub error_code: Option<CommandErrorCode>,
    pub error: Option<Status>,
}

impl std::fmt::Debug for CommandRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandRecord")
            .field("name", &self.name)
            .field("type", &self.type_)
            .field("state", &self.state)
            .field("errorCode", &self.error_code)
            .field("newPasswordSet", &self.new_password_set())
            .finish_non_exhaustive()
    }
}

impl CommandRecord {
    pub fn new(
        name: String,
        request: CommandRequest,
        now: Timestamp,
        user_name: Option<String>,
    ) -> Self {
        CommandRecord {
            name,
            type_: request.type_,
            create_time: now,
            duration: request.duration,
            flags: request.flags,
            new_password: request.new_password,
            user_name,
            state: CommandState::Pending,
            error_code: None,
            error: None,
        }
    }

    /// When it expires if the device has not carried it out.
    pub fn deadline(&self) -> Timestamp {
        clock::add(self.create_time, self.duration)
    }

    pub fn is_pending(&self) -> bool {
        self.state == CommandState::Pending
    }

    /// Whether a non-empty new passcode was sent (clearing sends none).
    pub fn new_password_set(&self) -> bool {
        self.new_password.as_ref().is_some_and(|p| !p.is_empty())
    }

    pub fn succeed(&mut self) {
        self.state = CommandState::Succeeded;
    }

    /// The device refused it: `metadata.errorCode` plus an `error` status for the details.
    pub fn fail(&mut self, code: CommandErrorCode, rpc: i32, message: String) {
        self.state = CommandState::Failed;
        self.error_code = Some(code);
        self.error = Some(status(rpc, message));
    }

    /// Cancels it if the device has not acted yet; a finished command is left as it is.
    pub fn cancel(&mut self) -> bool {
        if !self.is_pending() {
            return false;
        }
        self.state = CommandState::Cancelled;
        self.error = Some(status(
            rpc_code::CANCELLED,
            "The operation was cancelled by the caller before the device acted on it.".into(),
        ));
        true
    }

    pub fn expire(&mut self) {
        self.state = CommandState::Expired;
        self.error = Some(status(
            rpc_code::DEADLINE_EXCEEDED,
            "The command expired before the device executed it.".into(),
        ));
    }

    /// The AMAPI Operation, with `newPassword` echoed in the metadata like Google does.
    pub fn operation(&self) -> Value {
        let done = !self.is_pending();
        let op = Operation {
            name: self.name.clone(),
            metadata: Some(CommandMetadata {
                at_type: Some(COMMAND_TYPE_URL.into()),
                type_: Some(self.type_.clone()),
                create_time: Some(clock::rfc3339(self.create_time)),
                duration: Some(echoed_duration(self.duration)),
                error_code: self.error_code.clone(),
                reset_password_flags: self.flags.clone(),
                user_name: self.user_name.clone(),
            }),
            done,
            error: self.error.clone(),
            response: (self.state == CommandState::Succeeded)
                .then(|| json!({"@type": RESPONSE_TYPE_URL})),
        };
        let mut value = serde_json::to_value(op).expect("an Operation serializes");
        if let Some(p) = self.new_password.as_ref().filter(|p| !p.is_empty())
            && let Some(Value::Object(metadata)) = value.get_mut("metadata")
        {
            metadata.insert("newPassword".into(), Value::String(p.as_str().to_owned()));
        }
        value
    }

    /// The admin API's view: what happened, never the passcode.
    pub fn admin_view(&self) -> Value {
        let mut view = Map::new();
        view.insert("operation".into(), json!(self.name));
        view.insert("type".into(), json!(self.type_.as_str()));
        view.insert("receivedAt".into(), json!(clock::rfc3339(self.create_time)));
        view.insert(
            "resetPasswordFlags".into(),
            json!(self.flags.iter().map(|f| f.as_str()).collect::<Vec<_>>()),
        );
        view.insert("duration".into(), json!(echoed_duration(self.duration)));
        view.insert("newPasswordSet".into(), json!(self.new_password_set()));
        view.insert("state".into(), json!(self.state.as_str()));
        view.insert(
            "errorCode".into(),
            json!(self.error_code.as_ref().map(|c| c.as_str())),
        );
        Value::Object(view)
    }
}

/// `Command.duration` as Google echoes it: protobuf's JSON form, so `"90.5s"` comes back as
/// `"90.500s"` and `"600.000123456s"` unchanged.
fn echoed_duration(d: Duration) -> String {
    google_duration_nanos(d.as_secs(), d.subsec_nanos())
}

fn status(code: i32, message: String) -> Status {
    Status {
        code,
        message,
        details: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "CANARY-731946";

    fn request(body: Value) -> Result<CommandRequest, String> {
        parse_request(body.to_string().as_bytes())
    }

    #[test]
    fn parses_a_reset() {
        let r = request(json!({"type": "RESET_PASSWORD", "newPassword": CANARY,
                               "resetPasswordFlags": ["LOCK_NOW", "REQUIRE_ENTRY"], "duration": "90.5s"}))
        .unwrap();
        assert_eq!(r.type_, CommandType::ResetPassword);
        assert_eq!(r.new_password.as_deref().map(String::as_str), Some(CANARY));
        assert_eq!(
            r.flags,
            vec![ResetPasswordFlag::LockNow, ResetPasswordFlag::RequireEntry]
        );
        assert_eq!(r.duration, Duration::from_millis(90_500));
        let precise =
            request(json!({"type": "RESET_PASSWORD", "duration": "600.000123456s"})).unwrap();
        assert_eq!(precise.duration, Duration::new(600, 123_456));
        let default = request(json!({"type": "RESET_PASSWORD"})).unwrap();
        assert_eq!(default.duration, DEFAULT_DURATION);
        assert!(default.new_password.is_none());
    }

    #[test]
    fn malformed_commands_are_refused_without_quoting_the_passcode() {
        for bad in [
            json!({"type": "SELF_DESTRUCT"}),
            json!({"type": "COMMAND_TYPE_UNSPECIFIED"}),
            json!({"newPassword": CANARY}),
            json!({"type": "RESET_PASSWORD", "duration": "ten minutes", "newPassword": CANARY}),
            json!({"type": "RESET_PASSWORD", "duration": "0s"}),
            json!({"type": "RESET_PASSWORD", "duration": "315576000001s"}),
            json!({"type": "RESET_PASSWORD", "duration": "1.0000000001s"}),
            json!({"type": "RESET_PASSWORD", "resetPasswordFlags": ["LOCK_LATER"]}),
            json!({"type": "RESET_PASSWORD", "newPassword": 731946}),
            json!({"type": "RESET_PASSWORD", "newPasscode": CANARY}),
            json!(["RESET_PASSWORD"]),
        ] {
            let err = request(bad.clone())
                .err()
                .unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(!err.contains(CANARY) && !err.contains("731946"), "{err}");
        }
        let err = parse_request(format!("{{\"newPassword\": \"{CANARY}\",").as_bytes())
            .err()
            .unwrap();
        assert!(
            err.starts_with("Invalid JSON payload") && !err.contains(CANARY),
            "{err}"
        );
    }

    #[test]
    fn other_documented_types_are_accepted() {
        let r = request(json!({"type": "WIPE"})).unwrap();
        assert_eq!(r.type_, CommandType::Other("WIPE".into()));
    }

    fn record(password: Option<&str>) -> CommandRecord {
        let r = request(json!({"type": "RESET_PASSWORD", "newPassword": password, "resetPasswordFlags": ["LOCK_NOW"]}))
            .unwrap();
        CommandRecord::new(
            "enterprises/E/devices/D/operations/7".into(),
            r,
            Timestamp::UNIX_EPOCH,
            Some("enterprises/E/users/u".into()),
        )
    }

    #[test]
    fn operation_echoes_the_passcode_and_the_admin_view_does_not() {
        let mut c = record(Some(CANARY));
        let op = c.operation();
        assert_eq!(op["done"], json!(false));
        assert_eq!(op["metadata"]["newPassword"], json!(CANARY));
        assert_eq!(op["metadata"]["@type"], json!(COMMAND_TYPE_URL));
        assert_eq!(op["metadata"]["duration"], json!("600s"));
        assert!(op.get("response").is_none());
        c.succeed();
        let op = c.operation();
        assert_eq!(op["done"], json!(true));
        assert_eq!(op["response"]["@type"], json!(RESPONSE_TYPE_URL));
        let view = c.admin_view();
        assert_eq!(view["newPasswordSet"], json!(true));
        assert_eq!(view["state"], json!("SUCCEEDED"));
        assert!(!view.to_string().contains(CANARY));
        assert!(!format!("{c:?}").contains(CANARY));
    }

    #[test]
    fn durations_are_echoed_in_protobuf_json_form() {
        for (sent, echoed) in [
            ("600s", "600s"),
            ("600.000123456s", "600.000123456s"),
            ("600.000000000s", "600s"),
            ("90.5s", "90.500s"),
            ("1.000001s", "1.000001s"),
            ("0.1234567s", "0.123456700s"),
        ] {
            let r = request(json!({"type": "RESET_PASSWORD", "duration": sent})).unwrap();
            let c = CommandRecord::new("o".into(), r, Timestamp::UNIX_EPOCH, None);
            assert_eq!(
                c.operation()["metadata"]["duration"],
                json!(echoed),
                "{sent}"
            );
            assert_eq!(c.admin_view()["duration"], json!(echoed), "{sent}");
        }
    }

    #[test]
    fn outcomes() {
        let mut c = record(None);
        assert!(c.operation()["metadata"].get("newPassword").is_none());
        assert!(c.cancel());
        assert_eq!(c.operation()["error"]["code"], json!(1));
        assert!(c.operation()["metadata"].get("errorCode").is_none());
        assert!(!c.cancel(), "cancelling twice changes nothing");

        let mut c = record(Some("1"));
        c.fail(CommandErrorCode::InvalidValue, 3, "refused".into());
        assert!(!c.cancel(), "a finished command cannot be cancelled");
        let op = c.operation();
        assert_eq!(op["metadata"]["errorCode"], json!("INVALID_VALUE"));
        assert_eq!(op["error"]["code"], json!(3));

        let mut c = record(None);
        c.expire();
        assert_eq!(c.operation()["error"]["code"], json!(4));
        assert_eq!(c.admin_view()["state"], json!("EXPIRED"));
    }
}
