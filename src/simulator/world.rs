//! Everything the simulated Google knows: enterprises, their policies and devices, and the
//! commands sent to them. Each AMAPI and admin operation is one method here, taking the simulated
//! time it happens at; the HTTP layers only parse and answer. Time-driven events (a device's
//! sync, a command's expiry, a command created late by a fault) happen in [`World::tick`], in the
//! order they were due. A command that ends (succeeded, failed, cancelled, expired) is published
//! as a COMMAND notification when its enterprise has them on ([`PubSub`]).

use std::ops::Range;
use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::clock::{self, duration_text};
use super::command::{CommandRecord, CommandRequest, CommandState, parse_request};
use super::device::{Applied, SimDevice};
use super::errors::ApiError;
use super::fleet::Fleet;
use super::policy::{PolicyState, parse_update_mask};
use super::pubsub::{self, PubSub};
use crate::amapi::model::{
    DeviceState, HardwareInfo, ListDevicesResponse, ListOperationsResponse, ManagementMode,
    Operation,
};

/// `pageSize` when the caller gives none, and the most a page holds (AMAPI's documented values).
const DEFAULT_PAGE_SIZE: usize = 10;
const MAX_PAGE_SIZE: usize = 100;

pub struct Enterprise {
    pub id: String,
    pub policies: Vec<PolicyState>,
    pub devices: Vec<SimDevice>,
    /// AMAPI's `enabledNotificationTypes`.
    pub notification_types: Vec<String>,
    /// AMAPI's `pubsubTopic`, or the fleet's default topic.
    pub pubsub_topic: Option<String>,
}

impl Enterprise {
    /// Where its COMMAND notifications go, if it has them on.
    fn command_topic(&self) -> Option<&str> {
        self.notification_types
            .iter()
            .any(|t| t == pubsub::COMMAND)
            .then_some(self.pubsub_topic.as_deref())
            .flatten()
    }
}

pub struct World {
    pub enterprises: Vec<Enterprise>,
    /// The Pub/Sub topic and subscription notifications are published to.
    pub pubsub: PubSub,
    next_operation: u64,
    /// Commands accepted under the late-creation fault, not created yet.
    late: Vec<LateCommand>,
}

/// A `devices.issueCommand` whose caller was answered with an error; its command is created at
/// `due`, exactly as if it had been received then.
struct LateCommand {
    due: Timestamp,
    enterprise: usize,
    device: usize,
    request: CommandRequest,
}

impl World {
    /// The fleet as it is at `now`: every device enrolled and in sync with its policy.
    pub fn from_fleet(fleet: &Fleet, now: Timestamp) -> World {
        let enterprises = fleet
            .enterprises
            .iter()
            .map(|e| {
                let policies: Vec<PolicyState> = e
                    .policies
                    .iter()
                    .map(|p| p.to_state(&e.id).expect("a validated fleet"))
                    .collect();
                let devices = e
                    .devices
                    .iter()
                    .map(|d| {
                        let policy_name = d
                            .policy
                            .as_ref()
                            .map(|p| format!("enterprises/{}/policies/{p}", e.id));
                        let policy = policies
                            .iter()
                            .find(|p| Some(&p.name) == policy_name.as_ref());
                        let hardware = d.hardware.clone().unwrap_or_default();
                        SimDevice {
                            name: format!("enterprises/{}/devices/{}", e.id, d.id),
                            management_mode: d.management_mode.clone(),
                            ownership: d.ownership(),
                            state: d.state.clone(),
                            api_level: d.api_level,
                            policy_name: policy_name.clone(),
                            online: d.online,
                            sync_delay: d.sync_delay,
                            reset_token_active: d.reset_token_active,
                            passcode_set: d.passcode_set,
                            locked: false,
                            require_entry: false,
                            hardware: HardwareInfo {
                                brand: hardware.brand,
                                model: hardware.model,
                                serial_number: hardware.serial_number,
                            },
                            user_name: d.user_name.clone().unwrap_or_else(|| {
                                format!("enterprises/{}/users/user-{}", e.id, d.id)
                            }),
                            enrollment_time: now,
                            applied: Applied {
                                policy_name,
                                version: policy.map(|p| p.version),
                                password_policies: policy
                                    .map(PolicyState::password_policies)
                                    .unwrap_or_default(),
                            },
                            last_sync: now,
                            sync_due: None,
                            commands: Vec::new(),
                        }
                    })
                    .collect();
                Enterprise {
                    id: e.id.clone(),
                    policies,
                    devices,
                    notification_types: e.enabled_notification_types.clone(),
                    pubsub_topic: e.topic(&fleet.settings),
                }
            })
            .collect();
        World {
            enterprises,
            pubsub: PubSub::new(fleet.settings.pubsub.as_ref()),
            // Google's operation ids are large numbers; start from the clock so ids from
            // different runs do not repeat.
            next_operation: u64::try_from(now.as_millisecond()).unwrap_or(1),
            late: Vec::new(),
        }
    }

    /// Runs every late creation, sync and expiry due by `now`, each at the time it was due.
    pub fn tick(&mut self, now: Timestamp) {
        while let Some(event) = self.next_due() {
            if event.at > now {
                break;
            }
            if let Event::Create(i) = event.what {
                let late = self.late.remove(i); // `remove` keeps the order of those due together
                self.create_late(late);
                continue;
            }
            let enterprise = &mut self.enterprises[event.enterprise];
            let device = &mut enterprise.devices[event.device];
            let pending = device.pending_commands();
            if event.what == Event::Sync {
                let policy = find_policy(&enterprise.policies, device.policy_name.as_deref());
                device.sync(event.at, policy);
                log_sync(device);
            } else {
                let expired = device.expire(event.at);
                tracing::info!(device = %device.name, expired, "commands expired before the device acted");
            }
            self.notify_ended(event.enterprise, event.device, &pending, event.at);
        }
    }

    /// Publishes a COMMAND notification for each of `commands` (indices on the device) that has
    /// ended, if the enterprise has them on: the Operation exactly as `operations.get` shows it.
    fn notify_ended(
        &mut self,
        enterprise: usize,
        device: usize,
        commands: &[usize],
        at: Timestamp,
    ) {
        let e = &self.enterprises[enterprise];
        let Some(topic) = e.command_topic() else {
            return;
        };
        for &i in commands {
            let command = &e.devices[device].commands[i];
            if command.is_pending() {
                continue;
            }
            let data = zeroize::Zeroizing::new(
                serde_json::to_vec(&command.operation()).expect("an Operation serializes"),
            );
            self.pubsub.publish(
                topic,
                pubsub::COMMAND,
                &data,
                &command.name,
                &e.id,
                at,
                fastrand::f64,
            );
        }
    }

    /// When the next event is due, for the scheduler.
    pub fn next_event(&self) -> Option<Timestamp> {
        self.next_due().map(|e| e.at)
    }

    fn next_due(&self) -> Option<Due> {
        let devices = self.enterprises.iter().enumerate().flat_map(|(ei, e)| {
            e.devices.iter().enumerate().flat_map(move |(di, d)| {
                [
                    d.sync_due.map(|at| (at, ei, di, Event::Sync)),
                    d.next_deadline().map(|at| (at, ei, di, Event::Expire)),
                ]
                .into_iter()
                .flatten()
            })
        });
        let late = self
            .late
            .iter()
            .enumerate()
            .map(|(i, l)| (l.due, l.enterprise, l.device, Event::Create(i)));
        // At the same instant: a late command is created first (a sync then carries it out), and
        // a sync goes before an expiry (sync expires first itself). Ties otherwise keep the first.
        devices
            .chain(late)
            .min_by_key(|&(at, _, _, what)| (at, what.rank()))
            .map(|(at, enterprise, device, what)| Due {
                at,
                enterprise,
                device,
                what,
            })
    }

    fn enterprise_index(&self, id: &str) -> Result<usize, ApiError> {
        self.enterprises
            .iter()
            .position(|e| e.id == id)
            .ok_or_else(|| {
                ApiError::permission_denied(format!(
                    "The caller does not have permission on enterprises/{id}."
                ))
            })
    }

    fn enterprise(&self, id: &str) -> Result<&Enterprise, ApiError> {
        Ok(&self.enterprises[self.enterprise_index(id)?])
    }

    fn enterprise_mut(&mut self, id: &str) -> Result<&mut Enterprise, ApiError> {
        let i = self.enterprise_index(id)?;
        Ok(&mut self.enterprises[i])
    }

    /// A device AMAPI can see (deleted devices answer 404).
    fn device(&self, e: &str, d: &str) -> Result<&SimDevice, ApiError> {
        let enterprise = self.enterprise(e)?;
        enterprise
            .devices
            .iter()
            .find(|dev| dev.name.rsplit('/').next() == Some(d) && !dev.is_deleted())
            .ok_or_else(|| device_not_found(e, d))
    }

    /// A device for the admin API, deleted or not, with its enterprise's policies.
    fn device_entry(
        &mut self,
        e: &str,
        d: &str,
    ) -> Result<(&mut SimDevice, &mut Vec<PolicyState>), ApiError> {
        let enterprise = self.enterprise_mut(e)?;
        let device = enterprise
            .devices
            .iter_mut()
            .find(|dev| dev.name.rsplit('/').next() == Some(d))
            .ok_or_else(|| device_not_found(e, d))?;
        Ok((device, &mut enterprise.policies))
    }

    // ---- AMAPI ----

    pub fn get_device(&self, e: &str, d: &str) -> Result<Value, ApiError> {
        Ok(to_json(self.device(e, d)?.to_amapi()))
    }

    pub fn list_devices(
        &self,
        e: &str,
        page_size: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<Value, ApiError> {
        let enterprise = self.enterprise(e)?;
        let visible: Vec<&SimDevice> = enterprise
            .devices
            .iter()
            .filter(|d| !d.is_deleted())
            .collect();
        let (page, next_page_token) = paginate(visible.len(), page_size, page_token)?;
        Ok(to_json(ListDevicesResponse {
            devices: visible[page].iter().map(|d| d.to_amapi()).collect(),
            next_page_token,
        }))
    }

    pub fn issue_command(
        &mut self,
        e: &str,
        d: &str,
        body: &[u8],
        now: Timestamp,
    ) -> Result<Value, ApiError> {
        let (enterprise, device, request) = self.accept_command(e, d, body)?;
        Ok(self.create_command(enterprise, device, request, now))
    }

    /// `devices.issueCommand` under the late-creation fault: checked now like any command (a bad
    /// one is refused as usual), but created only at `now + delay`, which this returns.
    pub fn issue_command_late(
        &mut self,
        e: &str,
        d: &str,
        body: &[u8],
        now: Timestamp,
        delay: Duration,
    ) -> Result<Timestamp, ApiError> {
        let (enterprise, device, request) = self.accept_command(e, d, body)?;
        let due = clock::add(now, delay);
        self.late.push(LateCommand {
            due,
            enterprise,
            device,
            request,
        });
        Ok(due)
    }

    /// How many commands the late-creation fault holds back.
    pub fn late_commands(&self) -> usize {
        self.late.len()
    }

    /// The device (by index) and the parsed command of a valid `devices.issueCommand`.
    fn accept_command(
        &self,
        e: &str,
        d: &str,
        body: &[u8],
    ) -> Result<(usize, usize, CommandRequest), ApiError> {
        self.device(e, d)?;
        let request = parse_request(body).map_err(ApiError::invalid_argument)?;
        let (ei, di) = self.device_index(e, d)?;
        Ok((ei, di, request))
    }

    /// Records a command received at `at` and returns its Operation.
    fn create_command(
        &mut self,
        enterprise: usize,
        device: usize,
        request: CommandRequest,
        at: Timestamp,
    ) -> Value {
        let id = self.next_operation;
        self.next_operation += 1;
        let device = &mut self.enterprises[enterprise].devices[device];
        let name = format!("{}/operations/{id}", device.name);
        let record = CommandRecord::new(name, request, at, Some(device.user_name.clone()));
        tracing::info!(
            device = %device.name,
            operation = %record.name,
            command = record.type_.as_str(),
            "command received"
        );
        let operation = record.operation();
        device.commands.push(record);
        device.schedule_sync(at);
        operation
    }

    fn create_late(&mut self, late: LateCommand) {
        let device = &self.enterprises[late.enterprise].devices[late.device];
        // Deleted meanwhile: Google would find no device to give it to.
        if device.is_deleted() {
            tracing::info!(device = %device.name, "fault: late command dropped, the device was deleted");
            return;
        }
        tracing::info!(device = %device.name, "fault: creating a command late");
        self.create_command(late.enterprise, late.device, late.request, late.due);
    }

    fn command(&self, e: &str, d: &str, op: &str) -> Result<&CommandRecord, ApiError> {
        let device = self.device(e, d)?;
        let name = format!("{}/operations/{op}", device.name);
        device
            .commands
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| ApiError::not_found(format!("Operation {name} was not found.")))
    }

    pub fn get_operation(&self, e: &str, d: &str, op: &str) -> Result<Value, ApiError> {
        Ok(self.command(e, d, op)?.operation())
    }

    /// A device's operations, oldest first. `filter` is accepted and ignored (its grammar is
    /// undocumented).
    pub fn list_operations(
        &self,
        e: &str,
        d: &str,
        page_size: Option<i64>,
        page_token: Option<&str>,
    ) -> Result<Value, ApiError> {
        let device = self.device(e, d)?;
        let (page, next_page_token) = paginate(device.commands.len(), page_size, page_token)?;
        // Built as JSON, not through the wire type, so the metadata keeps the echoed
        // `newPassword` exactly as operations.get shows it.
        let mut response = to_json(ListOperationsResponse {
            operations: Vec::<Operation>::new(),
            next_page_token,
        });
        response["operations"] = Value::Array(
            device.commands[page]
                .iter()
                .map(CommandRecord::operation)
                .collect(),
        );
        Ok(response)
    }

    pub fn cancel_operation(
        &mut self,
        e: &str,
        d: &str,
        op: &str,
        now: Timestamp,
    ) -> Result<Value, ApiError> {
        let name = self.command(e, d, op)?.name.clone();
        let (ei, di) = self.device_index(e, d)?;
        let device = &mut self.enterprises[ei].devices[di];
        if device.cancel(&name) == Some(true) {
            tracing::info!(device = %device.name, operation = %name, "command cancelled");
            let index = device.commands.iter().position(|c| c.name == name);
            self.notify_ended(ei, di, &Vec::from_iter(index), now);
        }
        Ok(json!({}))
    }

    /// A device's enterprise and device indices, deleted or not.
    fn device_index(&self, e: &str, d: &str) -> Result<(usize, usize), ApiError> {
        let ei = self.enterprise_index(e)?;
        let di = self.enterprises[ei]
            .devices
            .iter()
            .position(|dev| dev.name.rsplit('/').next() == Some(d))
            .ok_or_else(|| device_not_found(e, d))?;
        Ok((ei, di))
    }

    /// Changes an enterprise's notification settings, as `enterprises.patch` with the update
    /// mask `pubsubTopic,enabledNotificationTypes` would (a field left out is left as it is).
    pub fn patch_notifications(
        &mut self,
        e: &str,
        types: Option<Vec<String>>,
        topic: Option<String>,
    ) -> Result<Value, ApiError> {
        super::fleet::check_notifications(types.as_deref().unwrap_or_default(), topic.as_deref())
            .map_err(ApiError::invalid_argument)?;
        let enterprise = self.enterprise_mut(e)?;
        if let Some(types) = types {
            enterprise.notification_types = types;
        }
        if topic.is_some() {
            enterprise.pubsub_topic = topic;
        }
        tracing::info!(enterprise = e, types = ?enterprise.notification_types, "notification settings changed");
        self.notifications_view(e)
    }

    /// An enterprise's notification settings.
    pub fn notifications_view(&self, e: &str) -> Result<Value, ApiError> {
        let enterprise = self.enterprise(e)?;
        Ok(json!({
            "name": format!("enterprises/{}", enterprise.id),
            "enabledNotificationTypes": enterprise.notification_types,
            "pubsubTopic": enterprise.pubsub_topic,
        }))
    }

    pub fn get_policy(&self, e: &str, p: &str) -> Result<Value, ApiError> {
        let enterprise = self.enterprise(e)?;
        let name = format!("enterprises/{e}/policies/{p}");
        find_policy(&enterprise.policies, Some(&name))
            .map(PolicyState::to_json)
            .ok_or_else(|| ApiError::not_found(format!("Policy {name} was not found.")))
    }

    /// `policies.patch`: updates the policy, or creates it as Google does when it does not exist.
    pub fn patch_policy(
        &mut self,
        e: &str,
        p: &str,
        body: &[u8],
        update_mask: Option<&str>,
        now: Timestamp,
    ) -> Result<Value, ApiError> {
        let body: Value = serde_json::from_slice(body).map_err(|err| {
            ApiError::invalid_argument(format!("Invalid JSON payload received: {err}"))
        })?;
        let Value::Object(body) = body else {
            return Err(ApiError::invalid_argument(
                "Invalid JSON payload received: the Policy must be a JSON object",
            ));
        };
        let mask = update_mask
            .map(parse_update_mask)
            .transpose()
            .map_err(ApiError::invalid_argument)?;
        self.change_policy(e, p, body, mask.as_deref(), true, now)
    }

    fn change_policy(
        &mut self,
        e: &str,
        p: &str,
        body: Map<String, Value>,
        mask: Option<&[String]>,
        create: bool,
        now: Timestamp,
    ) -> Result<Value, ApiError> {
        let name = format!("enterprises/{e}/policies/{p}");
        let enterprise = self.enterprise_mut(e)?;
        let index = match enterprise.policies.iter().position(|pol| pol.name == name) {
            Some(i) => i,
            None if create && valid_id(p) => {
                enterprise
                    .policies
                    .push(PolicyState::new(name.clone(), 0, Map::new()).expect("an empty policy"));
                enterprise.policies.len() - 1
            }
            None => return Err(ApiError::not_found(format!("Policy {name} was not found."))),
        };
        let policy = &mut enterprise.policies[index];
        let created = policy.version == 0;
        let changed = policy
            .patch(body, mask)
            .map_err(ApiError::invalid_argument)?;
        if created && !changed {
            policy.version = 1;
        }
        let policy = policy.clone();
        if changed {
            tracing::info!(policy = %policy.name, version = policy.version, "policy changed");
            for device in enterprise
                .devices
                .iter_mut()
                .filter(|d| d.policy_name.as_deref() == Some(&name))
            {
                device.schedule_sync(now);
            }
        }
        Ok(policy.to_json())
    }

    // ---- admin ----

    /// Every command each device received, by device name.
    pub fn commands(&self) -> Value {
        let devices: Map<String, Value> = self
            .enterprises
            .iter()
            .flat_map(|e| &e.devices)
            .filter(|d| !d.commands.is_empty())
            .map(|d| (d.name.clone(), commands_view(d)))
            .collect();
        json!({"devices": devices})
    }

    pub fn device_commands(&mut self, e: &str, d: &str) -> Result<Value, ApiError> {
        let (device, _) = self.device_entry(e, d)?;
        Ok(json!({"commands": commands_view(device)}))
    }

    pub fn admin_device(&mut self, e: &str, d: &str) -> Result<Value, ApiError> {
        let (device, _) = self.device_entry(e, d)?;
        Ok(admin_view(device))
    }

    /// Changes what a test or a demo needs to change on a device.
    pub fn patch_device(
        &mut self,
        e: &str,
        d: &str,
        patch: DevicePatch,
        now: Timestamp,
    ) -> Result<Value, ApiError> {
        patch.validate().map_err(ApiError::invalid_argument)?;
        let policy_name = match &patch.policy {
            Some(p) if p.contains('/') => Some(p.clone()),
            Some(p) => Some(format!("enterprises/{e}/policies/{p}")),
            None => None,
        };
        let (device, policies) = self.device_entry(e, d)?;
        if let Some(name) = &policy_name
            && find_policy(policies, Some(name)).is_none()
        {
            return Err(ApiError::not_found(format!("Policy {name} was not found.")));
        }
        let DevicePatch {
            online,
            reset_token_active,
            state,
            api_level,
            management_mode,
            policy: _,
            sync_delay,
            passcode_set,
            locked,
        } = patch;
        if let Some(v) = reset_token_active {
            device.reset_token_active = v;
        }
        if let Some(v) = state {
            device.state = v;
        }
        if let Some(v) = api_level {
            device.api_level = v;
        }
        if let Some(v) = management_mode {
            device.management_mode = v;
        }
        if let Some(v) = sync_delay {
            device.sync_delay = v;
        }
        if let Some(v) = passcode_set {
            device.passcode_set = v;
        }
        if let Some(v) = locked {
            device.locked = v;
        }
        if policy_name.is_some() {
            device.policy_name = policy_name;
        }
        if let Some(v) = online {
            device.online = v;
        }
        let policy = find_policy(policies, device.policy_name.as_deref());
        if device.online && device.needs_sync(policy) {
            device.schedule_sync(now);
        } else if !device.online {
            device.sync_due = None;
        }
        tracing::info!(device = %device.name, "device changed through the admin API");
        Ok(admin_view(device))
    }

    /// The device syncs now, if it is online.
    pub fn sync_now(&mut self, e: &str, d: &str, now: Timestamp) -> Result<Value, ApiError> {
        let (device, policies) = self.device_entry(e, d)?;
        if !device.online {
            return Err(ApiError::failed_precondition(format!(
                "{} is offline: it cannot sync until it is set online.",
                device.name
            )));
        }
        let pending = device.pending_commands();
        device.sync(now, find_policy(policies, device.policy_name.as_deref()));
        log_sync(device);
        let view = admin_view(device);
        let (ei, di) = self.device_index(e, d)?;
        self.notify_ended(ei, di, &pending, now);
        Ok(view)
    }

    /// Changes a policy like a drift outside the operator would: the body's top-level fields
    /// replace the policy's, the others stay.
    pub fn admin_patch_policy(
        &mut self,
        e: &str,
        p: &str,
        body: Map<String, Value>,
        now: Timestamp,
    ) -> Result<Value, ApiError> {
        let mask: Vec<String> = body.keys().cloned().collect();
        self.change_policy(e, p, body, Some(&mask), false, now)
    }

    pub fn admin_get_policy(&self, e: &str, p: &str) -> Result<Value, ApiError> {
        self.get_policy(e, p)
    }
}

struct Due {
    at: Timestamp,
    enterprise: usize,
    device: usize,
    what: Event,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    /// The late command at this index of `World::late` is created.
    Create(usize),
    Sync,
    Expire,
}

impl Event {
    /// Which of events due at the same instant goes first.
    fn rank(self) -> u8 {
        match self {
            Event::Create(_) => 0,
            Event::Sync => 1,
            Event::Expire => 2,
        }
    }
}

/// What the admin API may change on a device.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DevicePatch {
    pub online: Option<bool>,
    pub reset_token_active: Option<bool>,
    pub state: Option<DeviceState>,
    pub api_level: Option<i32>,
    pub management_mode: Option<ManagementMode>,
    /// A policy id of the device's enterprise, or a full policy name.
    pub policy: Option<String>,
    #[serde(default, with = "optional_duration")]
    pub sync_delay: Option<Duration>,
    pub passcode_set: Option<bool>,
    pub locked: Option<bool>,
}

impl DevicePatch {
    fn validate(&self) -> Result<(), String> {
        if let Some(DeviceState::Other(s)) = &self.state {
            return Err(format!("state {s:?} is not an AMAPI device state"));
        }
        if let Some(ManagementMode::Other(m)) = &self.management_mode {
            return Err(format!(
                "managementMode {m:?} is not an AMAPI management mode"
            ));
        }
        if let Some(level) = self.api_level
            && !(1..=100).contains(&level)
        {
            return Err(format!("apiLevel {level} is not an Android API level"));
        }
        Ok(())
    }
}

mod optional_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super::duration_text")] Duration);
        Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
    }
}

fn find_policy<'a>(policies: &'a [PolicyState], name: Option<&str>) -> Option<&'a PolicyState> {
    let name = name?;
    policies.iter().find(|p| p.name == name)
}

fn device_not_found(e: &str, d: &str) -> ApiError {
    ApiError::not_found(format!("Device enterprises/{e}/devices/{d} was not found."))
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn log_sync(device: &SimDevice) {
    tracing::info!(
        device = %device.name,
        policy_version = device.applied.version,
        succeeded = device.count(CommandState::Succeeded),
        failed = device.count(CommandState::Failed),
        "device synced"
    );
}

fn to_json(v: impl serde::Serialize) -> Value {
    serde_json::to_value(v).expect("wire types serialize")
}

fn commands_view(device: &SimDevice) -> Value {
    Value::Array(
        device
            .commands
            .iter()
            .map(CommandRecord::admin_view)
            .collect(),
    )
}

fn admin_view(device: &SimDevice) -> Value {
    json!({
        "name": device.name,
        "online": device.online,
        "resetTokenActive": device.reset_token_active,
        "passcodeSet": device.passcode_set,
        "locked": device.locked,
        "requireEntry": device.require_entry,
        "state": device.state.as_str(),
        "apiLevel": device.api_level,
        "managementMode": device.management_mode.as_str(),
        "policy": device.policy_name,
        "syncDelay": clock::google_duration(device.sync_delay),
        "nextSync": device.sync_due.map(clock::rfc3339),
        "pendingCommands": device.count(CommandState::Pending),
        "device": to_json(device.to_amapi()),
    })
}

/// Which of `len` items one page holds; page tokens are opaque to clients and carry the offset.
fn paginate(
    len: usize,
    page_size: Option<i64>,
    page_token: Option<&str>,
) -> Result<(Range<usize>, Option<String>), ApiError> {
    let size = match page_size {
        None | Some(0) => DEFAULT_PAGE_SIZE,
        Some(n) if n < 0 => {
            return Err(ApiError::invalid_argument("pageSize must not be negative"));
        }
        Some(n) => usize::try_from(n)
            .unwrap_or(MAX_PAGE_SIZE)
            .min(MAX_PAGE_SIZE),
    };
    let start = match page_token.filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => token
            .strip_prefix("sim-page-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n <= len)
            .ok_or_else(|| ApiError::invalid_argument("Invalid page token."))?,
    };
    let end = (start + size).min(len);
    let next = (end < len).then(|| format!("sim-page-{end}"));
    Ok((start..end, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages() {
        let (first, next) = paginate(25, None, None).unwrap();
        assert_eq!(first, 0..10);
        let (second, next) = paginate(25, Some(10), next.as_deref()).unwrap();
        assert_eq!(second, 10..20);
        let (last, next) = paginate(25, Some(1000), next.as_deref()).unwrap();
        assert_eq!(last, 20..25);
        assert_eq!(next, None);
        assert!(paginate(25, None, Some("garbage")).is_err());
        assert!(paginate(25, None, Some("sim-page-26")).is_err());
        assert!(paginate(25, Some(-1), None).is_err());
        assert_eq!(paginate(250, Some(500), None).unwrap().0, 0..100);
    }

    fn world() -> World {
        let fleet = Fleet::from_yaml(
            r#"
enterprises:
  - id: E
    policies: [{id: p, passwordPolicies: [{passwordQuality: NUMERIC, passwordMinimumLength: 6}]}]
    devices:
      - {id: online, policy: p, syncDelay: 10s}
      - {id: offline, policy: p, online: false}
"#,
        )
        .unwrap();
        World::from_fleet(&fleet, Timestamp::UNIX_EPOCH)
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn state(w: &World, device: usize, command: usize) -> CommandState {
        w.enterprises[0].devices[device].commands[command].state
    }

    #[test]
    fn events_happen_in_the_order_they_were_due() {
        let mut w = world();
        let body = br#"{"type": "RESET_PASSWORD", "newPassword": "739184", "duration": "5s"}"#;
        w.issue_command("E", "online", body, at(0)).unwrap();
        w.issue_command("E", "offline", body, at(0)).unwrap();
        let long = br#"{"type": "RESET_PASSWORD", "newPassword": "739184", "duration": "60s"}"#;
        w.issue_command("E", "online", long, at(1)).unwrap();
        assert_eq!(w.next_event(), Some(at(5)));
        w.tick(at(4));
        assert_eq!(state(&w, 0, 0), CommandState::Pending);
        // One jump past everything: the 5s command expires at 5s, before the sync at 10s runs
        // the 60s one; the offline device's command just expires.
        w.tick(at(100));
        assert_eq!(state(&w, 0, 0), CommandState::Expired);
        assert_eq!(state(&w, 0, 1), CommandState::Succeeded);
        assert_eq!(state(&w, 1, 0), CommandState::Expired);
        assert_eq!(w.enterprises[0].devices[0].last_sync, at(10));
        assert_eq!(w.next_event(), None);
    }

    #[test]
    fn a_late_command_is_created_when_due_like_any_other() {
        let mut w = world();
        let body =
            br#"{"type": "RESET_PASSWORD", "newPassword": "739184", "duration": "60.000000500s"}"#;
        let late = Duration::from_secs(300);
        let due = w
            .issue_command_late("E", "online", body, at(0), late)
            .unwrap();
        assert_eq!(due, at(300));
        assert_eq!(w.late_commands(), 1);
        assert_eq!(w.next_event(), Some(at(300)));
        let refused = w
            .issue_command_late("E", "online", br#"{"type": "FLY"}"#, at(0), late)
            .unwrap_err();
        assert_eq!(refused.status, "INVALID_ARGUMENT", "checked when received");
        assert_eq!(w.late_commands(), 1);
        w.tick(at(299));
        let listed = w.list_operations("E", "online", None, None).unwrap();
        assert_eq!(listed["operations"], json!([]), "nothing before it is due");
        w.tick(at(300));
        let listed = w.list_operations("E", "online", None, None).unwrap();
        let op = &listed["operations"][0];
        assert_eq!(op["metadata"]["createTime"], "1970-01-01T00:05:00Z");
        assert_eq!(op["metadata"]["duration"], "60.000000500s");
        assert_eq!(op["done"], false);
        let name = op["name"].as_str().unwrap().rsplit('/').next().unwrap();
        assert_eq!(w.get_operation("E", "online", name).unwrap(), *op);
        // The device syncs 10 s later and carries it out, once.
        w.tick(at(310));
        assert_eq!(state(&w, 0, 0), CommandState::Succeeded);
        assert_eq!(w.enterprises[0].devices[0].commands.len(), 1);
        assert_eq!(w.late_commands(), 0);
        assert_eq!(w.next_event(), None);

        // A device deleted before the command is due never gets it.
        w.issue_command_late("E", "offline", body, at(400), late)
            .unwrap();
        w.enterprises[0].devices[1].state = DeviceState::Deleted;
        w.tick(at(1000));
        assert!(w.enterprises[0].devices[1].commands.is_empty());
        assert_eq!(w.late_commands(), 0);
    }

    #[test]
    fn ended_commands_are_published_when_the_enterprise_has_command_notifications_on() {
        let fleet = Fleet::from_yaml(
            r#"
settings: {pubsub: {subscription: projects/p/subscriptions/s}}
enterprises:
  - id: E
    enabledNotificationTypes: [COMMAND]
    policies: [{id: p, passwordPolicies: [{passwordQuality: NUMERIC, passwordMinimumLength: 6}]}]
    devices:
      - {id: online, policy: p, syncDelay: 10s}
      - {id: offline, policy: p, online: false}
  - id: Quiet
    devices: [{id: d, syncDelay: 1s}]
"#,
        )
        .unwrap();
        let mut w = World::from_fleet(&fleet, at(0));
        let ok = br#"{"type": "RESET_PASSWORD", "newPassword": "739184", "duration": "60s"}"#;
        let bad = br#"{"type": "RESET_PASSWORD", "newPassword": "1", "duration": "60s"}"#;
        w.issue_command("E", "online", ok, at(0)).unwrap();
        w.issue_command("E", "online", bad, at(0)).unwrap();
        let expiring = w.issue_command("E", "offline", ok, at(0)).unwrap();
        let cancelled = w.issue_command("E", "offline", ok, at(1)).unwrap();
        w.issue_command("Quiet", "d", ok, at(0)).unwrap();
        let id = |op: &Value| {
            op["name"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned()
        };
        w.cancel_operation("E", "offline", &id(&cancelled), at(2))
            .unwrap();
        assert_eq!(w.pubsub.counters.published, 1, "the cancel");
        w.tick(at(10));
        assert_eq!(w.pubsub.counters.published, 3, "succeeded and failed");
        w.tick(at(60));
        assert_eq!(w.pubsub.counters.published, 4, "expired");
        w.tick(at(100));
        assert_eq!(
            w.pubsub.counters.published, 4,
            "Quiet has notifications off"
        );
        let got = w
            .pubsub
            .pull("projects/p/subscriptions/s", 10, at(100), |_| {})
            .unwrap();
        let ops: Vec<Value> = got
            .iter()
            .map(|r| {
                serde_json::from_slice(&crate::amapi::base64::decode(r.data).unwrap()).unwrap()
            })
            .collect();
        assert!(
            got.iter()
                .all(|r| r.attributes["notificationType"] == "COMMAND")
        );
        assert_eq!(ops[0]["error"]["code"], 1, "cancelled first");
        assert_eq!(
            ops[1]["response"]["@type"],
            crate::simulator::command::RESPONSE_TYPE_URL
        );
        assert_eq!(ops[2]["metadata"]["errorCode"], "INVALID_VALUE");
        assert_eq!(ops[3]["name"], expiring["name"]);
        assert_eq!(ops[3]["error"]["code"], 4);
        // Exactly what operations.get answers, echoed passcode included.
        let get = w.get_operation("E", "offline", &id(&expiring)).unwrap();
        assert_eq!(ops[3], get);
        assert_eq!(ops[3]["metadata"]["newPassword"], "739184");

        // Switched off, nothing more; sync_now publishes too.
        w.patch_notifications("E", Some(vec![]), None).unwrap();
        w.issue_command("E", "online", ok, at(200)).unwrap();
        w.tick(at(300));
        assert_eq!(w.pubsub.counters.published, 4);
        w.patch_notifications("E", Some(vec!["COMMAND".into()]), None)
            .unwrap();
        w.issue_command("E", "online", ok, at(300)).unwrap();
        w.sync_now("E", "online", at(301)).unwrap();
        assert_eq!(w.pubsub.counters.published, 5);
        assert!(
            w.patch_notifications("E", Some(vec!["EVERYTHING".into()]), None)
                .is_err()
        );
    }

    #[test]
    fn fractional_durations_expire_to_the_nanosecond() {
        let mut w = world();
        let body =
            br#"{"type": "RESET_PASSWORD", "newPassword": "739184", "duration": "5.000000500s"}"#;
        w.issue_command("E", "offline", body, at(0)).unwrap();
        let deadline = Timestamp::new(5, 500).unwrap();
        assert_eq!(w.next_event(), Some(deadline));
        w.tick(Timestamp::new(5, 499).unwrap());
        assert_eq!(state(&w, 1, 0), CommandState::Pending);
        w.tick(deadline);
        assert_eq!(state(&w, 1, 0), CommandState::Expired);
    }

    #[test]
    fn policy_changes_reach_devices_on_their_next_sync() {
        let mut w = world();
        let v = w
            .patch_policy(
                "E",
                "p",
                br#"{"passwordPolicies": []}"#,
                Some("passwordPolicies"),
                at(0),
            )
            .unwrap();
        assert_eq!(v["version"], "2");
        assert_eq!(w.enterprises[0].devices[0].sync_due, Some(at(10)));
        assert_eq!(w.enterprises[0].devices[1].sync_due, None, "offline");
        w.tick(at(10));
        assert_eq!(w.enterprises[0].devices[0].applied.version, Some(2));
        assert_eq!(w.enterprises[0].devices[1].applied.version, Some(1));
        w.patch_device(
            "E",
            "offline",
            DevicePatch {
                online: Some(true),
                sync_delay: Some(Duration::from_secs(1)),
                ..DevicePatch::default()
            },
            at(20),
        )
        .unwrap();
        w.tick(at(21));
        assert_eq!(w.enterprises[0].devices[1].applied.version, Some(2));
    }

    #[test]
    fn unknown_things_answer_like_google() {
        let mut w = world();
        assert_eq!(
            w.get_device("X", "online").unwrap_err().status,
            "PERMISSION_DENIED"
        );
        assert_eq!(w.get_device("E", "nope").unwrap_err().status, "NOT_FOUND");
        assert_eq!(
            w.get_operation("E", "online", "1").unwrap_err().status,
            "NOT_FOUND"
        );
        assert_eq!(w.get_policy("E", "nope").unwrap_err().status, "NOT_FOUND");
        let bad = w
            .issue_command("E", "online", br#"{"type": "FLY"}"#, at(0))
            .unwrap_err();
        assert_eq!(bad.status, "INVALID_ARGUMENT");
        assert!(w.enterprises[0].devices[0].commands.is_empty());
        let created = w
            .patch_policy("E", "new", br#"{"passwordPolicies": []}"#, None, at(0))
            .unwrap();
        assert_eq!(
            created["version"], "1",
            "policies.patch creates a missing policy"
        );
        w.enterprises[0].devices[0].state = DeviceState::Deleted;
        assert_eq!(w.get_device("E", "online").unwrap_err().status, "NOT_FOUND");
        let listed = w.list_devices("E", None, None).unwrap();
        assert_eq!(listed["devices"].as_array().unwrap().len(), 1);
    }
}
