//! `make bench`: the operator against a real kube-apiserver (v1.20.2 from `hack/control-plane`)
//! and the AMAPI simulator, release build. One JSON object per line on stdout (the machine first,
//! then one per scenario); progress on stderr.
//!
//! Scenarios, in order (name some after `--` to run only those, e.g.
//! `cargo bench --bench operator -- burst ceiling`):
//!
//! - `burst`: 1,000 resets created by a pool of creators; time until all Succeeded, latency,
//!   peak RSS, API-server writes and AMAPI calls per reset.
//! - `ceiling`: a plain kube-rs client doing create + the operator's writes per reset (status
//!   replaces) on as many objects with the operator's concurrency: the most this API server can
//!   take; the ratio burst/ceiling; then the operator's own write mix, alone and with two watches
//!   open (as in `burst`). Each scenario reports the CPU the API server, etcd, the bench and the
//!   operator used.
//! - `steady`: 20 resets/s for 60 s; latency from creation to Succeeded.
//! - `scale`: 10,000 finished resets stored, then a fresh operator: RSS, time to ready, AMAPI
//!   calls on that restart.
//! - `quota`: the simulator enforcing 200 requests per 20 s, demand at twice that; once with
//!   `--amapi-rate` matching the quota and once set too high.
//! - `offline`: AMAPI's quota on a bad day. M fresh resets on online devices on an idle operator;
//!   then N resets on offline devices at once (time until each has a status, time until each
//!   command is out); then AMAPI calls per pending command over a window, and the same M fresh
//!   resets under that load. Default `--amapi-rate` (8/s). N = 200 (`BENCH_OFFLINE_N` for more);
//!   `BENCH_OFFLINE_SETTLE_S` starts the window that long after the wave (660 shows the polling of
//!   long-pending commands), `BENCH_OFFLINE_WINDOW_S` its length (120), and
//!   `BENCH_OFFLINE_NOTIFICATIONS=1` runs the operator with Pub/Sub notifications.

mod support;

#[global_allocator]
static ALLOC: support::CountingAlloc = support::CountingAlloc;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use passcode_operator::api::{PasscodeReset, PasscodeResetStatus, Phase};
use serde_json::{Value, json};

use support::{
    ApiWrites, Counters, Cpu, Finished, OperatorFlags, Readings, Sim, emit, round, server_rss_mib,
    spawn_operator, summary,
};
use testkit::cluster::{ControlPlane, create_namespace};
use testkit::process::Operator;

// Scenario sizes and targets.
const BURST_RESETS: usize = 1_000;
const BURST_CREATORS: usize = 16;
const FAST_FLAGS: OperatorFlags = OperatorFlags {
    amapi_rate: Some(2000.0),
    concurrency: Some(64),
    notifications: false,
};
const STEADY_RATE: f64 = 20.0;
const STEADY_SECONDS: u64 = 60;
const SCALE_RESETS: usize = 10_000;
const SCALE_DEVICES: usize = 1_000;
const SCALE_CREATORS: usize = 32;
const QUOTA_REQUESTS: u32 = 200;
const QUOTA_WINDOW_S: u64 = 20;
const QUOTA_DEMAND_SECONDS: u64 = 30;
const OFFLINE_N: usize = 200;
const OFFLINE_FRESH: usize = 20;
/// How long pending commands' polls are counted.
const OFFLINE_WINDOW_S: u64 = 120;

/// AMAPI calls a reset makes on the happy path (devices.get, issueCommand, operations.get).
const CALLS_PER_RESET: f64 = 3.0;

/// The reads counted in `burst`.
const READS: [&str; 2] = ["GET", "LIST"];
const READ_RESOURCES: [&str; 4] = ["passcoderesets", "configmaps", "namespaces", "secrets"];

/// Watches open in the watched ceiling run: the operator's and the bench's, as in `burst`.
const CEILING_WATCHES: usize = 2;

const TARGET_RATIO: f64 = 0.8;
const TARGET_STEADY_P99_MS: f64 = 1000.0;
const TARGET_SCALE_RSS_MIB: f64 = 40.0;
const TARGET_CALLS_PER_RESET: f64 = 3.0;

const WRITES_METHOD: &str = "delta of the API server's apiserver_request_total (its /metrics) over the scenario, verbs POST/PUT/PATCH/DELETE on passcoderesets (and /status), events and configmaps (the reset records), minus the bench's own creates (one POST per reset); the API server's own lease/endpoint writes are other resources and not counted";

struct Bench {
    cp: ControlPlane,
    admin: Client,
    credentials: PathBuf,
    /// From `burst`, for `ceiling` and `scale`.
    burst: Option<BurstOutcome>,
    /// The operator's RSS when ready with nothing to do (from `burst`).
    idle_rss_mib: Option<f64>,
}

struct BurstOutcome {
    resets_per_s: f64,
    /// Records, finalizer patches, status replaces and Events per reset.
    mix: (usize, usize, usize, usize),
    /// A real finished status, as the operator wrote it.
    status: Value,
}

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    passcode_operator::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let started = Instant::now();
        let cp = support::control_plane().await;
        emit(&json!({
            "machine": support::machine(),
            "kube_apiserver": cp.server_version,
            "build": "release (cargo bench profile)",
        }));
        let admin = cp.admin().await;
        let credentials = cp.dir.join("sa.json");
        let mut bench = Bench {
            cp,
            admin,
            credentials,
            burst: None,
            idle_rss_mib: None,
        };
        progress!("operator logs in {}", support::log_dir().display());
        if run("burst") {
            burst(&mut bench).await;
        }
        if run("ceiling") {
            ceiling(&bench).await;
        }
        if run("steady") {
            steady(&bench).await;
        }
        if run("scale") {
            scale(&bench).await;
        }
        if run("offline") {
            offline(&bench).await;
        }
        if run("quota") {
            quota(
                &bench,
                "matched",
                QUOTA_REQUESTS as f64 / QUOTA_WINDOW_S as f64,
            )
            .await;
            quota(
                &bench,
                "too_high",
                5.0 * QUOTA_REQUESTS as f64 / QUOTA_WINDOW_S as f64,
            )
            .await;
        }
        progress!("done in {:.0} s", started.elapsed().as_secs_f64());
    });
}

// ---------------------------------------------------------------------------------------------
// Creating resets

/// The `offline` scenario's wave (`wave-NNNNN`): resets that may wait a week for their device
/// (`expiresAfter: 168h`, the most allowed), as over a weekend; every other reset, the default.
fn reset_object(name: &str, device: &str) -> PasscodeReset {
    let mut spec = json!({"device": device});
    if name.starts_with("wave-") {
        spec["expiresAfter"] = json!("168h");
    }
    serde_json::from_value(json!({
        "apiVersion": "amapi.passcode-operator.io/v1alpha1",
        "kind": "PasscodeReset",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("a PasscodeReset")
}

/// When each create was sent (this process's clock), and how many failed.
#[derive(Default)]
struct Created {
    /// When each create was sent, and when the API server answered it (the object exists).
    sent: HashMap<String, Instant>,
    answered: HashMap<String, Instant>,
    failed: usize,
}

impl Created {
    fn add(&mut self, result: (String, Instant, bool)) {
        let (name, at, ok) = result;
        if ok {
            self.answered.insert(name.clone(), Instant::now());
            self.sent.insert(name, at);
        } else {
            self.failed += 1;
        }
    }
}

async fn create_one(
    api: Api<PasscodeReset>,
    name: String,
    device: String,
) -> (String, Instant, bool) {
    let at = Instant::now();
    let ok = match api
        .create(&PostParams::default(), &reset_object(&name, &device))
        .await
    {
        Ok(_) => true,
        Err(e) => {
            progress!("create {name}: {}", short(&e.to_string()));
            false
        }
    };
    (name, at, ok)
}

/// As fast as a pool of `creators` concurrent requests goes.
async fn create_pool(
    api: &Api<PasscodeReset>,
    items: Vec<(String, String)>,
    creators: usize,
) -> Created {
    let mut created = Created::default();
    let mut results = futures::stream::iter(items)
        .map(|(name, device)| create_one(api.clone(), name, device))
        .buffer_unordered(creators);
    while let Some(r) = results.next().await {
        created.add(r);
    }
    created
}

/// One create every 1/`rate` s (each on a task of its own, so a slow create does not delay the
/// next).
async fn create_paced(
    api: &Api<PasscodeReset>,
    items: Vec<(String, String)>,
    rate: f64,
) -> Created {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut tasks = Vec::with_capacity(items.len());
    for (name, device) in items {
        tick.tick().await;
        tasks.push(tokio::spawn(create_one(api.clone(), name, device)));
    }
    let mut created = Created::default();
    for t in tasks {
        created.add(t.await.expect("create task"));
    }
    created
}

fn items(sim: &Sim, prefix: &str, n: usize, devices: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("{prefix}-{i:05}"), sim.device(i % devices)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Reading the outcome

/// Phases, latencies from the creator's clock (create sent → watch saw the final phase, ms) and
/// from the object (creationTimestamp → status.completedAt, whole seconds).
struct Outcome {
    phases: BTreeMap<String, usize>,
    reasons: BTreeMap<String, usize>,
    client_ms: Vec<f64>,
    server_s: Vec<f64>,
    /// The last time the watch saw a reset end.
    last_end: Option<Instant>,
    /// One finished status, as written.
    sample_status: Option<Value>,
}

impl Outcome {
    async fn read(api: &Api<PasscodeReset>, created: &Created, finished: &Finished) -> Outcome {
        let list = api.list(&ListParams::default()).await.expect("list resets");
        let mut o = Outcome {
            phases: BTreeMap::new(),
            reasons: BTreeMap::new(),
            client_ms: Vec::new(),
            server_s: Vec::new(),
            last_end: None,
            sample_status: None,
        };
        for r in &list.items {
            let name = r.name_any();
            *o.phases.entry(r.phase().as_str().to_owned()).or_default() += 1;
            let status = r.status.as_ref();
            let reason = status.and_then(|s| s.reason).map_or("none", |r| r.as_str());
            *o.reasons.entry(reason.to_owned()).or_default() += 1;
            if let (Some(created_at), Some(done)) = (
                r.metadata.creation_timestamp.as_ref(),
                status.and_then(|s| s.completed_at.as_ref()),
            ) {
                o.server_s
                    .push(done.0.duration_since(created_at.0).as_secs_f64());
            }
            if let (Some(sent), Some((seen, _))) = (created.sent.get(&name), finished.get(&name)) {
                o.client_ms
                    .push(seen.duration_since(*sent).as_secs_f64() * 1000.0);
                o.last_end = Some(o.last_end.map_or(seen, |l| l.max(seen)));
            }
            if o.sample_status.is_none() && r.phase() == Phase::Succeeded {
                o.sample_status = status.map(|s| serde_json::to_value(s).unwrap());
            }
        }
        o
    }

    fn count(&self, phase: &str) -> usize {
        self.phases.get(phase).copied().unwrap_or(0)
    }
}

/// Waits (bounded) until no reset in the namespace carries a finalizer: the operator drops its
/// finalizer right after the final status, so its writes for a reset end there.
async fn wait_finalizers_gone(api: &Api<PasscodeReset>, within: Duration) {
    let until = Instant::now() + within;
    loop {
        let list = api.list(&ListParams::default()).await.expect("list resets");
        let left = list
            .items
            .iter()
            .filter(|r| !r.finalizers().is_empty())
            .count();
        if left == 0 {
            return;
        }
        if Instant::now() >= until {
            progress!("{left} resets still carry a finalizer after {within:?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// An error message cut to one readable line.
fn short(message: &str) -> String {
    message.chars().take(200).collect()
}

fn per(v: f64, n: usize) -> f64 {
    if n == 0 { 0.0 } else { round(v / n as f64, 2) }
}

// ---------------------------------------------------------------------------------------------
// burst

async fn burst(bench: &mut Bench) {
    let n = BURST_RESETS;
    progress!("burst: {n} resets, {BURST_CREATORS} creators");
    let scenario = Scenario::start(bench, "bench-burst", "Ebenchburst", n, &FAST_FLAGS).await;
    scenario.sim.unlimited().await;
    let (sim, api, op, ready) = (&scenario.sim, &scenario.api, &scenario.op, scenario.ready);
    let idle_rss = op.rss_mib();
    bench.idle_rss_mib = Some(idle_rss);

    let (writes_before, calls_before) = scenario.baseline(&bench.admin).await;
    let reads_before = ApiWrites::read_verbs(&bench.admin, &READS, &READ_RESOURCES).await;
    let cpu_before = op.cpu_seconds();
    let machine_before = Cpu::read(&bench.cp, Some(op.pid()));
    let t0 = Instant::now();
    let created = create_pool(api, items(sim, "burst", n, n), BURST_CREATORS).await;
    let create_s = t0.elapsed().as_secs_f64();
    progress!(
        "burst: {} created in {create_s:.1} s ({} failed)",
        created.sent.len(),
        created.failed
    );
    let all = scenario
        .finished
        .wait_for(created.sent.len(), Duration::from_secs(300), "burst")
        .await;
    let (outcome, writes, calls_after) = scenario
        .settle(&bench.admin, &created, &writes_before)
        .await;
    let calls = calls_after.calls() - calls_before.calls();
    let total_s = outcome
        .last_end
        .map_or(f64::NAN, |l| l.duration_since(t0).as_secs_f64());
    let machine_cpu = Cpu::read(&bench.cp, Some(op.pid())).since(&machine_before, total_s);
    let reads = ApiWrites::read_verbs(&bench.admin, &READS, &READ_RESOURCES)
        .await
        .since(&reads_before);
    let succeeded = outcome.count("Succeeded");
    let resets_per_s = succeeded as f64 / total_s;
    let writes_per_reset = per(writes.total(), created.sent.len());
    let calls_per_reset = per(calls as f64, created.sent.len());
    emit(&json!({
        "scenario": "burst",
        "resets": n,
        "created": created.sent.len(),
        "create_failures": created.failed,
        "succeeded": succeeded,
        "failed": outcome.count("Failed"),
        "all_ended": all,
        "creators": BURST_CREATORS,
        "operator_flags": FAST_FLAGS.to_json(),
        "reset_kind": "clearing (no newPasscode) on ungoverned work-profile devices, one device per reset, syncDelay 0ms, simulator quota off",
        "operator_ready_s": round(ready.as_secs_f64(), 2),
        "create_s": round(create_s, 2),
        "total_s": round(total_s, 2),
        "resets_per_s": round(resets_per_s, 1),
        "latency_client_ms": summary(outcome.client_ms.clone(), 0),
        "latency_client_method": "this process's clock: create request sent -> its watch saw phase Succeeded",
        "latency_server_s": summary(outcome.server_s.clone(), 0),
        "latency_server_method": "status.completedAt - metadata.creationTimestamp; both RFC 3339 with 1 s resolution, so +-1 s",
        "operator_rss_idle_mib": idle_rss,
        "operator_rss_peak_mib": op.peak_rss_mib(),
        "operator_cpu_s": round(op.cpu_seconds() - cpu_before, 2),
        "cpu": machine_cpu,
        "operator_reconciles": op.metric_sum("passcode_operator_reconciles_total", "passcodereset").await,
        "operator_reconcile_errors": op.metric_sum("passcode_operator_reconcile_errors_total", "").await,
        "operator_reconcile_seconds": round(op.metric_sum("passcode_operator_reconcile_duration_seconds_sum", "passcodereset").await, 1),
        "cpu_method": "utime+stime from /proc/PID/stat of the API server, etcd, this bench process (creators, watch, AMAPI simulator) and the operator, from the first create to the last reset's end (until the finalizers are gone)",
        "server_rss_mib": server_rss_mib(&bench.cp),
        "apiserver_writes_per_reset": writes_per_reset,
        "apiserver_writes": writes.by_kind(),
        "apiserver_conflicts_409": writes.conflicts(),
        "apiserver_reads": reads.by_kind(),
        "apiserver_reads_method": "the same delta for GET and LIST (a watch's initial list and the bench's own reads included)",
        "apiserver_writes_method": WRITES_METHOD,
        "amapi_calls_per_reset": calls_per_reset,
        "amapi_calls": calls_after.methods_since(&calls_before),
        "amapi_target_per_reset": TARGET_CALLS_PER_RESET,
        "amapi_meets_target": calls_per_reset <= TARGET_CALLS_PER_RESET,
        "operator_log": op.log_counts(),
    }));
    let each = |verb: &str, what: &str| {
        (writes.count(verb, what) / created.sent.len().max(1) as f64).round() as usize
    };
    bench.burst = Some(BurstOutcome {
        resets_per_s,
        mix: (
            each("POST", "configmaps"),
            each("PATCH", "passcoderesets"),
            each("PUT", "passcoderesets/status"),
            each("POST", "events"),
        ),
        status: outcome.sample_status.unwrap_or_else(synthetic_status),
    });
}

/// A finished status like the operator's, for runs without `burst`.
fn synthetic_status() -> Value {
    let now = jiff::Timestamp::now().to_string();
    json!({
        "observedGeneration": 1,
        "phase": "Succeeded",
        "reason": "PasscodeCleared",
        "message": "The device cleared its passcode.",
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "PasscodeCleared", "message": "The device cleared its passcode.", "observedGeneration": 1, "lastTransitionTime": now},
            {"type": "Reconciling", "status": "False", "reason": "PasscodeCleared", "message": "The device cleared its passcode.", "observedGeneration": 1, "lastTransitionTime": now},
            {"type": "Stalled", "status": "False", "reason": "PasscodeCleared", "message": "The device cleared its passcode.", "observedGeneration": 1, "lastTransitionTime": now},
        ],
        "requirements": [{"rule": "clearingAllowed", "description": "No requirement in force asks for a passcode, so it may be removed.", "met": true}],
        "device": {"managementMode": "PROFILE_OWNER", "state": "ACTIVE", "apiLevel": 34},
        "operation": "enterprises/Ebench/devices/d00000/operations/1700000000000",
        "claimedAt": now, "issuedAt": now, "expiresAt": now, "completedAt": now,
    })
}

// ---------------------------------------------------------------------------------------------
// ceiling

/// One write a ceiling worker makes on its object after creating it.
#[derive(Clone, Copy, Debug)]
enum Write {
    /// PUT .../status with the resourceVersion, a status the size of a real one.
    Status,
    /// A merge patch of metadata.finalizers with the resourceVersion (adds, then removes).
    Finalizer,
    /// POST of an events.k8s.io/v1 Event about the object.
    Event,
    /// POST of a ConfigMap the size of a reset record.
    Record,
}

/// The operator's writes per reset, in its order: the record, the finalizer, then status and
/// Event in turns, then the finalizer off.
fn operator_mix(
    (records, finalizers, statuses, events): (usize, usize, usize, usize),
) -> Vec<Write> {
    let mut plan = vec![Write::Record; records];
    plan.extend(vec![Write::Finalizer; finalizers.div_ceil(2)]);
    for i in 0..statuses.max(events) {
        if i < statuses {
            plan.push(Write::Status);
        }
        if i < events {
            plan.push(Write::Event);
        }
    }
    plan.extend(vec![Write::Finalizer; finalizers / 2]);
    plan
}

/// Creates `n` objects and makes `plan`'s writes on each, `workers` objects at a time, with
/// `watches` watches of the namespace's resets open meanwhile (an operator keeps one, the burst's
/// bench another); returns the seconds taken, the objects that failed and the machine's CPU.
#[allow(clippy::too_many_arguments)]
async fn ceiling_run(
    cp: &ControlPlane,
    client: &Client,
    ns: &str,
    prefix: &str,
    n: usize,
    workers: usize,
    plan: &[Write],
    base: &PasscodeResetStatus,
    watches: usize,
) -> (f64, usize, Value) {
    let api: Api<PasscodeReset> = Api::namespaced(client.clone(), ns);
    let watching: Vec<_> = (0..watches)
        .map(|_| {
            let stream = kube::runtime::watcher(api.clone(), Default::default());
            tokio::spawn(stream.for_each(|_| async {}))
        })
        .collect();
    let cpu_before = Cpu::read(cp, None);
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    let records: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), ns);
    let t0 = Instant::now();
    let mut results = futures::stream::iter(0..n)
        .map(|i| {
            let (api, events, records) = (api.clone(), events.clone(), records.clone());
            async move {
                let name = format!("{prefix}-{i:05}");
                let device = format!("enterprises/Ebench/devices/{}", support::device_id(i));
                let mut obj = api
                    .create(&PostParams::default(), &reset_object(&name, &device))
                    .await?;
                let mut finalizer_on = false;
                for (step, write) in plan.iter().enumerate() {
                    match write {
                        Write::Status => {
                            let mut status = base.clone();
                            status.message = Some(format!("step {step}"));
                            obj.status = Some(status);
                            obj.metadata.managed_fields = None;
                            obj = api
                                .replace_status(&name, &PostParams::default(), &obj)
                                .await?;
                        }
                        Write::Finalizer => {
                            finalizer_on = !finalizer_on;
                            let finalizers: Vec<&str> = if finalizer_on {
                                vec!["bench.passcode-operator.io/ceiling"]
                            } else {
                                vec![]
                            };
                            let patch = json!({"metadata": {
                                "resourceVersion": obj.resource_version(),
                                "finalizers": finalizers,
                            }});
                            obj = api
                                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                                .await?;
                        }
                        Write::Event => {
                            let event = serde_json::from_value(json!({
                                "metadata": {"name": format!("{name}.{step}")},
                                "eventTime": jiff::Timestamp::now().to_string(),
                                "action": "Reconcile",
                                "reason": "Issuing",
                                "note": format!("step {step}"),
                                "type": "Normal",
                                "reportingController": "passcode-operator-bench",
                                "reportingInstance": "bench",
                                "regarding": obj.object_ref(&()),
                            }))
                            .expect("an Event");
                            events.create(&PostParams::default(), &event).await?;
                        }
                        Write::Record => {
                            use passcode_operator::reconcile::reset::record::{record_for, run_of};
                            let run = run_of(
                                &obj,
                                &jiff::Timestamp::now().to_string(),
                                &Default::default(),
                            );
                            let record = record_for(&obj, ns, &[run]);
                            records.create(&PostParams::default(), &record).await?;
                        }
                    }
                }
                Ok::<(), kube::Error>(())
            }
        })
        .buffer_unordered(workers);
    let mut failed = 0usize;
    while let Some(r) = results.next().await {
        if let Err(e) = r {
            failed += 1;
            if failed <= 3 {
                progress!("ceiling: {}", short(&e.to_string()));
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    for w in watching {
        w.abort();
    }
    (secs, failed, Cpu::read(cp, None).since(&cpu_before, secs))
}

async fn ceiling(bench: &Bench) {
    let n = BURST_RESETS;
    let (mix, operator_rate, status) = match &bench.burst {
        Some(b) => (b.mix, Some(b.resets_per_s), b.status.clone()),
        None => ((1, 2, 3, 3), None, synthetic_status()),
    };
    let writes = mix.0 + mix.1 + mix.2 + mix.3;
    let workers = FAST_FLAGS.concurrency.unwrap() as usize;
    let base: PasscodeResetStatus = serde_json::from_value(status).expect("a status");
    let ns = create_namespace(&bench.admin, "bench-ceiling").await;

    progress!("ceiling: {n} objects, create + {writes} status writes each, {workers} workers");
    let plan = vec![Write::Status; writes];
    let (secs, failed, cpu) = ceiling_run(
        &bench.cp,
        &bench.admin,
        &ns,
        "ceiling",
        n,
        workers,
        &plan,
        &base,
        0,
    )
    .await;
    let objects_per_s = (n - failed) as f64 / secs;
    let ratio = operator_rate.map(|r| round(r / objects_per_s, 2));

    let mix_plan = operator_mix(mix);
    progress!("ceiling: again with the operator's own mix {mix_plan:?}");
    let (mix_secs, mix_failed, mix_cpu) = ceiling_run(
        &bench.cp,
        &bench.admin,
        &ns,
        "ceiling-mix",
        n,
        workers,
        &mix_plan,
        &base,
        0,
    )
    .await;
    let mix_per_s = (n - mix_failed) as f64 / mix_secs;
    progress!("ceiling: the same mix with {CEILING_WATCHES} watches of the resets open");
    let (watched_secs, watched_failed, watched_cpu) = ceiling_run(
        &bench.cp,
        &bench.admin,
        &ns,
        "ceiling-watched",
        n,
        workers,
        &mix_plan,
        &base,
        CEILING_WATCHES,
    )
    .await;
    let watched_per_s = (n - watched_failed) as f64 / watched_secs;
    emit(&json!({
        "scenario": "ceiling",
        "objects": n,
        "failures": failed,
        "writes_per_object": 1 + writes,
        "write_kinds": format!("1 create + {writes} status replaces (PUT .../status with the resourceVersion, as the operator writes), status the size of a real finished one"),
        "workers": workers,
        "connection_budget": "one kube-rs Client (HTTP/1.1 keep-alive pool), as many concurrent object chains as the operator's --concurrency",
        "seconds": round(secs, 2),
        "objects_per_s": round(objects_per_s, 1),
        "writes_per_s": round(objects_per_s * (1 + writes) as f64, 0),
        "operator_resets_per_s": operator_rate.map(|r| round(r, 1)),
        "ratio": ratio,
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio.map(|r| r >= TARGET_RATIO),
        "same_mix": {
            "writes": format!("1 create + {mix_plan:?} (record ConfigMap POSTs, finalizer merge patches, status PUTs, events.k8s.io Event POSTs, as counted in burst)"),
            "failures": mix_failed,
            "seconds": round(mix_secs, 2),
            "objects_per_s": round(mix_per_s, 1),
            "ratio": operator_rate.map(|r| round(r / mix_per_s, 2)),
            "cpu": mix_cpu,
        },
        "same_mix_watched": {
            "writes": "as same_mix",
            "watches": format!("{CEILING_WATCHES} watches of the namespace's resets open meanwhile, as in burst (the operator's and the bench's)"),
            "failures": watched_failed,
            "seconds": round(watched_secs, 2),
            "objects_per_s": round(watched_per_s, 1),
            "ratio": operator_rate.map(|r| round(r / watched_per_s, 2)),
            "cpu": watched_cpu,
        },
        "cpu": cpu,
        "cpu_method": "utime+stime from /proc/PID/stat of the API server, etcd and this bench process (the client) over the run",
        "server_rss_mib": server_rss_mib(&bench.cp),
    }));
}

/// One scenario's world: a namespace of its own, a simulator enterprise with a device per reset,
/// a watch of the resets' ends, and the operator on that namespace, ready. The operator is killed
/// and the watch stopped when it is dropped.
struct Scenario {
    sim: Sim,
    api: Api<PasscodeReset>,
    finished: Finished,
    watch: tokio::task::JoinHandle<()>,
    op: Operator,
    /// From spawning the operator to its first 200 from /readyz.
    ready: Duration,
}

impl Scenario {
    async fn start(
        bench: &Bench,
        namespace: &str,
        enterprise: &str,
        devices: usize,
        flags: &OperatorFlags,
    ) -> Scenario {
        let ns = create_namespace(&bench.admin, namespace).await;
        let sim = Sim::start_with(
            &bench.credentials,
            enterprise,
            devices,
            "0ms",
            flags.notifications,
        )
        .await;
        let api: Api<PasscodeReset> = Api::namespaced(bench.admin.clone(), &ns);
        let (finished, watch) = Finished::watch(api.clone());
        let mut op = spawn_operator(&bench.cp, &sim, &bench.credentials, &ns, flags);
        let ready = op.wait_ready(Duration::from_secs(60)).await;
        Scenario {
            sim,
            api,
            finished,
            watch,
            op,
            ready,
        }
    }

    /// The API-server writes and simulator counters the load is measured from.
    async fn baseline(&self, admin: &kube::Client) -> (ApiWrites, Counters) {
        (ApiWrites::read(admin).await, self.sim.counters().await)
    }

    /// What the scenario left once every reset has ended: the outcomes, the API-server writes
    /// (less the bench's own creates) and the simulator's counters.
    async fn settle(
        &self,
        admin: &kube::Client,
        created: &Created,
        writes_before: &ApiWrites,
    ) -> (Outcome, ApiWrites, Counters) {
        wait_finalizers_gone(&self.api, Duration::from_secs(30)).await;
        let outcome = Outcome::read(&self.api, created, &self.finished).await;
        let counters = self.sim.counters().await;
        let writes = ApiWrites::read(admin)
            .await
            .since(writes_before)
            .without_creates((created.sent.len() + created.failed) as f64);
        (outcome, writes, counters)
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        self.watch.abort();
    }
}

// ---------------------------------------------------------------------------------------------
// steady

async fn steady(bench: &Bench) {
    let n = (STEADY_RATE * STEADY_SECONDS as f64) as usize;
    progress!("steady: {STEADY_RATE}/s for {STEADY_SECONDS} s ({n} resets)");
    let scenario = Scenario::start(bench, "bench-steady", "Ebenchsteady", n, &FAST_FLAGS).await;
    scenario.sim.unlimited().await;
    let (sim, api, op) = (&scenario.sim, &scenario.api, &scenario.op);
    let (writes_before, calls_before) = scenario.baseline(&bench.admin).await;
    let t0 = Instant::now();
    let created = create_paced(api, items(sim, "steady", n, n), STEADY_RATE).await;
    let create_s = t0.elapsed().as_secs_f64();
    let all = scenario
        .finished
        .wait_for(created.sent.len(), Duration::from_secs(120), "steady")
        .await;
    let (outcome, writes, calls_after) = scenario
        .settle(&bench.admin, &created, &writes_before)
        .await;
    let client = summary(outcome.client_ms.clone(), 0);
    let p99 = client["p99"].as_f64().unwrap_or(f64::NAN);
    emit(&json!({
        "scenario": "steady",
        "rate_per_s": STEADY_RATE,
        "seconds": STEADY_SECONDS,
        "resets": n,
        "created": created.sent.len(),
        "create_failures": created.failed,
        "achieved_create_rate_per_s": round(created.sent.len() as f64 / create_s, 1),
        "succeeded": outcome.count("Succeeded"),
        "failed": outcome.count("Failed"),
        "all_ended": all,
        "operator_flags": FAST_FLAGS.to_json(),
        "latency_client_ms": client,
        "latency_client_method": "this process's clock: create request sent -> its watch saw phase Succeeded",
        "latency_server_s": summary(outcome.server_s.clone(), 0),
        "latency_server_method": "status.completedAt - metadata.creationTimestamp, 1 s resolution",
        "target_p99_ms": TARGET_STEADY_P99_MS,
        "meets_target": p99 <= TARGET_STEADY_P99_MS,
        "operator_rss_peak_mib": op.peak_rss_mib(),
        "apiserver_writes_per_reset": per(writes.total(), created.sent.len()),
        "amapi_calls_per_reset": per((calls_after.calls() - calls_before.calls()) as f64, created.sent.len()),
        "operator_log": op.log_counts(),
    }));
}

// ---------------------------------------------------------------------------------------------
// scale

async fn scale(bench: &Bench) {
    let n = SCALE_RESETS;
    progress!("scale: storing {n} finished resets ({SCALE_CREATORS} concurrent writers)");
    let ns = create_namespace(&bench.admin, "bench-scale").await;
    let sim = Sim::start(&bench.credentials, "Ebenchscale", SCALE_DEVICES, "0ms").await;
    sim.unlimited().await;
    let api: Api<PasscodeReset> = Api::namespaced(bench.admin.clone(), &ns);
    let status = bench
        .burst
        .as_ref()
        .map_or_else(synthetic_status, |b| b.status.clone());
    let all = items(&sim, "scale", n, SCALE_DEVICES);

    // A quarter first, with a restart, to see how a restart grows with the number stored.
    let quarter = n / 4;
    let mut stored = store_finished(&api, all[..quarter].to_vec(), &status).await;
    let small = restart_probe(bench, &sim, &api, &ns, quarter).await;
    progress!("scale: restart with {quarter} stored: {small}");
    let rest = store_finished(&api, all[quarter..].to_vec(), &status).await;
    stored.add(&rest);
    let (json_bytes, managed_bytes) = object_sizes(&api).await;
    let (decoded, decoded_lean) = decoded_weight(&api).await;
    let big = restart_probe(bench, &sim, &api, &ns, n).await;
    let rss_after = big["rss_3s_after_ready_mib"].as_f64().unwrap_or(f64::NAN);
    let peak = big["rss_peak_mib"].as_f64().unwrap_or(f64::NAN);
    let mut line = json!({
        "scenario": "scale",
        "resets": n,
        "stored": stored.ok,
        "create_failures": stored.create_failures,
        "status_failures": stored.status_failures,
        "create_s": round(stored.create_s, 1),
        "status_write_s": round(stored.status_s, 1),
        "store_method": format!("created by {SCALE_CREATORS} concurrent admin-client writers, then final statuses (a real Succeeded status from burst) written with merge patches on /status; no operator ran meanwhile"),
        "object_json_bytes_avg": json_bytes,
        "managed_fields_json_bytes_avg": managed_bytes,
        "decoded_reset_bytes": decoded,
        "decoded_reset_bytes_without_managed_fields": decoded_lean,
        "decoded_all_mib": round(decoded * n as f64 / 1048576.0, 1),
        "decoded_method": "this process lists every stored reset as the operator's own PasscodeReset type and counts the heap bytes they hold (a counting global allocator), then again with metadata.managedFields dropped",
        "rss_idle_mib": bench.idle_rss_mib,
        "rss_per_reset_kib": bench.idle_rss_mib.map(|idle| round((rss_after - idle) * 1024.0 / n as f64, 1)),
        "target_rss_mib": TARGET_SCALE_RSS_MIB,
        "meets_target": rss_after <= TARGET_SCALE_RSS_MIB && peak <= TARGET_SCALE_RSS_MIB,
        format!("restart_with_{quarter}"): small,
        "server_rss_mib": server_rss_mib(&bench.cp),
    });
    for (k, v) in big.as_object().unwrap() {
        line[k] = v.clone();
    }
    emit(&line);
}

/// Resets stored with a final status.
#[derive(Default)]
struct Stored {
    ok: usize,
    create_failures: usize,
    status_failures: usize,
    create_s: f64,
    status_s: f64,
}

impl Stored {
    fn add(&mut self, other: &Stored) {
        self.ok += other.ok;
        self.create_failures += other.create_failures;
        self.status_failures += other.status_failures;
        self.create_s += other.create_s;
        self.status_s += other.status_s;
    }
}

/// Creates the resets, then writes `status` on each (merge patch on /status).
async fn store_finished(
    api: &Api<PasscodeReset>,
    items: Vec<(String, String)>,
    status: &Value,
) -> Stored {
    let t0 = Instant::now();
    let created = create_pool(api, items, SCALE_CREATORS).await;
    let create_s = t0.elapsed().as_secs_f64();
    progress!(
        "scale: {} created in {create_s:.1} s; writing final statuses",
        created.sent.len()
    );
    let patch = json!({"status": status});
    let t1 = Instant::now();
    let mut names: Vec<String> = created.sent.keys().cloned().collect();
    names.sort();
    let mut results = futures::stream::iter(names)
        .map(|name| {
            let api = api.clone();
            let patch = patch.clone();
            async move {
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
            }
        })
        .buffer_unordered(SCALE_CREATORS);
    let mut stored = Stored {
        create_failures: created.failed,
        create_s,
        ..Default::default()
    };
    while let Some(r) = results.next().await {
        match r {
            Ok(_) => stored.ok += 1,
            Err(e) => {
                stored.status_failures += 1;
                if stored.status_failures <= 3 {
                    progress!("scale: status: {}", short(&e.to_string()));
                }
            }
        }
    }
    stored.status_s = t1.elapsed().as_secs_f64();
    progress!("scale: statuses written in {:.1} s", stored.status_s);
    stored
}

/// A fresh operator (default flags) over `n` stored finished resets: time to ready, RSS, the
/// reconciles (settled resets are never reconciled), AMAPI calls and API-server writes it caused.
async fn restart_probe(
    bench: &Bench,
    sim: &Sim,
    api: &Api<PasscodeReset>,
    ns: &str,
    n: usize,
) -> Value {
    let writes_before = ApiWrites::read(&bench.admin).await;
    let calls_before = sim.counters().await;
    let flags = OperatorFlags {
        amapi_rate: None,
        concurrency: None,
        notifications: false,
    };
    let mut op = spawn_operator(&bench.cp, sim, &bench.credentials, ns, &flags);
    let ready = op.wait_ready(Duration::from_secs(180)).await;
    let rss_ready = op.rss_mib();
    let cpu_ready = op.cpu_seconds();
    // Settled resets never enter the operator's cache, so none is reconciled; anything late (a
    // reconcile, a poll, a write) would show within a few seconds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let reconciled = op
        .metric_sum(
            "passcode_operator_reconciles_total",
            "resource=\"passcodereset\"",
        )
        .await;
    let cpu_sweep = op.cpu_seconds();
    let calls_after = sim.counters().await;
    let writes = ApiWrites::read(&bench.admin).await.since(&writes_before);
    let still_final = api
        .list(&ListParams::default())
        .await
        .map(|l| l.items.iter().filter(|r| r.phase().is_terminal()).count())
        .unwrap_or(0);
    json!({
        "stored": n,
        "operator_flags": flags.to_json(),
        "ready_s": round(ready.as_secs_f64(), 2),
        "ready_method": "operator process spawned -> first 200 from /readyz (polled every 10 ms); ready means both caches synced",
        "rss_at_ready_mib": rss_ready,
        "reconciled_after_start": reconciled,
        "cpu_s_to_ready": round(cpu_ready, 2),
        "cpu_s_3s_after_ready": round(cpu_sweep, 2),
        "rss_3s_after_ready_mib": op.rss_mib(),
        "rss_peak_mib": op.peak_rss_mib(),
        "amapi_calls_on_restart": calls_after.calls() - calls_before.calls(),
        "amapi_calls": calls_after.methods_since(&calls_before),
        "apiserver_writes_on_restart": writes.total(),
        "still_final": still_final,
    })
}

/// Heap bytes one stored reset takes decoded as `PasscodeReset` (what the operator's cache holds),
/// with and without its managedFields.
async fn decoded_weight(api: &Api<PasscodeReset>) -> (f64, f64) {
    let before = support::live_heap_bytes();
    let mut objects: Vec<PasscodeReset> = Vec::new();
    let mut params = ListParams::default().limit(1000);
    for _ in 0..1000 {
        let page = api.list(&params).await.expect("list");
        objects.extend(page.items);
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    objects.shrink_to_fit();
    let n = objects.len().max(1) as f64;
    let with = support::live_heap_bytes().saturating_sub(before) as f64;
    for o in &mut objects {
        o.metadata.managed_fields = None;
    }
    let without = support::live_heap_bytes().saturating_sub(before) as f64;
    drop(objects);
    (round(with / n, 0), round(without / n, 0))
}

/// Average JSON size of a stored reset, and of its managedFields alone (first 200 objects).
async fn object_sizes(api: &Api<PasscodeReset>) -> (f64, f64) {
    let list = api
        .list(&ListParams::default().limit(200))
        .await
        .expect("list");
    let n = list.items.len().max(1) as f64;
    let mut total = 0usize;
    let mut managed = 0usize;
    for r in &list.items {
        total += serde_json::to_vec(r).map_or(0, |v| v.len());
        managed += serde_json::to_vec(&r.metadata.managed_fields).map_or(0, |v| v.len());
    }
    (round(total as f64 / n, 0), round(managed as f64 / n, 0))
}

// ---------------------------------------------------------------------------------------------
// quota

async fn quota(bench: &Bench, variant: &str, amapi_rate: f64) {
    let quota_rate = QUOTA_REQUESTS as f64 / QUOTA_WINDOW_S as f64;
    let demand_calls = 2.0 * quota_rate;
    let reset_rate = demand_calls / CALLS_PER_RESET;
    let n = (reset_rate * QUOTA_DEMAND_SECONDS as f64).round() as usize;
    progress!(
        "quota/{variant}: quota {QUOTA_REQUESTS} per {QUOTA_WINDOW_S} s, --amapi-rate {amapi_rate}, {n} resets at {reset_rate:.2}/s"
    );
    let flags = OperatorFlags {
        amapi_rate: Some(amapi_rate),
        concurrency: None,
        notifications: false,
    };
    let scenario = Scenario::start(
        bench,
        &format!("bench-quota-{}", variant.replace('_', "-")),
        &format!("Ebenchquota{}", variant.replace('_', "")),
        n,
        &flags,
    )
    .await;
    let (sim, api, op) = (&scenario.sim, &scenario.api, &scenario.op);
    sim.put(
        "quota",
        json!({"requests": QUOTA_REQUESTS, "window": format!("{QUOTA_WINDOW_S}s")}),
    )
    .await;
    let (writes_before, before) = scenario.baseline(&bench.admin).await;

    // Admitted calls, sampled every second, to find the busiest window.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        let admin = sim.sim.admin();
        tokio::spawn(async move {
            let mut samples: Vec<(f64, u64)> = Vec::new();
            let t0 = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while !stop.load(Ordering::Relaxed) && samples.len() < 600 {
                tick.tick().await;
                if let Ok(v) = admin.get("counters").await {
                    samples.push((t0.elapsed().as_secs_f64(), Counters(v).admitted()));
                }
            }
            samples
        })
    };
    let t0 = Instant::now();
    let created = create_paced(api, items(sim, "quota", n, n), reset_rate).await;
    let all = scenario
        .finished
        .wait_for(
            created.sent.len(),
            Duration::from_secs(240),
            &format!("quota/{variant}"),
        )
        .await;
    let drain_s = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.await.expect("sampler");
    let (outcome, writes, after) = scenario
        .settle(&bench.admin, &created, &writes_before)
        .await;
    let admitted = after.admitted() - before.admitted();
    let rejected = after.quota_rejected() - before.quota_rejected();
    let busy_s = outcome
        .last_end
        .map_or(drain_s, |l| l.duration_since(t0).as_secs_f64());
    let max_window = max_in_window(&samples, QUOTA_WINDOW_S as f64);
    let limiter_wait = op
        .metric_sum("passcode_operator_amapi_rate_limit_wait_seconds_total", "")
        .await;
    let transitions = op.metrics().await;
    let retrying = support::sum_metric(
        &transitions,
        "passcode_operator_reset_transitions_total",
        "reason=\"Retrying\"",
    );
    emit(&json!({
        "scenario": "quota",
        "variant": variant,
        "quota": {"requests": QUOTA_REQUESTS, "window_s": QUOTA_WINDOW_S, "rate_per_s": quota_rate},
        "operator_flags": flags.to_json(),
        "demand": {"resets": n, "resets_per_s": round(reset_rate, 2), "amapi_calls_per_s": demand_calls, "seconds": QUOTA_DEMAND_SECONDS},
        "created": created.sent.len(),
        "succeeded": outcome.count("Succeeded"),
        "failed": outcome.count("Failed"),
        "all_ended": all,
        "reasons": outcome.reasons,
        "busy_s": round(busy_s, 1),
        "busy_method": "first create sent -> the watch saw the last reset end",
        "amapi_calls_admitted": admitted,
        "admitted_rate_per_s": round(admitted as f64 / busy_s, 2),
        "configured_rate_per_s": quota_rate,
        "max_admitted_in_any_window": max_window,
        "max_admitted_method": format!("simulator counters sampled every 1 s; largest increase over {QUOTA_WINDOW_S} s"),
        "quota_rejected_429": rejected,
        "amapi_calls": after.methods_since(&before),
        "amapi_calls_per_reset": per((after.calls() - before.calls()) as f64, created.sent.len()),
        "operator_rate_limiter_wait_s": round(limiter_wait, 1),
        "retrying_transitions": retrying,
        "latency_client_ms": summary(outcome.client_ms.clone(), 0),
        "apiserver_writes_per_reset": per(writes.total(), created.sent.len()),
        "apiserver_writes": writes.by_kind(),
        "operator_log": op.log_counts(),
    }));
}

/// The largest increase of a sampled counter over any `window` seconds.
fn max_in_window(samples: &[(f64, u64)], window: f64) -> u64 {
    let mut best = 0;
    let mut start = 0;
    for end in 0..samples.len() {
        while samples[end].0 - samples[start].0 > window {
            start += 1;
        }
        best = best.max(samples[end].1 - samples[start].1);
    }
    best
}

// ---------------------------------------------------------------------------------------------
// offline

/// Creates `items` one after the other (so each one's latency is its own) and returns the
/// creation → Succeeded latencies, ms.
async fn fresh_latencies(scenario: &Scenario, items: Vec<(String, String)>) -> Vec<f64> {
    let mut ms = Vec::new();
    for (name, device) in items {
        let (_, sent, ok) = create_one(scenario.api.clone(), name.clone(), device).await;
        if !ok {
            continue;
        }
        let until = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some((seen, _)) = scenario.finished.get(&name) {
                ms.push(seen.duration_since(sent).as_secs_f64() * 1000.0);
                break;
            }
            if Instant::now() > until {
                progress!("offline: {name} not finished in 120 s");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    ms
}

async fn offline(bench: &Bench) {
    let n: usize = std::env::var("BENCH_OFFLINE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(OFFLINE_N);
    let m = OFFLINE_FRESH;
    let env_secs = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    // Long-pending commands are polled on their own schedule only from 10 minutes: a window that
    // shows it starts that long after the wave (BENCH_OFFLINE_SETTLE_S=660).
    let settle_s = env_secs("BENCH_OFFLINE_SETTLE_S", 0);
    let window_len_s = env_secs("BENCH_OFFLINE_WINDOW_S", OFFLINE_WINDOW_S);
    let notifications = std::env::var("BENCH_OFFLINE_NOTIFICATIONS").is_ok_and(|v| v == "1");
    progress!(
        "offline: {n} resets on offline devices, {m} fresh ones before and under that load; notifications {notifications}, settle {settle_s} s, window {window_len_s} s"
    );
    let flags = OperatorFlags {
        amapi_rate: None,
        concurrency: None,
        notifications,
    };
    let devices = n + 2 * m;
    let scenario = Scenario::start(bench, "bench-offline", "Ebenchoffline", devices, &flags).await;
    let (sim, api, op) = (&scenario.sim, &scenario.api, &scenario.op);
    for i in 0..n {
        sim.sim
            .admin()
            .send(
                reqwest::Method::PATCH,
                &format!(
                    "enterprises/Ebenchoffline/devices/{}",
                    support::device_id(i)
                ),
                Some(json!({"online": false})),
            )
            .await
            .expect("an offline device");
    }
    // Fresh resets on an idle operator.
    let idle = fresh_latencies(
        &scenario,
        (0..m)
            .map(|i| (format!("idle-{i:03}"), sim.device(n + i)))
            .collect(),
    )
    .await;

    // The wave: N resets on offline devices at once.
    let before = sim.counters().await;
    let t0 = Instant::now();
    let wave = create_pool(
        api,
        (0..n)
            .map(|i| (format!("wave-{i:05}"), sim.device(i)))
            .collect(),
        16,
    )
    .await;
    // Timed by the scenario's watch (no load of its own on the API server): from the create's
    // answer (the object exists) and from the create being sent, to the first status, and to
    // the status naming the command's operation.
    let deadline = Instant::now() + Duration::from_secs(3600);
    let mut next_report = Instant::now() + Duration::from_secs(30);
    while scenario.finished.issued_count(wave.sent.keys()) < wave.sent.len()
        && Instant::now() < deadline
    {
        if Instant::now() > next_report {
            progress!(
                "offline: {} of {} commands out after {:.0} s",
                scenario.finished.issued_count(wave.sent.keys()),
                wave.sent.len(),
                t0.elapsed().as_secs_f64()
            );
            next_report += Duration::from_secs(30);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let issued_all_s = t0.elapsed().as_secs_f64();
    let since = |from: &HashMap<String, Instant>, seen: &dyn Fn(&str) -> Option<Instant>| {
        from.iter()
            .filter_map(|(name, at)| {
                Some(seen(name)?.saturating_duration_since(*at).as_secs_f64() * 1000.0)
            })
            .collect::<Vec<f64>>()
    };
    let first_status = |n: &str| scenario.finished.first_status(n);
    let issued = |n: &str| scenario.finished.issued(n);
    let status_ms = since(&wave.answered, &first_status);
    let status_from_sent_ms = since(&wave.sent, &first_status);
    let issued_ms = since(&wave.answered, &issued);
    let wave_calls = sim.counters().await;

    // Fresh resets under that load (N commands pending, the last of them past their first 10 s
    // of fresh polls), then the pending commands' polls over a window.
    tokio::time::sleep(
        passcode_operator::reconcile::reset::decide::FRESH_POLLS + Duration::from_secs(2),
    )
    .await;
    let loaded_after_s = t0.elapsed().as_secs_f64() - issued_all_s;
    let loaded = fresh_latencies(
        &scenario,
        (0..m)
            .map(|i| (format!("loaded-{i:03}"), sim.device(n + m + i)))
            .collect(),
    )
    .await;
    let settle = Duration::from_secs(settle_s).saturating_sub(t0.elapsed());
    if !settle.is_zero() {
        progress!(
            "offline: waiting {} s for the commands to age",
            settle.as_secs()
        );
    }
    tokio::time::sleep(settle).await;
    let window_from_wave_s = t0.elapsed().as_secs_f64();
    let window_before = sim.counters().await;
    let window_t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(window_len_s)).await;
    let window_s = window_t0.elapsed().as_secs_f64();
    let after = sim.counters().await;
    let polls = after.methods_since(&window_before)["operations.get"]
        .as_u64()
        .unwrap_or(0);
    let per_pending_per_hour = polls as f64 / n.max(1) as f64 * 3600.0 / window_s;
    let p50 = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        support::percentile(&v, 50.0)
    };
    let (idle_p50, loaded_p50) = (p50(&idle), p50(&loaded));
    emit(&json!({
        "scenario": "offline",
        "operator_flags": flags.to_json(),
        "offline_resets": n,
        "fresh_resets": m,
        "first_status_ms": summary(status_ms.clone(), 0),
        "first_status_from_sent_ms": summary(status_from_sent_ms, 0),
        "first_status_method": "the bench's watch: create answered (the object exists; _from_sent: create sent) -> first event with any status",
        "without_status_after_s": {
            "1": wave.sent.len() - status_ms.iter().filter(|v| **v <= 1000.0).count(),
            "10": wave.sent.len() - status_ms.iter().filter(|v| **v <= 10_000.0).count(),
        },
        "issued_ms": summary(issued_ms, 0),
        "all_issued_s": round(issued_all_s, 1),
        "wave_amapi_calls": wave_calls.methods_since(&before),
        "pending_polls_in_window": polls,
        "window_s": round(window_s, 0),
        "polls_per_pending_command_per_hour": round(per_pending_per_hour, 1),
        "window_starts_after_wave_s": round(window_from_wave_s, 0),
        "polls_method": "operations.get on the simulator over the window, which starts window_starts_after_wave_s after the wave was created (polling: commands under 10 min old every 5-60 s, then every 5 min, 12/h; pushed, once notifications about the enterprise's commands arrive: at 30 s, then every 40 min, 1.5/h)",
        "fresh_idle_ms": summary(idle.clone(), 0),
        "fresh_loaded_ms": summary(loaded.clone(), 0),
        "fresh_loaded_starts_after_all_issued_s": round(loaded_after_s, 0),
        "fresh_loaded_over_idle_p50": if idle_p50 > 0.0 { round(loaded_p50 / idle_p50, 2) } else { 0.0 },
        "quota_rejected_429": after.quota_rejected() - before.quota_rejected(),
        "targets": {"first_status_ms_max": 1000, "fresh_loaded_over_idle_p50_max": 1.5, "polls_per_pending_command_per_hour_max_long_pending": if notifications { 2 } else { 12 }},
        "operator_log": op.log_counts(),
    }));
}
