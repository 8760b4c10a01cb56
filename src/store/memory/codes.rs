//! [`MemoryCodeStore`]: authorization requests and codes kept in maps.

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

/// An authorization code the store holds: live, or spent and kept as a used mark.
///
/// Spending a code turns its entry into a mark where it lies, so a spend writes no new place in
/// the table (the code's own place was just read); a live grant is boxed, so that the marks,
/// which outlive their codes sixty times over (an hour against a minute), each take only their
/// own size.
#[derive(Debug)]
enum CodeEntry {
    Live(Box<CodeGrant>),
    Used(UsedCode),
}

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
    /// Codes, live (for a minute or so) or spent (their marks kept as long as the tokens they
    /// issued can live: most of what the store holds).
    codes: DigestMap<AuthorizationCodeHash, CodeEntry>,
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
            let lapsed = codes.get(&code).is_some_and(|entry| match entry {
                CodeEntry::Live(grant) => grant.expires_at <= now,
                CodeEntry::Used(used) => used.mark.keep_until <= now,
            });
            if lapsed {
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
        state
            .codes
            .insert(*code, CodeEntry::Live(Box::new(grant.clone())));
        state.code_expiry.push(grant.expires_at, *code);
        Ok(())
    }

    async fn find_code(
        &self,
        code: &AuthorizationCodeHash,
        now: OffsetDateTime,
    ) -> Result<CodeLookup, StoreError> {
        let state = lock(&self.state);
        Ok(match state.codes.get(code) {
            Some(CodeEntry::Live(grant)) if grant.expires_at > now => {
                CodeLookup::Live(CodeGrant::clone(grant))
            }
            Some(CodeEntry::Used(used)) if used.mark.keep_until > now => CodeLookup::Spent {
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
        // Only a live code that has not expired is spent (an expired one stays as it is), and
        // its mark takes its place.
        let Some(entry) = state.codes.get_mut(code) else {
            return Ok(CodeSpend::Conflict);
        };
        let used = match entry {
            CodeEntry::Live(grant) if grant.expires_at > now => CodeEntry::Used(UsedCode {
                mark: mark.clone(),
                expires_at: grant.expires_at,
            }),
            _ => return Ok(CodeSpend::Conflict),
        };
        match std::mem::replace(entry, used) {
            CodeEntry::Live(grant) => {
                state.code_expiry.push(mark.keep_until, *code);
                Ok(CodeSpend::Spent(*grant))
            }
            // Matched as live just above, under the same lock: put back as it was.
            before => {
                *entry = before;
                Ok(CodeSpend::Conflict)
            }
        }
    }

    async fn restore_code(
        &self,
        code: &AuthorizationCodeHash,
        grant: &CodeGrant,
        now: OffsetDateTime,
    ) -> Result<CodeRestore, StoreError> {
        let mut state = lock(&self.state);
        let Some(entry) = state.codes.get_mut(code) else {
            return Ok(CodeRestore::Gone);
        };
        let restorable = matches!(entry, CodeEntry::Used(used)
            if used.mark.family_id == grant.family_id
                && used.mark.keep_until > now
                && used.expires_at > now);
        if !restorable {
            return Ok(CodeRestore::Gone);
        }
        *entry = CodeEntry::Live(Box::new(grant.clone()));
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
        // costs its own size, not a grant's (a live grant is boxed).
        let (used, entry, grant) = (
            std::mem::size_of::<UsedCode>(),
            std::mem::size_of::<CodeEntry>(),
            std::mem::size_of::<CodeGrant>(),
        );
        assert!(used <= 64, "{used}");
        assert!(entry <= 64, "{entry}");
        assert!(entry * 2 <= grant, "{entry} against {grant}");
    }
}
