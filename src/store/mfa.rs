//! The second factor's store: password sign-ins waiting for a one-time code (`mfa_token`), and
//! one-time codes already used.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::scope::Scope;
use crate::token::MfaTokenHash;
use crate::types::{ClientId, UserId, Username};

/// A password sign-in whose password was right and whose second factor is still owed: what an
/// `mfa_token` stands for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MfaChallenge {
    /// The client that made the password request; only it may finish the sign-in.
    pub client_id: ClientId,
    /// The user whose password was right.
    pub user_id: UserId,
    /// The username they signed in with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<Username>,
    /// The scope the password grant would have issued.
    pub scope: Scope,
    /// Whether that scope differs from what was asked (so the token response must carry it).
    pub show_scope: bool,
    /// The resources the password request named (RFC 8707), which the sign-in's tokens are for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// When the `mfa_token` expires.
    #[serde(with = "time::serde::timestamp")]
    pub expires_at: OffsetDateTime,
}

/// The answer of [`MfaStore::advance_otp_counter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtpAdvance {
    /// No counter as high was held for the user at `now`: the one given is recorded.
    Advanced,
    /// A counter as high or higher is held for the user at `now`: nothing changed.
    NotHigher,
}

/// Keeps `mfa_token`s and spent one-time codes.
///
/// Called by: the password grant (save, when the [`UserVerifier`](crate::UserVerifier) answers
/// [`SecondFactorRequired`](crate::UserVerdict::SecondFactorRequired)) and the `mfa-otp` grant
/// (find, mark, take).
///
/// `mfa_token`s are stored under their [`MfaTokenHash`], never as given, and expire at their
/// `expires_at` as judged by the `now` passed in.
#[async_trait]
pub trait MfaStore: Send + Sync {
    /// Saves a challenge under the hash of its `mfa_token`.
    async fn save_mfa_token(
        &self,
        token: &MfaTokenHash,
        challenge: &MfaChallenge,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Reads a live challenge, leaving it in place (a wrong one-time code does not spend it).
    /// A read.
    async fn find_mfa_token(
        &self,
        token: &MfaTokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<MfaChallenge>, StoreError>;

    /// Removes and answers a live challenge. Atomic (Redis `GETDEL`, SQL `DELETE … RETURNING`):
    /// of concurrent calls with one token, one gets it and the others `None`, so one `mfa_token`
    /// yields tokens once.
    async fn take_mfa_token(
        &self,
        token: &MfaTokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<MfaChallenge>, StoreError>;

    /// Moves `user`'s counter forward: if no counter is held for `user` at `now` (none was
    /// recorded, or its hold ended at or before `now`), or the one held is lower than `counter`,
    /// `counter` becomes the one held, until `until` (or, if a lower counter was held, that
    /// hold's end, when later), answering [`OtpAdvance::Advanced`]; otherwise (a counter held at `now` is `>=
    /// counter`) nothing changes and it answers [`OtpAdvance::NotHigher`]. A store may hold a
    /// counter longer by rounding `until` up to its own resolution (Redis: whole seconds), never
    /// shorter.
    ///
    /// Atomic, a compare-and-set: of concurrent calls for one user, only calls with increasing
    /// counters answer `Advanced`, and of concurrent calls with one counter at most one does
    /// (Redis: one script; SQL: `UPDATE … SET counter = $2, until = GREATEST(until, $3) WHERE
    /// user = $1 AND (counter < $2 OR until <= $now)`, or an insert).
    ///
    /// The engine records each accepted one-time code (a TOTP time step) here, so that a code is
    /// accepted once, and no code older than one accepted is.
    async fn advance_otp_counter(
        &self,
        user: &UserId,
        counter: u64,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<OtpAdvance, StoreError>;
}
