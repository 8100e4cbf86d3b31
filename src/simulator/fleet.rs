//! The fleet file: which enterprises, policies and devices the simulator serves, how the devices
//! behave, and the quota and faults of the simulated Google. `examples/fleet.yaml` is a commented
//! example covering every field.
//!
//! ```yaml
//! settings:
//!   tokenTtl: 3599s            # lifetime of access tokens (/token, STS, IAM, metadata server)
//!   quota: {requests: 1000, window: 100s}
//!   faults: {errorRate: 0, throttleRate: 0, latency: 0ms, dropRate: 0}
//!   pubsub:                    # an emulated Pub/Sub pull subscription for AMAPI notifications
//!     subscription: projects/sim-project/subscriptions/amapi-events
//!     topic: projects/sim-project/topics/amapi-events   # default: the subscription's id
//!     ackDeadline: 10s
//!     faults: {dropRate: 0, duplicateRate: 0, delayRate: 0, delay: 0s, reorder: false, errorRate: 0, permissionDenied: false}
//!   workloadIdentity:          # STS and IAM Credentials (Workload Identity Federation)
//!     provider: //iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/sim-pool/providers/kubernetes
//!     issuer: https://127.0.0.1:6443        # the cluster's service-account issuer
//!     issuerCaFile: /path/to/ca.pem         # optional: trust for fetching its keys
//!     serviceAccounts:
//!       - email: passcode-operator@amapi-simulator.iam.gserviceaccount.com
//!         members: [principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/sim-pool/subject/system:serviceaccount:NS:SA]
//! enterprises:
//!   - id: LC01demo
//!     enabledNotificationTypes: [COMMAND]   # AMAPI's field: COMMAND publishes completed commands
//!     pubsubTopic: projects/sim-project/topics/amapi-events   # default: settings.pubsub's topic
//!     policies:
//!       - id: work-profile     # any other key is a top-level Policy field, kept as given
//!         version: 1           # optional, default 1
//!         passwordPolicies: [{passwordScope: SCOPE_PROFILE, passwordQuality: NUMERIC_COMPLEX, passwordMinimumLength: 6}]
//!     devices:
//!       - id: 3a8f0c2d
//!         managementMode: PROFILE_OWNER  # DEVICE_OWNER, or MANAGEMENT_MODE_UNSPECIFIED to see MANAGEMENT_MODE
//!         ownership: PERSONALLY_OWNED    # default: PERSONALLY_OWNED for PROFILE_OWNER, else COMPANY_OWNED
//!         state: ACTIVE                  # DELETED devices answer 404
//!         apiLevel: 34                   # < 26: RESET_PASSWORD fails with API_LEVEL
//!         policy: work-profile           # a policy id of this enterprise; optional
//!         online: true                   # offline devices never sync
//!         syncDelay: 500ms               # how long after something is pending the device syncs
//!         resetTokenActive: true         # false: resets fail (UNKNOWN) until the user confirms their lock
//!         passcodeSet: true
//!         hardware: {brand: Google, model: Pixel 8, serialNumber: 35281FDH2000AB}
//!         userName: enterprises/LC01demo/users/jdoe   # default: one derived from the device id
//! ```
//!
//! Every key other than a policy's fields is checked: a typo is an error, not a silent default.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::clock::duration_text;
use super::faults::{FaultSettings, PubsubFaults};
use super::policy::PolicyState;
use super::quota::QuotaSettings;
use crate::amapi::model::{DeviceState, ManagementMode, Ownership};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fleet {
    #[serde(default)]
    pub settings: Settings,
    #[serde(default)]
    pub enterprises: Vec<EnterpriseSpec>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// Lifetime of the access tokens `/token` issues (`expires_in`).
    #[serde(default = "default_token_ttl", with = "duration_text")]
    pub token_ttl: Duration,
    #[serde(default)]
    pub quota: QuotaSettings,
    #[serde(default)]
    pub faults: FaultSettings,
    /// The Pub/Sub subscription AMAPI notifications can be pulled from; none by default.
    #[serde(default)]
    pub pubsub: Option<PubsubSettings>,
    /// A workload identity pool provider trusting a Kubernetes issuer (STS), and who may
    /// impersonate which service account (IAM Credentials); none by default.
    #[serde(default)]
    pub workload_identity: Option<WorkloadIdentitySettings>,
}

/// Workload Identity Federation as Google's IAM configures it: one OIDC provider of one pool.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadIdentitySettings {
    /// `//iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER`:
    /// the `audience` of the exchange, and the audience subject tokens must carry.
    pub provider: String,
    /// The `iss` the provider trusts (https). Its keys are fetched from
    /// `{issuer}/.well-known/openid-configuration`'s `jwks_uri`, as Google does.
    pub issuer: String,
    /// PEM certificates to trust when fetching from the issuer (a cluster's own CA); default:
    /// the system's roots. Google needs a publicly trusted issuer.
    #[serde(default)]
    pub issuer_ca_file: Option<std::path::PathBuf>,
    /// Who holds `roles/iam.workloadIdentityUser` (`iam.serviceAccounts.getAccessToken`) on
    /// which service account.
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccountBinding>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceAccountBinding {
    pub email: String,
    /// IAM members: `principal://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/subject/S`,
    /// `principalSet://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/*`
    /// or `serviceAccount:EMAIL`.
    pub members: Vec<String>,
}

impl WorkloadIdentitySettings {
    /// `projects/N/locations/global/workloadIdentityPools/P`, if `provider` is a provider's name.
    pub fn pool(&self) -> Option<&str> {
        let rest = self.provider.strip_prefix("//iam.googleapis.com/")?;
        let (pool, provider) = rest.rsplit_once("/providers/")?;
        let parts: Vec<&str> = pool.split('/').collect();
        let ok = matches!(parts[..], ["projects", n, "locations", "global", "workloadIdentityPools", p]
            if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty())
            && !provider.is_empty()
            && !provider.contains('/');
        ok.then_some(pool)
    }

    fn validate(&self) -> Result<(), String> {
        if self.pool().is_none() {
            return Err(format!(
                "workloadIdentity.provider {:?} must look like //iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER",
                self.provider
            ));
        }
        if !self.issuer.starts_with("https://") {
            return Err("workloadIdentity.issuer must be an https URL (as Google requires)".into());
        }
        for binding in &self.service_accounts {
            if !binding.email.contains('@') {
                return Err(format!(
                    "workloadIdentity.serviceAccounts: {:?} is not an email",
                    binding.email
                ));
            }
        }
        Ok(())
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            token_ttl: default_token_ttl(),
            quota: QuotaSettings::default(),
            faults: FaultSettings::default(),
            pubsub: None,
            workload_identity: None,
        }
    }
}

/// One Pub/Sub topic with one pull subscription attached.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PubsubSettings {
    /// `projects/{project}/subscriptions/{subscription}`.
    pub subscription: String,
    /// `projects/{project}/topics/{topic}`; default: the subscription's project and id.
    #[serde(default)]
    pub topic: Option<String>,
    /// `Subscription.ackDeadlineSeconds`: how long a pulled message waits for its ack before it
    /// is delivered again (simulated clock). Google allows 10s to 600s; shorter is accepted here
    /// for tests.
    #[serde(default = "default_ack_deadline", with = "duration_text")]
    pub ack_deadline: Duration,
    #[serde(default)]
    pub faults: PubsubFaults,
}

impl PubsubSettings {
    /// The topic the subscription is attached to.
    pub fn topic(&self) -> String {
        self.topic.clone().unwrap_or_else(|| {
            let (project, id) = split_name(&self.subscription, "subscriptions").unwrap_or_default();
            format!("projects/{project}/topics/{id}")
        })
    }

    fn validate(&self) -> Result<(), String> {
        if split_name(&self.subscription, "subscriptions").is_none() {
            return Err(format!(
                "pubsub.subscription {:?} must look like projects/PROJECT/subscriptions/NAME",
                self.subscription
            ));
        }
        if let Some(topic) = &self.topic {
            check_topic("pubsub.topic", topic)?;
        }
        if self.ack_deadline < Duration::from_secs(1) || self.ack_deadline > MAX_ACK_DEADLINE {
            return Err("pubsub.ackDeadline must be between 1s and 600s".into());
        }
        self.faults.validate()
    }
}

/// Google's longest ack deadline.
pub const MAX_ACK_DEADLINE: Duration = Duration::from_secs(600);

fn default_ack_deadline() -> Duration {
    Duration::from_secs(10)
}

/// `(project, id)` of `projects/{project}/{kind}/{id}`, if the name is one: ids of letters,
/// digits and `-_.~+` (Pub/Sub's characters, but `%`), so the name is safe in a URL path.
pub fn split_name<'a>(name: &'a str, kind: &str) -> Option<(&'a str, &'a str)> {
    let rest = name.strip_prefix("projects/")?;
    let (project, rest) = rest.split_once('/')?;
    let id = rest.strip_prefix(kind)?.strip_prefix('/')?;
    let ok = |s: &str, extra: &[u8]| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b) || extra.contains(&b))
    };
    (ok(project, b":") && ok(id, b"~+")).then_some((project, id))
}

fn check_topic(what: &str, topic: &str) -> Result<(), String> {
    if split_name(topic, "topics").is_none() {
        return Err(format!(
            "{what} {topic:?} must look like projects/PROJECT/topics/NAME"
        ));
    }
    Ok(())
}

/// AMAPI's `NotificationType` values.
pub const NOTIFICATION_TYPES: &[&str] = &[
    "NOTIFICATION_TYPE_UNSPECIFIED",
    "ENROLLMENT",
    "COMPLIANCE_REPORT",
    "STATUS_REPORT",
    "COMMAND",
    "USAGE_LOGS",
    "ENTERPRISE_UPGRADE",
];

/// Checks an enterprise's notification settings as `enterprises.patch` would.
pub fn check_notifications(types: &[String], topic: Option<&str>) -> Result<(), String> {
    if let Some(t) = types
        .iter()
        .find(|t| !NOTIFICATION_TYPES.contains(&t.as_str()))
    {
        return Err(format!(
            "enabledNotificationTypes: {t:?} is not an AMAPI notification type"
        ));
    }
    if let Some(topic) = topic {
        check_topic("pubsubTopic", topic)?;
    }
    Ok(())
}

fn default_token_ttl() -> Duration {
    Duration::from_secs(3599)
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnterpriseSpec {
    /// The `{enterpriseId}` in `enterprises/{enterpriseId}`.
    pub id: String,
    #[serde(default)]
    pub policies: Vec<PolicySpec>,
    #[serde(default)]
    pub devices: Vec<DeviceSpec>,
    /// AMAPI's `Enterprise.enabledNotificationTypes`: with `COMMAND`, every command that ends is
    /// published to `pubsubTopic`.
    #[serde(default)]
    pub enabled_notification_types: Vec<String>,
    /// AMAPI's `Enterprise.pubsubTopic`; default: `settings.pubsub`'s topic.
    #[serde(default)]
    pub pubsub_topic: Option<String>,
}

impl EnterpriseSpec {
    /// The topic its notifications go to, if it has one.
    pub fn topic(&self, settings: &Settings) -> Option<String> {
        self.pubsub_topic
            .clone()
            .or_else(|| settings.pubsub.as_ref().map(PubsubSettings::topic))
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    pub id: String,
    /// The starting `Policy.version` (default 1).
    #[serde(default)]
    pub version: Option<i64>,
    /// Top-level Policy fields, such as `passwordPolicies`.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceSpec {
    pub id: String,
    #[serde(default = "default_mode")]
    pub management_mode: ManagementMode,
    #[serde(default)]
    pub ownership: Option<Ownership>,
    #[serde(default = "default_state")]
    pub state: DeviceState,
    #[serde(default = "default_api_level")]
    pub api_level: i32,
    /// A policy id of the same enterprise.
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default = "yes")]
    pub online: bool,
    #[serde(default = "default_sync_delay", with = "duration_text")]
    pub sync_delay: Duration,
    #[serde(default = "yes")]
    pub reset_token_active: bool,
    #[serde(default = "yes")]
    pub passcode_set: bool,
    #[serde(default)]
    pub hardware: Option<HardwareSpec>,
    #[serde(default)]
    pub user_name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HardwareSpec {
    #[serde(default)]
    pub brand: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub serial_number: Option<String>,
}

fn default_mode() -> ManagementMode {
    ManagementMode::ProfileOwner
}
fn default_state() -> DeviceState {
    DeviceState::Active
}
fn default_api_level() -> i32 {
    34
}
fn default_sync_delay() -> Duration {
    Duration::from_millis(500)
}
fn yes() -> bool {
    true
}

impl Fleet {
    /// Parses and checks a fleet file's text.
    pub fn from_yaml(text: &str) -> Result<Fleet, String> {
        let fleet: Fleet = serde_saphyr::from_str(text).map_err(|e| format!("fleet: {e}"))?;
        fleet.validate().map_err(|e| format!("fleet: {e}"))?;
        Ok(fleet)
    }

    /// Reads a fleet file.
    pub fn load(path: &Path) -> Result<Fleet, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read fleet file {}: {e}", path.display()))?;
        Fleet::from_yaml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// What serde cannot check: names, references, ranges and enum values.
    pub fn validate(&self) -> Result<(), String> {
        let s = &self.settings;
        if s.token_ttl < Duration::from_secs(1) {
            return Err("settings.tokenTtl must be at least 1s".into());
        }
        s.quota.validate().map_err(|e| format!("settings.{e}"))?;
        s.faults.validate().map_err(|e| format!("settings.{e}"))?;
        if let Some(pubsub) = &s.pubsub {
            pubsub.validate().map_err(|e| format!("settings.{e}"))?;
        }
        if let Some(wi) = &s.workload_identity {
            wi.validate().map_err(|e| format!("settings.{e}"))?;
        }
        let mut enterprise_ids = Vec::new();
        for e in &self.enterprises {
            check_id("enterprise id", &e.id)?;
            if enterprise_ids.contains(&e.id.as_str()) {
                return Err(format!("enterprise {} is listed twice", e.id));
            }
            enterprise_ids.push(&e.id);
            let at = format!("enterprise {}", e.id);
            check_notifications(&e.enabled_notification_types, e.pubsub_topic.as_deref())
                .map_err(|err| format!("{at}: {err}"))?;
            let notifies = e
                .enabled_notification_types
                .iter()
                .any(|t| t != "NOTIFICATION_TYPE_UNSPECIFIED");
            if notifies && e.topic(s).is_none() {
                return Err(format!(
                    "{at}: enabledNotificationTypes needs a pubsubTopic (or settings.pubsub)"
                ));
            }
            let mut policy_ids = Vec::new();
            for p in &e.policies {
                check_id(&format!("{at}: policy id"), &p.id)?;
                if policy_ids.contains(&p.id.as_str()) {
                    return Err(format!("{at}: policy {} is listed twice", p.id));
                }
                policy_ids.push(&p.id);
                if p.version.is_some_and(|v| v < 1) {
                    return Err(format!("{at}: policy {}: version must be 1 or more", p.id));
                }
                p.to_state(&e.id)
                    .map_err(|err| format!("{at}: policy {}: {err}", p.id))?;
            }
            let mut device_ids = Vec::new();
            for d in &e.devices {
                check_id(&format!("{at}: device id"), &d.id)?;
                if device_ids.contains(&d.id.as_str()) {
                    return Err(format!("{at}: device {} is listed twice", d.id));
                }
                device_ids.push(&d.id);
                d.validate(&policy_ids)
                    .map_err(|err| format!("{at}: device {}: {err}", d.id))?;
            }
        }
        Ok(())
    }
}

impl PolicySpec {
    pub fn to_state(&self, enterprise: &str) -> Result<PolicyState, String> {
        PolicyState::new(
            format!("enterprises/{enterprise}/policies/{}", self.id),
            self.version.unwrap_or(1),
            self.fields.clone(),
        )
    }
}

impl DeviceSpec {
    fn validate(&self, policy_ids: &[&str]) -> Result<(), String> {
        if let ManagementMode::Other(m) = &self.management_mode {
            return Err(format!(
                "managementMode {m:?} is not one of PROFILE_OWNER, DEVICE_OWNER, MANAGEMENT_MODE_UNSPECIFIED"
            ));
        }
        if let Some(Ownership::Other(o)) = &self.ownership {
            return Err(format!(
                "ownership {o:?} is not one of PERSONALLY_OWNED, COMPANY_OWNED, OWNERSHIP_UNSPECIFIED"
            ));
        }
        if let DeviceState::Other(s) = &self.state {
            return Err(format!("state {s:?} is not an AMAPI device state"));
        }
        if !(1..=100).contains(&self.api_level) {
            return Err(format!(
                "apiLevel {} is not an Android API level",
                self.api_level
            ));
        }
        if let Some(p) = &self.policy
            && !policy_ids.contains(&p.as_str())
        {
            return Err(format!("policy {p:?} is not defined in this enterprise"));
        }
        Ok(())
    }

    /// The ownership a fleet file implies when it does not say.
    pub fn ownership(&self) -> Ownership {
        self.ownership
            .clone()
            .unwrap_or(match self.management_mode {
                ManagementMode::ProfileOwner => Ownership::PersonallyOwned,
                _ => Ownership::CompanyOwned,
            })
    }
}

/// Resource ids end up in URL paths: keep them to what AMAPI ids look like.
fn check_id(what: &str, id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {id:?} must be non-empty letters, digits, '-', '_' or '.'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
settings:
  tokenTtl: 60s
  quota: {requests: 5, window: 10s}
  faults: {errorRate: 0.1, latency: 20ms}
enterprises:
  - id: LC01demo
    policies:
      - id: work-profile
        passwordPolicies:
          - {passwordScope: SCOPE_PROFILE, passwordQuality: NUMERIC_COMPLEX, passwordMinimumLength: 6}
        screenCaptureDisabled: true
    devices:
      - id: 3a8f0c2d
        policy: work-profile
        syncDelay: 250ms
        hardware: {brand: Google, model: Pixel 8}
      - id: kiosk-1
        managementMode: DEVICE_OWNER
        apiLevel: 25
        online: false
"#;

    #[test]
    fn parses_with_defaults() {
        let fleet = Fleet::from_yaml(SMALL).unwrap();
        assert_eq!(fleet.settings.token_ttl, Duration::from_secs(60));
        assert_eq!(fleet.settings.quota.requests, 5);
        assert_eq!(fleet.settings.faults.latency, Duration::from_millis(20));
        let e = &fleet.enterprises[0];
        let p = e.policies[0].to_state(&e.id).unwrap();
        assert_eq!(p.version, 1);
        assert_eq!(p.password_policies()[0].password_minimum_length, Some(6));
        assert_eq!(p.fields["screenCaptureDisabled"], Value::Bool(true));
        let wp = &e.devices[0];
        assert_eq!(wp.management_mode, ManagementMode::ProfileOwner);
        assert_eq!(wp.ownership(), Ownership::PersonallyOwned);
        assert_eq!(wp.api_level, 34);
        assert!(wp.online && wp.reset_token_active && wp.passcode_set);
        assert_eq!(wp.sync_delay, Duration::from_millis(250));
        let kiosk = &e.devices[1];
        assert_eq!(kiosk.ownership(), Ownership::CompanyOwned);
        assert!(!kiosk.online);
    }

    #[test]
    fn empty_fleet_has_google_defaults() {
        let fleet = Fleet::from_yaml("{}").unwrap();
        assert_eq!(fleet.settings.token_ttl, Duration::from_secs(3599));
        assert_eq!(fleet.settings.quota, QuotaSettings::default());
        assert!(fleet.enterprises.is_empty());
    }

    fn error(yaml: &str) -> String {
        Fleet::from_yaml(yaml).expect_err(yaml)
    }

    #[test]
    fn bad_fleets_say_what_is_wrong() {
        assert!(error("enterprises: [").starts_with("fleet: "));
        let typo = error("enterprises: [{id: E, devices: [{id: d, onlien: false}]}]");
        assert!(typo.contains("onlien"), "{typo}");
        let missing = error("enterprises: [{id: E, devices: [{id: d, policy: nope}]}]");
        assert!(missing.contains("\"nope\" is not defined"), "{missing}");
        let dup = error("enterprises: [{id: E, devices: [{id: d}, {id: d}]}]");
        assert!(dup.contains("listed twice"), "{dup}");
        let mode = error("enterprises: [{id: E, devices: [{id: d, managementMode: OWNER}]}]");
        assert!(mode.contains("OWNER"), "{mode}");
        let quality = error(
            "enterprises: [{id: E, policies: [{id: p, passwordPolicies: [{passwordQuality: STRONG}]}]}]",
        );
        assert!(quality.contains("passwordQuality"), "{quality}");
        let rate = error("settings: {faults: {dropRate: 2}}");
        assert!(rate.contains("dropRate"), "{rate}");
        let duration = error("settings: {tokenTtl: forever}");
        assert!(duration.contains("forever"), "{duration}");
        let id = error("enterprises: [{id: 'a/b'}]");
        assert!(id.contains("a/b"), "{id}");
        let version = error("enterprises: [{id: E, policies: [{id: p, version: 0}]}]");
        assert!(version.contains("version"), "{version}");
        let level = error("enterprises: [{id: E, devices: [{id: d, apiLevel: 0}]}]");
        assert!(level.contains("apiLevel"), "{level}");
    }

    #[test]
    fn pubsub_settings() {
        let fleet = Fleet::from_yaml(
            r#"
settings:
  pubsub: {subscription: projects/p/subscriptions/s, ackDeadline: 20s, faults: {dropRate: 0.5}}
enterprises:
  - {id: E, enabledNotificationTypes: [COMMAND]}
  - {id: F, enabledNotificationTypes: [COMMAND], pubsubTopic: projects/q/topics/t}
  - {id: G}
"#,
        )
        .unwrap();
        let pubsub = fleet.settings.pubsub.as_ref().unwrap();
        assert_eq!(pubsub.topic(), "projects/p/topics/s");
        assert_eq!(pubsub.ack_deadline, Duration::from_secs(20));
        assert_eq!(pubsub.faults.drop_rate, 0.5);
        let topics: Vec<Option<String>> = fleet
            .enterprises
            .iter()
            .map(|e| e.topic(&fleet.settings))
            .collect();
        assert_eq!(
            topics,
            [
                Some("projects/p/topics/s".into()),
                Some("projects/q/topics/t".into()),
                Some("projects/p/topics/s".into())
            ]
        );
        assert_eq!(
            Fleet::from_yaml("{}").unwrap().settings.pubsub,
            None,
            "no subscription unless configured"
        );
        for (bad, says) in [
            (
                "settings: {pubsub: {subscription: subs/s}}",
                "pubsub.subscription",
            ),
            (
                "settings: {pubsub: {subscription: projects/p/subscriptions/s%2F}}",
                "pubsub.subscription",
            ),
            (
                "settings: {pubsub: {subscription: projects/p/subscriptions/s, ackDeadline: 601s}}",
                "ackDeadline",
            ),
            (
                "settings: {pubsub: {subscription: projects/p/subscriptions/s, faults: {duplicateRate: 2}}}",
                "duplicateRate",
            ),
            (
                "enterprises: [{id: E, enabledNotificationTypes: [COMMANDS]}]",
                "COMMANDS",
            ),
            (
                "enterprises: [{id: E, enabledNotificationTypes: [COMMAND]}]",
                "needs a pubsubTopic",
            ),
            (
                "enterprises: [{id: E, pubsubTopic: topics/t}]",
                "pubsubTopic",
            ),
        ] {
            let e = error(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn the_example_fleet_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleet.yaml");
        let fleet = Fleet::load(&path).unwrap();
        assert!(!fleet.enterprises.is_empty());
        let missing = Fleet::load(Path::new("/nonexistent/fleet.yaml")).unwrap_err();
        assert!(missing.contains("/nonexistent/fleet.yaml"), "{missing}");
    }
}
