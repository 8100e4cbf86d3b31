//! Crash points for tests: `PASSCODE_OPERATOR_FAILPOINT=NAME` makes the process abort (no
//! cleanup, like SIGKILL) the first time it reaches point NAME. Unset in production.

use std::sync::OnceLock;

/// The armed point, read once.
fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            std::env::var("PASSCODE_OPERATOR_FAILPOINT")
                .ok()
                .filter(|v| !v.is_empty())
        })
        .as_deref()
}

/// Aborts the process here if this point is armed.
pub fn hit(name: &str) {
    if armed() == Some(name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}
