//! In-memory implementations of every hook: the defaults for one process, for tests and demos.
//!
//! Each is `Send + Sync` and shareable across threads (wrap it in an `Arc`). State lives behind a
//! `std::sync::Mutex` held only for the duration of one method, which is what makes each method
//! atomic. Time comes in as the `now` argument of each method, never from a clock of the store's
//! own. Expired entries are purged as the store is written to, at most once a minute.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{
    polled_too_soon, AttemptKey, AttemptLimiter, AttemptRule, AttemptVerdict, Client, ClientStore,
    CodeGrant, CodeRedemption, CodeStore, DeviceAuthorization, DeviceCodeStore, DeviceDecision,
    DevicePoll, DeviceStatus, MfaChallenge, MfaStore, PendingAuthorization, Rotation, TokenKind,
    TokenLookup, TokenRecord, TokenStore, UserVerdict, UserVerifier, EXPIRED_DEVICE_CODE_MEMORY,
};
use crate::error::StoreError;
use crate::token::{SecretHash, TokenHash};
use crate::types::{ClientId, ClientSecret, FamilyId, Password, UserId, Username};

const SWEEP_EVERY: time::Duration = time::Duration::minutes(1);

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

#[derive(Clone, Debug)]
enum Entry {
    Live(TokenRecord),
    Rotated {
        client_id: ClientId,
        family: FamilyId,
        expires_at: OffsetDateTime,
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
                client_id, family, ..
            } => TokenLookup::Rotated {
                client_id: client_id.clone(),
                family_id: family.clone(),
            },
        }
    }
}

#[derive(Default)]
struct TokenState {
    entries: HashMap<TokenHash, Entry>,
    families: HashMap<FamilyId, HashSet<TokenHash>>,
    /// Recently revoked families, until when they are remembered.
    revoked: HashMap<FamilyId, OffsetDateTime>,
    last_sweep: Option<OffsetDateTime>,
}

impl TokenState {
    fn insert(&mut self, hash: TokenHash, record: TokenRecord) {
        self.families
            .entry(record.family_id.clone())
            .or_default()
            .insert(hash);
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

    fn sweep_if_due(&mut self, now: OffsetDateTime) {
        match self.last_sweep {
            Some(last) if now - last < SWEEP_EVERY && now >= last => {}
            _ => self.sweep(now),
        }
    }

    /// Whether any of `tokens` belongs to a family revoked recently.
    fn any_revoked(&self, tokens: &[(TokenHash, TokenRecord)], now: OffsetDateTime) -> bool {
        tokens.iter().any(|(_, r)| {
            self.revoked
                .get(&r.family_id)
                .is_some_and(|until| *until > now)
        })
    }

    fn sweep(&mut self, now: OffsetDateTime) {
        self.revoked.retain(|_, until| *until > now);
        let expired: Vec<TokenHash> = self
            .entries
            .iter()
            .filter(|(_, e)| e.expires_at() <= now)
            .map(|(h, _)| *h)
            .collect();
        for h in &expired {
            self.remove(h);
        }
        // Give memory back once most of the map has expired.
        if self.entries.capacity() > 1024 && self.entries.len() < self.entries.capacity() / 4 {
            self.entries.shrink_to_fit();
            self.families.shrink_to_fit();
        }
        self.last_sweep = Some(now);
    }
}

/// Tokens kept in a map keyed by [`TokenHash`], with a family index.
///
/// An entry counts as gone once the `now` a method is called with reaches its `expires_at`, so
/// it behaves like a cache with TTLs. Expired entries are swept out as the store is written to
/// (at most once a minute), and on demand with [`purge_expired`](MemoryTokenStore::purge_expired).
#[derive(Default)]
pub struct MemoryTokenStore {
    state: Mutex<TokenState>,
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops every entry that has expired at `now`.
    pub fn purge_expired(&self, now: OffsetDateTime) {
        lock(&self.state).sweep(now);
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
        state.sweep_if_due(now);
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
        state.sweep_if_due(now);
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
                },
            );
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
        state.revoked.insert(
            family.clone(),
            now.saturating_add(time::Duration::seconds(super::REVOKED_FAMILY_MEMORY)),
        );
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

/// Failed-attempt counters kept in a map, one fixed window per key.
///
/// Counts are per process: several servers behind one address need a shared limiter (the Redis
/// store), or an attacker gets each server's allowance.
#[derive(Default)]
pub struct MemoryAttemptLimiter {
    windows: Mutex<LimiterState>,
}

#[derive(Default)]
struct LimiterState {
    windows: HashMap<AttemptKey, (u32, OffsetDateTime)>,
    last_sweep: Option<OffsetDateTime>,
}

impl MemoryAttemptLimiter {
    /// No counts.
    pub fn new() -> Self {
        Self::default()
    }
}

impl fmt::Debug for MemoryAttemptLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryAttemptLimiter")
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl AttemptLimiter for MemoryAttemptLimiter {
    async fn reserve_attempt(
        &self,
        key: &AttemptKey,
        rule: &AttemptRule,
        now: OffsetDateTime,
    ) -> Result<AttemptVerdict, StoreError> {
        let mut state = lock(&self.windows);
        let due = match state.last_sweep {
            Some(last) => now - last >= SWEEP_EVERY || now < last,
            None => true,
        };
        if due {
            state.windows.retain(|_, (_, ends)| *ends > now);
            state.last_sweep = Some(now);
        }
        let window = crate::token::to_time_duration(rule.window);
        let slot = state
            .windows
            .entry(key.clone())
            .or_insert((0, now.saturating_add(window)));
        if slot.1 <= now {
            *slot = (0, now.saturating_add(window));
        }
        if slot.0 >= rule.max_failures {
            let left = slot.1 - now;
            return Ok(AttemptVerdict::Refused {
                retry_after: std::time::Duration::try_from(left).unwrap_or_default(),
            });
        }
        slot.0 += 1;
        Ok(AttemptVerdict::Allowed)
    }

    async fn check_attempts(
        &self,
        key: &AttemptKey,
        rule: &AttemptRule,
        now: OffsetDateTime,
    ) -> Result<AttemptVerdict, StoreError> {
        let state = lock(&self.windows);
        Ok(match state.windows.get(key) {
            Some((count, ends)) if *ends > now && *count >= rule.max_failures => {
                AttemptVerdict::Refused {
                    retry_after: std::time::Duration::try_from(*ends - now).unwrap_or_default(),
                }
            }
            _ => AttemptVerdict::Allowed,
        })
    }

    async fn release_attempt(
        &self,
        key: &AttemptKey,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.windows);
        if let Some(slot) = state.windows.get_mut(key) {
            if slot.1 > now {
                slot.0 = slot.0.saturating_sub(1);
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct CodeState {
    pending: HashMap<TokenHash, PendingAuthorization>,
    /// A code and whether it has been spent.
    codes: HashMap<TokenHash, (CodeGrant, bool)>,
    last_sweep: Option<OffsetDateTime>,
}

impl CodeState {
    fn sweep_if_due(&mut self, now: OffsetDateTime) {
        let due = match self.last_sweep {
            Some(last) => now - last >= SWEEP_EVERY || now < last,
            None => true,
        };
        if due {
            self.pending.retain(|_, p| p.expires_at > now);
            self.codes.retain(|_, (g, _)| g.expires_at > now);
            self.last_sweep = Some(now);
        }
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
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        state.sweep_if_due(now);
        state.pending.insert(*id, request.clone());
        Ok(())
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
        Ok(state.pending.remove(id).filter(|p| p.expires_at > now))
    }

    async fn save_code(
        &self,
        code: &TokenHash,
        grant: &CodeGrant,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        state.sweep_if_due(now);
        state.codes.insert(*code, (grant.clone(), false));
        Ok(())
    }

    async fn take_code(
        &self,
        code: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<CodeRedemption, StoreError> {
        let mut state = lock(&self.state);
        Ok(match state.codes.get_mut(code) {
            Some((grant, _)) if grant.expires_at <= now => CodeRedemption::Unknown,
            Some((grant, true)) => CodeRedemption::AlreadyUsed {
                family_id: grant.family_id.clone(),
            },
            Some((grant, used)) => {
                *used = true;
                CodeRedemption::Redeemed(grant.clone())
            }
            None => CodeRedemption::Unknown,
        })
    }
}

fn sweep_due(last_sweep: &mut Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    let due = match *last_sweep {
        Some(last) => now - last >= SWEEP_EVERY || now < last,
        None => true,
    };
    if due {
        *last_sweep = Some(now);
    }
    due
}

#[derive(Default)]
struct DeviceState {
    /// Requests by device code hash.
    requests: HashMap<TokenHash, DeviceAuthorization>,
    /// Device code hash by user code hash.
    user_codes: HashMap<TokenHash, TokenHash>,
    last_sweep: Option<OffsetDateTime>,
}

impl DeviceState {
    fn sweep_if_due(&mut self, now: OffsetDateTime) {
        if sweep_due(&mut self.last_sweep, now) {
            let memory = time::Duration::seconds(EXPIRED_DEVICE_CODE_MEMORY);
            self.requests
                .retain(|_, r| r.expires_at.saturating_add(memory) > now);
            let requests = &self.requests;
            self.user_codes.retain(|_, device| {
                requests
                    .get(device)
                    .is_some_and(|r| r.expires_at > now && r.status == DeviceStatus::Pending)
            });
        }
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
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = lock(&self.state);
        state.sweep_if_due(now);
        let in_use = state
            .user_codes
            .get(user_code)
            .and_then(|device| state.requests.get(device))
            .is_some_and(|r| r.expires_at > now);
        if in_use {
            return Ok(false);
        }
        state.requests.insert(*device_code, request.clone());
        state.user_codes.insert(*user_code, *device_code);
        Ok(true)
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
        request.status = match decision {
            DeviceDecision::Approve { user_id, scope } => DeviceStatus::Approved {
                user_id: user_id.clone(),
                scope: scope.clone(),
            },
            DeviceDecision::Deny => DeviceStatus::Denied,
        };
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
        let memory = time::Duration::seconds(EXPIRED_DEVICE_CODE_MEMORY);
        let Some(request) = state
            .requests
            .get_mut(device_code)
            .filter(|r| r.expires_at.saturating_add(memory) > now)
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
            DeviceStatus::Approved { .. } => match state.requests.remove(device_code) {
                Some(request) => DevicePoll::Approved(request),
                None => DevicePoll::Unknown,
            },
            DeviceStatus::Denied => DevicePoll::Denied,
            DeviceStatus::Pending => {
                let too_soon = polled_too_soon(request.last_poll, request.interval, now);
                request.last_poll = Some(now.replace_nanosecond(0).unwrap_or(now));
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
}

#[derive(Default)]
struct MfaState {
    challenges: HashMap<TokenHash, MfaChallenge>,
    /// Used one-time codes: (user, counter) until when.
    used: HashMap<(UserId, u64), OffsetDateTime>,
    last_sweep: Option<OffsetDateTime>,
}

impl MfaState {
    fn sweep_if_due(&mut self, now: OffsetDateTime) {
        if sweep_due(&mut self.last_sweep, now) {
            self.challenges.retain(|_, c| c.expires_at > now);
            self.used.retain(|_, until| *until > now);
        }
    }
}

/// `mfa_token`s and used one-time codes kept in maps.
#[derive(Default)]
pub struct MemoryMfaStore {
    state: Mutex<MfaState>,
}

impl MemoryMfaStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many challenges and used-code marks the store holds.
    pub fn len(&self) -> usize {
        let state = lock(&self.state);
        state.challenges.len() + state.used.len()
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
        state.sweep_if_due(now);
        state.challenges.insert(*token, challenge.clone());
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

    async fn mark_otp_used(
        &self,
        user: &UserId,
        counter: u64,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = lock(&self.state);
        state.sweep_if_due(now);
        let key = (user.clone(), counter);
        if state.used.get(&key).is_some_and(|u| *u > now) {
            return Ok(false);
        }
        state.used.insert(key, until);
        Ok(true)
    }
}
