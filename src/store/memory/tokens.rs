//! [`MemoryTokenStore`]: tokens kept in a map, with a family index.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{lock, shrink_if_sparse, whole_seconds};
use crate::error::StoreError;
use crate::store::expiry::{ExpiryQueue, SWEEP_BATCH};
use crate::store::{
    Rotation, TokenKind, TokenLookup, TokenRecord, TokenStore, REVOKED_FAMILY_MEMORY,
};
use crate::token::TokenHash;
use crate::types::{ClientId, FamilyId};

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
