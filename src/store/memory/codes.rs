//! [`MemoryCodeStore`]: authorization requests and codes kept in maps.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{lock, shrink_if_sparse, wait_until, ClientCounts};
use crate::error::StoreError;
use crate::store::expiry::{ExpiryQueue, SWEEP_BATCH};
use crate::store::{
    Admission, CodeGrant, CodeRedemption, CodeStore, PendingAuthorization, PendingLimits,
};
use crate::token::{AuthorizationCodeHash, RequestIdHash};
use crate::types::{ClientId, FamilyId};

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
    pending: HashMap<RequestIdHash, PendingAuthorization>,
    pending_counts: ClientCounts,
    pending_expiry: ExpiryQueue<RequestIdHash>,
    codes: HashMap<AuthorizationCodeHash, CodeEntry>,
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
        let codes = &mut self.codes;
        self.code_expiry.pop_due(now, max, |code| {
            if codes.get(&code).is_some_and(|c| c.kept_until() <= now) {
                codes.remove(&code);
            }
        });
        shrink_if_sparse(&mut self.pending);
        shrink_if_sparse(&mut self.codes);
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
        state.codes.insert(*code, CodeEntry::Live(grant.clone()));
        state.code_expiry.push(grant.expires_at, *code);
        Ok(())
    }

    async fn take_code(
        &self,
        code: &AuthorizationCodeHash,
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
        code: &AuthorizationCodeHash,
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
