//! [`MemoryTokenStore`]: tokens in shards by hash, each a table of one-line slots (see
//! [`SlotTable`]) with an index by expiry second; families (their members, and recently revoked
//! ones) in shards of their own.
//!
//! # Locks
//!
//! Every shard is a `Mutex` of its own. A step that needs several takes the family shards it
//! needs first, then the token shards, each group in index order, and releases them together:
//! so no two steps wait for each other in a cycle, and each step is atomic against every other
//! step that touches one of its shards. A lookup takes one token shard; sweeping takes one shard
//! at a time and holds nothing else.
//!
//! - `save_tokens` holds its tokens' family shards from the revoked-family check through the
//!   saves, and `revoke_family` holds the family's shard from marking it revoked through
//!   removing its tokens: a save lands wholly before a revocation (which then removes it) or
//!   wholly after it (and is refused).
//! - `update_tokens` holds every shard its expectations, marks and inserts touch while it
//!   checks and writes: concurrent updates of one token take its shard one after another.
//!
//! # Families
//!
//! A family's entry lists its members with their expiry (tokens and spent marks, as saved), and
//! lives until its longest-lived member expires. Tokens that leave (swept, revoked one by one,
//! replaced) are not taken off the list as they go, since that would need the family's lock
//! while a token shard is held; the list drops a member once its expiry passes (on each write
//! into the family), and `revoke_family` checks each member's entry before removing it (still
//! there, live, and naming this family). A token that stands alone has no family entry at all.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::digest::{digest_word, DigestMap, FoldHasher};
use super::slots::{Keyed, SlotTable};
use super::{lock, shrink_if_sparse};
use crate::error::StoreError;
use crate::scope::Scope;
use crate::store::expiry::{ceil_secs, ExpiryQueue, SWEEP_BATCH};
use crate::store::{
    SpentMark, TokenChange, TokenExpectation, TokenKind, TokenLookup, TokenRecord, TokenSave,
    TokenStore, TokenUpdate,
};
use crate::token::TokenHash;
use crate::types::{ClientId, FamilyId, UserId, Username};

/// An instant from unix seconds as the store keeps them.
fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// What a live token's record holds besides its client, scope, kind and times: kept in a box of
/// its own, and only when there is any (a client-credentials token has none).
#[derive(Debug)]
struct Extra {
    user_id: Option<UserId>,
    username: Option<Username>,
    family_id: Option<FamilyId>,
    /// The audience; an empty boxed slice allocates nothing.
    audience: Box<[String]>,
}

/// What many tokens have in common: their client and scope, kept once per shard (see
/// [`Interned`]) and pointed to by each of the shard's tokens.
#[derive(Debug)]
struct Shared {
    client_id: ClientId,
    scope: Scope,
}

impl Shared {
    /// A copy of the pair with strings of its own: a lookup clones them, and strings that only
    /// this shard hands out are not written to by threads working in other shards.
    fn copy(client_id: &ClientId, scope: &Scope) -> Self {
        Self {
            client_id: ClientId::new(client_id.as_str()),
            scope: scope.unshared_copy(),
        }
    }

    fn is(&self, client_id: &ClientId, scope: &Scope) -> bool {
        self.client_id == *client_id && self.scope == *scope
    }
}

/// The shortest intern table that is pruned of pairs no token uses.
const MIN_INTERNED: usize = 16;

/// A shard's [`Shared`] values, by a hash of what they hold.
///
/// A pair stays in the table while tokens use it; once the table has doubled since it was last
/// pruned, the pairs only the table holds are dropped, so it stays within twice the pairs in use.
///
/// The hash is keyed (std's `RandomState`): the table places a pair by the hash's low bits, and
/// a client allowed many scopes chooses among many pairs, so an unkeyed hash would let it pick
/// pairs that crowd one run of the table.
#[derive(Default)]
struct Interned {
    pairs: DigestMap<u64, Arc<Shared>>,
    hasher: RandomState,
    /// The length at which unused pairs are dropped next.
    prune_at: usize,
    /// The pair handed out last: a shard's tokens mostly come from few clients and scopes, so
    /// it is compared first, before any hashing.
    last: Option<Arc<Shared>>,
}

impl Interned {
    /// The shard's own `Shared` for this client and scope.
    fn get(&mut self, client_id: &ClientId, scope: &Scope) -> Arc<Shared> {
        if let Some(last) = self.last.as_ref().filter(|last| last.is(client_id, scope)) {
            return Arc::clone(last);
        }
        let shared = self.find_or_add(client_id, scope);
        self.last = Some(Arc::clone(&shared));
        shared
    }

    /// The pair from the table, added if it is not there.
    fn find_or_add(&mut self, client_id: &ClientId, scope: &Scope) -> Arc<Shared> {
        let key = self.hasher.hash_one((client_id.as_str(), scope.as_str()));
        match self.pairs.get(&key) {
            Some(shared) if shared.is(client_id, scope) => return Arc::clone(shared),
            // Another pair with the same 64-bit hash, still in use (vanishingly rare): this one
            // goes unshared.
            Some(shared) if Arc::strong_count(shared) > 1 => {
                return Arc::new(Shared::copy(client_id, scope));
            }
            _ => {}
        }
        if self.pairs.len() >= self.prune_at {
            self.prune();
        }
        let shared = Arc::new(Shared::copy(client_id, scope));
        self.pairs.insert(key, Arc::clone(&shared));
        shared
    }

    /// Drops the pairs no token uses (the last pair handed out is forgotten first: it is only a
    /// shortcut).
    fn prune(&mut self) {
        self.last = None;
        self.pairs.retain(|_, shared| Arc::strong_count(shared) > 1);
        self.prune_at = (self.pairs.len() * 2).max(MIN_INTERNED);
    }
}

/// A live token's record, compact: what it shares with other tokens behind one pointer, times in
/// unix seconds (records keep whole seconds).
#[derive(Debug)]
struct Live {
    shared: Arc<Shared>,
    extra: Option<Box<Extra>>,
    issued_at: Secs,
    expires_at: Secs,
    /// Kept here rather than in `Shared`: its spare values are what marks an empty table slot,
    /// so a slot stays one cache line.
    kind: TokenKind,
}

/// Unix seconds in six bytes (two-byte aligned): an `OffsetDateTime` needs 39 bits (years -9999
/// to 9999), and the two bytes saved on each time make room for a live entry's kind in its slot.
#[derive(Clone, Copy, Debug)]
struct Secs([u16; 3]);

impl Secs {
    fn new(secs: i64) -> Self {
        // 48 bits, low part first; the clamp never bites for an `OffsetDateTime`'s seconds.
        let secs = secs.clamp(-(1 << 47), (1 << 47) - 1);
        Self([secs as u16, (secs >> 16) as u16, (secs >> 32) as u16])
    }

    fn get(self) -> i64 {
        let [low, middle, high] = self.0;
        // The high part is sign-extended from its 16 bits.
        (i64::from(high as i16) << 32) | (i64::from(middle) << 16) | i64::from(low)
    }
}

/// A spent mark, compact.
#[derive(Debug)]
struct Spent {
    client_id: ClientId,
    family_id: FamilyId,
    spent_at: i64,
    keep_until: i64,
    successor: Option<TokenHash>,
}

#[derive(Debug)]
enum Entry {
    Live(Live),
    // Marks are few (refresh tokens spent by rotation): boxed, they keep every entry small.
    Spent(Box<Spent>),
}

/// What is to be put under a hash: a token's record or a spent mark.
#[derive(Clone, Copy)]
enum New<'a> {
    Live(&'a TokenRecord),
    Spent(&'a SpentMark),
}

impl<'a> New<'a> {
    /// When the entry will lapse, in unix seconds (as [`Entry::expires_at`] will answer).
    fn expires_at(self) -> i64 {
        match self {
            New::Live(r) => r.expires_at.unix_timestamp(),
            New::Spent(mark) => ceil_secs(mark.keep_until),
        }
    }

    /// Its family; `None` for a token that stands alone.
    fn family(self) -> Option<&'a FamilyId> {
        match self {
            New::Live(r) => r.family_id.as_ref(),
            New::Spent(mark) => Some(&mark.family_id),
        }
    }
}

impl Entry {
    fn live(r: &TokenRecord, shared: Arc<Shared>) -> Self {
        let extra = (r.user_id.is_some()
            || r.username.is_some()
            || r.family_id.is_some()
            || !r.audience.is_empty())
        .then(|| {
            Box::new(Extra {
                user_id: r.user_id.clone(),
                username: r.username.clone(),
                family_id: r.family_id.clone(),
                audience: r.audience.as_slice().into(),
            })
        });
        Entry::Live(Live {
            shared,
            extra,
            issued_at: Secs::new(r.issued_at.unix_timestamp()),
            expires_at: Secs::new(r.expires_at.unix_timestamp()),
            kind: r.kind,
        })
    }

    fn spent(mark: &SpentMark) -> Self {
        Entry::Spent(Box::new(Spent {
            client_id: mark.client_id.clone(),
            family_id: mark.family_id.clone(),
            spent_at: mark.spent_at.unix_timestamp(),
            // Kept at least as long as asked.
            keep_until: ceil_secs(mark.keep_until),
            successor: mark.successor,
        }))
    }

    /// When the entry lapses, in unix seconds.
    fn expires_at(&self) -> i64 {
        match self {
            Entry::Live(live) => live.expires_at.get(),
            Entry::Spent(spent) => spent.keep_until,
        }
    }

    /// Its family; `None` for a token that stands alone.
    fn family(&self) -> Option<&FamilyId> {
        match self {
            Entry::Live(live) => live.extra.as_ref().and_then(|e| e.family_id.as_ref()),
            Entry::Spent(spent) => Some(&spent.family_id),
        }
    }

    fn record(live: &Live) -> TokenRecord {
        let extra = live.extra.as_deref();
        TokenRecord {
            kind: live.kind,
            client_id: live.shared.client_id.clone(),
            user_id: extra.and_then(|e| e.user_id.clone()),
            username: extra.and_then(|e| e.username.clone()),
            scope: live.shared.scope.clone(),
            issued_at: at(live.issued_at.get()),
            expires_at: at(live.expires_at.get()),
            family_id: extra.and_then(|e| e.family_id.clone()),
            audience: extra.map(|e| e.audience.to_vec()).unwrap_or_default(),
        }
    }

    fn lookup(&self) -> TokenLookup {
        match self {
            Entry::Live(live) => TokenLookup::Live(Self::record(live)),
            Entry::Spent(spent) => TokenLookup::Rotated {
                client_id: spent.client_id.clone(),
                family_id: spent.family_id.clone(),
                rotated_at: at(spent.spent_at),
                successor: spent.successor,
                keep_until: at(spent.keep_until),
            },
        }
    }

    /// Whether the entry is as `expected` (the caller has dropped it if it expired).
    fn is(&self, expected: &TokenExpectation) -> bool {
        match (self, expected) {
            (Entry::Live(_), TokenExpectation::Live) => true,
            (Entry::Spent(spent), TokenExpectation::Spent { successor }) => {
                spent.successor == *successor
            }
            _ => false,
        }
    }
}

/// A hash and its entry in one cache line: a lookup in a store far larger than any cache reads
/// this line from memory, and nothing else of the store.
#[derive(Debug)]
#[repr(align(64))]
struct Slot {
    hash: TokenHash,
    entry: Entry,
}

// A table slot (`Option<Slot>`, a spare value of the entry's kind marking it empty) is exactly
// one line.
const _: () = assert!(std::mem::size_of::<Option<Slot>>() == 64);

impl Keyed for Slot {
    fn key(&self) -> &TokenHash {
        &self.hash
    }
}

/// One shard of the tokens: entries by hash, hashes by the second they expire, and what the
/// shard's tokens share.
#[derive(Default)]
struct TokenShard {
    entries: SlotTable<Slot>,
    expiry: ExpiryQueue<TokenHash>,
    interned: Interned,
}

impl TokenShard {
    fn get(&self, hash: &TokenHash) -> Option<&Entry> {
        self.entries.get(hash).map(|slot| &slot.entry)
    }

    /// `f` of the entry for `hash` unless it has expired at `now` (an expired one is dropped):
    /// one lookup for an entry that is there.
    fn current<R>(&mut self, hash: &TokenHash, now: i64, f: impl FnOnce(&Entry) -> R) -> Option<R> {
        match self.entries.get(hash) {
            None => return None,
            Some(slot) if slot.entry.expires_at() > now => return Some(f(&slot.entry)),
            Some(_) => {}
        }
        self.entries.take(hash);
        None
    }

    /// Puts `new` under `hash`, replacing what was there.
    fn put(&mut self, hash: TokenHash, new: New<'_>) {
        let entry = match new {
            New::Live(r) => Entry::live(r, self.interned.get(&r.client_id, &r.scope)),
            New::Spent(mark) => Entry::spent(mark),
        };
        self.expiry.push_at(entry.expires_at(), hash);
        self.entries.replace(Slot { hash, entry });
    }

    fn remove(&mut self, hash: &TokenHash) -> Option<Entry> {
        self.entries.take(hash).map(|slot| slot.entry)
    }

    /// Drops up to `max` entries due at `now`; answers how many hashes it looked at (one whose
    /// entry was removed, or whose expiry moved later, is skipped: a later push covers it).
    fn sweep(&mut self, now: i64, max: usize) -> usize {
        let entries = &mut self.entries;
        let looked = self.expiry.pop_due_at(now, max, |hash| {
            if entries
                .get(&hash)
                .is_some_and(|slot| slot.entry.expires_at() <= now)
            {
                entries.take(&hash);
            }
        });
        self.entries.shrink_if_sparse();
        looked
    }
}

/// A family's members (tokens and spent marks, by hash, with when each lapses), and when the
/// last of them does.
///
/// A token may be listed twice (a live token, then its spent mark): a member is added without
/// looking for it, and lapsed members are dropped once the list has doubled since they last were,
/// so that a write into a family costs the same however many tokens it has held.
struct Members {
    tokens: Vec<(TokenHash, i64)>,
    until: i64,
    /// The length at which lapsed members are dropped next.
    prune_at: usize,
}

/// The shortest member list that is pruned of lapsed members.
const MIN_PRUNE: usize = 8;

/// A family id with its hash, worked out once (by [`MemoryTokenStore::family_key`]): the family
/// maps hash a key by that word, so a map that grows moves its keys without reading each id's
/// text again, and a probe compares the words before any text.
#[derive(Clone, Debug)]
struct FamilyKey {
    hash: u64,
    id: FamilyId,
}

impl PartialEq for FamilyKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.id == other.id
    }
}

impl Eq for FamilyKey {}

impl Hash for FamilyKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// One shard of the families: their members, and the families recently revoked.
#[derive(Default)]
struct FamilyShard {
    families: DigestMap<FamilyKey, Members>,
    /// Recently revoked families, until when they are remembered.
    revoked: DigestMap<FamilyKey, OffsetDateTime>,
    /// Families by when their last member lapses.
    expiry: ExpiryQueue<FamilyKey>,
    revoked_expiry: ExpiryQueue<FamilyKey>,
}

impl FamilyShard {
    fn is_revoked(&self, family: &FamilyKey, now: OffsetDateTime) -> bool {
        self.revoked.get(family).is_some_and(|until| *until > now)
    }

    /// Adds `hash`, lapsing at `expires_at`, to `family` (now and then dropping the members that
    /// have lapsed).
    fn add(&mut self, family: &FamilyKey, hash: TokenHash, expires_at: i64, now: i64) {
        let members = self
            .families
            .entry(family.clone())
            .or_insert_with(|| Members {
                // Room for what a new family first holds: an access and a refresh token.
                tokens: Vec::with_capacity(2),
                until: i64::MIN,
                prune_at: MIN_PRUNE,
            });
        if members.tokens.len() >= members.prune_at {
            members.tokens.retain(|(_, lapses)| *lapses > now);
            members.prune_at = (members.tokens.len() * 2).max(MIN_PRUNE);
        }
        members.tokens.push((hash, expires_at));
        if expires_at > members.until {
            members.until = expires_at;
            self.expiry.push_at(expires_at, family.clone());
        }
    }

    /// Marks `family` revoked until `until` (unless it already is for longer).
    fn mark_revoked(&mut self, family: &FamilyKey, until: OffsetDateTime, now: OffsetDateTime) {
        let held = self.revoked.get(family).copied();
        if until > now && held.is_none_or(|held| held < until) {
            self.revoked.insert(family.clone(), until);
            self.revoked_expiry.push(until, family.clone());
        }
    }

    /// Drops up to `max` families whose members have all lapsed, and as many revoked marks,
    /// due at `now`; answers how many it looked at.
    fn sweep(&mut self, now: OffsetDateTime, max: usize) -> usize {
        let secs = now.unix_timestamp();
        let (families, revoked) = (&mut self.families, &mut self.revoked);
        let mut looked = self.expiry.pop_due_at(secs, max, |family| {
            if families.get(&family).is_some_and(|m| m.until <= secs) {
                families.remove(&family);
            }
        });
        looked += self.revoked_expiry.pop_due(now, max, |family| {
            if revoked.get(&family).is_some_and(|until| *until <= now) {
                revoked.remove(&family);
            }
        });
        shrink_if_sparse(&mut self.families);
        shrink_if_sparse(&mut self.revoked);
        looked
    }
}

/// A shard with its own cache line(s), so that two threads working in neighbouring shards do
/// not take turns owning one line.
#[repr(align(128))]
struct Padded<T>(T);

/// A shard's state and when its earliest entry is due, published (in unix seconds, `i64::MAX`
/// for none) whenever the shard is released, so that a write finds shards with something to
/// sweep without locking the others.
trait Sweepable {
    fn earliest(&self) -> i64;
}

impl Sweepable for TokenShard {
    fn earliest(&self) -> i64 {
        self.expiry.earliest().unwrap_or(i64::MAX)
    }
}

impl Sweepable for FamilyShard {
    fn earliest(&self) -> i64 {
        let first = |q: &ExpiryQueue<FamilyKey>| q.earliest().unwrap_or(i64::MAX);
        first(&self.expiry).min(first(&self.revoked_expiry))
    }
}

/// Shards of one kind, and when each is next due.
struct Shards<T> {
    shards: Box<[Padded<Mutex<T>>]>,
    due: Box<[AtomicI64]>,
    /// The latest second at which a sweep found every shard swept of what was due: until the
    /// clock reaches the next second, writes need not look (nothing saved at a second is due at
    /// it: every entry is saved to lapse later than the `now` it is saved at).
    swept_through: AtomicI64,
}

impl<T: Default + Sweepable> Shards<T> {
    fn new(n: usize) -> Self {
        // A power of two, so that an index is masked (see `mask`).
        let n = n.max(1).next_power_of_two();
        Self {
            shards: (0..n).map(|_| Padded(Mutex::default())).collect(),
            due: (0..n).map(|_| AtomicI64::new(i64::MAX)).collect(),
            swept_through: AtomicI64::new(i64::MIN),
        }
    }

    /// What an index is masked with to name a shard: there is a power of two of them (see
    /// `parts_per_thread`), so a mask does what a remainder would without a division.
    fn mask(&self) -> usize {
        self.shards.len().saturating_sub(1)
    }

    fn lock(&self, i: usize) -> Option<Held<'_, T>> {
        let shard = self.shards.get(i)?;
        let due = self.due.get(i)?;
        Some(Held {
            guard: lock(&shard.0),
            due,
        })
    }

    /// Locks the shards `which` names, in index order: for the few shards of one step. Each
    /// index is worked out once (a family's means hashing its id) and sorted on the stack; more
    /// than eight go to [`lock_many`](Self::lock_many).
    fn lock_few(&self, which: impl Iterator<Item = usize>) -> HeldSet<'_, T> {
        let mut few = [0usize; 8];
        let mut n = 0;
        let mut more = Vec::new();
        for i in which {
            match few.get_mut(n) {
                Some(slot) => {
                    *slot = i;
                    n += 1;
                }
                None => more.push(i),
            }
        }
        if !more.is_empty() {
            more.extend_from_slice(&few);
            return self.lock_many(more);
        }
        let few = few.get_mut(..n).unwrap_or_default();
        few.sort_unstable();
        let mut set = HeldSet::default();
        let mut last = None;
        for &i in few.iter() {
            if last != Some(i) {
                if let Some(held) = self.lock(i) {
                    set.push(i, held);
                }
                last = Some(i);
            }
        }
        set
    }

    /// Locks the shards `which` names, in index order: for many.
    fn lock_many(&self, mut which: Vec<usize>) -> HeldSet<'_, T> {
        which.sort_unstable();
        which.dedup();
        let mut set = HeldSet::default();
        for i in which {
            if let Some(held) = self.lock(i) {
                set.push(i, held);
            }
        }
        set
    }

    /// Sweeps the shards that have something due at `now`, one at a time, starting at `start`,
    /// until `sweep` has looked at `SWEEP_BATCH` entries in all.
    ///
    /// Once a sweep at a second leaves budget over, every shard is clear of what is due then, so
    /// later writes in that second skip the walk (one atomic read instead of one per shard).
    fn sweep(&self, now: i64, start: usize, mut sweep: impl FnMut(&mut T, usize) -> usize) {
        if self.swept_through.load(Ordering::Relaxed) >= now {
            return;
        }
        let n = self.shards.len();
        let mut budget = SWEEP_BATCH;
        for k in 0..n {
            let i = (start + k) % n;
            if budget == 0 {
                break;
            }
            if self
                .due
                .get(i)
                .is_none_or(|d| d.load(Ordering::Relaxed) > now)
            {
                continue;
            }
            if let Some(mut held) = self.lock(i) {
                budget = budget.saturating_sub(sweep(&mut *held.guard, budget));
            }
        }
        if budget > 0 {
            self.swept_through.fetch_max(now, Ordering::Relaxed);
        }
    }

    fn each(&self, mut f: impl FnMut(&mut T)) {
        for i in 0..self.shards.len() {
            if let Some(mut held) = self.lock(i) {
                f(&mut *held.guard);
            }
        }
    }

    /// Locks shard `i` for a step that leaves its expiry index as it was (a lookup, a removal).
    fn lock_plain(&self, i: usize) -> Option<MutexGuard<'_, T>> {
        Some(lock(&self.shards.get(i)?.0))
    }
}

/// A locked shard; releasing it publishes when it is next due.
struct Held<'a, T: Sweepable> {
    guard: MutexGuard<'a, T>,
    due: &'a AtomicI64,
}

impl<T: Sweepable> Drop for Held<'_, T> {
    fn drop(&mut self) {
        let earliest = self.guard.earliest();
        if self.due.load(Ordering::Relaxed) != earliest {
            self.due.store(earliest, Ordering::Relaxed);
        }
    }
}

/// Several locked shards, by index: the first few in place, the rest in a `Vec`.
struct HeldSet<'a, T: Sweepable> {
    few: [Option<(usize, Held<'a, T>)>; 4],
    more: Vec<(usize, Held<'a, T>)>,
}

impl<T: Sweepable> Default for HeldSet<'_, T> {
    fn default() -> Self {
        Self {
            few: [const { None }; 4],
            more: Vec::new(),
        }
    }
}

impl<'a, T: Sweepable> HeldSet<'a, T> {
    fn push(&mut self, i: usize, held: Held<'a, T>) {
        match self.few.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some((i, held)),
            None => self.more.push((i, held)),
        }
    }

    fn get(&mut self, i: usize) -> Option<&mut T> {
        self.few
            .iter_mut()
            .flatten()
            .chain(self.more.iter_mut())
            .find(|(j, _)| *j == i)
            .map(|(_, held)| &mut *held.guard)
    }
}

/// Tokens kept in memory by [`TokenHash`], in shards, with a family index.
///
/// An entry counts as gone once the `now` a method is called with reaches its `expires_at`, so
/// it behaves like a cache with TTLs. Expired entries are dropped as the store is written to (a
/// bounded batch per write, from an index by expiry), and on demand with
/// [`purge_expired`](MemoryTokenStore::purge_expired).
///
/// Tokens live in shards by hash, families in shards by family, each behind a lock of its own,
/// so requests on several threads seldom wait for each other; each method is still one atomic
/// step, as [`TokenStore`] asks. A token costs one cache line in its shard's table (its hash, its
/// kind, its times in seconds, and a pointer to the client and scope it shares with the shard's
/// other tokens, which each shard keeps a copy of its own of), so that a lookup in a store far
/// larger than the caches reads one line from memory; and its hash in the index by expiry. A
/// token that stands alone (no family) costs no family entry.
pub struct MemoryTokenStore {
    tokens: Shards<TokenShard>,
    families: Shards<FamilyShard>,
    family_hasher: BuildHasherDefault<FoldHasher>,
}

impl Default for MemoryTokenStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        // Four shards a thread, at least 64: two threads seldom want the same one.
        let n = super::parts_per_thread(4, 64, 1024);
        Self {
            tokens: Shards::new(n),
            families: Shards::new(n),
            family_hasher: BuildHasherDefault::default(),
        }
    }

    /// Drops every entry that has expired at `now`, and gives the memory back.
    pub fn purge_expired(&self, now: OffsetDateTime) {
        let secs = now.unix_timestamp();
        self.tokens.each(|shard| {
            shard.sweep(secs, usize::MAX);
            if shard.entries.is_empty() {
                *shard = TokenShard::default();
            } else {
                shard.entries.shrink_to_fit();
                shard.interned.prune();
                shard.interned.pairs.shrink_to_fit();
            }
        });
        self.families.each(|shard| {
            shard.sweep(now, usize::MAX);
            shard.families.shrink_to_fit();
            shard.revoked.shrink_to_fit();
            shard.expiry.shrink();
            shard.revoked_expiry.shrink();
        });
    }

    /// How many entries (live tokens and spent marks) the store holds, expired or not.
    pub fn len(&self) -> usize {
        let mut n = 0;
        self.tokens.each(|shard| n += shard.entries.len());
        n
    }

    /// Whether the store holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry, for inspection: the hash and what the store keeps under it.
    pub fn snapshot(&self) -> Vec<(TokenHash, TokenLookup)> {
        let mut out = Vec::new();
        self.tokens.each(|shard| {
            out.extend(
                shard
                    .entries
                    .iter()
                    .map(|slot| (slot.hash, slot.entry.lookup())),
            );
        });
        out
    }

    /// The token shard `hash` lives in.
    fn token_shard(&self, hash: &TokenHash) -> usize {
        // The digest's second word: independent of its first, which places the token in the
        // shard's table. (Truncating on 32-bit targets keeps it uniform.)
        digest_word(hash.as_bytes(), 1) as usize & self.tokens.mask()
    }

    /// The family shard `family` lives in.
    fn family_shard(&self, family: &FamilyId) -> usize {
        self.shard_of_family_hash(self.family_hasher.hash_one(family))
    }

    /// The family shard of the family whose hash is `hash`.
    fn shard_of_family_hash(&self, hash: u64) -> usize {
        // The hash's high half: the shard's own family maps place keys by its low bits, so a
        // shard chosen by those would crowd its families into a fraction of each map.
        (hash >> 32) as usize & self.families.mask()
    }

    /// `family` as the family maps key it.
    fn family_key(&self, family: &FamilyId) -> FamilyKey {
        FamilyKey {
            hash: self.family_hasher.hash_one(family),
            id: family.clone(),
        }
    }

    /// Sweeps a bounded batch of what is due at `now`, starting from shard `start`.
    fn sweep(&self, now: OffsetDateTime, start: usize) {
        let secs = now.unix_timestamp();
        self.tokens
            .sweep(secs, start, |shard, max| shard.sweep(secs, max));
        self.families
            .sweep(secs, start, |shard, max| shard.sweep(now, max));
    }

    fn lock_families<'f>(
        &self,
        families: impl Iterator<Item = &'f FamilyId>,
    ) -> HeldSet<'_, FamilyShard> {
        self.families
            .lock_few(families.map(|f| self.family_shard(f)))
    }

    fn lock_tokens<'h>(
        &self,
        hashes: impl Iterator<Item = &'h TokenHash>,
    ) -> HeldSet<'_, TokenShard> {
        self.tokens.lock_few(hashes.map(|h| self.token_shard(h)))
    }

    /// Whether a family of `tokens` is revoked at `now` (their family shards held).
    fn any_revoked(
        &self,
        families: &mut HeldSet<'_, FamilyShard>,
        tokens: &[(TokenHash, TokenRecord)],
        now: OffsetDateTime,
    ) -> bool {
        tokens.iter().any(|(_, r)| {
            r.family_id.as_ref().is_some_and(|family| {
                families
                    .get(self.family_shard(family))
                    // A shard with no revoked family (the usual case) needs no key built.
                    .is_some_and(|shard| {
                        !shard.revoked.is_empty() && shard.is_revoked(&self.family_key(family), now)
                    })
            })
        })
    }

    /// Puts `new` under `hash` and adds it to its family (the shards held).
    fn put(
        &self,
        families: &mut HeldSet<'_, FamilyShard>,
        shards: &mut HeldSet<'_, TokenShard>,
        hash: TokenHash,
        new: New<'_>,
        now: i64,
    ) {
        if let Some(family) = new.family() {
            let key = self.family_key(family);
            if let Some(shard) = families.get(self.shard_of_family_hash(key.hash)) {
                shard.add(&key, hash, new.expires_at(), now);
            }
        }
        if let Some(shard) = shards.get(self.token_shard(&hash)) {
            shard.put(hash, new);
        }
    }

    /// Saves the unexpired ones of `tokens` (the shards held).
    fn save(
        &self,
        families: &mut HeldSet<'_, FamilyShard>,
        shards: &mut HeldSet<'_, TokenShard>,
        tokens: &[(TokenHash, TokenRecord)],
        now: OffsetDateTime,
    ) {
        for (hash, record) in tokens {
            if record.expires_at > now {
                self.put(
                    families,
                    shards,
                    *hash,
                    New::Live(record),
                    now.unix_timestamp(),
                );
            }
        }
    }

    /// What `find_token` answers.
    fn lookup(&self, hash: &TokenHash, now: OffsetDateTime) -> TokenLookup {
        let Some(mut shard) = self.tokens.lock_plain(self.token_shard(hash)) else {
            return TokenLookup::Unknown;
        };
        shard
            .current(hash, now.unix_timestamp(), Entry::lookup)
            .unwrap_or(TokenLookup::Unknown)
    }
}

impl fmt::Debug for MemoryTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTokenStore")
            .field("entries", &self.len())
            .field("shards", &self.tokens.shards.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TokenStore for MemoryTokenStore {
    async fn save_tokens(
        &self,
        tokens: &[(TokenHash, TokenRecord)],
        now: OffsetDateTime,
    ) -> Result<TokenSave, StoreError> {
        let Some((first, _)) = tokens.first() else {
            return Ok(TokenSave::Saved);
        };
        self.sweep(now, self.token_shard(first));
        let mut families =
            self.lock_families(tokens.iter().filter_map(|(_, r)| r.family_id.as_ref()));
        if self.any_revoked(&mut families, tokens, now) {
            return Ok(TokenSave::FamilyRevoked);
        }
        let mut shards = self.lock_tokens(tokens.iter().map(|(h, _)| h));
        self.save(&mut families, &mut shards, tokens, now);
        Ok(TokenSave::Saved)
    }

    async fn find_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<TokenLookup, StoreError> {
        Ok(self.lookup(hash, now))
    }

    fn find_token_in_memory(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Option<Result<TokenLookup, StoreError>> {
        Some(Ok(self.lookup(hash, now)))
    }

    async fn update_tokens(
        &self,
        change: &TokenChange,
        now: OffsetDateTime,
    ) -> Result<TokenUpdate, StoreError> {
        let secs = now.unix_timestamp();
        let hashes = || {
            let expected = change.expect.iter().map(|(h, _)| h);
            let marked = change.mark.iter().map(|(h, _)| h);
            expected
                .chain(marked)
                .chain(change.insert.iter().map(|(h, _)| h))
        };
        if let Some(first) = hashes().next() {
            self.sweep(now, self.token_shard(first));
        }
        let marked = change.mark.iter().map(|(_, m)| &m.family_id);
        let inserted = change
            .insert
            .iter()
            .filter_map(|(_, r)| r.family_id.as_ref());
        let mut families = self.lock_families(marked.chain(inserted));
        let mut shards = self.lock_tokens(hashes());
        for (hash, expected) in &change.expect {
            let holds = shards
                .get(self.token_shard(hash))
                .and_then(|shard| shard.current(hash, secs, |e| e.is(expected)))
                .unwrap_or(false);
            if !holds {
                return Ok(TokenUpdate::Conflict);
            }
        }
        if self.any_revoked(&mut families, &change.insert, now) {
            return Ok(TokenUpdate::FamilyRevoked);
        }
        for (hash, mark) in &change.mark {
            if mark.keep_until > now {
                self.put(&mut families, &mut shards, *hash, New::Spent(mark), secs);
            } else if let Some(shard) = shards.get(self.token_shard(hash)) {
                shard.remove(hash);
            }
        }
        self.save(&mut families, &mut shards, &change.insert, now);
        Ok(TokenUpdate::Applied)
    }

    async fn revoke_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let Some(mut shard) = self.tokens.lock_plain(self.token_shard(hash)) else {
            return Ok(None);
        };
        let live = shard.current(hash, now.unix_timestamp(), |e| matches!(e, Entry::Live(_)));
        if live != Some(true) {
            return Ok(None);
        }
        Ok(match shard.remove(hash) {
            Some(Entry::Live(live)) => Some(Entry::record(&live)),
            _ => None,
        })
    }

    async fn revoke_family(
        &self,
        family: &FamilyId,
        remember_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let secs = now.unix_timestamp();
        let key = self.family_key(family);
        let Some(mut held) = self.families.lock(self.shard_of_family_hash(key.hash)) else {
            return Ok(0);
        };
        let families = &mut held.guard;
        families.mark_revoked(&key, remember_until, now);
        let Some(members) = families.families.get_mut(&key) else {
            return Ok(0);
        };
        let mut shards = self.tokens.lock_many(
            members
                .tokens
                .iter()
                .map(|(h, _)| self.token_shard(h))
                .collect(),
        );
        let mut revoked = 0;
        members.tokens.retain(|(hash, lapses)| {
            let Some(shard) = shards.get(self.token_shard(hash)) else {
                return false;
            };
            match shard.get(hash) {
                // A member's entry may have been replaced since: only this family's is removed.
                Some(Entry::Live(live))
                    if live.extra.as_ref().and_then(|e| e.family_id.as_ref()) == Some(family) =>
                {
                    if live.expires_at.get() > secs {
                        revoked += 1;
                    }
                    shard.remove(hash);
                    false
                }
                // Spent marks stay, and so does their membership.
                Some(entry @ Entry::Spent(_)) => entry.family() == Some(family) && *lapses > secs,
                _ => false,
            }
        });
        drop(shards);
        if members.tokens.is_empty() {
            families.families.remove(&key);
        }
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_families_of_one_shard_spread_over_its_maps() {
        // A shard's family maps place keys by the low bits of the same hash: the shard must be
        // chosen by other bits, or all of its families would share those bits.
        let store = MemoryTokenStore::new();
        let low_bits: std::collections::HashSet<u64> = (0..20_000)
            .map(|_| FamilyId::generate())
            .filter(|f| store.family_shard(f) == 0)
            .map(|f| store.family_hasher.hash_one(&f) & 7)
            .collect();
        assert!(low_bits.len() >= 6, "{low_bits:?}");
    }

    #[test]
    fn entries_stay_compact() {
        // A live entry: what it shares (client, scope), the box of the rest, two times, a kind.
        assert!(
            std::mem::size_of::<Entry>() <= 32,
            "{}",
            std::mem::size_of::<Entry>()
        );
        // A slot, hash and entry, is one cache line, and so is an empty one.
        assert_eq!(std::mem::size_of::<Slot>(), 64);
        assert_eq!(std::mem::align_of::<Slot>(), 64);
        assert_eq!(std::mem::size_of::<Option<Slot>>(), 64);
    }

    #[test]
    fn times_keep_every_second_an_instant_can_have() {
        let extremes = [
            OffsetDateTime::new_utc(time::Date::MIN, time::Time::MIDNIGHT),
            OffsetDateTime::new_utc(time::Date::MAX, time::Time::MAX),
        ];
        for secs in [0, 1, -1, 65_535, 65_536, 1 << 32, -(1 << 32), 1_800_000_000]
            .into_iter()
            .chain(extremes.map(OffsetDateTime::unix_timestamp))
        {
            assert_eq!(Secs::new(secs).get(), secs);
        }
    }

    fn hash(i: u32) -> TokenHash {
        let mut bytes = [0u8; 32];
        for (slot, b) in bytes.iter_mut().zip(i.to_le_bytes()) {
            *slot = b;
        }
        TokenHash::from_bytes(bytes)
    }

    fn record(client: &str) -> TokenRecord {
        TokenRecord {
            kind: TokenKind::Access,
            client_id: ClientId::new(client),
            user_id: None,
            username: None,
            scope: Scope::parse("read write").unwrap_or_default(),
            issued_at: at(1_000),
            expires_at: at(5_000),
            family_id: None,
            audience: Vec::new(),
        }
    }

    fn shared(shard: &TokenShard, hash: &TokenHash) -> Option<Arc<Shared>> {
        match shard.get(hash) {
            Some(Entry::Live(live)) => Some(Arc::clone(&live.shared)),
            _ => None,
        }
    }

    #[test]
    fn a_shard_shares_its_own_copy_of_client_and_scope() {
        let mut shard = TokenShard::default();
        let r = record("service");
        shard.put(hash(1), New::Live(&r));
        shard.put(hash(2), New::Live(&r));
        let (Some(one), Some(two)) = (shared(&shard, &hash(1)), shared(&shard, &hash(2))) else {
            panic!("both saved");
        };
        assert!(Arc::ptr_eq(&one, &two));
        // Copies, not the caller's strings: other shards' threads never touch these counts.
        assert_ne!(
            one.client_id.as_str().as_ptr(),
            r.client_id.as_str().as_ptr()
        );
        assert_ne!(one.scope.as_str().as_ptr(), r.scope.as_str().as_ptr());
        let found = shard.current(&hash(1), 2_000, Entry::lookup);
        assert_eq!(found, Some(TokenLookup::Live(r)));
    }

    #[test]
    fn pairs_taken_in_turns_are_each_shared() {
        // The last pair is a shortcut: a pair come back to after another is still the same one.
        let mut shard = TokenShard::default();
        let (a, b) = (record("client-a"), record("client-b"));
        for (i, r) in [&a, &b, &a, &b, &a].into_iter().enumerate() {
            shard.put(hash(i as u32), New::Live(r));
        }
        let got = |i: u32| shared(&shard, &hash(i)).expect("saved");
        assert!(Arc::ptr_eq(&got(0), &got(2)) && Arc::ptr_eq(&got(0), &got(4)));
        assert!(Arc::ptr_eq(&got(1), &got(3)));
        assert!(!Arc::ptr_eq(&got(0), &got(1)));
        assert_eq!(got(1).client_id.as_str(), "client-b");
        assert_eq!(shard.interned.pairs.len(), 2);
    }

    #[test]
    fn a_shard_drops_pairs_no_token_uses() {
        let mut shard = TokenShard::default();
        let kept = record("kept");
        shard.put(hash(0), New::Live(&kept));
        for i in 1..1000 {
            shard.put(hash(i), New::Live(&record(&format!("client-{i}"))));
            shard.remove(&hash(i));
        }
        assert!(
            shard.interned.pairs.len() <= 2 * MIN_INTERNED,
            "{}",
            shard.interned.pairs.len()
        );
        // The pair still in use is kept, and shared by the next token of that client.
        shard.put(hash(1000), New::Live(&kept));
        let (Some(first), Some(next)) = (shared(&shard, &hash(0)), shared(&shard, &hash(1000)))
        else {
            panic!("both saved");
        };
        assert!(Arc::ptr_eq(&first, &next));
    }

    #[test]
    fn a_few_shards_are_locked_once_each_in_order() {
        let shards: Shards<TokenShard> = Shards::new(64);
        // Within the stack's eight, past them, with repeats, and in no order.
        for which in [
            vec![5, 3, 5, 1],
            vec![9, 9, 9],
            vec![40, 2, 17, 2, 63, 0, 8, 33, 17, 12, 7, 50, 0, 29],
            (0..64).rev().collect(),
        ] {
            let mut expected = which.clone();
            expected.sort_unstable();
            expected.dedup();
            let mut held = shards.lock_few(which.iter().copied());
            let order: Vec<usize> = held
                .few
                .iter()
                .flatten()
                .chain(held.more.iter())
                .map(|(i, _)| *i)
                .collect();
            assert_eq!(order, expected, "{which:?}");
            assert!(expected.iter().all(|i| held.get(*i).is_some()));
            assert!(held.get(64).is_none());
        }
    }

    #[test]
    fn tokens_and_families_reach_every_shard() {
        let store = MemoryTokenStore::new();
        let n = store.tokens.shards.len();
        assert!(n.is_power_of_two() && n == store.families.shards.len());
        let mut tokens = vec![0usize; n];
        let mut families = vec![0usize; n];
        for i in 0..(n * 64) as u64 {
            let hash = TokenHash::of_presented(&i.to_string());
            if let Some(count) = tokens.get_mut(store.token_shard(&hash)) {
                *count += 1;
            }
            if let Some(count) = families.get_mut(store.family_shard(&FamilyId::generate())) {
                *count += 1;
            }
        }
        assert!(tokens.iter().all(|c| *c > 0), "{tokens:?}");
        assert!(families.iter().all(|c| *c > 0), "{families:?}");
    }

    #[test]
    fn family_keys_with_one_hash_stay_apart() {
        // Two ids whose words collide are still two families: a key is its id, the hash only
        // places it.
        let key = |id: &str| FamilyKey {
            hash: 7,
            id: FamilyId::new(id),
        };
        let mut shard = FamilyShard::default();
        shard.add(&key("a"), TokenHash::from_bytes([1; 32]), 100, 0);
        shard.add(&key("b"), TokenHash::from_bytes([2; 32]), 100, 0);
        shard.add(&key("a"), TokenHash::from_bytes([3; 32]), 100, 0);
        let members = |id: &str| shard.families.get(&key(id)).map(|m| m.tokens.len());
        assert_eq!(
            (members("a"), members("b"), members("c")),
            (Some(2), Some(1), None)
        );
        let now = OffsetDateTime::UNIX_EPOCH;
        shard.mark_revoked(&key("b"), at(100), now);
        assert!(shard.is_revoked(&key("b"), now) && !shard.is_revoked(&key("a"), now));
    }

    #[test]
    fn a_family_key_is_hashed_by_its_word() {
        let store = MemoryTokenStore::new();
        let family = FamilyId::generate();
        let key = store.family_key(&family);
        assert_eq!(key.hash, store.family_hasher.hash_one(&family));
        let hashed = BuildHasherDefault::<super::super::digest::DigestHasher>::default();
        assert_eq!(hashed.hash_one(&key), key.hash);
    }

    #[test]
    fn family_lists_are_pruned_as_they_double() {
        let family = MemoryTokenStore::new().family_key(&FamilyId::new("f"));
        let mut shard = FamilyShard::default();
        let hash = |i: u32| {
            let mut bytes = [0u8; 32];
            for (slot, b) in bytes.iter_mut().zip(i.to_le_bytes()) {
                *slot = b;
            }
            TokenHash::from_bytes(bytes)
        };
        // A thousand rotations, each member lapsing at 10 + i: adding never scans the list...
        for i in 0..1000 {
            shard.add(&family, hash(i), 10 + i64::from(i), 0);
        }
        let listed = |shard: &FamilyShard| shard.families.get(&family).map(|m| m.tokens.len());
        assert_eq!(listed(&shard), Some(1000));
        // ...and once most have lapsed, the next doubling drops them.
        for i in 1000..1100 {
            shard.add(&family, hash(i), 5000, 1000);
        }
        assert!(
            listed(&shard).is_some_and(|n| n < 200),
            "{:?}",
            listed(&shard)
        );
    }
}
