//! The operator as a Pod: two replicas, one leader; resets succeed through the webhook; the leader
//! deleted or killed mid-flight never costs a second command; the Deployment's confinement holds.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use passcode_operator::api::{PasscodeReset, Reason};
use passcode_operator::simulator::AdminClient;
use serde_json::{Value, json};

use crate::{Installed, eventually, installed, turn};

const LEASE_SECONDS: i64 = 15;

/// One installation seen from a test: its pods, its Lease, its resets, its simulator.
pub struct Cluster {
    installed: &'static Installed,
    client: Client,
}

impl Cluster {
    /// The installation of `manifests/` ([`installed`]).
    async fn new() -> Cluster {
        Cluster::of(installed()).await
    }

    pub async fn of(installed: &'static Installed) -> Cluster {
        Cluster {
            installed,
            client: installed.node.admin().await,
        }
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), self.installed.namespace)
    }

    fn resets(&self) -> Api<PasscodeReset> {
        Api::namespaced(self.client.clone(), self.installed.helpdesk)
    }

    pub fn sim(&self) -> AdminClient {
        AdminClient::new(&self.installed.amapi)
    }

    /// The operator's pods, once every replica is Ready and one holds the Lease: (leader, the
    /// others).
    pub async fn settled(&self) -> (Pod, Vec<Pod>) {
        eventually(
            &format!(
                "{}: {} Ready replicas, one of them the leader",
                self.installed.namespace, self.installed.replicas
            ),
            Duration::from_secs(180),
            || async {
                let pods = self
                    .pods()
                    .list(
                        &ListParams::default()
                            .labels(&format!("app.kubernetes.io/name={}", self.installed.lease)),
                    )
                    .await
                    .ok()?
                    .items;
                let ready: Vec<Pod> = pods
                    .into_iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none() && is_ready(p))
                    .collect();
                if ready.len() != self.installed.replicas {
                    return None;
                }
                let holder = self.lease().await?.spec?.holder_identity?;
                let (leader, others): (Vec<Pod>, Vec<Pod>) = ready
                    .into_iter()
                    .partition(|p| p.metadata.name.as_deref() == Some(&holder));
                (leader.len() == 1).then(|| (leader[0].clone(), others))
            },
        )
        .await
    }

    async fn lease(&self) -> Option<Lease> {
        Api::<Lease>::namespaced(self.client.clone(), self.installed.namespace)
            .get_opt(self.installed.lease)
            .await
            .ok()?
    }

    pub async fn reset(&self, name: &str, device: &str) {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(format!("{name}-passcode")),
                ..Default::default()
            },
            string_data: Some([("passcode".to_owned(), "830417".to_owned())].into()),
            ..Default::default()
        };
        Api::<Secret>::namespaced(self.client.clone(), self.installed.helpdesk)
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        let reset: PasscodeReset = serde_json::from_value(json!({
            "apiVersion": "amapi.passcode-operator.io/v1alpha1",
            "kind": "PasscodeReset",
            "metadata": {"name": name},
            "spec": {
                "device": format!("enterprises/{}/devices/{device}", self.installed.enterprise),
                "newPasscode": {"secretKeyRef": {"name": format!("{name}-passcode"), "key": "passcode"}},
            },
        }))
        .unwrap();
        self.resets()
            .create(&PostParams::default(), &reset)
            .await
            .unwrap();
    }

    async fn wait_reset(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&PasscodeReset) -> bool,
    ) -> PasscodeReset {
        eventually(
            &format!("{name}: {what}"),
            Duration::from_secs(120),
            || async { self.resets().get_opt(name).await.ok()?.filter(|r| check(r)) },
        )
        .await
    }

    pub async fn succeeded(&self, name: &str) -> PasscodeReset {
        let r = self
            .wait_reset(name, "a final phase", |r| r.phase().is_terminal())
            .await;
        let status = r.status.clone().unwrap();
        assert_eq!(
            status.reason,
            Some(Reason::PasscodeReset),
            "{name}: {status:#?}"
        );
        r
    }

    pub async fn commands(&self, device: &str) -> usize {
        let v = self
            .sim()
            .get(&format!(
                "enterprises/{}/devices/{device}/commands",
                self.installed.enterprise
            ))
            .await
            .unwrap();
        v.as_array()
            .or_else(|| v["commands"].as_array())
            .map(Vec::len)
            .unwrap_or(0)
    }

    async fn online(&self, device: &str) {
        self.sim()
            .send(
                reqwest::Method::PATCH,
                &format!("enterprises/{}/devices/{device}", self.installed.enterprise),
                Some(json!({"online": true})),
            )
            .await
            .unwrap();
    }

    /// The host PID of the operator container of `pod`.
    fn pid(&self, pod: &Pod) -> u32 {
        let id = container(pod)["containerID"]
            .as_str()
            .expect("a container ID")
            .to_owned();
        self.installed.node.container_pid(&id)
    }
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn container(pod: &Pod) -> Value {
    serde_json::to_value(
        &pod.status
            .as_ref()
            .unwrap()
            .container_statuses
            .as_ref()
            .unwrap()[0],
    )
    .unwrap()
}

pub fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap()
}

#[tokio::test]
async fn installed_as_users_do_two_replicas_one_leader_a_reset_succeeds() {
    let _turn = turn().await;
    let c = Cluster::new().await;
    let (leader, others) = c.settled().await;
    assert!(others.iter().all(|o| name(o) != name(&leader)));
    c.reset("first", "ok").await;
    let r = c.succeeded("first").await;
    assert_eq!(c.commands("ok").await, 1, "one command for one reset");
    let status = serde_json::to_value(r.status.as_ref().unwrap()).unwrap();
    assert_eq!(
        status["requester"]["username"], "admin",
        "the webhook (through its Service) recorded who asked: {status:#}"
    );
}

/// What the Deployment asks of the container, checked on the host where it runs: user 65532,
/// no capabilities, no privilege escalation, a read-only root file system that nothing wrote
/// to, the memory limit in its cgroup and its memory use under it.
#[tokio::test]
async fn the_pod_runs_confined_as_the_deployment_says() {
    let _turn = turn().await;
    let c = Cluster::new().await;
    let (leader, others) = c.settled().await;
    // Work first, so the leader has done something that could write or grow.
    c.reset("confined", "ok").await;
    c.succeeded("confined").await;
    for pod in std::iter::once(leader).chain(others) {
        let pid = c.pid(&pod);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k}:")))
                .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_default()
        };
        let who = name(&pod);
        assert_eq!(field("Uid"), "65532 65532 65532 65532", "{who}: non-root");
        assert_eq!(field("Gid"), "65532 65532 65532 65532", "{who}");
        for caps in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(
                field(caps),
                "0000000000000000",
                "{who}: {caps}: capabilities dropped"
            );
        }
        assert_eq!(
            field("NoNewPrivs"),
            "1",
            "{who}: allowPrivilegeEscalation false"
        );
        // The root mount: read-only, and its writable layer (overlayfs upperdir) empty.
        let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
        let root = mountinfo
            .lines()
            .find(|l| l.split_whitespace().nth(4) == Some("/"))
            .expect("a root mount");
        let options = root.split_whitespace().nth(5).unwrap();
        assert!(
            options.split(',').any(|o| o == "ro"),
            "{who}: root mounted read-only: {root}"
        );
        // The runtime makes mount points in the writable layer before sealing the root (for
        // /etc/hosts, the ServiceAccount token, ...); anything else there was written by the
        // process.
        let mount_points: Vec<&str> = mountinfo
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .collect();
        let upper = root
            .split([',', ' '])
            .find_map(|o| o.strip_prefix("upperdir="))
            .expect("an overlayfs root");
        let mut pending = vec![std::path::PathBuf::from(upper)];
        while let Some(d) = pending.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                let inside = format!("/{}", path.strip_prefix(upper).unwrap().display());
                assert!(
                    mount_points
                        .iter()
                        .any(|m| *m == inside || m.starts_with(&format!("{inside}/"))),
                    "{who}: {inside} written outside its volumes"
                );
                if path.is_dir() {
                    pending.push(path);
                } else {
                    assert_eq!(path.metadata().unwrap().len(), 0, "{who}: {inside} written");
                }
            }
        }
        // The memory limit (cgroup v1) and what it uses.
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let memory = cgroup
            .lines()
            .find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                controllers
                    .split(',')
                    .any(|c| c == "memory")
                    .then(|| path.to_owned())
            })
            .expect("a memory cgroup");
        let read = |f: &str| -> u64 {
            std::fs::read_to_string(format!("/sys/fs/cgroup/memory{memory}/{f}"))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        let limit = read("memory.limit_in_bytes");
        assert_eq!(
            limit,
            128 * 1024 * 1024,
            "{who}: the Deployment's limit, 128Mi"
        );
        let peak = read("memory.max_usage_in_bytes");
        let rss_kib: u64 = field("VmRSS").trim_end_matches(" kB").parse().unwrap();
        eprintln!(
            "{who}: RSS {} MiB, cgroup peak {} MiB of {} MiB",
            rss_kib / 1024,
            peak >> 20,
            limit >> 20
        );
        assert!(
            peak < limit && rss_kib * 1024 < limit,
            "{who}: under its limit"
        );
        assert_eq!(read("memory.failcnt"), 0, "{who}: never hit its limit");
    }
}

/// The leader pod deleted while its reset's command is pending: SIGTERM releases the Lease
/// (another replica holds it before the old holder's term could have run out: the standby, or the
/// Deployment's replacement if it asks first), the pod is gone within its grace period, and the
/// new leader finishes the reset with no second command.
#[tokio::test]
async fn the_leader_deleted_mid_flight_hands_over_with_no_second_command() {
    let _turn = turn().await;
    let c = Cluster::new().await;
    let (leader, _) = c.settled().await;
    let device = "offline-leader";
    c.reset("handover", device).await;
    c.wait_reset("handover", "its command issued", |r| {
        r.status
            .as_ref()
            .and_then(|s| s.operation.as_ref())
            .is_some()
    })
    .await;
    assert_eq!(c.commands(device).await, 1);
    let last_renewal = c.lease().await.unwrap().spec.unwrap().renew_time.unwrap().0;
    let deleted = std::time::Instant::now();
    c.pods()
        .delete(&name(&leader), &DeleteParams::default())
        .await
        .unwrap();
    // Watch the Lease until another replica holds it, keeping the old holder's last renewal.
    let leader_name = name(&leader);
    let mut last_renewal = last_renewal;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let lease = loop {
        let spec = c.lease().await.and_then(|l| l.spec).unwrap_or_default();
        if spec
            .holder_identity
            .as_deref()
            .is_some_and(|h| !h.is_empty() && h != leader_name)
        {
            break spec;
        }
        if spec.holder_identity.as_deref() == Some(&leader_name)
            && let Some(t) = &spec.renew_time
        {
            last_renewal = t.0;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no other replica took the Lease: {spec:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let acquired: Timestamp = lease.acquire_time.expect("acquireTime").0;
    let expiry = last_renewal + jiff::SignedDuration::from_secs(LEASE_SECONDS);
    assert!(
        acquired < expiry,
        "released on SIGTERM: taken over at {acquired}, before the old term ran out at {expiry}"
    );
    // terminationGracePeriodSeconds: 30 (the default): gone before the kubelet would SIGKILL it
    eventually("the deleted pod gone", Duration::from_secs(30), || async {
        c.pods()
            .get_opt(&name(&leader))
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    let gone = deleted.elapsed();
    eprintln!(
        "leader pod deleted: Lease to {} in {:.1?} and the pod gone in {gone:.1?}",
        lease.holder_identity.as_deref().unwrap_or_default(),
        acquired.duration_since(last_renewal)
    );
    assert!(
        gone < Duration::from_secs(30),
        "gone within the grace period: {gone:?}"
    );
    c.online(device).await;
    c.succeeded("handover").await;
    assert_eq!(
        c.commands(device).await,
        1,
        "no second command after the hand-over"
    );
}

/// The leader's process killed (SIGKILL on the node) while its reset's command is pending: the
/// kubelet restarts the container, and the reset finishes once.
#[tokio::test]
async fn the_leader_killed_mid_flight_is_restarted_and_the_reset_finishes_once() {
    let _turn = turn().await;
    let c = Cluster::new().await;
    let (leader, _) = c.settled().await;
    let restarts = container(&leader)["restartCount"].as_i64().unwrap();
    let device = "offline-killed";
    c.reset("killed", device).await;
    c.wait_reset("killed", "its command issued", |r| {
        r.status
            .as_ref()
            .and_then(|s| s.operation.as_ref())
            .is_some()
    })
    .await;
    let pid = c.pid(&leader);
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    eventually(
        "the kubelet restarted the killed container",
        Duration::from_secs(120),
        || async {
            let pod = c.pods().get_opt(&name(&leader)).await.ok()??;
            (container(&pod)["restartCount"].as_i64()? > restarts && is_ready(&pod)).then_some(())
        },
    )
    .await;
    let pod = c.pods().get(&name(&leader)).await.unwrap();
    let last = &container(&pod)["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 137, "it was killed: {last}");
    c.online(device).await;
    c.succeeded("killed").await;
    assert_eq!(
        c.commands(device).await,
        1,
        "no second command after the kill"
    );
    c.settled().await;
}
