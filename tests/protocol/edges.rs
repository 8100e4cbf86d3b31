//! The production shell's two edges, implemented on the models. Every call is an await point:
//! it does its work, then yields once before answering, so the scheduler can crash the process
//! between a write and its answer, or run another reconcile in between.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use jiff::Timestamp;
use kube::core::Status;
use kube::runtime::events::Event;
use passcode_operator::admission::Admission;
use passcode_operator::amapi::AmapiError;
use passcode_operator::amapi::model::{
    Command, Device, Operation, google_duration_nanos, parse_google_duration_nanos,
};
use passcode_operator::api::{
    PasscodeReset, PasscodeResetScope, PasscodeResetStatus, WorkProfilePasscodePolicy,
};
use passcode_operator::metrics::Metrics;
use passcode_operator::passcode::Passcode;
use passcode_operator::reconcile::Error;
use passcode_operator::reconcile::reset::claims::Claims;
use passcode_operator::reconcile::reset::decide::Config;
use passcode_operator::reconcile::reset::decide::{FINALIZER, Read, SecretRead};
use passcode_operator::reconcile::reset::edges::{Amapi, Cluster, on_device};
use passcode_operator::reconcile::reset::pushed::Pushed;
use passcode_operator::reconcile::reset::record::{self, Match, Recorded};
use passcode_operator::reconcile::reset::{Shell, run};
use serde_json::json;

use crate::world::{KEY, Late, Op, SECRET, World};

pub type Shared = Arc<Mutex<World>>;
/// A replica's watch cache: `namespace/name` → the object as last delivered.
pub type Cache = Arc<Mutex<BTreeMap<String, Arc<PasscodeReset>>>>;

/// Pending once, then ready: the await point between a call's effect and its answer.
pub struct Yield(bool);

impl Future for Yield {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

fn yield_now() -> Yield {
    Yield(false)
}

pub fn key(r: &PasscodeReset) -> String {
    format!(
        "{}/{}",
        r.metadata.namespace.as_deref().unwrap_or(""),
        r.metadata.name.as_deref().unwrap_or("")
    )
}

fn api_error(code: u16, reason: &str) -> Error {
    Error::Kube(kube::Error::Api(Box::new(
        Status::failure(reason, reason).with_code(code),
    )))
}

fn lost() -> Error {
    Error::Kube(kube::Error::Service(
        "connection reset; the answer was lost".into(),
    ))
}

pub struct SimCluster {
    pub world: Shared,
    pub cache: Cache,
}

impl SimCluster {
    /// A write with the resourceVersion precondition; `change` edits the stored object.
    async fn write(
        &self,
        reset: &PasscodeReset,
        change: impl FnOnce(&mut PasscodeReset),
    ) -> Result<PasscodeReset, Error> {
        let result = {
            let mut w = self.world.lock().unwrap();
            let k = key(reset);
            if w.fault(|f| f.refused) {
                Err(api_error(500, "InternalError"))
            } else {
                let rv = w.rv();
                let lose = w.fault(|f| f.lost_answer);
                match w.resets.get_mut(&k) {
                    None => Err(api_error(404, "NotFound")),
                    Some(stored)
                        if stored.metadata.resource_version != reset.metadata.resource_version =>
                    {
                        Err(api_error(409, "Conflict"))
                    }
                    Some(stored) => {
                        change(stored);
                        stored.metadata.resource_version = Some(rv);
                        let stored = stored.clone();
                        if let Some(s) = &stored.status {
                            w.outward.push(World::status_text(s));
                            let line = format!(
                                "{k} {:?} rv {:?}: {:?}/{:?} claim {:?} op {:?}{}",
                                stored.metadata.uid,
                                stored.metadata.resource_version,
                                s.phase,
                                s.reason,
                                s.claimed_command.as_ref().map(|c| &c.duration),
                                s.operation,
                                if lose { " (answer lost)" } else { "" }
                            );
                            w.trace.push(line);
                        }
                        // The last finalizer gone from an object being deleted: it goes.
                        if stored.metadata.deletion_timestamp.is_some()
                            && stored
                                .metadata
                                .finalizers
                                .as_ref()
                                .is_none_or(|f| f.is_empty())
                        {
                            w.resets.remove(&k);
                            w.trace.push(format!("{k} deleted"));
                        }
                        if lose { Err(lost()) } else { Ok(stored) }
                    }
                }
            }
        };
        yield_now().await;
        result
    }
}

impl Cluster for SimCluster {
    fn now(&self) -> Timestamp {
        self.world.lock().unwrap().now
    }

    fn policies(&self) -> Vec<Arc<WorkProfilePasscodePolicy>> {
        Vec::new()
    }

    // Scopes and approval are gates before the claim, tested in the decision's own tests; the
    // model runs every reset unscoped and without the webhook.
    fn scopes(&self) -> Vec<Arc<PasscodeResetScope>> {
        Vec::new()
    }

    fn admission(&self, _: &PasscodeReset) -> Admission {
        Admission::default()
    }

    async fn namespace_labels(&self, _: &str) -> Read<BTreeMap<String, String>> {
        Read::Found(BTreeMap::new())
    }

    fn others(&self, reset: &PasscodeReset) -> Vec<Arc<PasscodeReset>> {
        let me = key(reset);
        self.cache
            .lock()
            .unwrap()
            .values()
            .filter(|r| on_device(r, &reset.spec.device) && key(r) != me)
            .cloned()
            .collect()
    }

    fn cached(&self, namespace: &str, name: &str) -> Option<Arc<PasscodeReset>> {
        self.cache
            .lock()
            .unwrap()
            .get(&format!("{namespace}/{name}"))
            .cloned()
    }

    fn settled_operations(&self, _: &str) -> Vec<String> {
        Vec::new()
    }

    async fn get(&self, reset: &PasscodeReset) -> Result<Option<PasscodeReset>, Error> {
        let result = {
            let mut w = self.world.lock().unwrap();
            if w.fault(|f| f.refused) {
                Err(api_error(500, "InternalError"))
            } else {
                Ok(w.resets.get(&key(reset)).cloned())
            }
        };
        yield_now().await;
        result
    }

    async fn replace_status(
        &self,
        reset: &PasscodeReset,
        status: PasscodeResetStatus,
    ) -> Result<PasscodeReset, Error> {
        self.write(reset, |stored| stored.status = Some(status))
            .await
    }

    async fn set_finalizer(
        &self,
        reset: &PasscodeReset,
        present: bool,
    ) -> Result<PasscodeReset, Error> {
        self.write(reset, |stored| {
            let mut f: Vec<String> = stored.metadata.finalizers.clone().unwrap_or_default();
            f.retain(|f| f != FINALIZER);
            if present {
                f.push(FINALIZER.into());
            }
            stored.metadata.finalizers = Some(f);
        })
        .await
    }

    async fn read_secret(&self, namespace: &str, name: &str, key: &str) -> SecretRead {
        let value = {
            let mut w = self.world.lock().unwrap();
            if w.fault(|f| f.refused) {
                None
            } else {
                let key = format!("{namespace}/{name}");
                let uid = w.secret_uid(&key);
                Some(w.secrets.get(&key).cloned().map(|v| (v, uid)))
            }
        };
        yield_now().await;
        assert_eq!((name, key), (SECRET, KEY));
        match value {
            None => SecretRead::Unavailable("the API server timed out".into()),
            Some(None) => SecretRead::Missing,
            Some(Some((v, uid))) => match Passcode::from_secret_data(v.into_bytes()) {
                Ok(p) => SecretRead::Value(p, uid),
                Err(e) => SecretRead::Invalid(e),
            },
        }
    }

    async fn delete_secret(
        &self,
        namespace: &str,
        name: &str,
        uid: Option<&str>,
    ) -> Result<(), String> {
        let answer = {
            let mut w = self.world.lock().unwrap();
            if w.fault(|f| f.refused) {
                Err("the API server timed out".to_owned())
            } else {
                // Gone already, or another Secret by that name (the uid precondition): not ours.
                if w.delete_secret(&format!("{namespace}/{name}"), uid) {
                    w.trace.push(format!("delete secret {namespace}/{name}"));
                }
                Ok(())
            }
        };
        yield_now().await;
        answer
    }

    async fn record(&self, reset: &PasscodeReset, claimed_at: &str) -> Recorded {
        let answer = {
            let mut w = self.world.lock().unwrap();
            let ns = reset.metadata.namespace.clone().unwrap_or_default();
            let name = record::record_name(&ns, reset.metadata.name.as_deref().unwrap_or(""));
            if w.fault(|f| f.refused) {
                Recorded::Unavailable("the API server timed out".into())
            } else {
                let run = record::run_of(reset, claimed_at, &Admission::default());
                let lose = w.fault(|f| f.lost_answer);
                let answer = match w.records.get(&name).cloned() {
                    None => {
                        let rv = w.next_rv_u64();
                        w.records.insert(name.clone(), (rv, vec![run]));
                        Recorded::Ours
                    }
                    Some((_, runs)) => match record::matches(&runs, reset) {
                        Match::Ours => Recorded::Ours,
                        Match::Earlier { uid, claimed_at } => Recorded::Earlier {
                            uid,
                            claimed_at,
                            record: format!("op/{name}"),
                        },
                        Match::Full => Recorded::Full {
                            record: format!("op/{name}"),
                        },
                        Match::Foreign => Recorded::Unavailable("foreign".into()),
                        Match::Stale => Recorded::Unavailable(record::STALE_VIEW.into()),
                        Match::New | Match::OursStale => {
                            let rv = w.next_rv_u64();
                            w.records
                                .insert(name.clone(), (rv, record::with_run(&runs, run)));
                            Recorded::Ours
                        }
                    },
                };
                w.trace.push(format!(
                    "record of {name} for {:?}: {answer:?}{}",
                    reset.metadata.uid,
                    if lose { " (answer lost)" } else { "" }
                ));
                if lose {
                    Recorded::Unavailable("the answer was lost".into())
                } else {
                    answer
                }
            }
        };
        yield_now().await;
        answer
    }

    async fn forget(&self, reset: &PasscodeReset) {
        {
            let mut w = self.world.lock().unwrap();
            if !w.fault(|f| f.refused) {
                let ns = reset.metadata.namespace.clone().unwrap_or_default();
                let name = record::record_name(&ns, reset.metadata.name.as_deref().unwrap_or(""));
                let uid = reset.metadata.uid.clone().unwrap_or_default();
                w.trace.push(format!("forget {uid} in {name}"));
                if let Some((_, runs)) = w.records.get(&name).cloned() {
                    let left = record::without_run(&runs, &uid);
                    if left.is_empty() {
                        w.records.remove(&name);
                    } else {
                        let rv = w.next_rv_u64();
                        w.records.insert(name, (rv, left));
                    }
                }
            }
        }
        yield_now().await;
    }

    async fn publish(&self, reset: &PasscodeReset, event: Event) {
        {
            let mut w = self.world.lock().unwrap();
            w.reasons.push(event.reason.clone());
            let note = event.note.unwrap_or_default();
            w.outward
                .push(format!("{} {} {}", key(reset), event.reason, note));
        }
        yield_now().await;
    }
}

impl World {
    pub fn next_rv_u64(&mut self) -> u64 {
        self.rv().parse().unwrap()
    }
}

pub struct SimAmapi {
    pub world: Shared,
}

fn transient(method: &'static str, status: u16) -> AmapiError {
    AmapiError::Transient {
        method,
        status: Some(status),
        rpc_status: None,
        message: "simulated".into(),
        retry_after: None,
    }
}

fn not_found(method: &'static str) -> AmapiError {
    AmapiError::Terminal {
        method,
        status: 404,
        rpc_status: Some("NOT_FOUND".into()),
        message: "not found".into(),
    }
}

pub fn operation_json(op: &Op) -> Operation {
    let mut v = json!({
        "name": op.name,
        "done": op.done.is_some(),
        "metadata": {
            "@type": "type.googleapis.com/google.android.devicemanagement.v1.Command",
            "type": "RESET_PASSWORD",
            "createTime": op.created.to_string(),
            "duration": op.duration,
            "resetPasswordFlags": op.flags,
            // AMAPI echoes it: the operator must never surface a raw operation.
            "newPassword": op.passcode,
        },
    });
    if let Some(code) = op.done.filter(|c| *c != 0) {
        v["error"] = json!({"code": code, "message": "ended"});
    }
    serde_json::from_value(v).unwrap()
}

impl Amapi for SimAmapi {
    async fn get_device(&self, name: &str) -> Result<Device, AmapiError> {
        let result = {
            let mut w = self.world.lock().unwrap();
            if w.fault(|f| f.refused) {
                Err(transient("devices.get", 503))
            } else if w.devices.contains_key(name) {
                Ok(serde_json::from_value(json!({
                    "name": name, "state": "ACTIVE", "managementMode": "PROFILE_OWNER",
                    "apiLevel": 34,
                }))
                .unwrap())
            } else {
                Err(not_found("devices.get"))
            }
        };
        yield_now().await;
        result
    }

    async fn issue_command(
        &self,
        device: &str,
        command: &Command,
        start_by: Timestamp,
        _timeout: Duration,
    ) -> Result<Operation, AmapiError> {
        let result = {
            let mut w = self.world.lock().unwrap();
            // Echoed as Google writes it (3, 6 or 9 decimals).
            let duration = command
                .duration
                .as_deref()
                .and_then(parse_google_duration_nanos)
                .map(|n| {
                    google_duration_nanos((n / 1_000_000_000) as u64, (n % 1_000_000_000) as u32)
                })
                .unwrap_or_default();
            let op = Op {
                name: w.op_name(device),
                device: device.to_owned(),
                created: w.amapi_now(),
                owner: w.owner_of(&duration),
                duration,
                flags: command
                    .reset_password_flags
                    .iter()
                    .map(|f| {
                        serde_json::to_value(f)
                            .unwrap()
                            .as_str()
                            .unwrap()
                            .to_owned()
                    })
                    .collect(),
                done: None,
                passcode: command.new_password.as_deref().map(|p| p.to_string()),
            };
            if w.now > start_by {
                Err(transient("devices.issueCommand", 0))
            } else if w.fault(|f| f.issue_throttled) {
                Err(transient("devices.issueCommand", 429))
            } else if w.fault(|f| f.issue_late) {
                let delay = 200 + w.rng.u64(0..1800);
                let due = w.now + jiff::SignedDuration::from_secs(delay as i64);
                w.trace
                    .push(format!("{} accepted, created in {delay} s", op.name));
                w.late.push(Late { due, op });
                Err(AmapiError::Ambiguous {
                    method: "devices.issueCommand",
                    message: "timed out".into(),
                })
            } else {
                w.trace
                    .push(format!("{} created for {:?}", op.name, op.owner));
                w.ops.push(op.clone());
                if w.fault(|f| f.issue_ambiguous) {
                    Err(AmapiError::Ambiguous {
                        method: "devices.issueCommand",
                        message: "connection cut".into(),
                    })
                } else {
                    Ok(operation_json(&op))
                }
            }
        };
        yield_now().await;
        result
    }

    async fn get_operation(&self, name: &str) -> Result<Operation, AmapiError> {
        let result = {
            let mut w = self.world.lock().unwrap();
            if w.fault(|f| f.refused) {
                Err(transient("operations.get", 503))
            } else {
                w.ops
                    .iter()
                    .find(|o| o.name == name)
                    .map(operation_json)
                    .ok_or_else(|| not_found("operations.get"))
            }
        };
        yield_now().await;
        result
    }

    async fn list_operations(&self, device: &str) -> Result<Vec<Operation>, AmapiError> {
        let result = {
            let mut w = self.world.lock().unwrap();
            if w.fault(|f| f.refused) {
                Err(transient("operations.list", 503))
            } else {
                // A new command shows in the list only after a while.
                let listed_by = w.amapi_now() - w.list_lag;
                Ok(w.ops
                    .iter()
                    .filter(|o| o.device == device && o.created <= listed_by)
                    .map(operation_json)
                    .collect())
            }
        };
        yield_now().await;
        result
    }

    async fn cancel_operation(&self, name: &str) -> Result<(), AmapiError> {
        let result = {
            let mut w = self.world.lock().unwrap();
            w.trace.push(format!("cancel {name} asked"));
            if w.fault(|f| f.refused) {
                Err(transient("operations.cancel", 503))
            } else {
                if let Some(op) = w.ops.iter_mut().find(|o| o.name == name)
                    && op.done.is_none()
                {
                    op.done = Some(1);
                    w.trace.push(format!("{name} cancelled"));
                }
                Ok(())
            }
        };
        yield_now().await;
        result
    }

    fn followup_allowed(&self) -> bool {
        let mut w = self.world.lock().unwrap();
        !w.fault(|f| f.refused)
    }
}

/// What one operator process keeps between reconciles.
#[derive(Default)]
pub struct Process {
    pub claims: Claims,
    pub metrics: Metrics,
    pub config: Config,
    /// Shared by its reconciles, as in production (`Context::accepting`).
    pub accepting: passcode_operator::reconcile::reset::accepting::Accepting,
    /// No notifications in the model: nothing is ever pushed.
    pushed: Pushed,
    delivery: passcode_operator::reconcile::reset::delivery::Delivery,
}

impl Process {
    /// The production shell of this process, on `cluster` and `amapi`.
    pub fn shell<'a, C: Cluster, A: Amapi>(
        &'a self,
        cluster: &'a C,
        amapi: &'a A,
        nonce: &'a (dyn Fn() -> u32 + Send + Sync),
    ) -> Shell<'a, C, A> {
        Shell {
            cluster,
            amapi,
            config: &self.config,
            claims: &self.claims,
            metrics: &self.metrics,
            pushed: &self.pushed,
            delivery: &self.delivery,
            nonce,
            accepting: &self.accepting,
        }
    }
}

/// One reconcile of `reset` by `process`, through the production shell, on the models: AMAPI is
/// the world's, and claim nonces are drawn from the world for the reset's uid, so every command
/// can be traced to its claim.
pub async fn reconcile(
    world: &Shared,
    cluster: &impl Cluster,
    process: &Process,
    reset: Arc<PasscodeReset>,
) -> Result<Option<Duration>, Error> {
    let amapi = SimAmapi {
        world: world.clone(),
    };
    let uid = reset.metadata.uid.clone().unwrap_or_default();
    let nonce = || world.lock().unwrap().nonce(&uid);
    run(reset, &process.shell(cluster, &amapi, &nonce)).await
}
