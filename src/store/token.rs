//! Issued tokens: their records, and the store that keeps them by hash.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::scope::Scope;
use crate::token::TokenHash;
use crate::types::{ClientId, FamilyId, UserId, Username};

/// Which kind of token a record belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenKind {
    /// An access token: presented to resource servers.
    Access,
    /// A refresh token: presented to the token endpoint for new access tokens.
    Refresh,
}

/// What the server knows about an issued token: the grant it stands for.
///
/// Stored under the token's [`TokenHash`]; it never holds the token itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenRecord {
    /// Access or refresh.
    pub kind: TokenKind,
    /// The client the token was issued to; a refresh token is bound to it (RFC 6749 §6).
    pub client_id: ClientId,
    /// The resource owner, if the grant has one (`client_credentials` has none).
    pub user_id: Option<UserId>,
    /// The username the resource owner signed in with, when the grant had one (introspection's
    /// `username`, RFC 7662 §2.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<Username>,
    /// The scope granted.
    pub scope: Scope,
    /// When the token was issued.
    #[serde(with = "time::serde::timestamp")]
    pub issued_at: OffsetDateTime,
    /// When the token stops being valid.
    #[serde(with = "time::serde::timestamp")]
    pub expires_at: OffsetDateTime,
    /// The family the token belongs to (RFC 9700 §4.14.2).
    pub family_id: FamilyId,
}

impl TokenRecord {
    /// Whether the token has expired at `now` (it is valid strictly before `expires_at`).
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now >= self.expires_at
    }
}

/// The answer of [`TokenStore::find_token`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenLookup {
    /// A live token: issued, not revoked, not rotated, not expired.
    Live(TokenRecord),
    /// A refresh token that was already spent by rotation. Presenting it again is a replay
    /// (RFC 9700 §4.14.2): the engine revokes its family, if the client that presents it is the
    /// one it was issued to; or, within a grace period the host opted into, answers its own
    /// client again (the reply to the rotation may have been lost).
    Rotated {
        /// The client the spent token was issued to.
        client_id: ClientId,
        /// Its family.
        family_id: FamilyId,
        /// When it was spent.
        rotated_at: OffsetDateTime,
        /// The refresh token issued in its place, if it may still be issued again
        /// ([`TokenStore::reissue_rotated`]); `None` for a token that was itself replaced
        /// that way.
        successor: Option<TokenHash>,
    },
    /// No such token: never issued, revoked, or expired.
    Unknown,
}

/// The answer of [`TokenStore::rotate_refresh_token`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rotation {
    /// The refresh token was live and issued to the expected client: the new tokens are saved
    /// (and the old one spent, if asked). Carries the old token's record.
    Issued(TokenRecord),
    /// The refresh token had already been spent: a replay. Nothing was changed.
    Reused {
        /// The client the spent token was issued to.
        client_id: ClientId,
        /// Its family.
        family_id: FamilyId,
    },
    /// The refresh token is not live, not a refresh token, expired, or was issued to another
    /// client. Nothing was changed.
    NotFound,
}

/// How long, in seconds, a store remembers that a family was revoked, refusing new tokens for
/// it: far longer than any exchange that could still be in flight.
pub const REVOKED_FAMILY_MEMORY: i64 = 3600;

/// Keeps issued tokens, by hash, with their grant records.
///
/// Called by: every grant that issues tokens, the refresh grant, bearer validation, and later
/// revocation and introspection.
///
/// Every method gets `now`, the instant the engine handles the request at (from its
/// [`Clock`](crate::Clock)): an entry whose `expires_at` is at or before `now` is treated as
/// absent, and may be dropped (a Redis TTL, a periodic `DELETE`).
///
/// # Security
///
/// The store receives only [`TokenHash`]es, of access and refresh tokens alike (one map holds
/// both kinds). It must never be handed, or derive, an issued token.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Saves newly issued tokens (an access token, and often its refresh token) under their
    /// hashes, answering `true`; or saves nothing and answers `false` if any of their families
    /// was revoked within the last [`REVOKED_FAMILY_MEMORY`] seconds.
    ///
    /// Called by: every grant that issues tokens. Atomic: the check and all the saves are one
    /// step (one transaction or script), so that a grant racing a revocation (a replayed code
    /// revoking the tokens of its first exchange) cannot land tokens in a revoked family.
    async fn save_tokens(
        &self,
        tokens: &[(TokenHash, TokenRecord)],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Looks a token up by hash.
    ///
    /// Called by: bearer validation, and the refresh grant to validate a request before
    /// anything is spent. A read: nothing it answers authorizes anything by itself.
    async fn find_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<TokenLookup, StoreError>;

    /// Exchanges a live refresh token for new tokens, in one atomic step.
    ///
    /// Called by: the refresh grant. Atomic, as one script or transaction (SQL: `UPDATE … SET
    /// state = 'rotated' WHERE hash = $1 AND state = 'live' AND kind = 'refresh' AND client_id =
    /// $2 AND expires_at > $now RETURNING …`, then the inserts, in one transaction):
    /// - if `old` is a live, unexpired refresh token issued to `client`, and no family of
    ///   `new_tokens` was recently revoked: save `new_tokens`; if
    ///   `spend_old`, mark `old` rotated (keeping that mark, with its client, its family, `now`
    ///   as `rotated_at` and the refresh token of `new_tokens` as its `successor`, until its
    ///   `expires_at`); answer [`Rotation::Issued`] with its record;
    /// - if `old` was already rotated: change nothing, answer [`Rotation::Reused`];
    /// - otherwise change nothing and answer [`Rotation::NotFound`].
    ///
    /// Of any number of concurrent calls with the same `old` and `spend_old`, exactly one may
    /// answer `Issued`. And since the check and the save are one step, tokens are never saved
    /// into a family that [`revoke_family`](TokenStore::revoke_family) has just emptied.
    async fn rotate_refresh_token(
        &self,
        old: &TokenHash,
        client: &ClientId,
        new_tokens: &[(TokenHash, TokenRecord)],
        spend_old: bool,
        now: OffsetDateTime,
    ) -> Result<Rotation, StoreError>;

    /// Issues new tokens for a refresh token spent moments ago whose client never got the reply
    /// (the engine has checked the grace period), in one atomic step:
    ///
    /// - if `old` is rotated, issued to `client`, its `successor` is `successor`, that successor
    ///   is still a live, unexpired refresh token (the client never used it), and no family of
    ///   `new_tokens` was recently revoked: mark the successor spent with no successor of its own
    ///   (presenting it later is a replay, and it cannot be issued again), make the refresh token
    ///   of `new_tokens` `old`'s successor, save `new_tokens`, and answer [`Rotation::Issued`]
    ///   with the successor's record;
    /// - if `old` is rotated but any of that does not hold (except the revoked family): change
    ///   nothing, answer [`Rotation::Reused`];
    /// - otherwise (also when a family of `new_tokens` was revoked) change nothing and answer
    ///   [`Rotation::NotFound`].
    ///
    /// Of any number of concurrent calls with the same `old` and `successor`, at most one
    /// answers `Issued`, so a family never holds two usable refresh tokens.
    async fn reissue_rotated(
        &self,
        old: &TokenHash,
        successor: &TokenHash,
        client: &ClientId,
        new_tokens: &[(TokenHash, TokenRecord)],
        now: OffsetDateTime,
    ) -> Result<Rotation, StoreError>;

    /// Revokes one token, answering the record it had if it was live.
    ///
    /// Called by: revocation (RFC 7009). Atomic: one delete that returns what it deleted.
    async fn revoke_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<TokenRecord>, StoreError>;

    /// Revokes every live token of a family, answering how many were revoked. Rotation marks
    /// stay, so a later replay is still recognised, and the family is remembered as revoked for
    /// [`REVOKED_FAMILY_MEMORY`] seconds, in which [`save_tokens`](TokenStore::save_tokens) and
    /// [`rotate_refresh_token`](TokenStore::rotate_refresh_token) save nothing into it.
    ///
    /// Called by: the refresh grant when it sees a replayed refresh token (RFC 9700 §4.14.2), the
    /// code grant when it sees a code used twice, and revocation. Atomic: one script or
    /// transaction.
    async fn revoke_family(
        &self,
        family: &FamilyId,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError>;
}
