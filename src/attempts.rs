//! Brute-force limits as the engine applies them (RFC 6749 §4.3.2, RFC 8628 §5.1).
//!
//! Every check of a guessable secret (a password, a one-time code, a device user code) counts
//! against one or more [`AttemptKey`]s: the username, the authenticated client, the caller's
//! address. Before the check runs it holds a lease on each key
//! ([`AttemptLimiter::reserve_attempt`]); after it, a right answer gives the leases back and a
//! wrong one turns them into failures. A key admits a check only while its failures and the
//! checks in flight are fewer than its limit, so concurrent guesses can never reach the
//! verifier more often than the limit allows, while concurrent right answers only queue: a
//! check that finds a key busy waits (a bounded time) for a place instead of being refused.
//! A check runs at most [`CHECK_DEADLINE`] (then it counts as not made); a lease whose request
//! was dropped lapses after [`CHECK_LEASE`] and counts as a failure.
//!
//! ```text
//!  admit ──► every key Allowed ──► check ──► right: release every lease
//!    │                                   └─► wrong: record a failure on every key
//!    ├─► a key Refused ──► give back what was held; answer the refusal (Retry-After)
//!    └─► a key Busy ──► give back what was held; wait 5 ms, 10 ms … 50 ms; try again
//!                       (after `max_wait`: 503 temporarily_unavailable)
//! ```

use std::future::Future as _;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::clock::Clock;
use crate::error::OAuthError;
use crate::reason::Reason;
use crate::store::{AttemptKey, AttemptLease, AttemptLimiter, AttemptRule, AttemptVerdict};

/// How long a check holds its place before the place lapses by itself, counted as a failure:
/// a dropped request (a client that hung up mid-check) is presumed a wrong guess, so that
/// dropping requests cannot buy guesses beyond a limit.
pub(crate) const CHECK_LEASE: Duration = Duration::from_secs(30);

/// How long the engine lets one check run: well inside its lease, so that a slow but live check
/// is never counted as a failure. Past it the check counts as not made (`503`).
pub(crate) const CHECK_DEADLINE: Duration = Duration::from_secs(20);

/// The first and the longest pause between tries while a key is busy.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_millis(50);

/// A limiter, with the clock that dates its leases and how long a check may wait for a place.
pub(crate) struct AttemptGate {
    pub(crate) limiter: Arc<dyn AttemptLimiter>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) max_wait: Duration,
}

/// One key a check counts against: its rule, and the error that refuses the check once the rule
/// is reached (given the seconds until the window closes).
pub(crate) struct Count {
    pub(crate) key: AttemptKey,
    pub(crate) rule: AttemptRule,
    pub(crate) refusal: fn(u64) -> OAuthError,
}

/// The leases one check holds while it runs. End it with [`succeeded`](Held::succeeded),
/// [`failed`](Held::failed) or [`not_made`](Held::not_made); if it is dropped instead (the
/// request was cancelled), its leases lapse by themselves after [`CHECK_LEASE`].
#[must_use = "a check's leases must be given back or turned into failures"]
pub(crate) struct Held<'a> {
    gate: Option<&'a AttemptGate>,
    counts: Vec<Count>,
    lease: AttemptLease,
}

enum Blocked {
    Refused(OAuthError),
    Busy,
}

impl AttemptGate {
    /// Holds a lease on every key of `counts` for one check, waiting while any is busy; answers
    /// the refusal of the first key whose failures are at its limit, or `busy()` after waiting
    /// `max_wait` in all.
    pub(crate) async fn admit(
        &self,
        counts: Vec<Count>,
        busy: fn() -> OAuthError,
    ) -> Result<Held<'_>, OAuthError> {
        let mut waited = Duration::ZERO;
        let mut pause = FIRST_PAUSE;
        loop {
            let now = self.clock.now();
            let lease = AttemptLease::new(now.saturating_add(to_time(CHECK_LEASE)));
            match self.reserve_all(&counts, &lease, now).await? {
                None => {
                    return Ok(Held {
                        gate: Some(self),
                        counts,
                        lease,
                    })
                }
                Some(Blocked::Refused(error)) => return Err(error),
                Some(Blocked::Busy) => {
                    if waited >= self.max_wait {
                        return Err(busy());
                    }
                    // A little jitter, so that waiters woken together do not collide again.
                    let jitter = Duration::from_micros(rand::random::<u64>() % 2_000);
                    let nap = (pause + jitter).min(self.max_wait.saturating_sub(waited));
                    futures_timer::Delay::new(nap).await;
                    waited += nap;
                    pause = (pause * 2).min(LONGEST_PAUSE);
                }
            }
        }
    }

    /// Reserves every key in order; on the first that is not allowed, gives back the ones
    /// already held.
    async fn reserve_all(
        &self,
        counts: &[Count],
        lease: &AttemptLease,
        now: OffsetDateTime,
    ) -> Result<Option<Blocked>, OAuthError> {
        for (i, count) in counts.iter().enumerate() {
            let verdict = self
                .limiter
                .reserve_attempt(&count.key, &count.rule, lease, now)
                .await;
            let blocked = match verdict {
                Ok(AttemptVerdict::Allowed) => continue,
                Ok(AttemptVerdict::Busy) => Ok(Blocked::Busy),
                Ok(verdict) => Ok(Blocked::Refused((count.refusal)(retry_after(
                    verdict,
                    &count.rule,
                )))),
                Err(e) => Err(e.into()),
            };
            // Up to and including this key: a store that failed may have held it all the same
            // (a reply lost after the script ran), and giving back a lease not held is harmless.
            self.release_all(counts.get(..=i).unwrap_or_default(), lease, now)
                .await;
            return blocked.map(Some);
        }
        Ok(None)
    }

    async fn release_all(&self, counts: &[Count], lease: &AttemptLease, now: OffsetDateTime) {
        for count in counts {
            if let Err(e) = self.limiter.release_attempt(&count.key, lease, now).await {
                let _: OAuthError = e.into(); // the conversion logs the cause
            }
        }
    }
}

impl Held<'_> {
    /// No check to hold leases for: no limiter is configured.
    pub(crate) fn nothing() -> Self {
        Self {
            gate: None,
            counts: Vec::new(),
            lease: AttemptLease::new(OffsetDateTime::UNIX_EPOCH),
        }
    }

    /// The check came out right: every lease is given back, nothing is counted.
    pub(crate) async fn succeeded(self) {
        self.not_made().await;
    }

    /// The check could not be made (a hook failed): every lease is given back.
    pub(crate) async fn not_made(self) {
        if let Some(gate) = self.gate {
            gate.release_all(&self.counts, &self.lease, gate.clock.now())
                .await;
        }
    }

    /// The check came out wrong: every lease becomes a failure on its key.
    pub(crate) async fn failed(self) {
        let Some(gate) = self.gate else { return };
        let now = gate.clock.now();
        for count in &self.counts {
            let recorded = gate
                .limiter
                .record_failure(&count.key, &count.rule, &self.lease, now)
                .await;
            if let Err(e) = recorded {
                let _: OAuthError = e.into(); // the conversion logs the cause
            }
        }
    }
}

/// Whole seconds (at least one) until a refused attempt may be tried again.
pub(crate) fn retry_after(verdict: AttemptVerdict, rule: &AttemptRule) -> u64 {
    let wait = match verdict {
        AttemptVerdict::Refused { retry_after } => retry_after,
        _ => rule.window,
    };
    wait.as_secs().max(1)
}

/// Runs `check` for at most [`CHECK_DEADLINE`]: `None` if it took longer (it is dropped).
pub(crate) async fn within_deadline<T>(check: impl std::future::Future<Output = T>) -> Option<T> {
    let mut check = std::pin::pin!(check);
    let mut deadline = futures_timer::Delay::new(CHECK_DEADLINE);
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(out) = check.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(out));
        }
        if std::pin::Pin::new(&mut deadline).poll(cx).is_ready() {
            return std::task::Poll::Ready(None);
        }
        std::task::Poll::Pending
    })
    .await
}

/// The answer for a check that ran past [`CHECK_DEADLINE`]: it was not made.
pub(crate) fn timed_out() -> OAuthError {
    OAuthError::temporarily_unavailable("the credentials could not be checked in time; try again")
        .with_reason(Reason::CheckTimedOut)
        .with_retry_after(1)
}

fn to_time(d: Duration) -> time::Duration {
    crate::clock::to_time_duration(d)
}
