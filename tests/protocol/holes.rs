//! Scripted regressions for holes an adversarial review found by reading the code (each failed
//! before its fix): a claim confirmed by a fresh read, a claim newer than the cache, a deleted
//! reset whose command may still run; and (review1) the Secret deletion of issue14 and the
//! conflict loop, which fail until fixed.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::events::Event;
use passcode_operator::api::{PasscodeReset, PasscodeResetStatus, WorkProfilePasscodePolicy};
use passcode_operator::reconcile::Error;
use passcode_operator::reconcile::reset::claims::{Claims, Written};
use passcode_operator::reconcile::reset::decide::{
    self, Config, Effect, FINALIZER, Inputs, Observed, Read, SecretRead, claim_fingerprint,
};
use passcode_operator::reconcile::reset::edges::Cluster;
use passcode_operator::reconcile::reset::record::Recorded;
use serde_json::json;

use crate::edges::{Cache, Process, SimCluster, key, reconcile};
use crate::world::{CANARY, KEY, SECRET, World};

fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// SimCluster, except that the answer to the first claim write is lost after it commits (an
/// etcd timeout answered 504, a connection reset): the shell records the claim `Written::Unknown`.
struct LoseClaimAnswer {
    inner: SimCluster,
    armed: AtomicBool,
}

impl Cluster for LoseClaimAnswer {
    fn now(&self) -> Timestamp {
        self.inner.now()
    }
    fn policies(&self) -> Vec<Arc<WorkProfilePasscodePolicy>> {
        self.inner.policies()
    }
    fn scopes(&self) -> Vec<Arc<passcode_operator::api::PasscodeResetScope>> {
        self.inner.scopes()
    }
    fn admission(&self, r: &PasscodeReset) -> passcode_operator::admission::Admission {
        self.inner.admission(r)
    }
    async fn namespace_labels(
        &self,
        ns: &str,
    ) -> passcode_operator::reconcile::reset::decide::Read<std::collections::BTreeMap<String, String>>
    {
        self.inner.namespace_labels(ns).await
    }
    fn others(&self, r: &PasscodeReset) -> Vec<Arc<PasscodeReset>> {
        self.inner.others(r)
    }
    fn cached(&self, ns: &str, n: &str) -> Option<Arc<PasscodeReset>> {
        self.inner.cached(ns, n)
    }
    fn settled_operations(&self, d: &str) -> Vec<String> {
        self.inner.settled_operations(d)
    }
    async fn get(&self, r: &PasscodeReset) -> Result<Option<PasscodeReset>, Error> {
        self.inner.get(r).await
    }
    async fn replace_status(
        &self,
        r: &PasscodeReset,
        status: PasscodeResetStatus,
    ) -> Result<PasscodeReset, Error> {
        let is_claim =
            status.claimed_at.is_some() && r.status.as_ref().is_none_or(|s| s.claimed_at.is_none());
        let out = self.inner.replace_status(r, status).await;
        if is_claim && out.is_ok() && self.armed.swap(false, Ordering::SeqCst) {
            return Err(Error::Kube(kube::Error::Service(
                "connection reset; the answer was lost".into(),
            )));
        }
        out
    }
    async fn set_finalizer(&self, r: &PasscodeReset, p: bool) -> Result<PasscodeReset, Error> {
        self.inner.set_finalizer(r, p).await
    }
    async fn read_secret(&self, ns: &str, n: &str, k: &str) -> SecretRead {
        self.inner.read_secret(ns, n, k).await
    }
    async fn delete_secret(&self, ns: &str, n: &str, uid: Option<&str>) -> Result<(), String> {
        self.inner.delete_secret(ns, n, uid).await
    }
    async fn record(&self, r: &PasscodeReset, at: &str) -> Recorded {
        self.inner.record(r, at).await
    }
    async fn forget(&self, r: &PasscodeReset) {
        self.inner.forget(r).await
    }
    async fn publish(&self, r: &PasscodeReset, e: Event) {
        self.inner.publish(r, e).await
    }
}

fn world_with_one_reset() -> (Arc<Mutex<World>>, String) {
    let mut w = World::new(1);
    w.faults_on = false;
    w.devices
        .insert("enterprises/LC01/devices/d1".into(), false);
    w.secrets
        .insert(format!("helpdesk/{SECRET}"), CANARY.into());
    let obj: PasscodeReset = serde_json::from_value(json!({
        "apiVersion": "amapi.passcode-operator.io/v1alpha1",
        "kind": "PasscodeReset",
        "metadata": {"name": "jdoe", "namespace": "helpdesk", "uid": "uid-r",
                     "generation": 1, "resourceVersion": "1",
                     "creationTimestamp": w.now.to_string()},
        "spec": {"device": "enterprises/LC01/devices/d1",
                 "newPasscode": {"secretKeyRef": {"name": SECRET, "key": KEY}}},
    }))
    .unwrap();
    let k = key(&obj);
    w.identities
        .insert("uid-r".into(), (k.clone(), "{}".into()));
    w.resets.insert(k.clone(), obj);
    (Arc::new(Mutex::new(w)), k)
}

/// HOLE A. A claim write whose answer is lost (it committed) leaves the claim `Written::Unknown`.
/// The next reconcile confirms it by a fresh read and sends (`Known::Unsent` -> may_send ->
/// `claims.sending`), but never marks the claim Landed nor ends it. From then on `known` says
/// Nothing (sent) and `in_doubt` says true (Unknown): every reconcile returns
/// `Ok(Some(1s))` before deciding anything. The reset never polls its operation, never ends,
/// never handles its deletion (finalizer stays), and holds its device, for the life of the
/// process (or its leadership term). Two replicas acting at once (the sim) mask it: the other
/// replica finishes the reset.
#[test]
fn a_claim_confirmed_by_a_fresh_read_is_followed_to_its_end() {
    let (world, k) = world_with_one_reset();
    let cache: Cache = Default::default();
    let cluster = LoseClaimAnswer {
        inner: SimCluster {
            world: world.clone(),
            cache: cache.clone(),
        },
        armed: AtomicBool::new(true),
    };
    let process = Process::default();
    let mut history = Vec::new();
    for i in 0..40 {
        // The watch has caught up with everything before each reconcile.
        let obj = {
            let w = world.lock().unwrap();
            let mut c = cache.lock().unwrap();
            c.clear();
            for (kk, o) in &w.resets {
                c.insert(kk.clone(), Arc::new(o.clone()));
            }
            c.get(&k).cloned()
        };
        let Some(obj) = obj else { break };
        let out = block_on(reconcile(&world, &cluster, &process, obj));
        let status = world
            .lock()
            .unwrap()
            .resets
            .get(&k)
            .and_then(|r| r.status.clone());
        history.push(format!(
            "reconcile {i}: {:?} -> {:?}/{:?} op {:?}",
            out.as_ref().map_err(|e| e.to_string()),
            status.as_ref().and_then(|s| s.phase),
            status.as_ref().and_then(|s| s.reason),
            status.as_ref().and_then(|s| s.operation.clone()),
        ));
        let mut w = world.lock().unwrap();
        // Once the command exists, the device comes online and carries it out.
        if !w.ops.is_empty() {
            w.devices.insert("enterprises/LC01/devices/d1".into(), true);
            w.device_acts();
        }
        w.advance(std::time::Duration::from_secs(5));
    }
    let w = world.lock().unwrap();
    let r = w.resets.get(&k).unwrap();
    let done = r.phase().is_terminal();
    println!("{}", history.join("\n"));
    println!(
        "commands: {:?}",
        w.ops.iter().map(|o| (&o.name, o.done)).collect::<Vec<_>>()
    );
    assert!(
        done,
        "the device acted on the reset's only command 40 reconciles (200 s) ago, yet the reset \
         is still {:?}/{:?}:\n{}",
        r.status.as_ref().and_then(|s| s.phase),
        r.status.as_ref().and_then(|s| s.reason),
        history.join("\n")
    );
}

fn reset_obj(name: &str, uid: &str, rv: &str, created: &str) -> PasscodeReset {
    serde_json::from_value(json!({
        "apiVersion": "amapi.passcode-operator.io/v1alpha1",
        "kind": "PasscodeReset",
        "metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": rv,
                     "generation": 1, "creationTimestamp": created},
        "spec": {"device": "enterprises/LC01/devices/d1"},
    }))
    .unwrap()
}

/// HOLE B. `Claims` drops a claim from the device's turn as soon as the cache shows a version
/// other than `based_on`, taking that for "the cache has moved past the write". But `based_on`
/// is the version the shell holds, which is often NEWER than the cache: the shell adds the
/// finalizer (rv 10 -> 11) and claims on 11 in the same reconcile, and the watch may not have
/// delivered 11 yet. With the cache still at 10 (no finalizer, no claim), another reset of the
/// device is told that nobody holds the turn.
#[test]
fn a_landed_claim_newer_than_the_cache_holds_the_turn() {
    let claims = Claims::default();
    // R1 as the shell holds it after its own finalizer patch: rv 11.
    let r1_after_finalizer = reset_obj("r1", "u1", "11", "2026-11-23T10:00:00Z");
    // The watch cache still shows rv 10 (before the finalizer patch): unclaimed.
    let cache_at_10 = |_: &str, n: &str| {
        (n == "r1").then(|| Arc::new(reset_obj("r1", "u1", "10", "2026-11-23T10:00:00Z")))
    };
    assert!(claims.begin(&r1_after_finalizer, "600.000000001s", cache_at_10));
    claims.written(&r1_after_finalizer, Written::Landed("12".into()));
    let r2 = reset_obj("r2", "u2", "20", "2026-11-23T09:00:00Z");
    assert_eq!(
        claims.holder(&r2, cache_at_10),
        Some("ns/r1".to_owned()),
        "r1's claim landed at rv 12 and the cache (rv 10) does not show it, yet r1 holds no turn"
    );
}

/// HOLE C. Deleting a reset whose command may be in flight (claimed, issueCommand answer lost,
/// not listed yet, or operations.list unavailable) removes the finalizer at once: nothing is
/// cancelled, and the device's turn is released while the command may still appear. README step
/// 10 says the reset keeps its device's turn until its command is cancelled.
#[test]
fn deleting_a_claim_in_doubt_keeps_looking_before_letting_go() {
    let now: Timestamp = "2026-11-23T10:00:10Z".parse().unwrap();
    let mut r = reset_obj("r1", "u1", "11", "2026-11-23T10:00:00Z");
    r.metadata.finalizers = Some(vec![FINALIZER.into()]);
    r.metadata.deletion_timestamp = Some(Time(now));
    r.status = Some(PasscodeResetStatus {
        phase: Some(passcode_operator::api::Phase::Pending),
        reason: Some(passcode_operator::api::Reason::Issuing),
        claimed_at: Some(Time(now - SignedDuration::from_secs(2))),
        claimed_command: Some(passcode_operator::api::ClaimedCommand {
            device: "enterprises/LC01/devices/d1".into(),
            new_passcode: false,
            lock_now: false,
            require_entry: false,
            duration: claim_fingerprint(600, 42),
            ..Default::default()
        }),
        observed_generation: Some(1),
        ..Default::default()
    });
    for listing in [Read::Found(vec![]), Read::Unavailable("503".into())] {
        let inputs = Inputs {
            operations: Some(listing.clone()),
            ..Default::default()
        };
        let d = decide::decide(&Observed {
            reset: &r,
            now,
            config: &Config::default(),
            policies: &[],
            others: &[],
            inputs: &inputs,
        });
        assert_ne!(
            d.effect,
            Some(Effect::RemoveFinalizer),
            "claimed 2 s ago, command not listed ({listing:?}): the finalizer goes, the device is free"
        );
    }
}

/// `deleteSecretAfterFinished`: the Secret goes only once the reset is final, after its one
/// command, and the deletion is recorded; a failed deletion is tried again (faults are off here,
/// so the first attempt works).
#[test]
fn a_secret_asked_to_be_deleted_goes_only_after_the_end() {
    let (world, k) = world_with_one_reset();
    {
        let mut w = world.lock().unwrap();
        let r = w.resets.get_mut(&k).unwrap();
        r.spec
            .new_passcode
            .as_mut()
            .unwrap()
            .delete_secret_after_finished = true;
    }
    let cache: Cache = Default::default();
    let cluster = SimCluster {
        world: world.clone(),
        cache: cache.clone(),
    };
    let process = Process::default();
    let secret = format!("helpdesk/{SECRET}");
    for _ in 0..40 {
        let obj = {
            let w = world.lock().unwrap();
            let mut c = cache.lock().unwrap();
            c.clear();
            for (kk, o) in &w.resets {
                c.insert(kk.clone(), Arc::new(o.clone()));
            }
            c.get(&k).cloned()
        };
        let Some(obj) = obj else { break };
        block_on(reconcile(&world, &cluster, &process, obj)).unwrap();
        let mut w = world.lock().unwrap();
        let r = w.resets.get(&k).unwrap();
        assert!(
            w.secrets.contains_key(&secret) || r.phase().is_terminal(),
            "the Secret was deleted before the reset ended: {:?}",
            r.status
        );
        if r.status
            .as_ref()
            .is_some_and(|s| s.secret_deleted_at.is_some())
        {
            break;
        }
        if !w.ops.is_empty() {
            w.devices.insert("enterprises/LC01/devices/d1".into(), true);
            w.device_acts();
        }
        w.advance(std::time::Duration::from_secs(5));
    }
    let w = world.lock().unwrap();
    let status = w.resets.get(&k).unwrap().status.clone().unwrap();
    assert_eq!(
        status.reason,
        Some(passcode_operator::api::Reason::PasscodeReset)
    );
    assert!(status.secret_deleted_at.is_some(), "{status:?}");
    assert!(
        !w.secrets.contains_key(&secret),
        "the Secret is still there"
    );
    assert_eq!(w.ops.len(), 1, "one command");
    assert!(w.trace.iter().any(|t| t.starts_with("delete secret")));
}

/// SimCluster with scripted twists for the reviews below: Secret deletions that fail (or whose
/// answer is lost after the Secret went), and a metadata write by someone else (Argo CD's
/// tracking annotation, `kubectl label`) that bumps the reset's resourceVersion, without its
/// generation, right before the first status write after issueCommand.
#[derive(Default)]
struct Twists {
    /// Fail this many Secret deletions, doing nothing.
    fail_deletes: std::sync::atomic::AtomicUsize,
    /// Lose the answer to this many Secret deletions, after the Secret went.
    lose_deletes: std::sync::atomic::AtomicUsize,
    /// Set by the AMAPI wrapper once issueCommand was called.
    issued: AtomicBool,
    /// Bump the resourceVersion once, before the first status write after issueCommand.
    bump_after_issue: AtomicBool,
}

struct Twisted {
    inner: SimCluster,
    twists: Arc<Twists>,
}

impl Cluster for Twisted {
    fn now(&self) -> Timestamp {
        self.inner.now()
    }
    fn scopes(&self) -> Vec<Arc<passcode_operator::api::PasscodeResetScope>> {
        self.inner.scopes()
    }
    fn admission(&self, r: &PasscodeReset) -> passcode_operator::admission::seal::Admission {
        self.inner.admission(r)
    }
    async fn namespace_labels(
        &self,
        ns: &str,
    ) -> passcode_operator::reconcile::reset::decide::Read<std::collections::BTreeMap<String, String>>
    {
        self.inner.namespace_labels(ns).await
    }
    fn policies(&self) -> Vec<Arc<WorkProfilePasscodePolicy>> {
        self.inner.policies()
    }
    fn others(&self, r: &PasscodeReset) -> Vec<Arc<PasscodeReset>> {
        self.inner.others(r)
    }
    fn cached(&self, ns: &str, n: &str) -> Option<Arc<PasscodeReset>> {
        self.inner.cached(ns, n)
    }
    fn settled_operations(&self, d: &str) -> Vec<String> {
        self.inner.settled_operations(d)
    }
    async fn get(&self, r: &PasscodeReset) -> Result<Option<PasscodeReset>, Error> {
        self.inner.get(r).await
    }
    async fn replace_status(
        &self,
        r: &PasscodeReset,
        status: PasscodeResetStatus,
    ) -> Result<PasscodeReset, Error> {
        if self.twists.issued.load(Ordering::SeqCst)
            && self.twists.bump_after_issue.swap(false, Ordering::SeqCst)
        {
            let mut w = self.inner.world.lock().unwrap();
            let rv = w.rv();
            let stored = w.resets.get_mut(&key(r)).unwrap();
            stored
                .metadata
                .annotations
                .get_or_insert_default()
                .insert("argocd.argoproj.io/tracking-id".into(), "x".into());
            stored.metadata.resource_version = Some(rv);
            w.trace.push("someone annotates the reset".into());
        }
        self.inner.replace_status(r, status).await
    }
    async fn set_finalizer(&self, r: &PasscodeReset, p: bool) -> Result<PasscodeReset, Error> {
        self.inner.set_finalizer(r, p).await
    }
    async fn read_secret(&self, ns: &str, n: &str, k: &str) -> SecretRead {
        self.inner.read_secret(ns, n, k).await
    }
    async fn delete_secret(&self, ns: &str, n: &str, uid: Option<&str>) -> Result<(), String> {
        let take = |c: &std::sync::atomic::AtomicUsize| {
            c.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
                .is_ok()
        };
        if take(&self.twists.fail_deletes) {
            return Err("secrets is forbidden: cannot delete".into());
        }
        let out = self.inner.delete_secret(ns, n, uid).await;
        if take(&self.twists.lose_deletes) {
            return Err("the answer was lost".into());
        }
        out
    }
    async fn record(&self, r: &PasscodeReset, at: &str) -> Recorded {
        self.inner.record(r, at).await
    }
    async fn forget(&self, r: &PasscodeReset) {
        self.inner.forget(r).await
    }
    async fn publish(&self, r: &PasscodeReset, e: Event) {
        self.inner.publish(r, e).await
    }
}

/// [`world_with_one_reset`] asking for its Secret to be deleted after the end.
fn world_deleting_its_secret() -> (Arc<Mutex<World>>, String) {
    let (world, k) = world_with_one_reset();
    world
        .lock()
        .unwrap()
        .resets
        .get_mut(&k)
        .unwrap()
        .spec
        .new_passcode
        .as_mut()
        .unwrap()
        .delete_secret_after_finished = true;
    (world, k)
}

/// Reconciles `k` with an up-to-date cache until `stop` holds or `rounds` run out; the device
/// carries out any command. Returns the last outcome.
fn drive(
    world: &Arc<Mutex<World>>,
    cluster: &impl Cluster,
    cache: &Cache,
    process: &Process,
    k: &str,
    rounds: usize,
    stop: impl Fn(&World) -> bool,
) {
    for _ in 0..rounds {
        let obj = {
            let w = world.lock().unwrap();
            if stop(&w) {
                return;
            }
            let mut c = cache.lock().unwrap();
            c.clear();
            for (kk, o) in &w.resets {
                c.insert(kk.clone(), Arc::new(o.clone()));
            }
            c.get(k).cloned()
        };
        let Some(obj) = obj else { return };
        let _ = block_on(reconcile(world, cluster, process, obj));
        let mut w = world.lock().unwrap();
        if !w.ops.is_empty() {
            w.devices.insert("enterprises/LC01/devices/d1".into(), true);
            w.device_acts();
        }
        w.advance(std::time::Duration::from_secs(5));
    }
}

fn finished(w: &World, k: &str) -> bool {
    w.resets.get(k).is_some_and(|r| r.phase().is_terminal())
}

/// REVIEW (issue14). The first deletion of a finished reset's Secret goes through but its answer
/// is lost (or it is refused, and the user deletes the Secret by hand); the help desk then
/// creates a new Secret with the same name (the README's `jdoe-passcode`) for the next reset.
/// The finished reset's retry deletes it by name: a Secret it never read, holding another
/// reset's passcode (which then waits for its Secret). The deletion needs a uid precondition.
#[test]
fn a_retried_secret_deletion_leaves_a_recreated_secret_alone() {
    let (world, k) = world_deleting_its_secret();
    let cache: Cache = Default::default();
    let twists = Arc::new(Twists::default());
    twists.lose_deletes.store(1, Ordering::SeqCst);
    let cluster = Twisted {
        inner: SimCluster {
            world: world.clone(),
            cache: cache.clone(),
        },
        twists: twists.clone(),
    };
    let process = Process::default();
    let secret = format!("helpdesk/{SECRET}");
    drive(&world, &cluster, &cache, &process, &k, 40, |w| {
        finished(w, &k) && !w.secrets.contains_key(&secret)
    });
    {
        let mut w = world.lock().unwrap();
        let s = w.resets.get(&k).unwrap().status.clone().unwrap();
        assert_eq!(
            s.reason,
            Some(passcode_operator::api::Reason::PasscodeReset)
        );
        assert!(s.secret_deleted_at.is_none(), "the lost answer is retried");
        // The help desk's next reset, with a new Secret of the same name.
        w.secrets
            .insert(secret.clone(), "another reset's passcode".into());
    }
    drive(&world, &cluster, &cache, &process, &k, 40, |w| {
        w.resets
            .get(&k)
            .and_then(|r| r.status.as_ref())
            .is_some_and(|s| s.secret_deleted_at.is_some())
    });
    assert!(
        world.lock().unwrap().secrets.contains_key(&secret),
        "the finished reset deleted a Secret created after its own was gone"
    );
}

/// REVIEW (issue14). The finalizer is dropped before the Secret is deleted, and a failed deletion
/// is retried without one: a finished reset deleted meanwhile (a GitOps prune, `kubectl delete`,
/// a cleanup job) goes at once and nobody deletes its Secret. The passcode stays readable for
/// good, while `deleteSecretAfterFinished` promised otherwise.
#[test]
fn a_finished_reset_deleted_before_its_secret_still_deletes_it() {
    let (world, k) = world_deleting_its_secret();
    let cache: Cache = Default::default();
    let twists = Arc::new(Twists::default());
    // Refused while RBAC lacks `delete` on secrets (the README's own example of a failure).
    twists.fail_deletes.store(usize::MAX, Ordering::SeqCst);
    let cluster = Twisted {
        inner: SimCluster {
            world: world.clone(),
            cache: cache.clone(),
        },
        twists: twists.clone(),
    };
    let process = Process::default();
    let secret = format!("helpdesk/{SECRET}");
    drive(&world, &cluster, &cache, &process, &k, 40, |w| {
        finished(w, &k)
    });
    drive(&world, &cluster, &cache, &process, &k, 3, |_| false);
    // RBAC is fixed.
    twists.fail_deletes.store(0, Ordering::SeqCst);
    {
        let mut w = world.lock().unwrap();
        let r = w.resets.get(&k).unwrap();
        assert!(r.phase().is_terminal() && r.status.as_ref().unwrap().secret_deleted_at.is_none());
        // The user deletes the finished reset: no finalizer is left, so it goes at once.
        let has_finalizer = r
            .metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| !f.is_empty());
        if has_finalizer {
            let now = w.now;
            let o = w.resets.get_mut(&k).unwrap();
            o.metadata.deletion_timestamp = Some(Time(now));
        } else {
            w.resets.remove(&k);
        }
    }
    drive(&world, &cluster, &cache, &process, &k, 40, |w| {
        !w.secrets.contains_key(&secret)
    });
    assert!(
        !world.lock().unwrap().secrets.contains_key(&secret),
        "the reset is gone and the Secret holding its passcode is still readable"
    );
}

/// SimAmapi, except that issueCommand is refused with a 403 (the enterprise's service account
/// lost its role, say), and the twists are told it was called.
struct RefusingAmapi {
    inner: crate::edges::SimAmapi,
    twists: Arc<Twists>,
}

impl passcode_operator::reconcile::reset::edges::Amapi for RefusingAmapi {
    async fn get_device(
        &self,
        name: &str,
    ) -> Result<passcode_operator::amapi::model::Device, passcode_operator::amapi::AmapiError> {
        self.inner.get_device(name).await
    }
    async fn issue_command(
        &self,
        _device: &str,
        _command: &passcode_operator::amapi::model::Command,
        _start_by: Timestamp,
        _timeout: std::time::Duration,
    ) -> Result<passcode_operator::amapi::model::Operation, passcode_operator::amapi::AmapiError>
    {
        self.twists.issued.store(true, Ordering::SeqCst);
        Err(passcode_operator::amapi::AmapiError::Terminal {
            method: "devices.issueCommand",
            status: 403,
            rpc_status: Some("PERMISSION_DENIED".into()),
            message: "The caller does not have permission".into(),
        })
    }
    async fn get_operation(
        &self,
        name: &str,
    ) -> Result<passcode_operator::amapi::model::Operation, passcode_operator::amapi::AmapiError>
    {
        self.inner.get_operation(name).await
    }
    async fn list_operations(
        &self,
        device: &str,
    ) -> Result<Vec<passcode_operator::amapi::model::Operation>, passcode_operator::amapi::AmapiError>
    {
        self.inner.list_operations(device).await
    }
    async fn cancel_operation(
        &self,
        name: &str,
    ) -> Result<(), passcode_operator::amapi::AmapiError> {
        self.inner.cancel_operation(name).await
    }
    fn followup_allowed(&self) -> bool {
        self.inner.followup_allowed()
    }
}

/// REVIEW (conflict loop). issueCommand is refused (403: certainly no command). Before the final
/// status (`PermissionDenied`) is written, someone annotates the reset (Argo CD, `kubectl
/// label`): the write conflicts, and the loop starts over from a fresh read with nothing of
/// AMAPI's answer carried (`inputs.issued` is dropped once anything was sent). The claim is
/// `Known::Sent`, so the reset searches the device for a command that AMAPI refused, for the
/// whole adoption window, and ends `OutcomeUnknown` ("the answer to issueCommand was lost ...
/// check the device") instead of the precise reason. Safe (nothing is sent twice), but the
/// answer was in hand: the loop should carry `issued` while the fresh reset shows the same claim
/// without an operation.
#[test]
fn a_refused_command_whose_final_write_conflicts_keeps_its_reason() {
    let (world, k) = world_with_one_reset();
    let cache: Cache = Default::default();
    let twists = Arc::new(Twists::default());
    twists.bump_after_issue.store(true, Ordering::SeqCst);
    let cluster = Twisted {
        inner: SimCluster {
            world: world.clone(),
            cache: cache.clone(),
        },
        twists: twists.clone(),
    };
    let amapi = RefusingAmapi {
        inner: crate::edges::SimAmapi {
            world: world.clone(),
        },
        twists: twists.clone(),
    };
    let process = Process::default();
    let nonce = || 4242u32;
    let shell = process.shell(&cluster, &amapi, &nonce);
    for _ in 0..60 {
        let obj = {
            let w = world.lock().unwrap();
            if finished(&w, &k) {
                break;
            }
            let mut c = cache.lock().unwrap();
            c.clear();
            for (kk, o) in &w.resets {
                c.insert(kk.clone(), Arc::new(o.clone()));
            }
            c.get(&k).cloned().unwrap()
        };
        let _ = block_on(passcode_operator::reconcile::reset::run(obj, &shell));
        world
            .lock()
            .unwrap()
            .advance(std::time::Duration::from_secs(5));
    }
    let w = world.lock().unwrap();
    let s = w.resets.get(&k).unwrap().status.clone().unwrap();
    assert!(w.ops.is_empty());
    assert_eq!(
        s.reason,
        Some(passcode_operator::api::Reason::PermissionDenied),
        "{:?}",
        s.message
    );
}

/// Review regression. The acceptor's first status lands (kept in `Accepting::landed`); before
/// the acceptor's scan sees the cache show a status (it samples every 50 ms, behind the watch), a
/// user clears the status through the status subresource. The cache then shows the reset without
/// a status at a newer version, so the scan keeps the landed object for as long as it stays so.
/// Every reconcile swaps its (newer) view for that older landed object: each write conflicts, the
/// fresh read shows no status, and the swap happens again (3 rounds, then a 200 ms requeue, each
/// spending a devices.get); the acceptor will not write either (`acceptor_begins` refused while
/// something landed). The reset stays without a status, for good.
#[test]
fn a_first_status_cleared_before_the_scan_saw_it_is_written_again() {
    let (world, k) = world_with_one_reset();
    let cache: Cache = Default::default();
    let cluster = SimCluster {
        world: world.clone(),
        cache: cache.clone(),
    };
    let amapi = crate::edges::SimAmapi {
        world: world.clone(),
    };
    let process = Process::default();
    let accepting = &process.accepting;
    let nonce = || 4242u32;
    let shell = process.shell(&cluster, &amapi, &nonce);
    // The cache as the watch shows it, and the acceptor's scan and write, as in
    // `controller::accept_new_resets`.
    let refresh = || {
        let w = world.lock().unwrap();
        let mut c = cache.lock().unwrap();
        c.clear();
        for (kk, o) in &w.resets {
            c.insert(kk.clone(), Arc::new(o.clone()));
        }
        let still: Vec<String> = c
            .values()
            .filter(|r| r.status.is_none() && r.metadata.deletion_timestamp.is_none())
            .filter_map(|r| r.metadata.uid.clone())
            .collect();
        accepting.retain(|u| still.iter().any(|s| s == u));
        c.get(&k).cloned().unwrap()
    };
    let acceptor = |r: &PasscodeReset| {
        if r.status.is_some() {
            return;
        }
        let version = r.metadata.resource_version.clone().unwrap_or_default();
        let Some(writing) = accepting.acceptor_begins("uid-r", &version) else {
            return;
        };
        let now = world.lock().unwrap().now;
        if let Ok(landed) = block_on(cluster.replace_status(r, decide::accepted(r, now, 0))) {
            writing.landed(&landed);
        }
    };
    let first = refresh();
    // The acceptor's write lands; the watch has not delivered it yet.
    acceptor(&first);
    // A user clears the status (`kubectl patch --subresource=status`).
    {
        let mut w = world.lock().unwrap();
        let rv = w.rv();
        let r = w.resets.get_mut(&k).unwrap();
        assert!(r.status.is_some(), "the acceptor's write landed");
        r.status = None;
        r.metadata.resource_version = Some(rv);
    }
    for _ in 0..20 {
        let obj = refresh();
        if obj.status.is_some() {
            break;
        }
        acceptor(&obj);
        let _ = block_on(passcode_operator::reconcile::reset::run(obj, &shell));
        world
            .lock()
            .unwrap()
            .advance(std::time::Duration::from_secs(1));
    }
    let w = world.lock().unwrap();
    assert!(
        w.resets.get(&k).unwrap().status.is_some(),
        "20 reconciles and acceptor passes later the reset still has no status"
    );
}
