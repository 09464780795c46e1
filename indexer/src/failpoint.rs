//! Named crash points for testing crash safety.
//!
//! Setting `QUARRY_FAILPOINT=<name>` makes the process abort, as `kill -9` would, the moment
//! it reaches the point of that name. The end-to-end tests use it to stop an index run
//! between each pair of writes and check that the next run repairs the index; the edit
//! orchestrator uses it the same way between the files of one write.

use std::sync::OnceLock;

/// Aborts the process if `QUARRY_FAILPOINT` names this point.
pub fn hit(name: &str) {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var("QUARRY_FAILPOINT").ok());
    if armed.as_deref() == Some(name) {
        std::process::abort();
    }
}
