//! The second factor's store: password sign-ins waiting for a one-time code (`mfa_token`), and
//! one-time codes already used.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::scope::Scope;
use crate::token::TokenHash;
use crate::types::{ClientId, UserId};

/// A password sign-in whose password was right and whose second factor is still owed: what an
/// `mfa_token` stands for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaChallenge {
    /// The client that made the password request; only it may finish the sign-in.
    pub client_id: ClientId,
    /// The user whose password was right.
    pub user_id: UserId,
    /// The scope the password grant would have issued.
    pub scope: Scope,
    /// Whether that scope differs from what was asked (so the token response must carry it).
    pub show_scope: bool,
    /// When the `mfa_token` expires.
    #[serde(with = "time::serde::timestamp")]
    pub expires_at: OffsetDateTime,
}

/// Keeps `mfa_token`s and spent one-time codes.
///
/// Called by: the password grant (save, when the [`UserVerifier`](crate::UserVerifier) answers
/// [`SecondFactorRequired`](crate::UserVerdict::SecondFactorRequired)) and the `mfa-otp` grant
/// (find, mark, take).
///
/// `mfa_token`s are stored under their [`TokenHash`], never as given, and expire at their
/// `expires_at` as judged by the `now` passed in.
#[async_trait]
pub trait MfaStore: Send + Sync {
    /// Saves a challenge under the hash of its `mfa_token`.
    async fn save_mfa_token(
        &self,
        token: &TokenHash,
        challenge: &MfaChallenge,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Reads a live challenge, leaving it in place (a wrong one-time code does not spend it).
    /// A read.
    async fn find_mfa_token(
        &self,
        token: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<MfaChallenge>, StoreError>;

    /// Removes and answers a live challenge. Atomic (Redis `GETDEL`, SQL `DELETE … RETURNING`):
    /// of concurrent calls with one token, one gets it and the others `None`, so one `mfa_token`
    /// yields tokens once.
    async fn take_mfa_token(
        &self,
        token: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<MfaChallenge>, StoreError>;

    /// Marks `user`'s one-time code number `counter` (a TOTP time step) as used until `until`,
    /// answering `true`; or answers `false`, changing nothing, if it is already marked (RFC 6238
    /// §5.2: a code accepted once is refused for the rest of its validity).
    ///
    /// Atomic: of concurrent calls with one user and counter, exactly one answers `true` (Redis
    /// `SET … NX`, SQL `INSERT … ON CONFLICT DO NOTHING`).
    async fn mark_otp_used(
        &self,
        user: &UserId,
        counter: u64,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
}
