//! Time as an input.
//!
//! grantor never reads the system clock on its own: the [`AuthorizationServer`](crate::AuthorizationServer)
//! asks its [`Clock`] once per request and passes that instant down to every check. Tests swap in a
//! [`ManualClock`] and move time forward instead of sleeping.

use std::sync::{Mutex, PoisonError};
use time::OffsetDateTime;

/// A source of the current time.
///
/// The default is [`SystemClock`]. Replace it with
/// [`AuthorizationServerBuilder::clock`](crate::AuthorizationServerBuilder::clock).
pub trait Clock: Send + Sync {
    /// The current instant, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The operating system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the system clock
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to: for tests and simulations.
///
/// ```
/// use grantor::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new(time::macros::datetime!(2026-01-01 0:00 UTC));
/// clock.advance(Duration::from_secs(3600));
/// assert_eq!(clock.now(), time::macros::datetime!(2026-01-01 1:00 UTC));
/// ```
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now = now.saturating_add(to_time_duration(by));
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: OffsetDateTime) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Converts a `std` duration to a `time` duration, saturating instead of overflowing.
pub(crate) fn to_time_duration(d: std::time::Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}
