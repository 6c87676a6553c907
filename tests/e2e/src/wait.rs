//! Bounded readiness polling (no fixed sleeps).

use std::time::{Duration, Instant};

/// Calls `f` every `every` until it returns `Ok(Some(_))`, an `Err` (given up at once), or
/// `timeout` passes (an `Err` naming the time).
pub fn poll<T>(
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Result<Option<T>, String>,
) -> Result<T, String> {
    let start = Instant::now();
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if start.elapsed() >= timeout {
            return Err(format!("gave up after {timeout:?}"));
        }
        std::thread::sleep(every);
    }
}
