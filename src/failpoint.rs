//! Crash points for tests: `PASSCODE_OPERATOR_FAILPOINT=NAME` (or `NAME:N`) makes the process abort
//! (no cleanup, like SIGKILL) the first (or Nth) time it reaches point NAME. Unset in production.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The armed point and on which hit it fires, read once.
fn armed() -> Option<&'static (String, u32)> {
    static ARMED: OnceLock<Option<(String, u32)>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let value = std::env::var("PASSCODE_OPERATOR_FAILPOINT").ok()?;
            let (name, nth) = match value.split_once(':') {
                Some((name, n)) => (name.to_owned(), n.parse().ok()?),
                None => (value, 1),
            };
            (!name.is_empty()).then_some((name, nth))
        })
        .as_ref()
}

/// Aborts the process here if this point is armed and this is the hit it waits for.
pub fn hit(name: &str) {
    static HITS: AtomicU32 = AtomicU32::new(0);
    if let Some((armed, nth)) = armed()
        && armed == name
        && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *nth
    {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}
