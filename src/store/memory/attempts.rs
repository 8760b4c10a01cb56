//! [`MemoryAttemptLimiter`]: failed-attempt counters and in-flight checks kept in a map.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use super::{lock, shrink_if_sparse};
use crate::error::StoreError;
use crate::store::expiry::{ExpiryQueue, SWEEP_BATCH};
use crate::store::{AttemptKey, AttemptLease, AttemptLimiter, AttemptRule, AttemptVerdict};

/// One limiter key: its failures in the open window, and the checks in flight.
#[derive(Default)]
struct Slot {
    failures: u32,
    window_ends: Option<OffsetDateTime>,
    /// The window a failure opens, from the last rule the key was reserved or failed with (a
    /// lapsed lease is counted as a failure when no rule is at hand).
    window: time::Duration,
    leases: Vec<AttemptLease>,
}

impl Slot {
    /// Forgets a closed window, and counts each lapsed lease as a failure: a check whose
    /// request was dropped (or that outlived its lease) is presumed to have failed, so that
    /// dropping requests cannot buy guesses beyond the limit.
    fn settle(&mut self, now: OffsetDateTime) {
        if self.window_ends.is_some_and(|ends| ends <= now) {
            self.failures = 0;
            self.window_ends = None;
        }
        let before = self.leases.len();
        self.leases.retain(|l| l.until > now);
        for _ in self.leases.len()..before {
            self.fail(now);
        }
    }

    /// Counts one failure, opening a window at `now` if none is open.
    fn fail(&mut self, now: OffsetDateTime) {
        self.failures = self.failures.saturating_add(1);
        if self.window_ends.is_none() {
            self.window_ends = Some(now.saturating_add(self.window));
        }
    }

    fn is_idle(&self) -> bool {
        self.window_ends.is_none() && self.leases.is_empty()
    }

    /// When the slot next needs a look: its window's end or its next lease's lapse.
    fn next_due(&self) -> Option<OffsetDateTime> {
        self.leases
            .iter()
            .map(|l| l.until)
            .chain(self.window_ends)
            .min()
    }
}

/// A limiter key as the memory limiter keeps it: its SHA-256, so that a 4096-byte username costs
/// 32 bytes, whatever is tried.
type SlotKey = [u8; 32];

/// The [`SlotKey`] of a limiter key: the SHA-256 of its storage key, hashed as it is written
/// (no string is built).
fn slot_key(key: &AttemptKey) -> SlotKey {
    struct Digesting(Sha256);
    impl fmt::Write for Digesting {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0.update(s.as_bytes());
            Ok(())
        }
    }
    let mut digest = Digesting(Sha256::new());
    // Writing to a digest cannot fail.
    let _ = key.write_storage_key(&mut digest);
    digest.0.finalize().into()
}

#[derive(Default)]
struct LimiterState {
    slots: HashMap<SlotKey, Slot>,
    expiry: ExpiryQueue<SlotKey>,
}

impl LimiterState {
    fn sweep(&mut self, now: OffsetDateTime, max: usize) {
        let mut due = Vec::new();
        self.expiry.pop_due(now, max, |key| due.push(key));
        for key in due {
            self.settle(key, now);
        }
        shrink_if_sparse(&mut self.slots);
    }

    /// Brings `key`'s slot up to `now`: drops it when nothing is left in it, or queues its next
    /// look if settling changed when that is (a lapsed lease opened a window).
    fn settle(&mut self, key: SlotKey, now: OffsetDateTime) -> Option<&mut Slot> {
        let slot = self.slots.get_mut(&key)?;
        let due = slot.next_due();
        slot.settle(now);
        if slot.is_idle() {
            self.slots.remove(&key);
            return None;
        }
        let next = slot.next_due();
        if next != due {
            if let Some(next) = next {
                self.expiry.push(next, key);
            }
        }
        self.slots.get_mut(&key)
    }
}

/// Failed-attempt counters and in-flight checks kept in a map, one fixed window per key.
///
/// Counts are per process: several servers behind one address need a shared limiter (the Redis
/// store), or an attacker gets each server's allowance.
#[derive(Default)]
pub struct MemoryAttemptLimiter {
    state: Mutex<LimiterState>,
}

impl MemoryAttemptLimiter {
    /// No counts.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys have failures or checks in flight.
    pub fn len(&self) -> usize {
        lock(&self.state).slots.len()
    }

    /// Whether no key has failures or checks in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for MemoryAttemptLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryAttemptLimiter")
            .field("keys", &self.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl AttemptLimiter for MemoryAttemptLimiter {
    async fn reserve_attempt(
        &self,
        key: &AttemptKey,
        rule: &AttemptRule,
        lease: &AttemptLease,
        now: OffsetDateTime,
    ) -> Result<AttemptVerdict, StoreError> {
        let mut state = lock(&self.state);
        state.sweep(now, SWEEP_BATCH);
        let key = slot_key(key);
        let window = crate::clock::to_time_duration(rule.window);
        let (failures, window_ends, in_flight) = match state.settle(key, now) {
            Some(slot) => {
                slot.window = window;
                (slot.failures, slot.window_ends, slot.leases.len())
            }
            None => (0, None, 0),
        };
        if failures >= rule.max_failures {
            let retry_after = match window_ends {
                Some(ends) => std::time::Duration::try_from(ends - now).unwrap_or_default(),
                None => rule.window,
            };
            return Ok(AttemptVerdict::Refused { retry_after });
        }
        if u64::from(failures) + in_flight as u64 >= u64::from(rule.max_failures) {
            return Ok(AttemptVerdict::Busy);
        }
        let slot = state.slots.entry(key).or_default();
        slot.window = window;
        slot.leases.push(*lease);
        state.expiry.push(lease.until, key);
        Ok(AttemptVerdict::Allowed)
    }

    async fn release_attempt(
        &self,
        key: &AttemptKey,
        lease: &AttemptLease,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        let key = slot_key(key);
        if let Some(slot) = state.slots.get_mut(&key) {
            slot.leases.retain(|l| l.id != lease.id);
        }
        state.settle(key, now);
        Ok(())
    }

    async fn record_failure(
        &self,
        key: &AttemptKey,
        rule: &AttemptRule,
        lease: &AttemptLease,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        let key = slot_key(key);
        let slot = state.slots.entry(key).or_default();
        slot.window = crate::clock::to_time_duration(rule.window);
        slot.leases.retain(|l| l.id != lease.id);
        slot.settle(now);
        slot.fail(now);
        if let Some(ends) = slot.window_ends {
            state.expiry.push(ends, key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slot is keyed by the SHA-256 of the storage key, hashed as it is written: the same
    /// bytes as the string, for every kind of key.
    #[test]
    fn slot_keys_are_the_digest_of_the_storage_key() {
        let user = crate::UserId::new("user-tom");
        let client = crate::ClientId::new("my client");
        let keys = [
            AttemptKey::username(&crate::Username::new(" Tom")),
            AttemptKey::Client(client.clone()),
            AttemptKey::address([192, 0, 2, 1].into()),
            AttemptKey::user_code_entry("2001:db8::1".parse().expect("an address")),
            AttemptKey::SecondFactor(user),
            AttemptKey::client_secret(&client, Some([192, 0, 2, 1].into())),
            AttemptKey::client_secret(&client, None),
        ];
        for key in keys {
            let expected: SlotKey = Sha256::digest(key.storage_key().as_bytes()).into();
            assert_eq!(slot_key(&key), expected, "{key:?}");
        }
        assert_eq!(
            AttemptKey::client_secret(&client, Some([192, 0, 2, 1].into())).storage_key(),
            "client_secret@192.0.2.1 my client"
        );
    }
}
