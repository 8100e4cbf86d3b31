//! A simulated Android device: what it reports to AMAPI, when it syncs, and how it carries out
//! commands, as Android Device Policy would. No I/O and no clock of its own: every method takes
//! the simulated time at which it happens.

use std::time::Duration;

use jiff::Timestamp;

use super::clock;
use super::command::{CommandRecord, CommandState};
use super::policy::PolicyState;
use crate::amapi::model::{
    CommandErrorCode, CommandType, Device, DeviceState, HardwareInfo, ManagementMode,
    NonComplianceDetail, Ownership, PasswordRequirements, PasswordScope, ResetPasswordFlag,
    rpc_code,
};
use crate::passcode::{Governing, Requirements, judge};

/// Android 8.0: the first release with reset-password tokens, which a work profile needs.
pub const RESET_TOKEN_API_LEVEL: i32 = 26;

/// What the device last applied from its policy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    pub policy_name: Option<String>,
    pub version: Option<i64>,
    pub password_policies: Vec<PasswordRequirements>,
}

#[derive(Debug)]
pub struct SimDevice {
    /// `enterprises/{e}/devices/{d}`.
    pub name: String,
    pub management_mode: ManagementMode,
    pub ownership: Ownership,
    pub state: DeviceState,
    pub api_level: i32,
    /// `enterprises/{e}/policies/{p}`, the policy the device should apply.
    pub policy_name: Option<String>,
    pub online: bool,
    pub sync_delay: Duration,
    /// Whether the reset-password token is usable: false until the user has confirmed their
    /// existing lock once after enrollment.
    pub reset_token_active: bool,
    /// A fact only: whether a passcode is set. The simulator never keeps its value.
    pub passcode_set: bool,
    /// Locked by `LOCK_NOW` or `LOCK` (the work profile on a work-profile device).
    pub locked: bool,
    /// `REQUIRE_ENTRY` was used: other admins cannot reset it until the user has entered it.
    pub require_entry: bool,
    pub hardware: HardwareInfo,
    pub user_name: String,
    pub enrollment_time: Timestamp,
    pub applied: Applied,
    pub last_sync: Timestamp,
    /// When the device will next sync, if something is pending and it is online.
    pub sync_due: Option<Timestamp>,
    /// Every command it received, oldest first.
    pub commands: Vec<CommandRecord>,
}

impl SimDevice {
    /// Whether the device is gone: AMAPI answers 404 for it.
    pub fn is_deleted(&self) -> bool {
        self.state == DeviceState::Deleted
    }

    /// The device as `devices.get` returns it.
    pub fn to_amapi(&self) -> Device {
        let synced = Some(clock::rfc3339(self.last_sync));
        Device {
            name: self.name.clone(),
            management_mode: Some(self.management_mode.clone()),
            ownership: Some(self.ownership.clone()),
            state: Some(self.state.clone()),
            applied_state: Some(self.state.clone()),
            api_level: Some(self.api_level),
            policy_name: self.policy_name.clone(),
            applied_policy_name: self.applied.policy_name.clone(),
            applied_policy_version: self.applied.version,
            applied_password_policies: self.applied.password_policies.clone(),
            non_compliance_details: self.non_compliance(),
            last_policy_sync_time: synced.clone(),
            last_status_report_time: synced,
            enrollment_time: Some(clock::rfc3339(self.enrollment_time)),
            hardware_info: Some(self.hardware.clone()),
            user_name: Some(self.user_name.clone()),
        }
    }

    /// What the device reports it cannot comply with, for the password settings only.
    fn non_compliance(&self) -> Vec<NonComplianceDetail> {
        let detail = |specific: &str| NonComplianceDetail {
            setting_name: Some("passwordPolicies".into()),
            non_compliance_reason: Some("USER_ACTION".into()),
            specific_non_compliance_reason: Some(specific.into()),
        };
        if !self.reset_token_active {
            vec![detail(
                "PASSWORD_POLICIES_USER_CREDENTIALS_CONFIRMATION_REQUIRED",
            )]
        } else if !self.passcode_set && self.governing().requires_passcode() {
            vec![detail("PASSWORD_POLICIES_PASSWORD_NOT_SUFFICIENT")]
        } else {
            Vec::new()
        }
    }

    /// The applied password requirements for the lock a reset changes: the work profile's on a
    /// work-profile device, the device's on a fully managed one (`SCOPE_UNSPECIFIED` means that
    /// same lock in both cases).
    pub fn governing(&self) -> Governing {
        let wanted = match self.management_mode {
            ManagementMode::ProfileOwner => PasswordScope::Profile,
            ManagementMode::DeviceOwner => PasswordScope::Device,
            _ => return Governing::none(),
        };
        let requirements: Vec<Requirements> = self
            .applied
            .password_policies
            .iter()
            .filter(|p| match &p.password_scope {
                None | Some(PasswordScope::Unspecified) => true,
                Some(scope) => *scope == wanted,
            })
            .map(Requirements::from_amapi)
            .collect();
        Governing::from_requirements(&requirements)
    }

    /// Whether a sync would change anything: a command waits, or the policy moved on.
    pub fn needs_sync(&self, policy: Option<&PolicyState>) -> bool {
        self.commands.iter().any(CommandRecord::is_pending)
            || self.applied.policy_name != self.policy_name
            || self.applied.version != policy.map(|p| p.version)
    }

    /// Something is pending: an online device syncs `sync_delay` later (an earlier planned sync
    /// stands). Offline and deleted devices never sync.
    pub fn schedule_sync(&mut self, now: Timestamp) {
        if !self.online || self.is_deleted() {
            self.sync_due = None;
            return;
        }
        let at = clock::add(now, self.sync_delay);
        self.sync_due = Some(self.sync_due.map_or(at, |due| due.min(at)));
    }

    /// Indices of the commands still pending, oldest first.
    pub fn pending_commands(&self) -> Vec<usize> {
        (0..self.commands.len())
            .filter(|&i| self.commands[i].is_pending())
            .collect()
    }

    /// The earliest time a pending command expires.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.commands
            .iter()
            .filter(|c| c.is_pending())
            .map(CommandRecord::deadline)
            .min()
    }

    /// Ends every pending command whose validity ran out by `at`.
    pub fn expire(&mut self, at: Timestamp) -> usize {
        let mut expired = 0;
        for c in self.commands.iter_mut() {
            if c.is_pending() && c.deadline() <= at {
                c.expire();
                expired += 1;
            }
        }
        expired
    }

    /// The device syncs at `at`: it applies its policy's current version, then carries out each
    /// pending command in the order received.
    pub fn sync(&mut self, at: Timestamp, policy: Option<&PolicyState>) {
        self.expire(at);
        self.applied = Applied {
            policy_name: self.policy_name.clone(),
            version: policy.map(|p| p.version),
            password_policies: policy
                .map(PolicyState::password_policies)
                .unwrap_or_default(),
        };
        self.last_sync = at;
        self.sync_due = None;
        for i in 0..self.commands.len() {
            if self.commands[i].is_pending() {
                self.execute(i);
            }
        }
    }

    fn execute(&mut self, index: usize) {
        let command = &self.commands[index];
        let outcome = match &command.type_ {
            CommandType::ResetPassword => self.reset_password(command),
            CommandType::Lock => Ok(Effect::Lock),
            CommandType::Reboot => self.reboot(),
            _ => Err(Refusal::new(
                CommandErrorCode::Unsupported,
                rpc_code::UNIMPLEMENTED,
                "The simulated device does not carry out this command type.",
            )),
        };
        match outcome {
            Ok(effect) => {
                self.apply(effect);
                self.commands[index].succeed();
            }
            Err(r) => self.commands[index].fail(r.code, r.rpc, r.message),
        }
    }

    /// Android's checks for `resetPasswordWithToken`, in the order it makes them.
    fn reset_password(&self, command: &CommandRecord) -> Result<Effect, Refusal> {
        if self.api_level < RESET_TOKEN_API_LEVEL {
            return Err(Refusal::new(
                CommandErrorCode::ApiLevel,
                rpc_code::FAILED_PRECONDITION,
                "Resetting the passcode needs Android 8.0 (API level 26) or later.",
            ));
        }
        let profile = match self.management_mode {
            ManagementMode::ProfileOwner => true,
            ManagementMode::DeviceOwner => false,
            _ => {
                return Err(Refusal::new(
                    CommandErrorCode::ManagementMode,
                    rpc_code::FAILED_PRECONDITION,
                    "The device's management mode does not allow resetting the passcode.",
                ));
            }
        };
        let flags = &command.flags;
        if profile && flags.contains(&ResetPasswordFlag::DoNotAskCredentialsOnBoot) {
            return Err(Refusal::new(
                CommandErrorCode::ManagementMode,
                rpc_code::FAILED_PRECONDITION,
                "DO_NOT_ASK_CREDENTIALS_ON_BOOT is only available on fully managed devices.",
            ));
        }
        if !self.reset_token_active {
            return Err(Refusal::new(
                CommandErrorCode::Unknown,
                rpc_code::FAILED_PRECONDITION,
                "The reset password token is not active: the user has not confirmed their current \
                 screen lock since enrollment.",
            ));
        }
        let passcode = command
            .new_password
            .as_ref()
            .filter(|p| !p.is_empty())
            .map(|p| p.as_bytes());
        let api_level = u32::try_from(self.api_level).ok();
        let verdict = judge(passcode, &self.governing(), api_level);
        if !verdict.passes {
            let unmet: Vec<&str> = verdict.unmet().map(|c| c.rule).collect();
            return Err(Refusal {
                code: CommandErrorCode::InvalidValue,
                rpc: rpc_code::INVALID_ARGUMENT,
                message: format!(
                    "The new passcode does not meet the password requirements in force (unmet: {}).",
                    unmet.join(", ")
                ),
            });
        }
        Ok(Effect::Passcode {
            set: passcode.is_some(),
            lock: flags.contains(&ResetPasswordFlag::LockNow),
            require_entry: flags.contains(&ResetPasswordFlag::RequireEntry),
        })
    }

    fn reboot(&self) -> Result<Effect, Refusal> {
        if self.management_mode != ManagementMode::DeviceOwner {
            return Err(Refusal::new(
                CommandErrorCode::ManagementMode,
                rpc_code::FAILED_PRECONDITION,
                "Only fully managed devices can be rebooted.",
            ));
        }
        if self.api_level < 24 {
            return Err(Refusal::new(
                CommandErrorCode::ApiLevel,
                rpc_code::FAILED_PRECONDITION,
                "Rebooting needs Android 7.0 (API level 24) or later.",
            ));
        }
        Ok(Effect::Lock)
    }

    fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::Lock => self.locked = true,
            Effect::Passcode {
                set,
                lock,
                require_entry,
            } => {
                self.passcode_set = set;
                self.locked |= lock;
                self.require_entry = require_entry && set;
            }
        }
    }

    /// Cancels a pending command (the caller's best-effort cancel).
    pub fn cancel(&mut self, operation: &str) -> Option<bool> {
        self.commands
            .iter_mut()
            .find(|c| c.name == operation)
            .map(CommandRecord::cancel)
    }

    /// How many commands ended in each state (for logs and tests).
    pub fn count(&self, state: CommandState) -> usize {
        self.commands.iter().filter(|c| c.state == state).count()
    }
}

/// What a successful command changes on the device.
enum Effect {
    Lock,
    Passcode {
        set: bool,
        lock: bool,
        require_entry: bool,
    },
}

/// Why the device refused a command.
struct Refusal {
    code: CommandErrorCode,
    rpc: i32,
    message: String,
}

impl Refusal {
    fn new(code: CommandErrorCode, rpc: i32, message: &str) -> Self {
        Refusal {
            code,
            rpc,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::command::{CommandRequest, DEFAULT_DURATION};
    use serde_json::json;
    use zeroize::Zeroizing;

    const T0: Timestamp = Timestamp::UNIX_EPOCH;

    fn policy(version: i64, password_policies: serde_json::Value) -> PolicyState {
        PolicyState::new(
            "enterprises/E/policies/p".into(),
            version,
            json!({"passwordPolicies": password_policies})
                .as_object()
                .unwrap()
                .clone(),
        )
        .unwrap()
    }

    fn work_profile_policy() -> PolicyState {
        policy(
            1,
            json!([{"passwordScope": "SCOPE_PROFILE", "passwordQuality": "NUMERIC_COMPLEX", "passwordMinimumLength": 6}]),
        )
    }

    fn device(mode: ManagementMode) -> SimDevice {
        let mut d = SimDevice {
            name: "enterprises/E/devices/D".into(),
            management_mode: mode,
            ownership: Ownership::PersonallyOwned,
            state: DeviceState::Active,
            api_level: 34,
            policy_name: Some("enterprises/E/policies/p".into()),
            online: true,
            sync_delay: Duration::from_secs(1),
            reset_token_active: true,
            passcode_set: true,
            locked: false,
            require_entry: false,
            hardware: HardwareInfo::default(),
            user_name: "enterprises/E/users/u".into(),
            enrollment_time: T0,
            applied: Applied::default(),
            last_sync: T0,
            sync_due: None,
            commands: Vec::new(),
        };
        d.sync(T0, Some(&work_profile_policy()));
        d
    }

    fn issue(d: &mut SimDevice, password: Option<&str>, flags: &[ResetPasswordFlag]) {
        let name = format!("{}/operations/{}", d.name, d.commands.len());
        d.commands.push(CommandRecord::new(
            name,
            CommandRequest {
                type_: CommandType::ResetPassword,
                new_password: password.map(|p| Zeroizing::new(p.to_owned())),
                flags: flags.to_vec(),
                duration: DEFAULT_DURATION,
            },
            T0,
            None,
        ));
    }

    fn run(d: &mut SimDevice, password: Option<&str>) -> (CommandState, Option<CommandErrorCode>) {
        issue(d, password, &[ResetPasswordFlag::LockNow]);
        let p = work_profile_policy();
        d.sync(T0, Some(&p));
        let c = d.commands.last().unwrap();
        (c.state, c.error_code.clone())
    }

    #[test]
    fn a_good_reset_sets_and_locks() {
        let mut d = device(ManagementMode::ProfileOwner);
        assert_eq!(run(&mut d, Some("837261")), (CommandState::Succeeded, None));
        assert!(d.passcode_set && d.locked && !d.require_entry);
    }

    #[test]
    fn refusals_like_android() {
        let failed = |code| (CommandState::Failed, Some(code));

        let mut d = device(ManagementMode::ProfileOwner);
        d.api_level = 25;
        assert_eq!(
            run(&mut d, Some("837261")),
            failed(CommandErrorCode::ApiLevel)
        );

        let mut d = device(ManagementMode::Unspecified);
        assert_eq!(
            run(&mut d, Some("837261")),
            failed(CommandErrorCode::ManagementMode)
        );

        let mut d = device(ManagementMode::ProfileOwner);
        d.reset_token_active = false;
        assert_eq!(
            run(&mut d, Some("837261")),
            failed(CommandErrorCode::Unknown)
        );
        assert!(!d.locked, "a refused reset does not lock");

        let mut d = device(ManagementMode::ProfileOwner);
        assert_eq!(
            run(&mut d, Some("123456")),
            failed(CommandErrorCode::InvalidValue),
            "a sequence under NUMERIC_COMPLEX"
        );
        assert_eq!(
            run(&mut d, None),
            failed(CommandErrorCode::InvalidValue),
            "clearing while a passcode is required"
        );
        assert!(d.passcode_set);
    }

    #[test]
    fn scope_decides_which_requirements_apply() {
        // The policy only constrains the work profile: a fully managed device's lock is free.
        let mut d = device(ManagementMode::DeviceOwner);
        assert_eq!(run(&mut d, None), (CommandState::Succeeded, None));
        assert!(!d.passcode_set);
    }

    #[test]
    fn android_14_wants_six_digit_pins() {
        let open = policy(2, json!([]));
        for (api_level, expected) in [(33, CommandState::Succeeded), (34, CommandState::Failed)] {
            let mut d = device(ManagementMode::ProfileOwner);
            d.api_level = api_level;
            d.sync(T0, Some(&open));
            issue(&mut d, Some("8273"), &[]);
            d.sync(T0, Some(&open));
            assert_eq!(d.commands[0].state, expected, "API level {api_level}");
        }
    }

    #[test]
    fn token_inactive_is_reported_as_non_compliance() {
        let mut d = device(ManagementMode::ProfileOwner);
        d.reset_token_active = false;
        let reported = d.to_amapi().non_compliance_details;
        assert_eq!(
            reported[0].specific_non_compliance_reason.as_deref(),
            Some("PASSWORD_POLICIES_USER_CREDENTIALS_CONFIRMATION_REQUIRED")
        );
        d.reset_token_active = true;
        d.passcode_set = false;
        assert_eq!(
            d.to_amapi().non_compliance_details[0]
                .specific_non_compliance_reason
                .as_deref(),
            Some("PASSWORD_POLICIES_PASSWORD_NOT_SUFFICIENT")
        );
    }

    #[test]
    fn sync_applies_the_policy_version_and_expires_late_commands() {
        let mut d = device(ManagementMode::ProfileOwner);
        let v2 = policy(2, json!([]));
        assert!(d.needs_sync(Some(&v2)));
        issue(&mut d, Some("837261"), &[]);
        let late = clock::add(T0, DEFAULT_DURATION);
        d.sync(late, Some(&v2));
        assert_eq!(d.applied.version, Some(2));
        assert!(d.applied.password_policies.is_empty());
        assert_eq!(d.last_sync, late);
        assert_eq!(d.commands[0].state, CommandState::Expired);
        assert!(!d.needs_sync(Some(&v2)));
    }

    #[test]
    fn scheduling_keeps_the_earliest_sync_and_skips_offline_devices() {
        let mut d = device(ManagementMode::ProfileOwner);
        d.schedule_sync(T0);
        d.schedule_sync(clock::add(T0, Duration::from_secs(5)));
        assert_eq!(d.sync_due, Some(clock::add(T0, Duration::from_secs(1))));
        d.online = false;
        d.schedule_sync(T0);
        assert_eq!(d.sync_due, None);
    }

    #[test]
    fn cancel_only_before_the_device_acts() {
        let mut d = device(ManagementMode::ProfileOwner);
        issue(&mut d, Some("837261"), &[]);
        let name = d.commands[0].name.clone();
        assert_eq!(d.cancel(&name), Some(true));
        d.sync(T0, None);
        assert_eq!(d.commands[0].state, CommandState::Cancelled);
        assert_eq!(d.cancel(&name), Some(false));
        assert_eq!(d.cancel("nope"), None);
    }

    #[test]
    fn profile_owners_cannot_skip_credentials_on_boot() {
        let mut d = device(ManagementMode::ProfileOwner);
        issue(
            &mut d,
            Some("837261"),
            &[ResetPasswordFlag::DoNotAskCredentialsOnBoot],
        );
        d.sync(T0, Some(&work_profile_policy()));
        assert_eq!(
            d.commands[0].error_code,
            Some(CommandErrorCode::ManagementMode)
        );
    }
}
