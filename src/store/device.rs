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
    /// The minimum number of seconds between polls, as the engine last set it (it grows when
    /// the device polls too fast, RFC 8628 §3.5).
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

/// Keeps device authorization requests (RFC 8628).
///
/// Called by: [`device_authorization`](crate::AuthorizationServer::device_authorization) (save),
/// the host's verification page through
/// [`device_request`](crate::AuthorizationServer::device_request),
/// [`approve_device`](crate::AuthorizationServer::approve_device) and
/// [`deny_device`](crate::AuthorizationServer::deny_device) (find by user code, decide), and the
/// `device_code` grant's polls (find by device code, record a poll, take an approval, put one
/// back).
///
/// The store applies no protocol rule: the engine reads a request, works out what a poll
/// answers and what the request becomes, and writes it back with a compare-and-set
/// ([`record_poll`](Self::record_poll)), reading again when another call got there first. The
/// store's part is that each method below is one atomic step, and that it keeps what it is
/// told for as long as it is told.
///
/// Everything is stored under hashes: a [`DeviceCodeHash`] of the device code, and a
/// [`UserCodeHash`] of the *normalised* user code
/// ([`UserCode::normalized`](crate::UserCode::normalized)); each method takes the hash of its own
/// kind. A user code has only about
/// 35 bits, so its hash does not hide it from someone who can read the store; it lives only as
/// long as the request (10 minutes by default).
///
/// # Lifetimes
///
/// - A request is *kept* (found by [`find_device`](Self::find_device)) from its save until the
///   `keep_until` it was saved with (the engine passes a time after `expires_at`, so that a late
///   poll can still be told the code expired), or until [`take_approved`](Self::take_approved)
///   removes it, whichever comes first.
/// - Its user code *index* (what [`find_device_authorization`](Self::find_device_authorization)
///   and [`decide_device_authorization`](Self::decide_device_authorization) follow) lives until
///   the request's `expires_at`, or until a decision is recorded.
/// - It *counts* against [`PendingLimits`] until its `expires_at`, or until it is taken.
///
/// Every judgement of time uses the `now` passed in (a store with its own TTLs may purge later,
/// never sooner).
#[async_trait]
pub trait DeviceCodeStore: Send + Sync {
    /// Saves a new request under the hash of its device code, kept until `keep_until`, and
    /// indexes it by the hash of its user code until its `expires_at`, answering
    /// [`DeviceSave::Saved`]. Saves nothing and answers [`DeviceSave::UserCodeInUse`] if that
    /// user code already indexes a request whose `expires_at` is after `now` (the engine then
    /// draws another), or [`DeviceSave::Full`] if `limits` are reached: as many counted
    /// requests of the client as `limits.per_client`, or as many in all as `limits.total`
    /// (anyone who knows a public client's id can make these requests).
    ///
    /// Atomic: the checks and both saves are one step (Redis: one script; SQL: a unique index on
    /// the user code hash, and the counts in the same transaction).
    async fn save_device_authorization(
        &self,
        device_code: &DeviceCodeHash,
        user_code: &UserCodeHash,
        request: &DeviceAuthorization,
        keep_until: OffsetDateTime,
        limits: &PendingLimits,
        now: OffsetDateTime,
    ) -> Result<DeviceSave, StoreError>;

    /// The request whose user code hashes to `user_code`, while that index lives: `Some` if the
    /// request is [`DeviceStatus::Pending`] and its `expires_at` is after `now`; `None` if there
    /// is none, it is decided, or it expired. A read, for the verification page to show.
    async fn find_device_authorization(
        &self,
        user_code: &UserCodeHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceAuthorization>, StoreError>;

    /// The request stored under `device_code`, as it stands (status, interval, last poll),
    /// while it is kept: `Some` until the `keep_until` it was saved with (even after its
    /// `expires_at`), `None` if there is none, it was taken, or `keep_until` is not after
    /// `now`. A read: it changes nothing.
    async fn find_device(
        &self,
        device_code: &DeviceCodeHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceAuthorization>, StoreError>;

    /// Records a poll, compare-and-set: if the request under `device_code` is kept, its status
    /// is [`DeviceStatus::Pending`], and its pace is `expected` (the same `interval`, and the
    /// same `last_poll`: both `None`, or the same instant in whole seconds), sets its pace to
    /// `pace` and answers [`DeviceUpdate::Applied`]; otherwise changes nothing and answers
    /// [`DeviceUpdate::Conflict`] (the engine reads again and retries).
    ///
    /// The engine passes `last_poll` in whole seconds; a store may keep whole seconds only.
    ///
    /// Atomic: of concurrent calls with the same `expected` pace, exactly one answers `Applied`
    /// (SQL `UPDATE … SET last_poll = $4, interval = $5 WHERE device_code = $1 AND status =
    /// 'pending' AND last_poll IS NOT DISTINCT FROM $2 AND interval = $3 AND keep_until >
    /// $now`). Both values are compared: polls in the same second leave `last_poll` as it was
    /// and change only `interval`.
    async fn record_poll(
        &self,
        device_code: &DeviceCodeHash,
        expected: &DevicePace,
        pace: &DevicePace,
        now: OffsetDateTime,
    ) -> Result<DeviceUpdate, StoreError>;

    /// Records a person's decision, compare-and-set from [`DeviceStatus::Pending`]: if the user
    /// code index of `user_code` lives (the request is pending and its `expires_at` is after
    /// `now`), sets the request's status to the decision's, removes the index (the user code
    /// stops working, and may be drawn again), and answers [`DeviceDecided::Decided`];
    /// otherwise changes nothing and answers [`DeviceDecided::NotPending`].
    ///
    /// Atomic: of concurrent decisions on one request, exactly one answers `Decided` (SQL
    /// `UPDATE … WHERE status = 'pending' AND expires_at > $now`).
    async fn decide_device_authorization(
        &self,
        user_code: &UserCodeHash,
        decision: &DeviceDecision,
        now: OffsetDateTime,
    ) -> Result<DeviceDecided, StoreError>;

    /// Takes an approved request: if the request under `device_code` is kept and its status is
    /// [`DeviceStatus::Approved`], removes it (it stops counting against the limits, and
    /// [`find_device`](Self::find_device) no longer finds it) and answers what it was, with its
    /// status; otherwise changes nothing and answers `None`.
    ///
    /// Atomic: of concurrent calls, exactly one gets the request (SQL `DELETE … WHERE status =
    /// 'approved' AND keep_until > $now RETURNING *`).
    async fn take_approved(
        &self,
        device_code: &DeviceCodeHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceAuthorization>, StoreError>;

    /// Puts back a request that [`take_approved`](Self::take_approved) took but whose tokens
    /// could not be saved (the token store failed), so that the device's next poll collects it
    /// instead of the person having to start again. Insert-if-absent: if nothing is stored
    /// under `device_code`, saves `request` there, kept until `keep_until` (counted against the
    /// limits until its `expires_at`, with no user code index), and answers
    /// [`DeviceRestore::Restored`]; if something is, changes nothing and answers
    /// [`DeviceRestore::Occupied`]; if `keep_until` is not after `now`, saves nothing and
    /// answers [`DeviceRestore::Lapsed`].
    ///
    /// Atomic: the check and the save are one step (SQL `INSERT … ON CONFLICT DO NOTHING`).
    async fn restore_device_approval(
        &self,
        device_code: &DeviceCodeHash,
        request: &DeviceAuthorization,
        keep_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<DeviceRestore, StoreError>;
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

/// A device request's polling pace, as [`DeviceCodeStore::record_poll`] compares and writes it:
/// when the device last polled (whole seconds), and the interval it must keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevicePace {
    /// When the device last polled, if it has.
    pub last_poll: Option<OffsetDateTime>,
    /// The minimum number of seconds between polls.
    pub interval: u64,
}

impl DevicePace {
    /// A pace of `last_poll` and `interval`.
    pub fn new(last_poll: Option<OffsetDateTime>, interval: u64) -> Self {
        Self {
            last_poll,
            interval,
        }
    }

    /// The pace `request` is at.
    pub fn of(request: &DeviceAuthorization) -> Self {
        Self::new(request.last_poll, request.interval)
    }
}

/// The answer of [`DeviceCodeStore::record_poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceUpdate {
    /// The request was pending with the expected last poll: the new values are stored.
    Applied,
    /// The request is gone, no longer pending, or its last poll was not the expected one:
    /// nothing was changed.
    Conflict,
}

/// The answer of [`DeviceCodeStore::decide_device_authorization`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceDecided {
    /// The decision was recorded, and the user code index removed.
    Decided,
    /// No pending, unexpired request is behind the user code (none, already decided, or
    /// expired): nothing was changed.
    NotPending,
}

/// The answer of [`DeviceCodeStore::restore_device_approval`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceRestore {
    /// The request was put back.
    Restored,
    /// Something is stored under the device code already: nothing was changed.
    Occupied,
    /// `keep_until` was not after `now`: there was nothing to keep, and nothing was saved.
    Lapsed,
}
