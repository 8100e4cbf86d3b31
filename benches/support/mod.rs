//! What the benchmark scenarios add to the test kit (`testkit`): a control plane of their own
//! (its directory is named `passcode-operator-bench-PID`, so `hack/no-strays` of a concurrent
//! `make test` never takes it for a stray test), the AMAPI simulator in this process with a fleet
//! of numbered devices, the operator binary as a child process with the bench's flags, and
//! readings from `/proc`, the API server's `/metrics` and the simulator's counters.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use passcode_operator::api::{PasscodeReset, Phase};
use passcode_operator::simulator::Simulator;
use serde_json::{Value, json};
use testkit::cluster::ControlPlane;
use testkit::process::{Launch, Operator};

/// Progress goes to stderr; stdout carries only the JSON lines.
#[macro_export]
macro_rules! progress {
    ($($arg:tt)*) => { eprintln!("[bench] {}", format!($($arg)*)) };
}

/// The bench's control plane.
pub async fn control_plane() -> ControlPlane {
    ControlPlane::start("passcode-operator-bench").await
}

/// Resident memory of kube-apiserver and etcd, MiB.
pub fn server_rss_mib(cp: &ControlPlane) -> Value {
    let rss = |name| {
        cp.pid(name)
            .and_then(|pid| proc_status_kib(pid, "VmRSS"))
            .map(kib_to_mib)
    };
    json!({"apiserver": rss("apiserver"), "etcd": rss("etcd")})
}

/// CPU seconds used so far by the processes that share the machine: the API server, etcd, this
/// bench process (the load generator, its watch and the AMAPI simulator) and the operator.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cpu {
    apiserver: f64,
    etcd: f64,
    bench: f64,
    operator: f64,
}

impl Cpu {
    pub fn read(cp: &ControlPlane, operator: Option<u32>) -> Cpu {
        let of = |pid: Option<u32>| pid.and_then(cpu_seconds).unwrap_or(0.0);
        Cpu {
            apiserver: of(cp.pid("apiserver")),
            etcd: of(cp.pid("etcd")),
            bench: of(Some(std::process::id())),
            operator: of(operator),
        }
    }

    /// CPU seconds since `before`, per process, and what they add up to per wall-clock second
    /// (2.0 is both cores busy).
    pub fn since(&self, before: &Cpu, seconds: f64) -> Value {
        let d = |a: f64, b: f64| round(a - b, 1);
        let total = (self.apiserver - before.apiserver)
            + (self.etcd - before.etcd)
            + (self.bench - before.bench)
            + (self.operator - before.operator);
        json!({
            "apiserver_s": d(self.apiserver, before.apiserver),
            "etcd_s": d(self.etcd, before.etcd),
            "bench_s": d(self.bench, before.bench),
            "operator_s": d(self.operator, before.operator),
            "cores_busy": round(total / seconds.max(0.001), 2),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Writes seen by the API server

/// `apiserver_request_total` of the write verbs, by `VERB resource[/subresource] code`.
#[derive(Clone, Debug, Default)]
pub struct ApiWrites(BTreeMap<(String, String, String), f64>);

/// The resources the operator writes: its own kind, Events and the reset records (ConfigMaps).
/// Other writes (the API server's own leases and endpoints, written through its loopback client)
/// are left out; nothing else writes ConfigMaps on the bench's control plane.
const COUNTED: [&str; 3] = ["passcoderesets", "events", "configmaps"];

impl ApiWrites {
    pub async fn read(client: &Client) -> ApiWrites {
        Self::read_verbs(client, &["POST", "PUT", "PATCH", "DELETE"], &COUNTED).await
    }

    /// The same count for other verbs and resources (the reads: `GET`, `LIST`).
    pub async fn read_verbs(client: &Client, verbs: &[&str], resources: &[&str]) -> ApiWrites {
        let req = http::Request::get("/metrics").body(Vec::new()).unwrap();
        let text = client.request_text(req).await.expect("apiserver /metrics");
        let mut map = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
                continue;
            };
            let Some((labels, value)) = rest.rsplit_once("} ") else {
                continue;
            };
            let label = |key: &str| {
                let pat = format!("{key}=\"");
                labels
                    .split(',')
                    .find_map(|l| l.strip_prefix(&pat))
                    .map(|v| v.trim_end_matches('"').to_owned())
                    .unwrap_or_default()
            };
            let verb = label("verb");
            if !verbs.contains(&verb.as_str()) {
                continue;
            }
            let resource = label("resource");
            if !resources.contains(&resource.as_str()) {
                continue;
            }
            let sub = label("subresource");
            let what = if sub.is_empty() {
                resource
            } else {
                format!("{resource}/{sub}")
            };
            let v: f64 = value.trim().parse().unwrap_or(0.0);
            *map.entry((verb, what, label("code"))).or_default() += v;
        }
        ApiWrites(map)
    }

    /// What happened between `before` and `self`.
    pub fn since(&self, before: &ApiWrites) -> ApiWrites {
        let mut map = BTreeMap::new();
        for (k, v) in &self.0 {
            let d = v - before.0.get(k).copied().unwrap_or(0.0);
            if d > 0.0 {
                map.insert(k.clone(), d);
            }
        }
        ApiWrites(map)
    }

    pub fn total(&self) -> f64 {
        self.0.values().fold(0.0, |sum, v| sum + v)
    }

    /// Writes of one verb on one resource (`passcoderesets/status`), any code.
    pub fn count(&self, verb: &str, what: &str) -> f64 {
        self.0
            .iter()
            .filter(|((v, w, _), _)| v == verb && w == what)
            .fold(0.0, |sum, (_, n)| sum + n)
    }

    /// Writes answered 409 Conflict.
    pub fn conflicts(&self) -> u64 {
        self.0
            .iter()
            .filter(|((_, _, code), _)| code == "409")
            .fold(0.0, |sum, (_, v)| sum + v) as u64
    }

    /// `{"VERB resource": n}`, codes summed.
    pub fn by_kind(&self) -> Value {
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for ((verb, what, _), v) in &self.0 {
            *out.entry(format!("{verb} {what}")).or_default() += *v as u64;
        }
        json!(out)
    }

    /// Removes `n` creates of PasscodeResets (the bench's own).
    pub fn without_creates(&self, n: f64) -> ApiWrites {
        let mut map = self.0.clone();
        let mut left = n;
        for ((verb, what, _), v) in map.iter_mut() {
            if verb == "POST" && what == "passcoderesets" && left > 0.0 {
                let take = v.min(left);
                *v -= take;
                left -= take;
            }
        }
        map.retain(|_, v| *v > 0.0);
        ApiWrites(map)
    }
}

// ---------------------------------------------------------------------------------------------
// The AMAPI simulator

pub struct Sim {
    pub sim: Simulator,
    pub enterprise: String,
}

impl Sim {
    /// One enterprise with `devices` work-profile devices `d00000`.., no passcode policy, online,
    /// acting on a command `sync_delay` after receiving it.
    pub async fn start(
        credentials: &Path,
        enterprise: &str,
        devices: usize,
        sync_delay: &str,
    ) -> Sim {
        Self::start_with(credentials, enterprise, devices, sync_delay, false).await
    }

    /// [`Sim::start`], the enterprise publishing COMMAND notifications to the scenario
    /// subscription when `notified`.
    pub async fn start_with(
        credentials: &Path,
        enterprise: &str,
        devices: usize,
        sync_delay: &str,
        notified: bool,
    ) -> Sim {
        let devices: String = (0..devices.max(1))
            .map(|i| {
                format!(
                    "      - {{id: {}, managementMode: PROFILE_OWNER, apiLevel: 34, syncDelay: {sync_delay}}}\n",
                    device_id(i)
                )
            })
            .collect();
        let policies = "      - id: none";
        let yaml = if notified {
            testkit::scenario::notified_fleet(enterprise, policies, devices.trim_end())
        } else {
            testkit::scenario::fleet(enterprise, policies, devices.trim_end())
        };
        let sim = testkit::simulator(&yaml, Some(credentials.to_owned())).await;
        Sim {
            sim,
            enterprise: enterprise.to_owned(),
        }
    }

    pub fn device(&self, i: usize) -> String {
        format!("enterprises/{}/devices/{}", self.enterprise, device_id(i))
    }

    pub async fn counters(&self) -> Counters {
        Counters(self.sim.admin().get("counters").await.expect("counters"))
    }

    pub async fn put(&self, path: &str, body: Value) {
        self.sim
            .admin()
            .put(path, body)
            .await
            .expect("simulator admin API");
    }

    /// No quota to speak of.
    pub async fn unlimited(&self) {
        self.put("quota", json!({"requests": 100_000_000u64, "window": "1s"}))
            .await;
    }
}

pub fn device_id(i: usize) -> String {
    format!("d{i:05}")
}

/// The simulator's `/sim/v1/counters`.
#[derive(Clone, Debug)]
pub struct Counters(pub Value);

impl Counters {
    fn methods(&self) -> BTreeMap<String, u64> {
        self.0["methods"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Calls routed to an AMAPI method, whatever the answer (429s included).
    pub fn calls(&self) -> u64 {
        self.methods().values().sum()
    }

    pub fn quota_rejected(&self) -> u64 {
        self.0["quotaRejected"].as_u64().unwrap_or(0)
    }

    /// Calls the quota let through.
    pub fn admitted(&self) -> u64 {
        self.calls().saturating_sub(self.quota_rejected())
    }

    /// `{"method": n}` since `before`, methods never called left out.
    pub fn methods_since(&self, before: &Counters) -> Value {
        let b = before.methods();
        let out: BTreeMap<String, u64> = self
            .methods()
            .into_iter()
            .map(|(k, v)| {
                let d = v.saturating_sub(b.get(&k).copied().unwrap_or(0));
                (k, d)
            })
            .filter(|(_, d)| *d > 0)
            .collect();
        json!(out)
    }
}

// ---------------------------------------------------------------------------------------------
// The operator process

#[derive(Clone, Debug)]
pub struct OperatorFlags {
    pub amapi_rate: Option<f64>,
    pub concurrency: Option<u16>,
    /// Pull AMAPI's COMMAND notifications from the simulator's subscription.
    pub notifications: bool,
}

impl OperatorFlags {
    pub fn to_json(&self) -> Value {
        json!({
            "amapi_rate": self.amapi_rate.map_or(json!("default (8)"), |r| json!(r)),
            "concurrency": self.concurrency.map_or(json!("default (16)"), |c| json!(c)),
            "notifications": self.notifications,
        })
    }
}

/// The release binary as a child process, under the operator's ServiceAccount.
pub fn spawn_operator(
    cp: &ControlPlane,
    sim: &Sim,
    credentials: &Path,
    namespace: &str,
    flags: &OperatorFlags,
) -> Operator {
    let mut args = vec![
        ("log-level", "info".to_owned()),
        ("leader-election", "false".to_owned()),
    ];
    if let Some(rate) = flags.amapi_rate {
        args.push(("amapi-rate", rate.to_string()));
    }
    if let Some(c) = flags.concurrency {
        args.push(("concurrency", c.to_string()));
    }
    if flags.notifications {
        args.push((
            "pubsub-subscription",
            testkit::scenario::SUBSCRIPTION.to_owned(),
        ));
        args.push(("pubsub-url", sim.sim.base_url()));
    }
    Operator::spawn(Launch {
        kubeconfig: &cp.operator_kubeconfig(),
        credentials: Some(credentials),
        amapi_base_url: &sim.sim.base_url(),
        enterprise: &sim.enterprise,
        namespace,
        log: log_dir().join(format!("operator-{namespace}.log")),
        flags: args,
        env: Vec::new(),
        failpoint: None,
    })
}

/// What the bench reads of an operator process besides its metrics.
pub trait Readings {
    /// The sum of a metric's samples whose labels contain `filter`.
    async fn metric_sum(&self, name: &str, filter: &str) -> f64;
    /// Counts in the operator's log so far: ERROR and WARN lines, and reconciles that ended
    /// because the decision loop did not settle.
    fn log_counts(&self) -> Value;
    fn rss_mib(&self) -> f64;
    /// Peak resident memory since start (VmHWM).
    fn peak_rss_mib(&self) -> f64;
    /// User + system CPU seconds used so far.
    fn cpu_seconds(&self) -> f64;
}

impl Readings for Operator {
    async fn metric_sum(&self, name: &str, filter: &str) -> f64 {
        sum_metric(&self.metrics().await, name, filter)
    }

    fn log_counts(&self) -> Value {
        let text = self.logs();
        let count = |pat: &str| text.lines().filter(|l| l.contains(pat)).count();
        json!({
            "errors": count("\"level\":\"ERROR\""),
            "warnings": count("\"level\":\"WARN\""),
            "not_settled": count("did not settle"),
            "file": self.log.display().to_string(),
        })
    }

    fn rss_mib(&self) -> f64 {
        proc_status_kib(self.pid(), "VmRSS").map_or(0.0, kib_to_mib)
    }

    fn peak_rss_mib(&self) -> f64 {
        proc_status_kib(self.pid(), "VmHWM").map_or(0.0, kib_to_mib)
    }

    fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.pid()).unwrap_or(0.0)
    }
}

pub fn sum_metric(text: &str, name: &str, filter: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| l.contains(filter))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .fold(0.0, |sum, v| sum + v)
}

/// Operator logs, kept after the run (the control plane's directory is removed at exit).
pub fn log_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-logs");
    std::fs::create_dir_all(&dir).expect("log directory");
    dir
}

// ---------------------------------------------------------------------------------------------
// /proc

pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn kib_to_mib(kib: u64) -> f64 {
    round(kib as f64 / 1024.0, 1)
}

/// utime + stime from /proc/PID/stat, at Linux's usual 100 clock ticks per second.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = text.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

pub fn machine() -> Value {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|r| r.split_once(':'))
        .map(|(_, m)| m.trim().to_owned());
    json!({
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "memory_gib": round(mem_kib / 1024.0 / 1024.0, 1),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim(),
        "cpu": model,
    })
}

// ---------------------------------------------------------------------------------------------
// Watching resets end

/// When this process first saw each reset in a final phase, through a watch (and with any
/// status, and with its command's operation).
#[derive(Clone, Default)]
pub struct Finished {
    seen: Arc<Mutex<HashMap<String, (Instant, Phase)>>>,
    first_status: Arc<Mutex<HashMap<String, Instant>>>,
    issued: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Finished {
    /// Starts watching a namespace; the task ends with `stop`.
    pub fn watch(api: Api<PasscodeReset>) -> (Finished, tokio::task::JoinHandle<()>) {
        let finished = Finished::default();
        let seen = finished.seen.clone();
        let (first_status, issued) = (finished.first_status.clone(), finished.issued.clone());
        let task = tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = stream.next().await {
                let now = Instant::now();
                let obj = match event {
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => o,
                    Ok(_) => continue,
                    Err(e) => {
                        progress!("watch error (the watcher retries): {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                if let Some(status) = &obj.status {
                    first_status
                        .lock()
                        .unwrap()
                        .entry(obj.name_any())
                        .or_insert(now);
                    if status.operation.is_some() {
                        issued.lock().unwrap().entry(obj.name_any()).or_insert(now);
                    }
                }
                let phase = obj.phase();
                if phase.is_terminal() {
                    seen.lock()
                        .unwrap()
                        .entry(obj.name_any())
                        .or_insert((now, phase));
                }
            }
        });
        (finished, task)
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn get(&self, name: &str) -> Option<(Instant, Phase)> {
        self.seen.lock().unwrap().get(name).copied()
    }

    /// When the watch first showed `name` with a status.
    pub fn first_status(&self, name: &str) -> Option<Instant> {
        self.first_status.lock().unwrap().get(name).copied()
    }

    /// When the watch first showed `name`'s command operation in its status.
    pub fn issued(&self, name: &str) -> Option<Instant> {
        self.issued.lock().unwrap().get(name).copied()
    }

    /// How many of `names` have their command out.
    pub fn issued_count<'a>(&self, names: impl Iterator<Item = &'a String>) -> usize {
        let issued = self.issued.lock().unwrap();
        names.filter(|n| issued.contains_key(*n)).count()
    }

    /// Waits (polling every 50 ms) until `n` resets have ended or `within` has passed; returns
    /// whether all ended.
    pub async fn wait_for(&self, n: usize, within: Duration, what: &str) -> bool {
        let until = Instant::now() + within;
        let mut next_report = Instant::now() + Duration::from_secs(10);
        loop {
            let c = self.count();
            if c >= n {
                return true;
            }
            if Instant::now() >= until {
                progress!("{what}: only {c} of {n} ended within {within:?}");
                return false;
            }
            if Instant::now() >= next_report {
                progress!("{what}: {c} of {n} ended");
                next_report += Duration::from_secs(10);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Figures

pub fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `{"n", "p50", "p99", "max"}` of the values (unsorted on entry).
pub fn summary(mut values: Vec<f64>, digits: i32) -> Value {
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() {
        return json!({"n": 0});
    }
    json!({
        "n": values.len(),
        "p50": round(percentile(&values, 50.0), digits),
        "p99": round(percentile(&values, 99.0), digits),
        "max": round(*values.last().unwrap(), digits),
    })
}

/// Prints one result line on stdout, its `scenario` (or `machine`) first.
pub fn emit(v: &Value) {
    let mut rest = v.as_object().cloned().unwrap_or_default();
    let first = ["scenario", "machine"]
        .into_iter()
        .find_map(|k| rest.remove(k).map(|v| (k, v)));
    let Some((key, value)) = first else {
        println!("{v}");
        return;
    };
    let rest = Value::Object(rest).to_string();
    let tail = rest.strip_prefix('{').unwrap_or("}");
    let sep = if tail == "}" { "" } else { "," };
    println!("{{{}:{value}{sep}{tail}", Value::from(key));
}

// ---------------------------------------------------------------------------------------------
// Heap bytes in use by this process, to weigh decoded objects exactly

/// The system allocator, counting the bytes currently allocated.
pub struct CountingAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

/// Heap bytes allocated and not yet freed, process-wide.
pub fn live_heap_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}
