//! In-memory implementations of every hook: the defaults for one process, for tests and demos.
//!
//! Each is `Send + Sync` and shareable across threads (wrap it in an `Arc`). State lives behind a
//! `std::sync::Mutex` held only for the duration of one method, which is what makes each method
//! atomic. Time comes in as the `now` argument of each method, never from a clock of the store's
//! own.
//!
//! Expired entries are dropped as the store is written to, a bounded batch per write, from an
//! index of entries by the second they expire: no write ever walks a whole map under its lock,
//! so a store that has grown large does not stall the requests behind it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::expiry::{ExpiryQueue, SWEEP_BATCH};
use super::{
    polled_too_soon, Admission, AttemptKey, AttemptLease, AttemptLimiter, AttemptRule,
    AttemptVerdict, ClientStore, CodeGrant, CodeRedemption, CodeStore, DeviceAuthorization,
    DeviceCodeStore, DeviceDecision, DevicePoll, DeviceSave, DeviceStatus, MfaChallenge, MfaStore,
    PendingAuthorization, PendingLimits, Rotation, TokenKind, TokenLookup, TokenRecord, TokenStore,
    UserVerdict, UserVerifier, EXPIRED_DEVICE_CODE_MEMORY, REVOKED_FAMILY_MEMORY,
};
use crate::client::Client;
use crate::error::StoreError;
use crate::token::{SecretHash, TokenHash};
use crate::types::{ClientId, ClientSecret, FamilyId, Password, UserId, Username};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these maps half-updated in a way that matters
    // more than losing the whole store would, so keep serving.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Clients kept in a map.
///
/// ```
/// use grantor::{Client, MemoryClientStore};
///
/// let clients = MemoryClientStore::new();
/// clients.insert(Client::public("spa"));
/// ```
#[derive(Default)]
pub struct MemoryClientStore {
    clients: RwLock<HashMap<ClientId, Client>>,
}

impl MemoryClientStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a client.
    pub fn insert(&self, client: Client) {
        self.clients
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(client.id.clone(), client);
    }

    /// Removes a client.
    pub fn remove(&self, id: &ClientId) -> Option<Client> {
        self.clients
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
    }
}

impl FromIterator<Client> for MemoryClientStore {
    fn from_iter<I: IntoIterator<Item = Client>>(iter: I) -> Self {
        let store = Self::new();
        for c in iter {
            store.insert(c);
        }
        store
    }
}

impl fmt::Debug for MemoryClientStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self
            .clients
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("MemoryClientStore")
            .field("clients", &n)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ClientStore for MemoryClientStore {
    async fn find_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        Ok(self
            .clients
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned())
    }
}

/// Users kept in a map, with passwords as salted SHA-256 hashes.
///
/// For tests and demos.
///
/// # Security
///
/// Passwords are kept as salted SHA-256, which is fast: a leaked copy of this map can be
/// brute-forced. Real user passwords deserve a slow KDF (argon2, scrypt, bcrypt): implement
/// [`UserVerifier`] over your own user table, as `examples/axum_server.rs` does with argon2.
///
/// ```
/// use grantor::MemoryUserVerifier;
///
/// let users = MemoryUserVerifier::new();
/// users.add_user("tom", "user-1", "123456");
/// ```
#[derive(Default)]
pub struct MemoryUserVerifier {
    users: RwLock<HashMap<String, (UserId, SecretHash)>>,
}

impl MemoryUserVerifier {
    /// No users.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a user. The password is hashed at once; the plain text is not kept.
    pub fn add_user(&self, username: &str, user_id: impl Into<UserId>, password: &str) {
        let hash = SecretHash::new(&ClientSecret::new(password));
        self.users
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(username.to_owned(), (user_id.into(), hash));
    }
}

impl fmt::Debug for MemoryUserVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryUserVerifier").finish_non_exhaustive()
    }
}

#[async_trait]
impl UserVerifier for MemoryUserVerifier {
    async fn verify_password(
        &self,
        username: &Username,
        password: &Password,
        _client: &ClientId,
    ) -> Result<UserVerdict, StoreError> {
        let found = self
            .users
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(username.as_str())
            .cloned();
        let presented = ClientSecret::new(password.secret());
        Ok(match found {
            Some((id, hash)) if hash.verify(&presented) => UserVerdict::Authenticated(id),
            Some(_) => UserVerdict::Refused,
            None => {
                // Same work as for a known user, so timing does not reveal who exists.
                let _ = SecretHash::decoy().verify(&presented);
                UserVerdict::Refused
            }
        })
    }
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
fn shrink_if_sparse<K: Eq + Hash, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 1024 && map.len() < map.capacity() / 8 {
        map.shrink_to_fit();
    }
}

#[derive(Clone, Debug)]
enum Entry {
    Live(TokenRecord),
    Rotated {
        client_id: ClientId,
        family: FamilyId,
        expires_at: OffsetDateTime,
        rotated_at: OffsetDateTime,
        successor: Option<TokenHash>,
    },
}

impl Entry {
    fn expires_at(&self) -> OffsetDateTime {
        match self {
            Entry::Live(r) => r.expires_at,
            Entry::Rotated { expires_at, .. } => *expires_at,
        }
    }

    fn family(&self) -> &FamilyId {
        match self {
            Entry::Live(r) => &r.family_id,
            Entry::Rotated { family, .. } => family,
        }
    }

    fn lookup(&self) -> TokenLookup {
        match self {
            Entry::Live(r) => TokenLookup::Live(r.clone()),
            Entry::Rotated {
                client_id,
                family,
                rotated_at,
                successor,
                ..
            } => TokenLookup::Rotated {
                client_id: client_id.clone(),
                family_id: family.clone(),
                rotated_at: *rotated_at,
                successor: *successor,
            },
        }
    }
}

/// The refresh token among newly minted tokens: the successor of the one it replaces.
fn refresh_of(tokens: &[(TokenHash, TokenRecord)]) -> Option<TokenHash> {
    tokens
        .iter()
        .find(|(_, r)| r.kind == TokenKind::Refresh)
        .map(|(h, _)| *h)
}

#[derive(Default)]
struct TokenState {
    entries: HashMap<TokenHash, Entry>,
    families: HashMap<FamilyId, HashSet<TokenHash>>,
    /// Recently revoked families, until when they are remembered.
    revoked: HashMap<FamilyId, OffsetDateTime>,
    expiry: ExpiryQueue<TokenHash>,
    revoked_expiry: ExpiryQueue<FamilyId>,
}

impl TokenState {
    fn insert(&mut self, hash: TokenHash, record: TokenRecord) {
        self.families
            .entry(record.family_id.clone())
            .or_default()
            .insert(hash);
        self.expiry.push(record.expires_at, hash);
        self.entries.insert(hash, Entry::Live(record));
    }

    fn remove(&mut self, hash: &TokenHash) -> Option<Entry> {
        let entry = self.entries.remove(hash)?;
        if let Some(set) = self.families.get_mut(entry.family()) {
            set.remove(hash);
            if set.is_empty() {
                self.families.remove(entry.family());
            }
        }
        Some(entry)
    }

    /// The entry for `hash` unless it has expired at `now` (an expired one is dropped).
    fn current(&mut self, hash: &TokenHash, now: OffsetDateTime) -> Option<&Entry> {
        if self.entries.get(hash)?.expires_at() <= now {
            self.remove(hash);
            return None;
        }
        self.entries.get(hash)
    }

    /// Whether any of `tokens` belongs to a family revoked recently.
    fn any_revoked(&self, tokens: &[(TokenHash, TokenRecord)], now: OffsetDateTime) -> bool {
        tokens.iter().any(|(_, r)| {
            self.revoked
                .get(&r.family_id)
                .is_some_and(|until| *until > now)
        })
    }

    /// Drops up to `max` entries (and as many revoked-family marks) due at `now`.
    fn sweep(&mut self, now: OffsetDateTime, max: usize) {
        let mut due = Vec::new();
        self.expiry.pop_due(now, max, |hash| due.push(hash));
        for hash in due {
            if self
                .entries
                .get(&hash)
                .is_some_and(|e| e.expires_at() <= now)
            {
                self.remove(&hash);
            }
        }
        let (revoked, revoked_expiry) = (&mut self.revoked, &mut self.revoked_expiry);
        revoked_expiry.pop_due(now, max, |family| {
            if revoked.get(&family).is_some_and(|until| *until <= now) {
                revoked.remove(&family);
            }
        });
        shrink_if_sparse(&mut self.entries);
        shrink_if_sparse(&mut self.families);
        shrink_if_sparse(&mut self.revoked);
    }
}

/// Tokens kept in a map keyed by [`TokenHash`], with a family index.
///
/// An entry counts as gone once the `now` a method is called with reaches its `expires_at`, so
/// it behaves like a cache with TTLs. Expired entries are dropped as the store is written to (a
/// bounded batch per write, from an index by expiry), and on demand with
/// [`purge_expired`](MemoryTokenStore::purge_expired).
#[derive(Default)]
pub struct MemoryTokenStore {
    state: Mutex<TokenState>,
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops every entry that has expired at `now`, and gives the memory back.
    pub fn purge_expired(&self, now: OffsetDateTime) {
        let mut state = lock(&self.state);
        state.sweep(now, usize::MAX);
        state.entries.shrink_to_fit();
        state.families.shrink_to_fit();
        state.revoked.shrink_to_fit();
        state.expiry.shrink();
        state.revoked_expiry.shrink();
    }

    /// How many entries (live tokens and rotation marks) the store holds, expired or not.
    pub fn len(&self) -> usize {
        lock(&self.state).entries.len()
    }

    /// Whether the store holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry, for inspection: the hash and what the store keeps under it.
    pub fn snapshot(&self) -> Vec<(TokenHash, TokenLookup)> {
        lock(&self.state)
            .entries
            .iter()
            .map(|(h, e)| (*h, e.lookup()))
            .collect()
    }
}

impl fmt::Debug for MemoryTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTokenStore")
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TokenStore for MemoryTokenStore {
    async fn save_tokens(
        &self,
        tokens: &[(TokenHash, TokenRecord)],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = lock(&self.state);
        state.sweep(now, SWEEP_BATCH);
        if state.any_revoked(tokens, now) {
            return Ok(false);
        }
        for (hash, record) in tokens {
            state.insert(*hash, record.clone());
        }
        Ok(true)
    }

    async fn find_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<TokenLookup, StoreError> {
        let mut state = lock(&self.state);
        Ok(state
            .current(hash, now)
            .map_or(TokenLookup::Unknown, Entry::lookup))
    }

    async fn rotate_refresh_token(
        &self,
        old: &TokenHash,
        client: &ClientId,
        new_tokens: &[(TokenHash, TokenRecord)],
        spend_old: bool,
        now: OffsetDateTime,
    ) -> Result<Rotation, StoreError> {
        let mut state = lock(&self.state);
        state.sweep(now, SWEEP_BATCH);
        let record = match state.current(old, now) {
            Some(Entry::Live(r)) if r.kind == TokenKind::Refresh && &r.client_id == client => {
                r.clone()
            }
            Some(Entry::Rotated {
                client_id, family, ..
            }) => {
                return Ok(Rotation::Reused {
                    client_id: client_id.clone(),
                    family_id: family.clone(),
                })
            }
            _ => return Ok(Rotation::NotFound),
        };
        if state.any_revoked(new_tokens, now) {
            return Ok(Rotation::NotFound);
        }
        if spend_old {
            state.entries.insert(
                *old,
                Entry::Rotated {
                    client_id: record.client_id.clone(),
                    family: record.family_id.clone(),
                    expires_at: record.expires_at,
                    rotated_at: whole_seconds(now),
                    successor: refresh_of(new_tokens),
                },
            );
        }
        for (hash, r) in new_tokens {
            state.insert(*hash, r.clone());
        }
        Ok(Rotation::Issued(record))
    }

    async fn reissue_rotated(
        &self,
        old: &TokenHash,
        successor: &TokenHash,
        client: &ClientId,
        new_tokens: &[(TokenHash, TokenRecord)],
        now: OffsetDateTime,
    ) -> Result<Rotation, StoreError> {
        let mut state = lock(&self.state);
        state.sweep(now, SWEEP_BATCH);
        let (client_id, family_id) = match state.current(old, now) {
            Some(Entry::Rotated {
                client_id, family, ..
            }) => (client_id.clone(), family.clone()),
            _ => return Ok(Rotation::NotFound),
        };
        let reused = Rotation::Reused {
            client_id: client_id.clone(),
            family_id,
        };
        let is_successor = matches!(
            state.entries.get(old),
            Some(Entry::Rotated { successor: Some(s), .. }) if s == successor
        );
        if &client_id != client || !is_successor {
            return Ok(reused);
        }
        let record = match state.current(successor, now) {
            Some(Entry::Live(r)) if r.kind == TokenKind::Refresh && &r.client_id == client => {
                r.clone()
            }
            _ => return Ok(reused),
        };
        if state.any_revoked(new_tokens, now) {
            return Ok(Rotation::NotFound);
        }
        state.entries.insert(
            *successor,
            Entry::Rotated {
                client_id: record.client_id.clone(),
                family: record.family_id.clone(),
                expires_at: record.expires_at,
                rotated_at: whole_seconds(now),
                successor: None,
            },
        );
        let next = refresh_of(new_tokens);
        if let Some(Entry::Rotated { successor, .. }) = state.entries.get_mut(old) {
            *successor = next;
        }
        for (hash, r) in new_tokens {
            state.insert(*hash, r.clone());
        }
        Ok(Rotation::Issued(record))
    }

    async fn revoke_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let mut state = lock(&self.state);
        if !matches!(state.current(hash, now), Some(Entry::Live(_))) {
            return Ok(None);
        }
        match state.remove(hash) {
            Some(Entry::Live(r)) => Ok(Some(r)),
            _ => Ok(None),
        }
    }

    async fn revoke_family(
        &self,
        family: &FamilyId,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut state = lock(&self.state);
        let until = now.saturating_add(time::Duration::seconds(REVOKED_FAMILY_MEMORY));
        state.revoked.insert(family.clone(), until);
        state.revoked_expiry.push(until, family.clone());
        let hashes: Vec<TokenHash> = state
            .families
            .get(family)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        let mut revoked = 0;
        for h in hashes {
            match state.entries.get(&h) {
                Some(Entry::Live(r)) => {
                    if r.expires_at > now {
                        revoked += 1;
                    }
                    state.remove(&h);
                }
                Some(Entry::Rotated { .. }) | None => {}
            }
        }
        Ok(revoked)
    }
}

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

/// A limiter key as the memory limiter keeps it: a digest, so that a 4096-byte username costs
/// 32 bytes, whatever is tried.
fn slot_key(key: &AttemptKey) -> TokenHash {
    TokenHash::of(&key.storage_key())
}

#[derive(Default)]
struct LimiterState {
    slots: HashMap<TokenHash, Slot>,
    expiry: ExpiryQueue<TokenHash>,
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
    fn settle(&mut self, key: TokenHash, now: OffsetDateTime) -> Option<&mut Slot> {
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
        let window = crate::token::to_time_duration(rule.window);
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
        slot.window = crate::token::to_time_duration(rule.window);
        slot.leases.retain(|l| l.id != lease.id);
        slot.settle(now);
        slot.fail(now);
        if let Some(ends) = slot.window_ends {
            state.expiry.push(ends, key);
        }
        Ok(())
    }
}

/// An authorization code, or what is left of it once spent.
#[derive(Clone, Debug)]
enum CodeEntry {
    Live(CodeGrant),
    Used {
        client_id: ClientId,
        family_id: FamilyId,
        /// When the code itself expires (a spent code may be given back until then).
        expires_at: OffsetDateTime,
        /// How long the used mark is kept: as long as the tokens issued from the code.
        until: OffsetDateTime,
    },
}

impl CodeEntry {
    fn client(&self) -> &ClientId {
        match self {
            Self::Live(grant) => &grant.client_id,
            Self::Used { client_id, .. } => client_id,
        }
    }

    /// Until when the entry is kept.
    fn kept_until(&self) -> OffsetDateTime {
        match self {
            Self::Live(grant) => grant.expires_at,
            Self::Used {
                expires_at, until, ..
            } => (*expires_at).max(*until),
        }
    }
}

#[derive(Default)]
struct CodeState {
    pending: HashMap<TokenHash, PendingAuthorization>,
    pending_counts: ClientCounts,
    pending_expiry: ExpiryQueue<TokenHash>,
    codes: HashMap<TokenHash, CodeEntry>,
    code_expiry: ExpiryQueue<TokenHash>,
}

impl CodeState {
    fn sweep(&mut self, now: OffsetDateTime, max: usize) {
        let mut due = Vec::new();
        self.pending_expiry.pop_due(now, max, |id| due.push(id));
        for id in due {
            if self.pending.get(&id).is_some_and(|p| p.expires_at <= now) {
                self.remove_pending(&id);
            }
        }
        let codes = &mut self.codes;
        self.code_expiry.pop_due(now, max, |code| {
            if codes.get(&code).is_some_and(|c| c.kept_until() <= now) {
                codes.remove(&code);
            }
        });
        shrink_if_sparse(&mut self.pending);
        shrink_if_sparse(&mut self.codes);
    }

    fn remove_pending(&mut self, id: &TokenHash) -> Option<PendingAuthorization> {
        let request = self.pending.remove(id)?;
        self.pending_counts.remove(&request.client_id);
        Some(request)
    }
}

/// Authorization requests and codes kept in maps.
#[derive(Default)]
pub struct MemoryCodeStore {
    state: Mutex<CodeState>,
}

impl MemoryCodeStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many requests and codes (live or spent) the store holds.
    pub fn len(&self) -> usize {
        let state = lock(&self.state);
        state.pending.len() + state.codes.len()
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every request and code (or used-code mark) that has expired at `now`.
    pub fn purge_expired(&self, now: OffsetDateTime) {
        let mut state = lock(&self.state);
        state.sweep(now, usize::MAX);
        state.pending.shrink_to_fit();
        state.codes.shrink_to_fit();
    }
}

impl fmt::Debug for MemoryCodeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCodeStore")
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl CodeStore for MemoryCodeStore {
    async fn save_pending(
        &self,
        id: &TokenHash,
        request: &PendingAuthorization,
        limits: &PendingLimits,
        now: OffsetDateTime,
    ) -> Result<Admission, StoreError> {
        let mut state = lock(&self.state);
        state.sweep(now, SWEEP_BATCH);
        if state.pending_counts.full(&request.client_id, limits) {
            // Expired requests may still be counted: drop them all before refusing. Each is
            // dropped once, so this costs no more over time than dropping them as they come.
            state.sweep(now, usize::MAX);
            if state.pending_counts.full(&request.client_id, limits) {
                return Ok(Admission::Full {
                    retry_after: wait_until(state.pending_expiry.earliest(), now),
                });
            }
        }
        if request.expires_at <= now {
            return Ok(Admission::Admitted);
        }
        if let Some(replaced) = state.pending.insert(*id, request.clone()) {
            state.pending_counts.remove(&replaced.client_id);
        }
        state.pending_counts.add(&request.client_id);
        state.pending_expiry.push(request.expires_at, *id);
        Ok(Admission::Admitted)
    }

    async fn find_pending(
        &self,
        id: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let state = lock(&self.state);
        Ok(state
            .pending
            .get(id)
            .filter(|p| p.expires_at > now)
            .cloned())
    }

    async fn take_pending(
        &self,
        id: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let mut state = lock(&self.state);
        Ok(state.remove_pending(id).filter(|p| p.expires_at > now))
    }

    async fn save_code(
        &self,
        code: &TokenHash,
        grant: &CodeGrant,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        state.sweep(now, SWEEP_BATCH);
        state.codes.insert(*code, CodeEntry::Live(grant.clone()));
        state.code_expiry.push(grant.expires_at, *code);
        Ok(())
    }

    async fn take_code(
        &self,
        code: &TokenHash,
        client: &ClientId,
        keep_used_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<CodeRedemption, StoreError> {
        let mut state = lock(&self.state);
        state.sweep(now, SWEEP_BATCH);
        let Some(entry) = state.codes.get_mut(code) else {
            return Ok(CodeRedemption::Unknown);
        };
        if entry.kept_until() <= now {
            return Ok(CodeRedemption::Unknown);
        }
        if entry.client() != client {
            return Ok(CodeRedemption::OtherClient);
        }
        let redeemed = match entry {
            CodeEntry::Used { family_id, .. } => {
                return Ok(CodeRedemption::AlreadyUsed {
                    family_id: family_id.clone(),
                })
            }
            CodeEntry::Live(grant) if grant.expires_at <= now => {
                return Ok(CodeRedemption::Unknown)
            }
            CodeEntry::Live(grant) => grant.clone(),
        };
        *entry = CodeEntry::Used {
            client_id: redeemed.client_id.clone(),
            family_id: redeemed.family_id.clone(),
            expires_at: redeemed.expires_at,
            until: keep_used_until,
        };
        let kept_until = entry.kept_until();
        state.code_expiry.push(kept_until, *code);
        Ok(CodeRedemption::Redeemed(redeemed))
    }

    async fn restore_code(
        &self,
        code: &TokenHash,
        grant: &CodeGrant,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = lock(&self.state);
        let Some(entry) = state.codes.get_mut(code) else {
            return Ok(false);
        };
        match entry {
            CodeEntry::Used {
                family_id,
                expires_at,
                ..
            } if *family_id == grant.family_id && *expires_at > now => {
                *entry = CodeEntry::Live(grant.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// A device authorization, and whether it still counts against the limits on pending requests
/// (until it expires, or its approval is collected).
struct HeldDevice {
    request: DeviceAuthorization,
    counted: bool,
}

/// What happens to a device authorization at a due time.
#[derive(Clone, Copy)]
enum DeviceStage {
    /// It expires: it stops counting, and its user code stops working.
    Expire,
    /// It is forgotten ([`EXPIRED_DEVICE_CODE_MEMORY`] after it expired).
    Forget,
}

#[derive(Default)]
struct DeviceState {
    /// Requests by device code hash.
    requests: HashMap<TokenHash, HeldDevice>,
    /// Device code hash by user code hash.
    user_codes: HashMap<TokenHash, TokenHash>,
    counts: ClientCounts,
    expiry: ExpiryQueue<(TokenHash, DeviceStage, Option<TokenHash>)>,
}

fn device_memory() -> time::Duration {
    time::Duration::seconds(EXPIRED_DEVICE_CODE_MEMORY)
}

impl DeviceState {
    fn sweep(&mut self, now: OffsetDateTime, max: usize) {
        let mut due = Vec::new();
        self.expiry.pop_due(now, max, |event| due.push(event));
        for (device, stage, user_code) in due {
            match stage {
                DeviceStage::Expire => {
                    if let Some(user_code) = user_code {
                        if self.user_codes.get(&user_code) == Some(&device) {
                            self.user_codes.remove(&user_code);
                        }
                    }
                    if let Some(held) = self.requests.get_mut(&device) {
                        if held.counted && held.request.expires_at <= now {
                            held.counted = false;
                            self.counts.remove(&held.request.client_id);
                        }
                    }
                }
                DeviceStage::Forget => {
                    let gone = self.requests.get(&device).is_some_and(|h| {
                        h.request.expires_at.saturating_add(device_memory()) <= now
                    });
                    if gone {
                        self.remove(&device);
                    }
                }
            }
        }
        shrink_if_sparse(&mut self.requests);
        shrink_if_sparse(&mut self.user_codes);
    }

    fn insert(
        &mut self,
        device: TokenHash,
        user_code: Option<TokenHash>,
        request: DeviceAuthorization,
        now: OffsetDateTime,
    ) {
        let counted = request.expires_at > now;
        if counted {
            self.counts.add(&request.client_id);
        }
        self.expiry
            .push(request.expires_at, (device, DeviceStage::Expire, user_code));
        self.expiry.push(
            request.expires_at.saturating_add(device_memory()),
            (device, DeviceStage::Forget, None),
        );
        if let Some(user_code) = user_code {
            self.user_codes.insert(user_code, device);
        }
        if let Some(old) = self
            .requests
            .insert(device, HeldDevice { request, counted })
        {
            if old.counted {
                self.counts.remove(&old.request.client_id);
            }
        }
    }

    fn remove(&mut self, device: &TokenHash) -> Option<DeviceAuthorization> {
        let held = self.requests.remove(device)?;
        if held.counted {
            self.counts.remove(&held.request.client_id);
        }
        Some(held.request)
    }

    /// The pending, unexpired request behind a user code.
    fn pending_mut(
        &mut self,
        user_code: &TokenHash,
        now: OffsetDateTime,
    ) -> Option<&mut DeviceAuthorization> {
        let device = self.user_codes.get(user_code)?;
        self.requests
            .get_mut(device)
            .map(|h| &mut h.request)
            .filter(|r| r.expires_at > now && r.status == DeviceStatus::Pending)
    }
}

/// Device authorization requests (RFC 8628) kept in maps.
#[derive(Default)]
pub struct MemoryDeviceCodeStore {
    state: Mutex<DeviceState>,
}

impl MemoryDeviceCodeStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many device authorizations (pending, decided or expired) the store holds.
    pub fn len(&self) -> usize {
        lock(&self.state).requests.len()
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for MemoryDeviceCodeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryDeviceCodeStore")
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl DeviceCodeStore for MemoryDeviceCodeStore {
    async fn save_device_authorization(
        &self,
        device_code: &TokenHash,
        user_code: &TokenHash,
        request: &DeviceAuthorization,
        limits: &PendingLimits,
        now: OffsetDateTime,
    ) -> Result<DeviceSave, StoreError> {
        let mut state = lock(&self.state);
        state.sweep(now, SWEEP_BATCH);
        let in_use = state
            .user_codes
            .get(user_code)
            .and_then(|device| state.requests.get(device))
            .is_some_and(|h| h.request.expires_at > now);
        if in_use {
            return Ok(DeviceSave::UserCodeInUse);
        }
        if state.counts.full(&request.client_id, limits) {
            state.sweep(now, usize::MAX);
            if state.counts.full(&request.client_id, limits) {
                return Ok(DeviceSave::Full {
                    retry_after: wait_until(state.expiry.earliest(), now),
                });
            }
        }
        state.insert(*device_code, Some(*user_code), request.clone(), now);
        Ok(DeviceSave::Saved)
    }

    async fn find_device_authorization(
        &self,
        user_code: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        let mut state = lock(&self.state);
        Ok(state.pending_mut(user_code, now).map(|r| r.clone()))
    }

    async fn decide_device_authorization(
        &self,
        user_code: &TokenHash,
        decision: &DeviceDecision,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = lock(&self.state);
        let Some(request) = state.pending_mut(user_code, now) else {
            return Ok(false);
        };
        request.status = decision.status();
        state.user_codes.remove(user_code);
        Ok(true)
    }

    async fn poll_device_authorization(
        &self,
        device_code: &TokenHash,
        client: &ClientId,
        now: OffsetDateTime,
    ) -> Result<DevicePoll, StoreError> {
        let mut state = lock(&self.state);
        state.sweep(now, SWEEP_BATCH);
        let Some(request) = state
            .requests
            .get_mut(device_code)
            .map(|h| &mut h.request)
            .filter(|r| r.expires_at.saturating_add(device_memory()) > now)
        else {
            return Ok(DevicePoll::Unknown);
        };
        if &request.client_id != client {
            return Ok(DevicePoll::OtherClient);
        }
        if request.expires_at <= now {
            return Ok(DevicePoll::Expired);
        }
        Ok(match &request.status {
            DeviceStatus::Approved { .. } => match state.remove(device_code) {
                Some(request) => DevicePoll::Approved(request),
                None => DevicePoll::Unknown,
            },
            DeviceStatus::Denied => DevicePoll::Denied,
            DeviceStatus::Pending => {
                let too_soon = polled_too_soon(request.last_poll, request.interval, now);
                request.last_poll = Some(whole_seconds(now));
                if too_soon {
                    request.interval = request.interval.saturating_add(5);
                    DevicePoll::SlowDown {
                        interval: request.interval,
                    }
                } else {
                    DevicePoll::Pending
                }
            }
        })
    }

    async fn restore_device_approval(
        &self,
        device_code: &TokenHash,
        request: &DeviceAuthorization,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = lock(&self.state);
        if state.requests.contains_key(device_code)
            || request.expires_at.saturating_add(device_memory()) <= now
        {
            return Ok(false);
        }
        state.insert(*device_code, None, request.clone(), now);
        Ok(true)
    }
}

#[derive(Default)]
struct MfaState {
    challenges: HashMap<TokenHash, MfaChallenge>,
    challenge_expiry: ExpiryQueue<TokenHash>,
    /// The last one-time code counter accepted per user, and until when it is held.
    counters: HashMap<UserId, (u64, OffsetDateTime)>,
    counter_expiry: ExpiryQueue<UserId>,
}

impl MfaState {
    fn sweep(&mut self, now: OffsetDateTime, max: usize) {
        let challenges = &mut self.challenges;
        self.challenge_expiry.pop_due(now, max, |token| {
            if challenges.get(&token).is_some_and(|c| c.expires_at <= now) {
                challenges.remove(&token);
            }
        });
        let counters = &mut self.counters;
        self.counter_expiry.pop_due(now, max, |user| {
            if counters.get(&user).is_some_and(|(_, until)| *until <= now) {
                counters.remove(&user);
            }
        });
        shrink_if_sparse(&mut self.challenges);
        shrink_if_sparse(&mut self.counters);
    }
}

/// `mfa_token`s and the last accepted one-time code of each user, kept in maps.
#[derive(Default)]
pub struct MemoryMfaStore {
    state: Mutex<MfaState>,
}

impl MemoryMfaStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many challenges and one-time-code marks the store holds.
    pub fn len(&self) -> usize {
        let state = lock(&self.state);
        state.challenges.len() + state.counters.len()
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for MemoryMfaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryMfaStore")
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl MfaStore for MemoryMfaStore {
    async fn save_mfa_token(
        &self,
        token: &TokenHash,
        challenge: &MfaChallenge,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        state.sweep(now, SWEEP_BATCH);
        state.challenges.insert(*token, challenge.clone());
        state.challenge_expiry.push(challenge.expires_at, *token);
        Ok(())
    }

    async fn find_mfa_token(
        &self,
        token: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<MfaChallenge>, StoreError> {
        let state = lock(&self.state);
        Ok(state
            .challenges
            .get(token)
            .filter(|c| c.expires_at > now)
            .cloned())
    }

    async fn take_mfa_token(
        &self,
        token: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<MfaChallenge>, StoreError> {
        let mut state = lock(&self.state);
        Ok(state
            .challenges
            .remove(token)
            .filter(|c| c.expires_at > now))
    }

    async fn advance_otp_counter(
        &self,
        user: &UserId,
        counter: u64,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = lock(&self.state);
        state.sweep(now, SWEEP_BATCH);
        let held = state
            .counters
            .get(user)
            .copied()
            .filter(|(_, held_until)| *held_until > now);
        let until = match held {
            Some((last, _)) if last >= counter => return Ok(false),
            Some((_, held_until)) => held_until.max(until),
            None => until,
        };
        if until > now {
            state.counters.insert(user.clone(), (counter, until));
            state.counter_expiry.push(until, user.clone());
        }
        Ok(true)
    }
}
