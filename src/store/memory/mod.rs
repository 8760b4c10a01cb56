//! In-memory implementations of every hook: the defaults for one process, for tests and demos.
//!
//! Each is `Send + Sync` and shareable across threads (wrap it in an `Arc`). State lives behind a
//! `std::sync::Mutex` held only for the duration of one method, which is what makes each method
//! atomic. ([`MemoryTokenStore`], which every request reaches, splits its state into shards,
//! each behind a lock of its own, and a method holds the shards it touches;
//! [`MemoryClientStore`] keeps a copy of each client per stripe of threads, each stripe behind a
//! read-write lock, and makes every change under one writer lock.) Time comes in as the `now`
//! argument of each method, never from a clock of the store's own.
//!
//! Expired entries are dropped as the store is written to, a bounded batch per write, from an
//! index of entries by the second they expire: no write ever walks a whole map under its lock,
//! so a store that has grown large does not stall the requests behind it.

mod attempts;
mod clients;
mod codes;
mod device;
mod digest;
mod mfa;
mod slots;
mod tokens;
mod users;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::{Mutex, MutexGuard, PoisonError};

use time::OffsetDateTime;

use crate::store::PendingLimits;
use crate::types::ClientId;

pub use attempts::MemoryAttemptLimiter;
pub use clients::MemoryClientStore;
pub use codes::MemoryCodeStore;
pub use device::MemoryDeviceCodeStore;
pub use mfa::MemoryMfaStore;
pub use tokens::MemoryTokenStore;
pub use users::MemoryUserVerifier;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these maps half-updated in a way that matters
    // more than losing the whole store would, so keep serving.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How many parts (shards, stripes) a store splits into so that threads seldom want the same
/// one: `per_thread` for each thread this machine runs at once, within `min..=max`, a power of
/// two (so that a part is picked with a mask).
fn parts_per_thread(per_thread: usize, min: usize, max: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .saturating_mul(per_thread)
        .clamp(min, max)
        .next_power_of_two()
}

/// An instant in whole seconds, as every record keeps it (so memory and Redis agree).
fn whole_seconds(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(0).unwrap_or(at)
}

/// The time from `now` until the unix second `at`, at least one second: a `Retry-After`.
fn wait_until(at: Option<i64>, now: OffsetDateTime) -> std::time::Duration {
    let secs = at.map_or(1, |at| at.saturating_sub(now.unix_timestamp()));
    std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0).max(1))
}

/// Counts per client, for the limits on pending requests.
#[derive(Default)]
struct ClientCounts {
    per_client: HashMap<ClientId, u32>,
    total: u32,
}

impl ClientCounts {
    fn add(&mut self, client: &ClientId) {
        *self.per_client.entry(client.clone()).or_insert(0) += 1;
        self.total += 1;
    }

    fn remove(&mut self, client: &ClientId) {
        if let Some(n) = self.per_client.get_mut(client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_client.remove(client);
            }
        }
        self.total = self.total.saturating_sub(1);
    }

    fn full(&self, client: &ClientId, limits: &PendingLimits) -> bool {
        self.total >= limits.total
            || self.per_client.get(client).copied().unwrap_or(0) >= limits.per_client
    }
}

/// Shrinks a map once most of it has gone, giving the memory back. Rehashing is linear, but
/// it happens only after the map lost seven eighths of its entries since it last grew.
fn shrink_if_sparse<K: Eq + Hash, V, S: BuildHasher>(map: &mut HashMap<K, V, S>) {
    if map.capacity() > 1024 && map.len() < map.capacity() / 8 {
        map.shrink_to_fit();
    }
}
