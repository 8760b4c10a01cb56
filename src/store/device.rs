//! The device authorization grant's store (RFC 8628): requests waiting for a person to enter
//! their user code, and their state as the device polls.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::scope::Scope;
use crate::store::PendingLimits;
use crate::token::{DeviceCodeHash, UserCodeHash};
use crate::types::{ClientId, UserId, Username};

/// How long, in seconds, a store keeps a device authorization after it expired, so that a late
/// poll hears `expired_token` (RFC 8628 §3.5) rather than `invalid_grant`.
pub const EXPIRED_DEVICE_CODE_MEMORY: i64 = 600;

/// Where a device authorization stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeviceStatus {
    /// Waiting for a person to enter the user code and decide.
    Pending,
    /// Approved by `user_id` for `scope`; the next poll gets tokens.
    Approved {
        /// The resource owner who approved.
        user_id: UserId,
        /// The username they signed in with, if known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<Username>,
        /// The scope granted (the scope asked for, or less).
        scope: Scope,
    },
    /// Denied; polls get `access_denied`.
    Denied,
}

/// A device authorization request (RFC 8628 §3.1) as a [`DeviceCodeStore`] keeps it, under the
/// hash of its device code, with an index from the hash of its user code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeviceAuthorization {
    /// The client (the device) that asked.
    pub client_id: ClientId,
    /// The scope asked for (or the client's default).
    pub scope: Scope,
    /// Pending, approved or denied.
    pub status: DeviceStatus,
    /// The minimum number of seconds between polls; `slow_down` adds 5 to it (RFC 8628 §3.5).
    pub interval: u64,
    /// When the device last polled (whole seconds), if it has.
    #[serde(with = "time::serde::timestamp::option")]
    pub last_poll: Option<OffsetDateTime>,
    /// When the request was made.
    #[serde(with = "time::serde::timestamp")]
    pub issued_at: OffsetDateTime,
    /// When the device code and user code expire.
    #[serde(with = "time::serde::timestamp")]
    pub expires_at: OffsetDateTime,
}

/// A person's decision on a device authorization, for
/// [`DeviceCodeStore::decide_device_authorization`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceDecision {
    /// Approved by `user_id` for `scope`.
    Approve {
        /// The resource owner who approved.
        user_id: UserId,
        /// The username they signed in with, if known.
        username: Option<Username>,
        /// The scope granted.
        scope: Scope,
    },
    /// Denied.
    Deny,
}

impl DeviceDecision {
    /// The status a request takes when this decision is recorded.
    pub(crate) fn status(&self) -> DeviceStatus {
        match self {
            Self::Approve {
                user_id,
                username,
                scope,
            } => DeviceStatus::Approved {
                user_id: user_id.clone(),
                username: username.clone(),
                scope: scope.clone(),
            },
            Self::Deny => DeviceStatus::Denied,
        }
    }
}

/// The answer of [`DeviceCodeStore::poll_device_authorization`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DevicePoll {
    /// Still waiting; the poll was at an allowed pace (and is now the last poll).
    Pending,
    /// Still waiting, and the poll came sooner than `interval` seconds after the last one: the
    /// interval has grown by 5 seconds, to the value carried.
    SlowDown {
        /// The new interval, in seconds.
        interval: u64,
    },
    /// The person denied the request.
    Denied,
    /// The person approved: the device authorization is now spent (removed), and this is what
    /// it was, with its [`DeviceStatus::Approved`] status.
    Approved(DeviceAuthorization),
    /// The device code expired (and is remembered for [`EXPIRED_DEVICE_CODE_MEMORY`] seconds).
    Expired,
    /// The device code was issued to another client. Nothing was changed.
    OtherClient,
    /// No such device code: never issued, already spent, or long expired.
    Unknown,
}

/// Keeps device authorization requests (RFC 8628).
///
/// Called by: [`device_authorization`](crate::AuthorizationServer::device_authorization) (save),
/// the host's verification page through
/// [`device_request`](crate::AuthorizationServer::device_request),
/// [`approve_device`](crate::AuthorizationServer::approve_device) and
/// [`deny_device`](crate::AuthorizationServer::deny_device) (find, decide), and the
/// `device_code` grant (poll).
///
/// Everything is stored under hashes: a [`DeviceCodeHash`] of the device code, and a
/// [`UserCodeHash`] of the *normalised* user code
/// ([`UserCode::normalized`](crate::UserCode::normalized)); each method takes the hash of its own
/// kind. A user code has only about
/// 35 bits, so its hash does not hide it from someone who can read the store; it lives only as
/// long as the request (10 minutes by default).
///
/// A store keeps each request until [`EXPIRED_DEVICE_CODE_MEMORY`] seconds after its
/// `expires_at` (so late polls hear `expired_token`), and its user code index only until
/// `expires_at`.
#[async_trait]
pub trait DeviceCodeStore: Send + Sync {
    /// Saves a new request under the hash of its device code, and indexes it by the hash of its
    /// user code, answering [`DeviceSave::Saved`]. Saves nothing and answers
    /// [`DeviceSave::UserCodeInUse`] if that user code is already in use by an unexpired request
    /// (the engine then draws another), or [`DeviceSave::Full`] if `limits` are reached: as many
    /// unexpired requests of the client as `limits.per_client`, or as many in all as
    /// `limits.total` (anyone who knows a public client's id can make these requests).
    ///
    /// Atomic: the checks and both saves are one step (Redis: one script; SQL: a unique index on
    /// the user code hash, and the counts in the same transaction).
    async fn save_device_authorization(
        &self,
        device_code: &DeviceCodeHash,
        user_code: &UserCodeHash,
        request: &DeviceAuthorization,
        limits: &PendingLimits,
        now: OffsetDateTime,
    ) -> Result<DeviceSave, StoreError>;

    /// The pending, unexpired request whose user code hashes to `user_code`, for the
    /// verification page to show; `None` if there is none, or it is already decided. A read.
    async fn find_device_authorization(
        &self,
        user_code: &UserCodeHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceAuthorization>, StoreError>;

    /// Records a person's decision on the pending, unexpired request whose user code hashes to
    /// `user_code`, answering `true`; `false` (changing nothing) if there is no such request or
    /// it is already decided.
    ///
    /// Atomic: of concurrent decisions on one request, exactly one answers `true` (SQL `UPDATE …
    /// WHERE status = 'pending' AND expires_at > $now`). The user code stops working once
    /// decided.
    async fn decide_device_authorization(
        &self,
        user_code: &UserCodeHash,
        decision: &DeviceDecision,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// One poll of the token endpoint by `client` with the device code hashing to
    /// `device_code`, in one atomic step:
    ///
    /// - no such request: [`DevicePoll::Unknown`];
    /// - issued to another client: [`DevicePoll::OtherClient`], nothing changed;
    /// - `now` at or after `expires_at`: [`DevicePoll::Expired`], nothing changed;
    /// - approved: the request is removed and answered as [`DevicePoll::Approved`] (of
    ///   concurrent polls, exactly one gets it; the others [`DevicePoll::Unknown`]);
    /// - denied: [`DevicePoll::Denied`];
    /// - pending, and the last poll was less than `interval` whole seconds before `now`:
    ///   `interval` grows by 5, `last_poll` becomes `now`, answer [`DevicePoll::SlowDown`];
    /// - pending otherwise: `last_poll` becomes `now`, answer [`DevicePoll::Pending`].
    async fn poll_device_authorization(
        &self,
        device_code: &DeviceCodeHash,
        client: &ClientId,
        now: OffsetDateTime,
    ) -> Result<DevicePoll, StoreError>;

    /// Puts back an approved request that a poll collected ([`DevicePoll::Approved`]) but whose
    /// tokens could not be saved (the token store failed), so that the device's next poll
    /// collects it instead of the person having to start again. Saves `request` under
    /// `device_code` unless something is stored there already, answering whether it did.
    /// Atomic.
    async fn restore_device_approval(
        &self,
        device_code: &DeviceCodeHash,
        request: &DeviceAuthorization,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
}

/// The answer of [`DeviceCodeStore::save_device_authorization`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceSave {
    /// Saved.
    Saved,
    /// The user code belongs to another unexpired request: nothing was saved.
    UserCodeInUse,
    /// A limit is reached: nothing was saved.
    Full {
        /// How long until the oldest request counted against the limit expires.
        retry_after: std::time::Duration,
    },
}

/// Whether a poll at `now` comes too soon after `last_poll` for `interval` (whole seconds):
/// the rule every store applies.
pub fn polled_too_soon(
    last_poll: Option<OffsetDateTime>,
    interval: u64,
    now: OffsetDateTime,
) -> bool {
    match last_poll {
        None => false,
        Some(last) => {
            let elapsed = now.unix_timestamp().saturating_sub(last.unix_timestamp());
            elapsed < i64::try_from(interval).unwrap_or(i64::MAX)
        }
    }
}
