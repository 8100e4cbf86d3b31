//! `kubectl passcode`: the help-desk flow in one command (the `kubectl-passcode` binary). Pick the
//! device, type the passcode against a live checklist (or have one made), send, and watch the
//! reset to its end; the Secret it creates is gone once the reset is final.
//!
//! Rooms: `commands` (each subcommand's flow), `cluster` (the Kubernetes edge), `requirements`
//! (which rules govern the device), `entry` (typing against the checklist on a terminal),
//! `summary` (a reset as shown, read tolerantly), `hints` (what to do about each reason),
//! `spoken` (a generated passcode spelled out for the phone). The rules are the operator's own
//! (`crate::passcode`).

pub mod cluster;
pub mod commands;
pub mod entry;
pub mod hints;
pub mod requirements;
pub mod spoken;
pub mod summary;

/// Exit codes, the same for every subcommand.
pub mod exit {
    /// Succeeded (reset, wait), passes (check), shown (status, list).
    pub const OK: u8 = 0;
    /// The reset Failed, or the passcode does not meet the requirements (nothing was sent).
    pub const FAILED: u8 = 1;
    /// Usage or input error; nothing was created.
    pub const USAGE: u8 = 2;
    /// The cluster could not be reached or refused, a reset was not found, a timeout, or the
    /// engineer stopped following (the reset goes on).
    pub const TROUBLE: u8 = 3;
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}
