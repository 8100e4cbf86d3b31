//! The models the production shell runs against: an API server (resourceVersions, conflicts,
//! writes whose answer is lost, records), AMAPI (commands, devices that act late or never,
//! ambiguous answers, commands created long after the client gave up, cancels racing the device)
//! and a virtual clock. One seeded random generator decides every fault, so a seed replays.

use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};
use passcode_operator::api::{PasscodeReset, PasscodeResetStatus};
use passcode_operator::reconcile::reset::decide::fingerprint_nanos;
use passcode_operator::reconcile::reset::record::Run;

pub const CANARY: &str = "Kq7!canary#Zx";
pub const SECRET: &str = "pass";
pub const KEY: &str = "passcode";

/// How often each fault happens while faults are on (out of 1000 calls).
#[derive(Clone, Copy, Debug)]
pub struct Faults {
    /// A write that commits but whose answer is lost.
    pub lost_answer: u32,
    /// A call that fails without doing anything.
    pub refused: u32,
    /// issueCommand creates the command and the answer is lost.
    pub issue_ambiguous: u32,
    /// issueCommand accepted, answer lost, command created much later.
    pub issue_late: u32,
    /// issueCommand certainly not created (429).
    pub issue_throttled: u32,
}

pub const FAULTS: Faults = Faults {
    lost_answer: 120,
    refused: 80,
    issue_ambiguous: 150,
    issue_late: 120,
    issue_throttled: 80,
};

/// One command AMAPI created.
#[derive(Clone, Debug)]
pub struct Op {
    pub name: String,
    pub device: String,
    pub created: Timestamp,
    pub duration: String,
    pub flags: Vec<String>,
    /// `None` while pending; `Some(0)` done; otherwise the rpc error code (1 cancelled, 4 expired).
    pub done: Option<i32>,
    /// The reset (uid) whose claim drew the fingerprint.
    pub owner: Option<String>,
    pub passcode: Option<String>,
}

impl Op {
    pub fn expires(&self) -> Timestamp {
        let nanos = fingerprint_nanos(&self.duration).unwrap_or(600_000_000_000);
        self.created + SignedDuration::from_nanos(nanos as i64)
    }
}

/// A command accepted and not created yet.
#[derive(Clone, Debug)]
pub struct Late {
    pub due: Timestamp,
    pub op: Op,
}

pub struct World {
    pub now: Timestamp,
    pub rng: fastrand::Rng,
    pub faults_on: bool,
    pub faults: Faults,
    next_rv: u64,
    next_uid: u64,
    next_op: u64,
    pub resets: BTreeMap<String, PasscodeReset>,
    /// Records by ConfigMap name: resourceVersion and runs.
    pub records: BTreeMap<String, (u64, Vec<Run>)>,
    pub secrets: BTreeMap<String, String>,
    /// The uid of each Secret, drawn when it is first seen; a deleted Secret's goes with it, so
    /// one created again under the same name has another.
    secret_uids: BTreeMap<String, String>,
    next_secret_uid: u64,
    pub devices: BTreeMap<String, bool>,
    pub ops: Vec<Op>,
    pub late: Vec<Late>,
    /// Fingerprint nonce → the reset uid it was drawn for.
    pub nonces: HashMap<u32, String>,
    next_nonce: u32,
    /// How often a user deleted the record of a name: each allows one more run of a spec.
    pub records_deleted: BTreeMap<String, usize>,
    /// How far AMAPI's clock is behind the operator's (so the operator may cancel a command
    /// AMAPI still holds pending, racing the device).
    pub amapi_lag: SignedDuration,
    /// How long a new command takes to show in operations.list.
    pub list_lag: SignedDuration,
    /// Every uid → (namespace/name, spec JSON), for the invariants.
    pub identities: BTreeMap<String, (String, String)>,
    /// Everything the operator said outward: statuses, Events, errors.
    pub outward: Vec<String>,
    /// The reason of every Event, in order.
    pub reasons: Vec<String>,
    pub trace: Vec<String>,
}

impl World {
    pub fn new(seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let amapi_lag = SignedDuration::from_secs(rng.i64(0..=60));
        let list_lag = SignedDuration::from_secs(rng.i64(0..=20));
        World {
            now: "2026-11-23T10:00:00Z".parse().unwrap(),
            rng,
            faults_on: true,
            faults: FAULTS,
            next_rv: 1,
            next_uid: 1,
            next_op: 1,
            resets: BTreeMap::new(),
            records: BTreeMap::new(),
            secrets: BTreeMap::new(),
            secret_uids: BTreeMap::new(),
            next_secret_uid: 1,
            devices: BTreeMap::new(),
            ops: Vec::new(),
            late: Vec::new(),
            nonces: HashMap::new(),
            next_nonce: 1,
            records_deleted: BTreeMap::new(),
            amapi_lag,
            list_lag,
            identities: BTreeMap::new(),
            outward: Vec::new(),
            reasons: Vec::new(),
            trace: Vec::new(),
        }
    }

    /// Whether the fault `which` picks happens now (only while faults are on).
    pub fn fault(&mut self, which: impl Fn(&Faults) -> u32) -> bool {
        let per_mille = which(&self.faults);
        self.faults_on && self.rng.u32(0..1000) < per_mille
    }

    pub fn rv(&mut self) -> String {
        self.next_rv += 1;
        self.next_rv.to_string()
    }

    /// The uid of the Secret `namespace/name`, if it exists.
    pub fn secret_uid(&mut self, key: &str) -> Option<String> {
        if !self.secrets.contains_key(key) {
            self.secret_uids.remove(key);
            return None;
        }
        let next = &mut self.next_secret_uid;
        let uid = self.secret_uids.entry(key.to_owned()).or_insert_with(|| {
            *next += 1;
            format!("secret-uid-{next}")
        });
        Some(uid.clone())
    }

    /// Deletes the Secret `namespace/name` if it exists and has `uid` (when given); whether it
    /// was deleted.
    pub fn delete_secret(&mut self, key: &str, uid: Option<&str>) -> bool {
        let Some(current) = self.secret_uid(key) else {
            return false;
        };
        if uid.is_some_and(|u| u != current) {
            return false;
        }
        self.secrets.remove(key);
        self.secret_uids.remove(key);
        true
    }

    pub fn uid(&mut self) -> String {
        self.next_uid += 1;
        format!("uid-{}", self.next_uid)
    }

    /// A fresh fingerprint nonce for `uid`: unique across the run, so every command can be
    /// traced to the claim that drew it.
    pub fn nonce(&mut self, uid: &str) -> u32 {
        self.next_nonce += 1 + self.rng.u32(0..1000);
        self.nonces.insert(self.next_nonce, uid.to_owned());
        self.next_nonce
    }

    pub fn op_name(&mut self, device: &str) -> String {
        self.next_op += 1;
        format!("{device}/operations/{}", self.next_op)
    }

    /// The reset uid a command's fingerprint was drawn for.
    pub fn owner_of(&self, duration: &str) -> Option<String> {
        let nanos = fingerprint_nanos(duration)?;
        let nonce = (nanos % 1_000_000_000) as u32;
        self.nonces.get(&nonce).cloned()
    }

    /// AMAPI's clock.
    pub fn amapi_now(&self) -> Timestamp {
        self.now - self.amapi_lag
    }

    pub fn advance(&mut self, by: std::time::Duration) {
        self.now += SignedDuration::try_from(by).unwrap();
        // Commands accepted earlier come into being; devices miss expired ones (on AMAPI's clock).
        let now = self.amapi_now();
        let (due, later): (Vec<Late>, Vec<Late>) = self.late.drain(..).partition(|l| l.due <= now);
        self.late = later;
        for l in due {
            let mut op = l.op;
            op.created = now;
            self.trace.push(format!("late creation of {}", op.name));
            self.ops.push(op);
        }
        for op in &mut self.ops {
            if op.done.is_none() && now > op.expires() {
                op.done = Some(4);
            }
        }
    }

    /// Online devices carry out one pending command.
    pub fn device_acts(&mut self) {
        let now = self.amapi_now();
        let online: Vec<String> = self
            .devices
            .iter()
            .filter(|(_, on)| **on)
            .map(|(d, _)| d.clone())
            .collect();
        for op in &mut self.ops {
            if op.done.is_none() && online.contains(&op.device) && now <= op.expires() {
                op.done = Some(0);
                return;
            }
        }
    }

    pub fn status_text(s: &PasscodeResetStatus) -> String {
        serde_json::to_string(s).unwrap()
    }
}
