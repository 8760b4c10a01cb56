//! The authorization code grant's store: authorization requests awaiting a decision, and
//! authorization codes.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::pending::{Admission, PendingLimits};
use crate::error::StoreError;
use crate::pkce::CodeChallenge;
use crate::scope::Scope;
use crate::token::{AuthorizationCodeHash, RequestIdHash};
use crate::types::{ClientId, FamilyId, RedirectUri, ResponseType, UserId, Username};

/// A validated authorization request (RFC 6749 §4.1.1, §4.2.1) waiting for the user's decision.
///
/// Kept by a [`CodeStore`] under the hash of its
/// [`AuthorizationRequestId`](crate::AuthorizationRequestId); the host reads it to draw its
/// consent page, and cannot change it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PendingAuthorization {
    /// The client asking.
    pub client_id: ClientId,
    /// `code` or `token` (implicit).
    pub response_type: ResponseType,
    /// Where the answer goes: the URI sent, or the client's only registered one.
    pub redirect_uri: RedirectUri,
    /// Whether the request carried `redirect_uri` (then the token request must repeat it,
    /// RFC 6749 §4.1.3).
    pub redirect_uri_in_request: bool,
    /// The scope asked for (or the client's default).
    pub scope: Scope,
    /// The client's `state`, returned unchanged.
    pub state: Option<String>,
    /// The PKCE challenge, if any.
    pub code_challenge: Option<CodeChallenge>,
    /// When the request stops waiting.
    #[serde(with = "time::serde::timestamp")]
    pub expires_at: OffsetDateTime,
}

/// What an authorization code stands for (RFC 6749 §4.1.2: the code is "bound to the client
/// identifier and redirection URI").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CodeGrant {
    /// The client the code was issued to.
    pub client_id: ClientId,
    /// The resource owner who approved.
    pub user_id: UserId,
    /// The username the resource owner signed in with, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<Username>,
    /// The redirection URI the code was sent to.
    pub redirect_uri: RedirectUri,
    /// Whether the authorization request carried `redirect_uri`.
    pub redirect_uri_in_request: bool,
    /// The scope granted.
    pub scope: Scope,
    /// The PKCE challenge the token request must answer, if any.
    pub code_challenge: Option<CodeChallenge>,
    /// The family every token issued from this code belongs to, so that a second use of the
    /// code can revoke them (RFC 6749 §4.1.2).
    pub family_id: FamilyId,
    /// When the code was issued.
    #[serde(with = "time::serde::timestamp")]
    pub issued_at: OffsetDateTime,
    /// When the code expires.
    #[serde(with = "time::serde::timestamp")]
    pub expires_at: OffsetDateTime,
}

/// The answer of [`CodeStore::take_code`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeRedemption {
    /// The code was live: it is now spent, and this is what it stood for.
    Redeemed(CodeGrant),
    /// The code was already spent: a second use. RFC 6749 §4.1.2: the server "SHOULD revoke (when
    /// possible) all tokens previously issued based on that authorization code".
    AlreadyUsed {
        /// The family of the tokens issued from the code.
        family_id: FamilyId,
    },
    /// The code was issued to another client: nothing was changed.
    OtherClient,
    /// No such code: never issued, or expired (and its used mark gone).
    Unknown,
}

/// Keeps authorization requests awaiting a decision, and authorization codes.
///
/// Called by: the authorization endpoint, [`approve`](crate::AuthorizationServer::approve) and
/// [`deny`](crate::AuthorizationServer::deny), and the `authorization_code` grant.
///
/// Pending requests are stored under the [`RequestIdHash`] of their
/// [`AuthorizationRequestId`](crate::AuthorizationRequestId), codes under the
/// [`AuthorizationCodeHash`] of their [`AuthorizationCode`](crate::AuthorizationCode), never the
/// value itself; every entry expires at its `expires_at` as judged by the `now` passed in.
///
/// Each method takes the hash of its own kind, so one kind of secret cannot be looked up as
/// another. A code is spent by the hash of an authorization code:
///
/// ```
/// use grantor::{AuthorizationCode, AuthorizationCodeHash, ClientId, CodeStore, MemoryCodeStore};
///
/// async fn redeem(store: &MemoryCodeStore, client: &ClientId, now: time::OffsetDateTime) {
///     let hash = AuthorizationCodeHash::of(&AuthorizationCode::generate());
///     let _ = store.take_code(&hash, client, now, now).await;
/// }
/// ```
///
/// and not by the hash of a device code, which does not compile:
///
/// ```compile_fail
/// use grantor::{ClientId, CodeStore, DeviceCode, DeviceCodeHash, MemoryCodeStore};
///
/// async fn redeem(store: &MemoryCodeStore, client: &ClientId, now: time::OffsetDateTime) {
///     let hash = DeviceCodeHash::of(&DeviceCode::generate());
///     let _ = store.take_code(&hash, client, now, now).await;
/// }
/// ```
#[async_trait]
pub trait CodeStore: Send + Sync {
    /// Saves a validated authorization request under the hash of its id (`id`), unless `limits` are
    /// reached: as many unexpired requests of its client as `limits.per_client`, or as many in
    /// all as `limits.total`. Then it saves nothing and answers [`Admission::Full`] with how
    /// long until the oldest such request expires (anyone can make these requests, so they must
    /// not grow without bound).
    ///
    /// Atomic: the counts and the save are one step, so concurrent saves cannot overrun a limit.
    async fn save_pending(
        &self,
        id: &RequestIdHash,
        request: &PendingAuthorization,
        limits: &PendingLimits,
        now: OffsetDateTime,
    ) -> Result<Admission, StoreError>;

    /// Reads a pending request, leaving it in place (to draw a page again after a wrong
    /// password). A read.
    async fn find_pending(
        &self,
        id: &RequestIdHash,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError>;

    /// Removes and answers a pending request. Atomic (Redis `GETDEL`, SQL `DELETE … RETURNING`):
    /// of concurrent calls with one id, one gets the request and the others `None`, so one
    /// request yields one decision.
    async fn take_pending(
        &self,
        id: &RequestIdHash,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError>;

    /// Saves an issued authorization code under its hash (`code`).
    async fn save_code(
        &self,
        code: &AuthorizationCodeHash,
        grant: &CodeGrant,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Spends a code presented by `client`, in one atomic step (SQL: `UPDATE … SET state =
    /// 'used' WHERE hash = $1 AND state = 'live' AND client_id = $2 AND expires_at > $now
    /// RETURNING …`):
    ///
    /// - a live, unexpired code issued to `client`: marked used, answering
    ///   [`CodeRedemption::Redeemed`] with its grant. The used mark keeps the client and the
    ///   family until `keep_used_until` (or the code's expiry, if later): as long as the tokens
    ///   first issued from the code can live, so that a replay can still revoke them;
    /// - a used code of `client`: [`CodeRedemption::AlreadyUsed`];
    /// - a live or used code of another client: [`CodeRedemption::OtherClient`], nothing
    ///   changed (a code leaked to another client can neither be spent nor revoke anything);
    /// - anything else: [`CodeRedemption::Unknown`].
    ///
    /// Of any number of concurrent calls with one code, exactly one answers `Redeemed`.
    async fn take_code(
        &self,
        code: &AuthorizationCodeHash,
        client: &ClientId,
        keep_used_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<CodeRedemption, StoreError>;

    /// Gives back a code that [`take_code`](CodeStore::take_code) spent but whose tokens could
    /// not be saved (the token store failed): if `code` is still marked used with `grant`'s
    /// family and the code has not expired, it is live again with `grant`, answering `true`;
    /// otherwise nothing changes and it answers `false`. Atomic.
    async fn restore_code(
        &self,
        code: &AuthorizationCodeHash,
        grant: &CodeGrant,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
}
