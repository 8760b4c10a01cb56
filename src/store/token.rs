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
    /// The family the token belongs to (RFC 9700 §4.14.2): the tokens of one grant, revoked
    /// together. `None` for a token that stands alone: one that can never be refreshed and came
    /// from no code (the client credentials grant's), which nothing but its own revocation ends.
    /// Stored records leave the field out then; a record with a family is written as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_id: Option<FamilyId>,
    /// The token's audience: the resources it is for (RFC 8707). For an access token, what a
    /// resource server checks ([`BearerValidator::with_audience`](crate::BearerValidator::with_audience))
    /// and introspection shows as `aud`; for a refresh token, the resources of the grant, which
    /// each refresh may narrow for its access token. Empty: for no resource in particular
    /// (records stored before resource indicators read so too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audience: Vec<String>,
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
    /// A live token: saved, not revoked, not marked spent, not expired.
    Live(TokenRecord),
    /// A token marked spent by [`TokenStore::update_tokens`], whose mark has not lapsed: the
    /// fields of its [`SpentMark`], as the engine wrote them. (The engine spends a refresh token
    /// by rotating it, and reads this answer as a replay, or as a retry within a grace period.)
    Rotated {
        /// The client the spent token was issued to.
        client_id: ClientId,
        /// Its family.
        family_id: FamilyId,
        /// When it was spent.
        rotated_at: OffsetDateTime,
        /// The token the mark names as its successor, if any.
        successor: Option<TokenHash>,
        /// Until when the mark is kept.
        keep_until: OffsetDateTime,
    },
    /// No such token: never saved, revoked, expired, or a spent mark that lapsed.
    Unknown,
}

/// The answer of [`TokenStore::save_tokens`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSave {
    /// Every token was saved.
    Saved,
    /// A family of the tokens is marked revoked: nothing was saved.
    FamilyRevoked,
}

/// What [`TokenStore::update_tokens`] expects a token to be before it changes anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenExpectation {
    /// Present, not marked spent, and unexpired at `now`: what [`TokenStore::find_token`]
    /// answers as [`TokenLookup::Live`].
    Live,
    /// Marked spent, the mark kept beyond `now`, naming exactly this successor (`None`: a mark
    /// that names none).
    Spent {
        /// The successor the mark must name.
        successor: Option<TokenHash>,
    },
}

/// A mark that a token was spent, as the engine computed it: the store keeps it, in place of
/// the token, until `keep_until`, and answers it from [`TokenStore::find_token`] as
/// [`TokenLookup::Rotated`]. A token marked spent is no longer live.
///
/// Only refresh tokens are spent, and every refresh token belongs to a family, so a mark always
/// names one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpentMark {
    /// The client the token was issued to.
    pub client_id: ClientId,
    /// The family the token belongs to; the mark belongs to it too.
    pub family_id: FamilyId,
    /// When the token was spent.
    pub spent_at: OffsetDateTime,
    /// The token that replaced it, if any.
    pub successor: Option<TokenHash>,
    /// Until when the mark is kept; from then on the token is unknown.
    pub keep_until: OffsetDateTime,
}

/// One atomic change over several tokens, for [`TokenStore::update_tokens`]: if every
/// expectation holds, write every mark and save every inserted token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenChange {
    /// What each token must be at `now` for the change to apply.
    pub expect: Vec<(TokenHash, TokenExpectation)>,
    /// Tokens to mark spent (replacing what was stored under the hash).
    pub mark: Vec<(TokenHash, SpentMark)>,
    /// Tokens to save, as [`TokenStore::save_tokens`] does.
    pub insert: Vec<(TokenHash, TokenRecord)>,
}

/// The answer of [`TokenStore::update_tokens`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenUpdate {
    /// Every expectation held: the marks are written and the inserted tokens saved.
    Applied,
    /// An expectation did not hold: nothing was changed.
    Conflict,
    /// Every expectation held, but a family of the inserted tokens is marked revoked: nothing
    /// was changed.
    FamilyRevoked,
}

/// Keeps issued tokens, by hash, with their grant records, and marks of spent tokens.
///
/// Called by: every grant that issues tokens, the refresh grant, bearer validation, revocation
/// and introspection. The store knows nothing of the protocol: the engine decides what may
/// happen to a token, and hands the store steps that it must make atomic. Each method's
/// documentation says what must be one step, and what each answer means.
///
/// Every method gets `now`, the instant the engine handles the request at (from its
/// [`Clock`](crate::Clock)): a token whose `expires_at` is at or before `now`, a spent mark whose
/// `keep_until` is, and a family revocation whose `remember_until` is, are treated as absent, and
/// may be dropped (a Redis TTL, a periodic `DELETE`).
///
/// A family is the set of tokens whose records (or spent marks) name the same [`FamilyId`]. It
/// may be marked revoked ([`revoke_family`](TokenStore::revoke_family)), and while it is, no
/// token of it is saved. A record with no family (`family_id: None`, a token that stands alone)
/// belongs to none: no family's revocation touches it, no revoked family refuses it, and a store
/// need keep no family entry for it.
///
/// # Security
///
/// The store receives only [`TokenHash`]es, of access and refresh tokens alike (one map holds
/// both kinds). It must never be handed, or derive, an issued token.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Saves tokens (an access token, and often its refresh token) under their hashes, answering
    /// [`TokenSave::Saved`]; or, if any of their families is marked revoked, saves nothing and
    /// answers [`TokenSave::FamilyRevoked`].
    ///
    /// Called by: every grant that issues tokens. Atomic: the check and all the saves are one
    /// step (one transaction or script), so that a grant racing a revocation (a replayed code
    /// revoking the tokens of its first exchange) cannot land tokens in a revoked family.
    async fn save_tokens(
        &self,
        tokens: &[(TokenHash, TokenRecord)],
        now: OffsetDateTime,
    ) -> Result<TokenSave, StoreError>;

    /// Looks a token up by hash: [`TokenLookup::Live`] with its record,
    /// [`TokenLookup::Rotated`] with its spent mark, or [`TokenLookup::Unknown`].
    ///
    /// Called by: bearer validation, introspection, revocation, and the refresh grant to
    /// validate a request before anything is spent. A read: nothing it answers authorizes
    /// anything by itself.
    async fn find_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<TokenLookup, StoreError>;

    /// What [`find_token`](TokenStore::find_token) would answer, if the store can tell without
    /// waiting: `None` (the default) when it cannot.
    ///
    /// A store that holds its tokens in this process (such as
    /// [`MemoryTokenStore`](crate::MemoryTokenStore)) may answer here exactly what `find_token`
    /// answers. Bearer validation asks this first, and calls `find_token` only on `None`: an
    /// `async` trait method's future is boxed, so answering here lets validation allocate
    /// nothing. A store that must wait for an answer (a network round trip) keeps the default.
    ///
    /// Called by: bearer validation. A read, like `find_token`.
    fn find_token_in_memory(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Option<Result<TokenLookup, StoreError>> {
        let _ = (hash, now);
        None
    }

    /// Applies `change` if every expectation holds, in one atomic step (Redis: one script; SQL:
    /// one transaction that reads the expected rows with `SELECT … FOR UPDATE`, then writes):
    ///
    /// - if any token of `change.expect` is not as expected at `now` (see
    ///   [`TokenExpectation`]): change nothing, answer [`TokenUpdate::Conflict`];
    /// - otherwise, if a family of `change.insert` is marked revoked: change nothing, answer
    ///   [`TokenUpdate::FamilyRevoked`];
    /// - otherwise: write each mark of `change.mark` under its hash, replacing what was there
    ///   (the token is no longer live; the mark is answered by
    ///   [`find_token`](TokenStore::find_token) until its `keep_until`), save each token of
    ///   `change.insert`, and answer [`TokenUpdate::Applied`].
    ///
    /// Concurrent calls take effect one after another, each judged against what the one before
    /// left: of any number of calls that each expect the same token `Live` and mark it spent,
    /// exactly one answers `Applied`, and the others `Conflict`. And since the revocation check
    /// and the inserts are one step, tokens are never saved into a family that
    /// [`revoke_family`](TokenStore::revoke_family) has just emptied.
    ///
    /// An inserted token that has already expired at `now`, or a mark whose `keep_until` has,
    /// leaves nothing under its hash.
    ///
    /// Called by: the refresh grant, to exchange a refresh token for new tokens (expecting it
    /// `Live`, and marking it spent when it rotates), and to reissue tokens for a retry whose
    /// reply was lost.
    async fn update_tokens(
        &self,
        change: &TokenChange,
        now: OffsetDateTime,
    ) -> Result<TokenUpdate, StoreError>;

    /// Revokes one live token, answering the record it had; `None` if it was not live (unknown,
    /// expired, or marked spent, in which case the mark stays).
    ///
    /// Called by: revocation (RFC 7009). Atomic: one delete that returns what it deleted.
    async fn revoke_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<TokenRecord>, StoreError>;

    /// Revokes every live token of a family, answering how many unexpired ones were revoked.
    /// Spent marks stay (a later replay is still recognised), and the family is marked revoked
    /// until `remember_until` (or later, if it already was): until then
    /// [`save_tokens`](TokenStore::save_tokens) and [`update_tokens`](TokenStore::update_tokens)
    /// save nothing into it.
    ///
    /// Called by: the refresh grant when it sees a replayed refresh token, the code grant when it
    /// sees a code used twice, and revocation. Atomic: one script or transaction.
    async fn revoke_family(
        &self,
        family: &FamilyId,
        remember_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError>;
}
