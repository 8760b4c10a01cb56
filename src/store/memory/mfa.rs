//! [`MemoryMfaStore`]: `mfa_token`s and used one-time codes kept in maps.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::digest::DigestMap;
use super::{lock, shrink_if_sparse};
use crate::error::StoreError;
use crate::store::expiry::{ExpiryQueue, SWEEP_BATCH};
use crate::store::{MfaChallenge, MfaStore, OtpAdvance};
use crate::token::MfaTokenHash;
use crate::types::UserId;

#[derive(Default)]
struct MfaState {
    challenges: DigestMap<MfaTokenHash, MfaChallenge>,
    challenge_expiry: ExpiryQueue<MfaTokenHash>,
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
        token: &MfaTokenHash,
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
        token: &MfaTokenHash,
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
        token: &MfaTokenHash,
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
    ) -> Result<OtpAdvance, StoreError> {
        let mut state = lock(&self.state);
        state.sweep(now, SWEEP_BATCH);
        let held = state
            .counters
            .get(user)
            .copied()
            .filter(|(_, held_until)| *held_until > now);
        let until = match held {
            Some((last, _)) if last >= counter => return Ok(OtpAdvance::NotHigher),
            Some((_, held_until)) => held_until.max(until),
            None => until,
        };
        if until > now {
            state.counters.insert(user.clone(), (counter, until));
            state.counter_expiry.push(until, user.clone());
        }
        Ok(OtpAdvance::Advanced)
    }
}
