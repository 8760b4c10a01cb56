//! [`MemoryTokenStore`]: tokens kept in a map, with a family index.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{lock, shrink_if_sparse};
use crate::error::StoreError;
use crate::store::expiry::{ExpiryQueue, SWEEP_BATCH};
use crate::store::{
    SpentMark, TokenChange, TokenExpectation, TokenLookup, TokenRecord, TokenSave, TokenStore,
    TokenUpdate,
};
use crate::token::TokenHash;
use crate::types::FamilyId;

#[derive(Clone, Debug)]
enum Entry {
    Live(TokenRecord),
    Spent(SpentMark),
}

impl Entry {
    fn expires_at(&self) -> OffsetDateTime {
        match self {
            Entry::Live(r) => r.expires_at,
            Entry::Spent(mark) => mark.keep_until,
        }
    }

    /// Its family; `None` for a token that stands alone.
    fn family(&self) -> Option<&FamilyId> {
        match self {
            Entry::Live(r) => r.family_id.as_ref(),
            Entry::Spent(mark) => Some(&mark.family_id),
        }
    }

    fn lookup(&self) -> TokenLookup {
        match self {
            Entry::Live(r) => TokenLookup::Live(r.clone()),
            Entry::Spent(mark) => TokenLookup::Rotated {
                client_id: mark.client_id.clone(),
                family_id: mark.family_id.clone(),
                rotated_at: mark.spent_at,
                successor: mark.successor,
                keep_until: mark.keep_until,
            },
        }
    }

    /// Whether the entry is as `expected` (the caller has dropped it if it expired).
    fn is(&self, expected: &TokenExpectation) -> bool {
        match (self, expected) {
            (Entry::Live(_), TokenExpectation::Live) => true,
            (Entry::Spent(mark), TokenExpectation::Spent { successor }) => {
                mark.successor == *successor
            }
            _ => false,
        }
    }
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
    /// Puts `entry` under `hash`, replacing (and unindexing) what was there.
    fn put(&mut self, hash: TokenHash, entry: Entry) {
        self.remove(&hash);
        if let Some(family) = entry.family() {
            self.families
                .entry(family.clone())
                .or_default()
                .insert(hash);
        }
        self.expiry.push(entry.expires_at(), hash);
        self.entries.insert(hash, entry);
    }

    /// Saves `tokens`, or nothing if a family of theirs is revoked at `now`.
    fn save(&mut self, tokens: &[(TokenHash, TokenRecord)], now: OffsetDateTime) -> TokenSave {
        if self.any_revoked(tokens, now) {
            return TokenSave::FamilyRevoked;
        }
        for (hash, record) in tokens {
            if record.expires_at > now {
                self.put(*hash, Entry::Live(record.clone()));
            }
        }
        TokenSave::Saved
    }

    fn remove(&mut self, hash: &TokenHash) -> Option<Entry> {
        let entry = self.entries.remove(hash)?;
        if let Some(family) = entry.family() {
            if let Some(set) = self.families.get_mut(family) {
                set.remove(hash);
                if set.is_empty() {
                    self.families.remove(family);
                }
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
            r.family_id
                .as_ref()
                .is_some_and(|family| self.revoked.get(family).is_some_and(|until| *until > now))
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

    /// How many entries (live tokens and spent marks) the store holds, expired or not.
    pub fn len(&self) -> usize {
        lock(&self.state).entries.len()
    }

    /// Whether the store holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What `find_token` answers.
    fn lookup(&self, hash: &TokenHash, now: OffsetDateTime) -> TokenLookup {
        let mut state = lock(&self.state);
        state
            .current(hash, now)
            .map_or(TokenLookup::Unknown, Entry::lookup)
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
    ) -> Result<TokenSave, StoreError> {
        let mut state = lock(&self.state);
        state.sweep(now, SWEEP_BATCH);
        Ok(state.save(tokens, now))
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
        let mut state = lock(&self.state);
        state.sweep(now, SWEEP_BATCH);
        for (hash, expected) in &change.expect {
            if !state.current(hash, now).is_some_and(|e| e.is(expected)) {
                return Ok(TokenUpdate::Conflict);
            }
        }
        if state.any_revoked(&change.insert, now) {
            return Ok(TokenUpdate::FamilyRevoked);
        }
        for (hash, mark) in &change.mark {
            if mark.keep_until > now {
                state.put(*hash, Entry::Spent(mark.clone()));
            } else {
                state.remove(hash);
            }
        }
        state.save(&change.insert, now);
        Ok(TokenUpdate::Applied)
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
        remember_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut state = lock(&self.state);
        let held = state.revoked.get(family).copied();
        if remember_until > now && held.is_none_or(|held| held < remember_until) {
            state.revoked.insert(family.clone(), remember_until);
            state.revoked_expiry.push(remember_until, family.clone());
        }
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
                Some(Entry::Spent(_)) | None => {}
            }
        }
        Ok(revoked)
    }
}
