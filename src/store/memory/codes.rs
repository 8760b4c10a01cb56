//! [`MemoryCodeStore`]: authorization requests and codes kept in maps.

use std::collections::hash_map::Entry;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::digest::DigestMap;
use super::{lock, shrink_if_sparse, wait_until, ClientCounts};
use crate::error::StoreError;
use crate::store::expiry::{ExpiryQueue, SWEEP_BATCH};
use crate::store::{
    Admission, CodeGrant, CodeLookup, CodeRestore, CodeSpend, CodeStore, PendingAuthorization,
    PendingLimits, SpentCode,
};
use crate::token::{AuthorizationCodeHash, RequestIdHash};

/// What is left of an authorization code once spent.
#[derive(Clone, Debug)]
struct UsedCode {
    /// The used mark, as asked (kept until its `keep_until`).
    mark: SpentCode,
    /// When the code itself expires (a spent code may be given back until then).
    expires_at: OffsetDateTime,
}

#[derive(Default)]
struct CodeState {
    pending: DigestMap<RequestIdHash, PendingAuthorization>,
    pending_counts: ClientCounts,
    pending_expiry: ExpiryQueue<RequestIdHash>,
    /// Codes not spent yet (they live a minute or so).
    live: DigestMap<AuthorizationCodeHash, CodeGrant>,
    /// Spent codes' marks, kept as long as the tokens they issued can live: most of what the
    /// store holds, so kept apart from the live codes' larger grants, in slots of their own
    /// size. A code is in one of the two maps at most.
    used: DigestMap<AuthorizationCodeHash, UsedCode>,
    code_expiry: ExpiryQueue<AuthorizationCodeHash>,
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
        let (live, used) = (&mut self.live, &mut self.used);
        self.code_expiry.pop_due(now, max, |code| {
            if live.get(&code).is_some_and(|grant| grant.expires_at <= now) {
                live.remove(&code);
            }
            if used.get(&code).is_some_and(|u| u.mark.keep_until <= now) {
                used.remove(&code);
            }
        });
        shrink_if_sparse(&mut self.pending);
        shrink_if_sparse(&mut self.live);
        shrink_if_sparse(&mut self.used);
    }

    fn remove_pending(&mut self, id: &RequestIdHash) -> Option<PendingAuthorization> {
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
        state.pending.len() + state.live.len() + state.used.len()
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
        state.live.shrink_to_fit();
        state.used.shrink_to_fit();
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
        id: &RequestIdHash,
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
        id: &RequestIdHash,
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
        id: &RequestIdHash,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let mut state = lock(&self.state);
        Ok(state.remove_pending(id).filter(|p| p.expires_at > now))
    }

    async fn save_code(
        &self,
        code: &AuthorizationCodeHash,
        grant: &CodeGrant,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        state.sweep(now, SWEEP_BATCH);
        state.used.remove(code);
        state.live.insert(*code, grant.clone());
        state.code_expiry.push(grant.expires_at, *code);
        Ok(())
    }

    async fn find_code(
        &self,
        code: &AuthorizationCodeHash,
        now: OffsetDateTime,
    ) -> Result<CodeLookup, StoreError> {
        let state = lock(&self.state);
        if let Some(grant) = state.live.get(code) {
            return Ok(if grant.expires_at <= now {
                CodeLookup::Unknown
            } else {
                CodeLookup::Live(grant.clone())
            });
        }
        Ok(match state.used.get(code) {
            Some(used) if used.mark.keep_until > now => CodeLookup::Spent {
                client_id: used.mark.client_id.clone(),
                family_id: used.mark.family_id.clone(),
            },
            _ => CodeLookup::Unknown,
        })
    }

    async fn spend_code(
        &self,
        code: &AuthorizationCodeHash,
        mark: &SpentCode,
        now: OffsetDateTime,
    ) -> Result<CodeSpend, StoreError> {
        let mut state = lock(&self.state);
        state.sweep(now, SWEEP_BATCH);
        // Only a live code that has not expired is spent (an expired one stays as it is).
        let grant = match state.live.entry(*code) {
            Entry::Occupied(live) if live.get().expires_at > now => live.remove(),
            _ => return Ok(CodeSpend::Conflict),
        };
        let used = UsedCode {
            mark: mark.clone(),
            expires_at: grant.expires_at,
        };
        state.used.insert(*code, used);
        state.code_expiry.push(mark.keep_until, *code);
        Ok(CodeSpend::Spent(grant))
    }

    async fn restore_code(
        &self,
        code: &AuthorizationCodeHash,
        grant: &CodeGrant,
        now: OffsetDateTime,
    ) -> Result<CodeRestore, StoreError> {
        let mut state = lock(&self.state);
        let restorable = state.used.get(code).is_some_and(|used| {
            used.mark.family_id == grant.family_id
                && used.mark.keep_until > now
                && used.expires_at > now
        });
        if !restorable {
            return Ok(CodeRestore::Gone);
        }
        state.used.remove(code);
        state.live.insert(*code, grant.clone());
        state.code_expiry.push(grant.expires_at, *code);
        Ok(CodeRestore::Restored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_used_mark_is_kept_in_far_less_than_a_live_code() {
        // The marks outlive their codes sixty times over (an hour against a minute): each one
        // costs its own size, not a grant's.
        let (used, grant) = (
            std::mem::size_of::<UsedCode>(),
            std::mem::size_of::<CodeGrant>(),
        );
        assert!(used <= 64, "{used}");
        assert!(used * 2 <= grant, "{used} against {grant}");
    }
}
