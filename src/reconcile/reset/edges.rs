//! The two edges a reset's shell talks to, as small traits: the cluster (Kubernetes, its watch
//! cache and a clock) and AMAPI. Production implements them with kube and [`AmapiClient`]; the
//! deterministic simulation (`tests/protocol`) implements them with models, so the code it runs
//! is the production shell and decision.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::events::{Event, Recorder};
use kube::runtime::reflector::Store;
use kube::{Client, Resource, ResourceExt};

use super::cached::SettledOperations;
use super::decide::Read;
use super::decide::{FINALIZER, SecretRead};
use super::record::{self, Match, Recorded};
use crate::admission::seal::{self, Admission, SealKey};
use crate::amapi::model::{Command, Device, Operation};
use crate::amapi::{AmapiClient, AmapiError};
use crate::api::{
    PasscodeReset, PasscodeResetScope, PasscodeResetStatus, WorkProfilePasscodePolicy,
};
use crate::passcode::Passcode;
use crate::reconcile::Error;

/// Kubernetes as the reset shell sees it.
pub trait Cluster: Send + Sync {
    /// Wall-clock time, for statuses and deadlines.
    fn now(&self) -> Timestamp;
    /// Every WorkProfilePasscodePolicy (cached).
    fn policies(&self) -> Vec<Arc<WorkProfilePasscodePolicy>>;
    /// Every PasscodeResetScope that applies to this operator (cached).
    fn scopes(&self) -> Vec<Arc<PasscodeResetScope>>;
    /// The reset's admission records, their seals checked (see `admission::seal`).
    fn admission(&self, reset: &PasscodeReset) -> Admission;
    /// The labels of a namespace (a direct GET).
    fn namespace_labels(
        &self,
        namespace: &str,
    ) -> impl Future<Output = Read<std::collections::BTreeMap<String, String>>> + Send;
    /// The other resets of `reset`'s device, by spec or by claim (cached, so possibly behind).
    fn others(&self, reset: &PasscodeReset) -> Vec<Arc<PasscodeReset>>;
    /// The cached copy of a reset, by uid, if the cache holds it.
    fn cached(&self, namespace: &str, name: &str) -> Option<Arc<PasscodeReset>>;
    /// Operations recorded by finished resets of `device` that left the cache.
    fn settled_operations(&self, device: &str) -> Vec<String>;
    /// A fresh read of the reset (not the cache).
    fn get(
        &self,
        reset: &PasscodeReset,
    ) -> impl Future<Output = Result<Option<PasscodeReset>, Error>> + Send;
    /// Replaces the status, conditional on the resourceVersion `reset` was read at.
    fn replace_status(
        &self,
        reset: &PasscodeReset,
        status: PasscodeResetStatus,
    ) -> impl Future<Output = Result<PasscodeReset, Error>> + Send;
    /// Writes a new reset's first status (see `accepting`), conditional on the resourceVersion.
    fn accept(
        &self,
        reset: &PasscodeReset,
        status: PasscodeResetStatus,
    ) -> impl Future<Output = Result<PasscodeReset, Error>> + Send {
        self.replace_status(reset, status)
    }
    /// Adds or removes the in-flight finalizer, conditional on the resourceVersion.
    fn set_finalizer(
        &self,
        reset: &PasscodeReset,
        present: bool,
    ) -> impl Future<Output = Result<PasscodeReset, Error>> + Send;
    /// A direct GET of one key of one Secret.
    fn read_secret(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> impl Future<Output = SecretRead> + Send;
    /// Deletes a Secret by name, on condition that its uid is `uid` when given (gone already, or
    /// replaced by another of the same name, counts as deleted); why not, otherwise.
    fn delete_secret(
        &self,
        namespace: &str,
        name: &str,
        uid: Option<&str>,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// Adds the reset's run to the record of its name, or finds it (or its twin) there.
    fn record(
        &self,
        reset: &PasscodeReset,
        claimed_at: &str,
    ) -> impl Future<Output = Recorded> + Send;
    /// Removes the reset's run from its record: nothing was sent for it. Best effort.
    fn forget(&self, reset: &PasscodeReset) -> impl Future<Output = ()> + Send;
    /// Publishes an Event about the reset. Best effort.
    fn publish(&self, reset: &PasscodeReset, event: Event) -> impl Future<Output = ()> + Send;
}

/// AMAPI as the reset shell sees it.
pub trait Amapi: Send + Sync {
    fn get_device(&self, name: &str) -> impl Future<Output = Result<Device, AmapiError>> + Send;
    /// `devices.issueCommand`, started no later than `start_by` and given at most `timeout`.
    fn issue_command(
        &self,
        device: &str,
        command: &Command,
        start_by: Timestamp,
        timeout: Duration,
    ) -> impl Future<Output = Result<Operation, AmapiError>> + Send;
    fn get_operation(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Operation, AmapiError>> + Send;
    fn list_operations(
        &self,
        device: &str,
    ) -> impl Future<Output = Result<Vec<Operation>, AmapiError>> + Send;
    fn cancel_operation(&self, name: &str) -> impl Future<Output = Result<(), AmapiError>> + Send;
    /// Whether a follow-up poll of a long-pending command may go now (else: poll later, do not
    /// queue it ahead of work that moves a reset forward).
    fn followup_allowed(&self) -> bool;
    /// Calls waiting for the rate limit, for a first status's message.
    fn waiting(&self) -> usize {
        0
    }
}

impl Amapi for AmapiClient {
    async fn get_device(&self, name: &str) -> Result<Device, AmapiError> {
        AmapiClient::get_device(self, name).await
    }
    async fn issue_command(
        &self,
        device: &str,
        command: &Command,
        start_by: Timestamp,
        timeout: Duration,
    ) -> Result<Operation, AmapiError> {
        // The deadline on this process's monotonic clock, which wall-clock jumps do not move.
        let left = Timestamp::now().duration_until(start_by);
        let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
        let start_by = Instant::now() + left;
        self.issue_command_within(device, command, Some((start_by, timeout)))
            .await
    }
    async fn get_operation(&self, name: &str) -> Result<Operation, AmapiError> {
        AmapiClient::get_operation(self, name).await
    }
    async fn list_operations(&self, device: &str) -> Result<Vec<Operation>, AmapiError> {
        AmapiClient::list_operations(self, device).await
    }
    async fn cancel_operation(&self, name: &str) -> Result<(), AmapiError> {
        AmapiClient::cancel_operation(self, name).await
    }
    fn followup_allowed(&self) -> bool {
        AmapiClient::followup_allowed(self)
    }
    fn waiting(&self) -> usize {
        AmapiClient::waiting(self)
    }
}

/// The cluster through kube: the watch caches, the API server and the Events recorder.
pub struct KubeCluster {
    pub client: Client,
    pub resets: Store<PasscodeReset>,
    pub policies: Store<WorkProfilePasscodePolicy>,
    pub settled_operations: Arc<SettledOperations>,
    /// Where the records of resets are kept (see `record`).
    pub operator_namespace: String,
    pub events: Recorder,
    pub scopes: Store<PasscodeResetScope>,
    /// The admission webhook's seal key; without the webhook no requester is ever known.
    pub seal: Option<SealKey>,
}

impl KubeCluster {
    fn resets_in(&self, namespace: &str) -> Api<PasscodeReset> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// PUT .../status, conditional on the resourceVersion `reset` was read at.
    async fn put_status(
        &self,
        reset: &PasscodeReset,
        status: PasscodeResetStatus,
        failpoint: &str,
    ) -> Result<PasscodeReset, Error> {
        let mut next = reset.clone();
        next.status = Some(status);
        next.metadata.managed_fields = None;
        crate::failpoint::hit(failpoint);
        let api = self.resets_in(&reset.namespace().unwrap_or_default());
        Ok(api
            .replace_status(&reset.name_any(), &PostParams::default(), &next)
            .await?)
    }
}

impl Cluster for KubeCluster {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn policies(&self) -> Vec<Arc<WorkProfilePasscodePolicy>> {
        self.policies.state()
    }

    fn scopes(&self) -> Vec<Arc<PasscodeResetScope>> {
        self.scopes.state()
    }

    fn admission(&self, reset: &PasscodeReset) -> Admission {
        self.seal
            .as_ref()
            .map(|k| seal::read(k, reset))
            .unwrap_or_default()
    }

    async fn namespace_labels(
        &self,
        namespace: &str,
    ) -> Read<std::collections::BTreeMap<String, String>> {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        match api.get_opt(namespace).await {
            Ok(Some(ns)) => Read::Found(ns.metadata.labels.unwrap_or_default()),
            Ok(None) => Read::NotFound,
            Err(kube::Error::Api(s)) if s.is_forbidden() => Read::Denied(s.message.clone()),
            Err(e) => Read::Unavailable(e.to_string()),
        }
    }

    fn others(&self, reset: &PasscodeReset) -> Vec<Arc<PasscodeReset>> {
        let me = (reset.namespace(), reset.name_any());
        self.resets
            .state()
            .into_iter()
            .filter(|r| on_device(r, &reset.spec.device) && (r.namespace(), r.name_any()) != me)
            .collect()
    }

    fn cached(&self, namespace: &str, name: &str) -> Option<Arc<PasscodeReset>> {
        self.resets
            .get(&kube::runtime::reflector::ObjectRef::new(name).within(namespace))
    }

    fn settled_operations(&self, device: &str) -> Vec<String> {
        self.settled_operations.of(device)
    }

    async fn get(&self, reset: &PasscodeReset) -> Result<Option<PasscodeReset>, Error> {
        let api = self.resets_in(&reset.namespace().unwrap_or_default());
        Ok(api.get_opt(&reset.name_any()).await?)
    }

    async fn replace_status(
        &self,
        reset: &PasscodeReset,
        status: PasscodeResetStatus,
    ) -> Result<PasscodeReset, Error> {
        self.put_status(reset, status, "before-status-write").await
    }

    async fn accept(
        &self,
        reset: &PasscodeReset,
        status: PasscodeResetStatus,
    ) -> Result<PasscodeReset, Error> {
        // Not `before-status-write`: its count names the claim, the operation and the end.
        self.put_status(reset, status, "before-first-status-write")
            .await
    }

    async fn set_finalizer(
        &self,
        reset: &PasscodeReset,
        present: bool,
    ) -> Result<PasscodeReset, Error> {
        let mut finalizers: Vec<String> = reset.finalizers().to_vec();
        finalizers.retain(|f| f != FINALIZER);
        if present {
            finalizers.push(FINALIZER.to_owned());
        }
        let patch = serde_json::json!({
            "metadata": {
                "resourceVersion": reset.resource_version(),
                "finalizers": finalizers,
            }
        });
        let api = self.resets_in(&reset.namespace().unwrap_or_default());
        Ok(api
            .patch(
                &reset.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?)
    }

    async fn read_secret(&self, namespace: &str, name: &str, key: &str) -> SecretRead {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(None) => SecretRead::Missing,
            Ok(Some(mut secret)) => {
                let Some(value) = secret.data.as_mut().and_then(|d| d.remove(key)) else {
                    return SecretRead::KeyMissing;
                };
                let uid = secret.metadata.uid.take();
                // Drop every other key's bytes now; keep only this one, zeroized on drop.
                drop(secret);
                match Passcode::from_secret_data(value.0) {
                    Ok(p) => SecretRead::Value(p, uid),
                    Err(e) => SecretRead::Invalid(e),
                }
            }
            Err(kube::Error::Api(s)) if s.is_forbidden() => SecretRead::Denied(s.message.clone()),
            Err(e) => SecretRead::Unavailable(e.to_string()),
        }
    }

    async fn delete_secret(
        &self,
        namespace: &str,
        name: &str,
        uid: Option<&str>,
    ) -> Result<(), String> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let params = DeleteParams {
            preconditions: uid.map(|uid| Preconditions {
                uid: Some(uid.to_owned()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(name, &params).await {
            Ok(_) => Ok(()),
            // Gone, or a different Secret by that name now (the precondition failed): ours is gone.
            Err(kube::Error::Api(s)) if s.is_not_found() || s.is_conflict() => Ok(()),
            Err(kube::Error::Api(s)) if s.is_forbidden() => Err(format!(
                "{} (the operator needs delete on secrets for deleteSecretAfterFinished)",
                s.message
            )),
            Err(e) => Err(describe(&e)),
        }
    }

    async fn record(&self, reset: &PasscodeReset, claimed_at: &str) -> Recorded {
        let ns = &self.operator_namespace;
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        let run = record::run_of(reset, claimed_at, &self.admission(reset));
        let first = record::record_for(reset, ns, std::slice::from_ref(&run));
        let name = first.name_any();
        let unavailable = |e: kube::Error| {
            Recorded::Unavailable(format!(
                "could not write the reset's record, ConfigMap {ns}/{name}: {}",
                describe(&e)
            ))
        };
        // A record changed between two calls sends us round again; a few rounds settle it.
        for _ in 0..4 {
            match api.create(&PostParams::default(), &first).await {
                Ok(_) => return Recorded::Ours,
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return unavailable(e),
            }
            let existing = match api.get_opt(&name).await {
                Ok(Some(cm)) => cm,
                Ok(None) => continue,
                Err(e) => return unavailable(e),
            };
            let Some(runs) = record::runs(&existing) else {
                return Recorded::Unavailable(format!(
                    "ConfigMap {ns}/{name} exists but is not a record of this operator (no label {}); remove or rename it",
                    record::RECORD_LABEL
                ));
            };
            match record::matches(&runs, reset) {
                Match::Ours => return Recorded::Ours,
                Match::Earlier { uid, claimed_at } => {
                    return Recorded::Earlier {
                        uid,
                        claimed_at,
                        record: format!("{ns}/{name}"),
                    };
                }
                Match::Full => {
                    return Recorded::Full {
                        record: format!("{ns}/{name}"),
                    };
                }
                Match::Foreign => unreachable!("runs() answered"),
                Match::Stale => return Recorded::Unavailable(record::STALE_VIEW.to_owned()),
                Match::New | Match::OursStale => {
                    let mut next =
                        record::record_for(reset, ns, &record::with_run(&runs, run.clone()));
                    next.metadata.resource_version = existing.metadata.resource_version.clone();
                    match api.replace(&name, &PostParams::default(), &next).await {
                        Ok(_) => return Recorded::Ours,
                        Err(kube::Error::Api(s)) if s.code == 409 => continue,
                        Err(e) => return unavailable(e),
                    }
                }
            }
        }
        Recorded::Unavailable(format!(
            "ConfigMap {ns}/{name} kept changing while the reset was being recorded"
        ))
    }

    async fn forget(&self, reset: &PasscodeReset) {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.operator_namespace);
        let name = record::record_name(&reset.namespace().unwrap_or_default(), &reset.name_any());
        let uid = reset.uid().unwrap_or_default();
        let cm = match api.get_opt(&name).await {
            Ok(Some(cm)) => cm,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(record = %name, error = %describe(&e), "could not read a reset record");
                return;
            }
        };
        let Some(runs) = record::runs(&cm) else {
            return;
        };
        if !runs.iter().any(|r| r.uid == uid) {
            return;
        }
        let left = record::without_run(&runs, &uid);
        let result = if left.is_empty() {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: cm.metadata.resource_version.clone(),
                    uid: cm.metadata.uid.clone(),
                }),
                ..Default::default()
            };
            api.delete(&name, &params).await.map(|_| ())
        } else {
            let mut next = record::record_for(reset, &self.operator_namespace, &left);
            next.metadata.resource_version = cm.metadata.resource_version.clone();
            api.replace(&name, &PostParams::default(), &next)
                .await
                .map(|_| ())
        };
        if let Err(e) = result {
            tracing::warn!(record = %name, error = %describe(&e), "could not remove a run from a reset record");
        }
    }

    async fn publish(&self, reset: &PasscodeReset, event: Event) {
        if let Err(e) = self.events.publish(&event, &reset.object_ref(&())).await {
            tracing::warn!(error = %e, "could not publish an Event");
        }
    }
}

/// Whether `r` is meant for `device`, or claimed for it (the spec may have been edited since).
pub fn on_device(r: &PasscodeReset, device: &str) -> bool {
    r.spec.device == device
        || r.status
            .as_ref()
            .and_then(|s| s.claimed_command.as_ref())
            .is_some_and(|c| c.device == device)
}

fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.is_forbidden() => format!(
            "{} (the operator needs get, create, update and delete on configmaps in its own namespace)",
            s.message
        ),
        kube::Error::Api(s) if s.is_not_found() => format!(
            "{} (does the operator's namespace exist? Set --operator-namespace)",
            s.message
        ),
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}
