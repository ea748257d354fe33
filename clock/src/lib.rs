//! The current time, from one place.
//!
//! Everything whose answer depends on "now" (the consent decision, grant and break-glass
//! periods, token expiry, ledger timestamps) reads it from a [`Clock`] handed in at wiring
//! time, never from `Utc::now()` directly: production passes [`SystemClock`], tests pass a
//! [`TestClock`] and move it forward to see a grant expire over HTTP.

use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// A clock shared by every component of one process.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The system clock shifted by an offset that only grows: time keeps passing as usual (so
/// timestamps stay ordered and timeouts still fire) and a test jumps it forward with
/// [`TestClock::advance`].
#[derive(Debug, Default)]
pub struct TestClock {
    offset_ms: AtomicI64,
}

impl TestClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Moves the clock forward by `by` (a negative duration is ignored: time never runs back).
    pub fn advance(&self, by: Duration) {
        let ms = by.num_milliseconds().max(0);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// How far the clock is ahead of the system clock.
    pub fn offset(&self) -> Duration {
        Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset()
    }
}

/// The system clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_clock_moves_forward_only() {
        let clock = TestClock::new();
        let before = clock.now();
        clock.advance(Duration::days(2));
        let after = clock.now();
        assert!(after - before >= Duration::days(2));
        clock.advance(Duration::days(-5));
        assert!(clock.now() >= after, "time never runs back");
        assert_eq!(clock.offset(), Duration::days(2));
    }
}
