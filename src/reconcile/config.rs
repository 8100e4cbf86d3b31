//! What the operator is configured to do, read by both reconcilers.

use std::time::Duration;

/// The default [`Config::adoption_window`].
pub const DEFAULT_ADOPTION_WINDOW: Duration = Duration::from_secs(180);

/// Operator-wide configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Enterprise ids (`LC01abc`) the operator may act on; empty means any.
    pub enterprises: Vec<String>,
    /// How long after a claim its command may take to be listed on the device. A claim without
    /// an operation is searched for this long before the reset ends `OutcomeUnknown`. The shell
    /// starts no issueCommand attempt after a third of it, and gives an attempt at most a third.
    pub adoption_window: Duration,
    /// AMAPI COMMAND notifications arrive (Pub/Sub): polling is only a slow safety net.
    pub notifications: bool,
    /// How often Enforce policies are compared with AMAPI to correct drift.
    pub policy_resync: Duration,
    /// What to do with a reset whose requester was not recorded by the admission webhook.
    pub unknown_requester: UnknownRequester,
    /// Refuse resets no PasscodeResetScope covers, also when no scope exists.
    pub require_scopes: bool,
}

/// What to do with a reset without a recorded requester (created before the webhook was
/// registered, or with a record the operator did not seal).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UnknownRequester {
    /// End it `Failed` / `RequesterUnknown`.
    Refuse,
    /// Run it; its status, Events, audit line and record say the requester is unknown.
    #[default]
    Run,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enterprises: Vec::new(),
            adoption_window: DEFAULT_ADOPTION_WINDOW,
            notifications: false,
            policy_resync: Duration::from_secs(300),
            unknown_requester: UnknownRequester::Run,
            require_scopes: false,
        }
    }
}

impl Config {
    pub fn allows(&self, enterprise: &str) -> bool {
        self.enterprises.is_empty() || self.enterprises.iter().any(|e| e == enterprise)
    }

    /// For the command of a claim: how long after the claim an attempt may still start, and the
    /// longest an attempt may take.
    pub fn send_limits(&self) -> (Duration, Duration) {
        let third = self.adoption_window / 3;
        (third, third)
    }
}
