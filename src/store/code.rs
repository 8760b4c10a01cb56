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
    /// The resources asked for (RFC 8707), each one the client may name; empty if none was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
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
    /// The resources the grant is for (RFC 8707): the token request may narrow them. Empty: for
    /// no resource in particular.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
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

/// The used mark a spent code leaves behind, as [`CodeStore::spend_code`] is asked to keep it.
///
/// The engine computes it; the store keeps it as given, until `keep_until` at `now`, and answers
/// it from [`CodeStore::find_code`] as [`CodeLookup::Spent`] meanwhile.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpentCode {
    /// The client to name when the code is read again.
    pub client_id: ClientId,
    /// The family to name when the code is read again.
    pub family_id: FamilyId,
    /// Until when the mark is kept (by the `now` passed to later calls). The engine never asks
    /// for less than the code's own `expires_at`; a store may keep the mark longer by rounding
    /// up to its own resolution (Redis: whole seconds), never shorter.
    pub keep_until: OffsetDateTime,
}

impl SpentCode {
    /// A used mark naming `client_id` and `family_id`, kept until `keep_until`.
    pub fn new(client_id: ClientId, family_id: FamilyId, keep_until: OffsetDateTime) -> Self {
        Self {
            client_id,
            family_id,
            keep_until,
        }
    }
}

/// The answer of [`CodeStore::find_code`]: what a code's hash holds at `now`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeLookup {
    /// A code saved by [`save_code`](CodeStore::save_code) (or given back by
    /// [`restore_code`](CodeStore::restore_code)), not spent, and unexpired at `now`: the grant
    /// saved with it.
    Live(CodeGrant),
    /// A code spent by [`spend_code`](CodeStore::spend_code) whose used mark is kept at `now`:
    /// the client and family of that mark, as given.
    Spent {
        /// The mark's client.
        client_id: ClientId,
        /// The mark's family.
        family_id: FamilyId,
    },
    /// Nothing at `now`: never saved, a live code at or past its `expires_at`, or a used mark
    /// at or past its `keep_until`.
    Unknown,
}

/// The answer of [`CodeStore::spend_code`].
// Answered once per exchange and taken apart at once: boxing the grant would only make store
// implementations wordier.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeSpend {
    /// The code was live at `now` and is now the used mark asked for: the grant it held.
    Spent(CodeGrant),
    /// The code was not live at `now` (spent already, expired, or unknown): nothing changed.
    Conflict,
}

/// The answer of [`CodeStore::restore_code`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeRestore {
    /// The code was a used mark of the grant's family, and is live again with the grant.
    Restored,
    /// It was not (live, a mark of another family, expired, or unknown): nothing changed.
    Gone,
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
/// another. A code is read and spent by the hash of an authorization code:
///
/// ```
/// use grantor::{
///     AuthorizationCode, AuthorizationCodeHash, CodeLookup, CodeStore, MemoryCodeStore,
///     SpentCode,
/// };
///
/// async fn redeem(store: &MemoryCodeStore, now: time::OffsetDateTime) {
///     let hash = AuthorizationCodeHash::of(&AuthorizationCode::generate());
///     if let Ok(CodeLookup::Live(grant)) = store.find_code(&hash, now).await {
///         let mark = SpentCode::new(grant.client_id, grant.family_id, grant.expires_at);
///         let _ = store.spend_code(&hash, &mark, now).await;
///     }
/// }
/// ```
///
/// and not by the hash of a device code, which does not compile:
///
/// ```compile_fail
/// use grantor::{CodeStore, DeviceCode, DeviceCodeHash, MemoryCodeStore, SpentCode};
///
/// async fn redeem(store: &MemoryCodeStore, mark: &SpentCode, now: time::OffsetDateTime) {
///     let hash = DeviceCodeHash::of(&DeviceCode::generate());
///     let _ = store.find_code(&hash, now).await;
///     let _ = store.spend_code(&hash, mark, now).await;
/// }
/// ```
///
/// # Codes
///
/// A code's hash holds one of three states at a given `now`: live (its [`CodeGrant`], until the
/// grant's `expires_at`), spent (a [`SpentCode`] mark: a client and a family, until the mark's
/// `keep_until`), or nothing. [`save_code`](Self::save_code) makes it live;
/// [`spend_code`](Self::spend_code) turns live into spent and
/// [`restore_code`](Self::restore_code) spent back into live, each as one compare-and-set;
/// [`find_code`](Self::find_code) reads. The store compares nothing but these states, the
/// family (to give a code back) and `now`: which client may use a code, and what a second use
/// means, is the engine's business. A spent code must remember the code's own `expires_at` too
/// (a code may be given back only until then), though no method answers it.
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

    /// Reads what a code's hash holds at `now`, changing nothing: [`CodeLookup::Live`] with the
    /// grant saved, [`CodeLookup::Spent`] with the client and family of the used mark, or
    /// [`CodeLookup::Unknown`] (see each variant for when). A read (SQL: `SELECT … WHERE hash =
    /// $1`, judging expiry by `$now`).
    async fn find_code(
        &self,
        code: &AuthorizationCodeHash,
        now: OffsetDateTime,
    ) -> Result<CodeLookup, StoreError>;

    /// Spends a code: if `code` is live at `now` (saved, not spent, before its `expires_at`), it
    /// becomes the used mark `mark`, kept until `mark.keep_until`, answering
    /// [`CodeSpend::Spent`] with the grant it held; otherwise nothing changes and it answers
    /// [`CodeSpend::Conflict`].
    ///
    /// Atomic, a compare-and-set from live to spent (SQL: `UPDATE … SET state = 'used', client_id
    /// = $2, family_id = $3, keep_until = $4 WHERE hash = $1 AND state = 'live' AND expires_at >
    /// $now RETURNING …`; Redis: one script): of any number of concurrent calls with one code,
    /// exactly one answers `Spent`. The mark is stored as given: the store does not compare its
    /// client or family with the grant's.
    async fn spend_code(
        &self,
        code: &AuthorizationCodeHash,
        mark: &SpentCode,
        now: OffsetDateTime,
    ) -> Result<CodeSpend, StoreError>;

    /// Gives back a spent code (its tokens could not be saved): if `code` holds a used mark of
    /// `grant`'s family at `now`, and the code's own `expires_at` (as saved) is after `now`, it
    /// is live again with `grant`, answering [`CodeRestore::Restored`]; otherwise nothing
    /// changes and it answers [`CodeRestore::Gone`].
    ///
    /// Atomic, a compare-and-set from spent to live (SQL: `UPDATE … SET state = 'live' WHERE
    /// hash = $1 AND state = 'used' AND family_id = $2 AND keep_until > $now AND expires_at >
    /// $now`): of concurrent calls, at most one answers `Restored`.
    async fn restore_code(
        &self,
        code: &AuthorizationCodeHash,
        grant: &CodeGrant,
        now: OffsetDateTime,
    ) -> Result<CodeRestore, StoreError>;
}
