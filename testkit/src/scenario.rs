//! One operator scenario on the test binary's control plane: a namespace, an enterprise of its
//! own in an in-process AMAPI simulator (real HTTP, real OAuth), and the operator binary running
//! as a separate process under the operator's ServiceAccount (the RBAC of `manifests/`), watching
//! only that namespace and enterprise so scenarios run side by side.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use passcode_operator::api::{PasscodeReset, Phase, Reason};
use passcode_operator::simulator::Simulator;
use serde_json::{Value, json};

use crate::cluster::{OPERATOR_NAMESPACE, admin, control_plane, namespace};
use crate::process::{Launch, Operator};

pub struct Env {
    pub ns: String,
    pub enterprise: String,
    pub client: Client,
    pub sim: Simulator,
    pub dir: PathBuf,
    pub operator: Option<Operator>,
}

#[derive(Clone, Default)]
pub struct OperatorOptions {
    pub failpoint: Option<String>,
    pub leader_election: bool,
    pub identity: Option<String>,
    pub log_level: Option<String>,
    /// Act on every namespace (for the leader-election test's shared lease).
    pub lease_name: Option<String>,
    /// Pull AMAPI notifications from this subscription (on the scenario's simulator).
    pub pubsub_subscription: Option<String>,
    /// How it gets Google tokens; default: the simulator's service-account key file.
    pub credentials: GoogleCredentials,
    /// Further flags (`--name value`).
    pub flags: Vec<(&'static str, String)>,
}

/// How a scenario's operator gets its Google tokens.
#[derive(Clone, Debug, Default)]
pub enum GoogleCredentials {
    /// The simulator's service-account key file.
    #[default]
    KeyFile,
    /// Another credentials file (`external_account`, ...).
    File(PathBuf),
    /// No file: the metadata server at this `GCE_METADATA_HOST`.
    MetadataServer(String),
}

/// The label that ties a PasscodeResetScope to one scenario's operator.
pub const SCOPE_LABEL: &str = "amapi.passcode-operator.io/test-scenario";

/// The subscription a scenario made with [`Env::notified`] publishes to.
pub const SUBSCRIPTION: &str = "projects/sim-project/subscriptions/amapi-events";

/// A fleet with one enterprise, the given policies and devices (YAML list items, indented for the
/// `policies:` and `devices:` keys).
pub fn fleet(enterprise: &str, policies: &str, devices: &str) -> String {
    format!(
        "enterprises:\n  - id: {enterprise}\n    policies:\n{policies}\n    devices:\n{devices}\n"
    )
}

/// [`fleet`], with the enterprise publishing COMMAND notifications to [`SUBSCRIPTION`].
pub fn notified_fleet(enterprise: &str, policies: &str, devices: &str) -> String {
    format!(
        "settings:\n  pubsub: {{subscription: {SUBSCRIPTION}, ackDeadline: 10s}}\nenterprises:\n  - id: {enterprise}\n    enabledNotificationTypes: [COMMAND]\n    policies:\n{policies}\n    devices:\n{devices}\n"
    )
}

impl Env {
    pub async fn new(test: &str, policies: &str, devices: &str) -> Env {
        Self::with(test, policies, devices, OperatorOptions::default()).await
    }

    pub async fn with(test: &str, policies: &str, devices: &str, options: OperatorOptions) -> Env {
        let mut env = Self::without_operator(test, policies, devices).await;
        env.start_operator(options);
        env
    }

    /// A scenario whose operator is stopped by `failpoint` while acting on reset `r` of device
    /// `phone` (new passcode from Secret `pc`).
    pub async fn killed_at(test: &str, policies: &str, devices: &str, failpoint: &str) -> Env {
        let mut env = Self::with(
            test,
            policies,
            devices,
            OperatorOptions {
                failpoint: Some(failpoint.into()),
                ..Default::default()
            },
        )
        .await;
        env.secret("pc", "passcode", b"830417").await;
        env.reset(
            "r",
            "phone",
            json!({"newPasscode": {"secretKeyRef": {"name": "pc", "key": "passcode"}}}),
        )
        .await;
        let exit = env
            .operator
            .as_mut()
            .unwrap()
            .wait_exit(Duration::from_secs(60))
            .await;
        assert!(
            !exit.success(),
            "{failpoint}: the failpoint crashed the operator"
        );
        env
    }

    pub async fn without_operator(test: &str, policies: &str, devices: &str) -> Env {
        Self::build(test, policies, devices, false).await
    }

    /// A scenario whose enterprise publishes COMMAND notifications, with no operator yet.
    pub async fn notified(test: &str, policies: &str, devices: &str) -> Env {
        Self::build(test, policies, devices, true).await
    }

    /// A scenario whose simulator has these lines (YAML, indented 2) under `settings:`, with no
    /// operator yet.
    pub async fn with_settings(test: &str, policies: &str, devices: &str, settings: &str) -> Env {
        Self::build_with(test, policies, devices, false, settings).await
    }

    async fn build(test: &str, policies: &str, devices: &str, notified: bool) -> Env {
        Self::build_with(test, policies, devices, notified, "").await
    }

    async fn build_with(
        test: &str,
        policies: &str,
        devices: &str,
        notified: bool,
        settings: &str,
    ) -> Env {
        passcode_operator::install_crypto_provider();
        let client = admin().await;
        let ns = namespace(&client, test).await;
        // Enterprise ids are unique per scenario, so policies of other scenarios are not ours.
        let enterprise = format!("E{}", ns.replace('-', ""));
        let dir = control_plane().dir.join("scenarios").join(&ns);
        std::fs::create_dir_all(&dir).unwrap();
        let policies = if policies.trim().is_empty() {
            "      - id: none\n".to_owned()
        } else {
            policies.to_owned()
        };
        let devices = if devices.trim().is_empty() {
            "      - id: unused\n"
        } else {
            devices
        };
        let fleet = if notified {
            notified_fleet(&enterprise, &policies, devices)
        } else if settings.is_empty() {
            fleet(&enterprise, &policies, devices)
        } else {
            format!(
                "settings:\n{settings}\n{}",
                fleet(&enterprise, &policies, devices)
            )
        };
        let sim = crate::simulator(&fleet, Some(dir.join("sa.json"))).await;
        Env {
            ns,
            enterprise,
            client,
            sim,
            dir,
            operator: None,
        }
    }

    pub fn start_operator(&mut self, options: OperatorOptions) {
        self.operator = Some(self.spawn_operator(options));
    }

    /// Starts another operator process for this scenario.
    pub fn spawn_operator(&self, options: OperatorOptions) -> Operator {
        let n = std::fs::read_dir(&self.dir).map(|d| d.count()).unwrap_or(0);
        let mut flags = vec![
            ("amapi-rate", "100".to_owned()),
            ("policy-resync", "2s".to_owned()),
            // The simulator creates a command at once; 3 s keeps crash tests short.
            ("adoption-window", "3s".to_owned()),
            (
                "log-level",
                options
                    .log_level
                    .unwrap_or_else(|| "info,passcode_operator=debug".to_owned()),
            ),
            ("leader-election", options.leader_election.to_string()),
            ("operator-namespace", OPERATOR_NAMESPACE.to_owned()),
            // Only the scenario's own PasscodeResetScopes (see [`Env::scope`]).
            ("scope-selector", format!("{SCOPE_LABEL}={}", self.ns)),
        ];
        // A flag the options give replaces the default above (clap refuses a flag twice).
        flags.retain(|(name, _)| !options.flags.iter().any(|(given, _)| given == name));
        flags.extend(options.flags);
        if let Some(lease) = options.lease_name {
            flags.push(("lease-name", lease));
        }
        if let Some(id) = options.identity {
            flags.push(("identity", id));
        }
        if let Some(subscription) = options.pubsub_subscription {
            flags.push(("pubsub-subscription", subscription));
            flags.push(("pubsub-url", self.sim.base_url()));
        }
        let key_file = self.dir.join("sa.json");
        let (credentials, env) = match &options.credentials {
            GoogleCredentials::KeyFile => (Some(key_file.as_path()), Vec::new()),
            GoogleCredentials::File(path) => (Some(path.as_path()), Vec::new()),
            GoogleCredentials::MetadataServer(host) => {
                (None, vec![("GCE_METADATA_HOST", host.clone())])
            }
        };
        Operator::spawn(Launch {
            kubeconfig: &control_plane().operator_kubeconfig(),
            credentials,
            env,
            amapi_base_url: &self.sim.base_url(),
            enterprise: &self.enterprise,
            namespace: &self.ns,
            log: self.dir.join(format!("operator-{n}.log")),
            flags,
            failpoint: options.failpoint.as_deref(),
        })
    }

    /// The same scenario with a fresh admin client (after the API server restarted).
    pub async fn reconnect(mut self) -> Env {
        self.client = admin().await;
        self
    }

    pub fn operator_alive(&mut self) -> bool {
        self.operator.as_mut().is_some_and(Operator::alive)
    }

    /// Creates a PasscodeResetScope `name` for this scenario's operator only; `spec` is its spec.
    pub async fn scope(&self, name: &str, spec: Value) {
        let scope: passcode_operator::api::PasscodeResetScope = serde_json::from_value(json!({
            "apiVersion": "amapi.passcode-operator.io/v1alpha1",
            "kind": "PasscodeResetScope",
            "metadata": {"name": name, "labels": {SCOPE_LABEL: self.ns}},
            "spec": spec,
        }))
        .unwrap();
        Api::<passcode_operator::api::PasscodeResetScope>::all(self.client.clone())
            .create(&PostParams::default(), &scope)
            .await
            .unwrap();
    }

    pub fn device(&self, id: &str) -> String {
        format!("enterprises/{}/devices/{id}", self.enterprise)
    }

    pub fn policy(&self, id: &str) -> String {
        format!("enterprises/{}/policies/{id}", self.enterprise)
    }

    pub fn resets(&self) -> Api<PasscodeReset> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub async fn secret(&self, name: &str, key: &str, value: &[u8]) {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some([(key.to_string(), k8s_openapi::ByteString(value.to_vec()))].into()),
            ..Default::default()
        };
        Api::<Secret>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }

    pub async fn delete_secret(&self, name: &str) {
        Api::<Secret>::namespaced(self.client.clone(), &self.ns)
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }

    /// Creates a reset for device `device_id`; `extra` adds spec fields.
    pub async fn reset(&self, name: &str, device_id: &str, extra: Value) -> PasscodeReset {
        let mut spec = json!({"device": self.device(device_id)});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        let reset: PasscodeReset = serde_json::from_value(json!({
            "apiVersion": "amapi.passcode-operator.io/v1alpha1",
            "kind": "PasscodeReset",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .unwrap();
        self.resets()
            .create(&PostParams::default(), &reset)
            .await
            .unwrap()
    }

    /// Waits until `check` holds for the reset, or fails with the reset and the operator's log.
    pub async fn wait(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&PasscodeReset) -> bool,
    ) -> PasscodeReset {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.resets().get_opt(name).await.unwrap();
            if let Some(r) = &r
                && check(r)
            {
                return r.clone();
            }
            if Instant::now() > deadline {
                let tail = self
                    .operator
                    .as_ref()
                    .map(|o| o.tail(40))
                    .unwrap_or_default();
                panic!(
                    "{name}: timed out waiting for {what}; reset: {:#?}\noperator log tail:\n{tail}",
                    r.map(|r| r.status)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the reset records the operation of its command, and returns it.
    pub async fn issued(&self, name: &str) -> PasscodeReset {
        self.wait(name, "its command issued", |r| {
            r.status
                .as_ref()
                .and_then(|s| s.operation.as_ref())
                .is_some()
        })
        .await
    }

    /// Waits for a final phase and returns the reset.
    pub async fn done(&self, name: &str) -> PasscodeReset {
        self.wait(name, "a final phase", |r| r.phase().is_terminal())
            .await
    }

    pub async fn reason_is(&self, name: &str, reason: Reason) -> PasscodeReset {
        let r = self.done(name).await;
        let status = r.status.clone().unwrap();
        assert_eq!(status.reason, Some(reason), "{name}: {status:#?}");
        assert_eq!(status.phase, Some(reason.phase()));
        r
    }

    pub async fn wait_gone(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.resets().get_opt(name).await.unwrap().is_some() {
            assert!(Instant::now() < deadline, "{name} was not deleted");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An AMAPI client with the scenario's own service account, as an admin's EMM console would
    /// use: for acting on devices behind the operator's back.
    pub async fn console(&self) -> passcode_operator::amapi::AmapiClient {
        let auth =
            passcode_operator::amapi::Credentials::from_file(&self.dir.join("sa.json"), None)
                .await
                .unwrap();
        passcode_operator::amapi::AmapiClient::new(
            auth,
            passcode_operator::amapi::ClientOptions {
                base_url: self.sim.base_url(),
                ..Default::default()
            },
        )
        .unwrap()
    }

    // --- the simulator's inspection API ---

    pub async fn sim_get(&self, path: &str) -> Value {
        self.sim.admin().get(path).await.unwrap()
    }

    pub async fn sim_send(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        self.sim
            .admin()
            .send(method, path, Some(body))
            .await
            .unwrap()
    }

    /// Every command the device received.
    pub async fn commands(&self, device_id: &str) -> Vec<Value> {
        let v = self
            .sim_get(&format!(
                "enterprises/{}/devices/{device_id}/commands",
                self.enterprise
            ))
            .await;
        v.as_array()
            .cloned()
            .or_else(|| v["commands"].as_array().cloned())
            .unwrap_or_default()
    }

    pub async fn patch_device(&self, device_id: &str, patch: Value) -> Value {
        self.sim_send(
            reqwest::Method::PATCH,
            &format!("enterprises/{}/devices/{device_id}", self.enterprise),
            patch,
        )
        .await
    }

    pub async fn admin_device(&self, device_id: &str) -> Value {
        self.sim_get(&format!(
            "enterprises/{}/devices/{device_id}",
            self.enterprise
        ))
        .await
    }

    pub async fn counter(&self, method: &str) -> u64 {
        self.sim_get("counters").await["methods"][method]
            .as_u64()
            .unwrap_or(0)
    }

    pub async fn metrics(&self) -> String {
        self.operator.as_ref().expect("operator").metrics().await
    }

    pub fn phase(r: &PasscodeReset) -> Phase {
        r.phase()
    }
}
