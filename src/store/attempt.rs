//! Failed sign-in attempts: what they are counted against, the limits, and the limiter.

use std::net::IpAddr;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::types::{ClientId, UserId, Username};

/// What an [`AttemptLimiter`] counts failures against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttemptKey {
    /// A username, normalised (trimmed, lower-cased) so that `Tom` and `tom ` share a count.
    Username(String),
    /// A client, for failures across all of its users.
    Client(ClientId),
    /// A caller's network address, for failures across every username tried from it (one
    /// password sprayed over many users): an IPv4 address, or an IPv6 caller's /64.
    Address(String),
    /// Someone entering device user codes (RFC 8628 §5.1), by the caller's address.
    UserCodeEntry(String),
    /// A user's one-time codes (second factor), by user id: every alias the user signs in with
    /// shares one count.
    SecondFactor(UserId),
    /// A client's secret (RFC 6749 §2.3.1), tried from one caller address (an IPv4 address or
    /// an IPv6 caller's /64), or, with `caller` `None`, by every caller whose address is not
    /// known. Built with [`client_secret`](AttemptKey::client_secret), which writes the address
    /// as [`address`](AttemptKey::address) does.
    #[non_exhaustive]
    ClientSecret {
        /// The client whose secret is tried.
        client: ClientId,
        /// The caller's address as [`address`](AttemptKey::address) counts it.
        caller: Option<String>,
    },
}

impl AttemptKey {
    /// The key for a username, normalised.
    pub fn username(username: &Username) -> Self {
        Self::Username(username.as_str().trim().to_lowercase())
    }

    /// The key for a caller's address: an IPv4 address (an IPv4-mapped IPv6 one counts as
    /// IPv4), or the /64 of an IPv6 address, which one subscriber usually holds whole.
    pub fn address(caller: IpAddr) -> Self {
        Self::Address(address_key(caller))
    }

    /// The key for someone typing device user codes from `caller` (see
    /// [`address`](AttemptKey::address)).
    pub fn user_code_entry(caller: IpAddr) -> Self {
        Self::UserCodeEntry(address_key(caller))
    }

    /// The key for `client`'s secret tried from `caller`, or by callers of unknown address.
    pub fn client_secret(client: &ClientId, caller: Option<IpAddr>) -> Self {
        Self::ClientSecret {
            client: client.clone(),
            caller: caller.map(address_key),
        }
    }

    /// A stable string form, e.g. `user:tom` or `client:clientapp`, for use as a storage key.
    pub fn storage_key(&self) -> String {
        let mut key = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_storage_key(&mut key);
        key
    }

    /// Writes [`storage_key`](AttemptKey::storage_key) to `out`, for a store that hashes it
    /// without building the string.
    pub(crate) fn write_storage_key(&self, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        match self {
            Self::Username(u) => write!(out, "user:{u}"),
            Self::Client(c) => write!(out, "client:{c}"),
            Self::Address(a) => write!(out, "addr:{a}"),
            Self::UserCodeEntry(who) => write!(out, "user_code:{who}"),
            Self::SecondFactor(user) => write!(out, "second_factor:{user}"),
            // An address holds no space, so the space ends it whatever the client id holds.
            Self::ClientSecret {
                client,
                caller: Some(caller),
            } => write!(out, "client_secret@{caller} {client}"),
            Self::ClientSecret {
                client,
                caller: None,
            } => write!(out, "client_secret:{client}"),
        }
    }
}

/// An address as limits count it: IPv4 as is, IPv6 by its /64.
fn address_key(caller: IpAddr) -> String {
    match caller.to_canonical() {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => {
            let [a, b, c, d, ..] = ip.segments();
            format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
        }
    }
}

/// A limit: at most `max_failures` failures within `window`, counted from the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptRule {
    /// Failures allowed in a window; the next attempt is refused until the window closes.
    pub max_failures: u32,
    /// How long a window lasts from its first failure. A store may round it up to whole
    /// seconds (the Redis store does).
    pub window: std::time::Duration,
}

/// One check's hold on an [`AttemptKey`] while it is in flight: a random id, and the instant
/// after which the hold lapses by itself (if the process checking died, or its request was
/// dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AttemptLease {
    /// Which check holds it: random, so holds from many servers do not collide.
    pub id: u64,
    /// When the hold lapses.
    pub until: OffsetDateTime,
}

impl AttemptLease {
    /// A fresh lease (a random id) lasting until `until`.
    pub fn new(until: OffsetDateTime) -> Self {
        Self {
            id: rand::random(),
            until,
        }
    }
}

/// The answer of [`AttemptLimiter::reserve_attempt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptVerdict {
    /// The check may go ahead; its lease is held.
    Allowed,
    /// As many checks are in flight as failures remain allowed: wait for one of them to finish
    /// (a right password gives its place back; a wrong one uses it up). Nothing was changed.
    Busy,
    /// Too many failures: refuse without checking the credentials. Nothing was changed.
    Refused {
        /// How long until the window closes.
        retry_after: std::time::Duration,
    },
}

/// Counts failed sign-in attempts, so that password guessing is refused (RFC 6749 §4.3.2: "the
/// authorization server MUST protect the endpoint against brute force attacks") while a burst
/// of right passwords is not.
///
/// Each key has a count of failures in its window, and a set of **leases**: checks in flight.
/// A check may start only while `failures + leases < max_failures`
/// ([`reserve_attempt`](AttemptLimiter::reserve_attempt)); when it ends, its lease is either
/// given back ([`release_attempt`](AttemptLimiter::release_attempt), for a right password) or
/// turned into a failure ([`record_failure`](AttemptLimiter::record_failure)). So:
///
/// - any number of concurrent *right* passwords for one username all succeed: at most
///   `max_failures` are checked at once, the others wait for a place ([`AttemptVerdict::Busy`]);
/// - any number of concurrent *wrong* guesses reach the [`UserVerifier`](super::UserVerifier) at
///   most `max_failures` times per window, because every one of them held a place until it
///   failed.
///
/// The engine counts each sign-in against several keys (the username, the authenticated
/// client, the caller's address), holding a lease on each.
///
/// Called by: the `password` and `mfa-otp` grants, the login-page checks
/// ([`verify_user`](crate::AuthorizationServer::verify_user)), and the device verification
/// page's user-code lookups.
#[async_trait]
pub trait AttemptLimiter: Send + Sync {
    /// Asks to start a check counted against `key`, in one atomic step (Redis: one script; SQL:
    /// one transaction over the key's row and its leases):
    ///
    /// - `rule.max_failures` failures counted in `key`'s open window (one that ends after
    ///   `now`): answer [`AttemptVerdict::Refused`] with the time until it ends;
    /// - otherwise, counting each lease whose `until` is at or before `now` as a failure (a
    ///   check whose request was dropped is presumed wrong, so dropping requests buys no
    ///   guesses), opening a window of `rule.window` at `now` if none is open: if that reaches
    ///   the limit, refuse as above; if the failures and the leases left reach
    ///   `rule.max_failures`, answer [`AttemptVerdict::Busy`];
    /// - otherwise hold `lease` and answer [`AttemptVerdict::Allowed`].
    ///
    /// Of any number of concurrent calls on one key, at most `max_failures - failures` are
    /// allowed.
    async fn reserve_attempt(
        &self,
        key: &AttemptKey,
        rule: &AttemptRule,
        lease: &AttemptLease,
        now: OffsetDateTime,
    ) -> Result<AttemptVerdict, StoreError>;

    /// Gives `lease` back without counting anything: the check succeeded, or was never made.
    /// A lease that is not held (or has lapsed, and is counted as a failure) is ignored.
    ///
    /// Atomic: one delete.
    async fn release_attempt(
        &self,
        key: &AttemptKey,
        lease: &AttemptLease,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Ends `lease` (if held) and counts one failure against `key`, opening a window of
    /// `rule.window` at `now` if none is open (lapsed leases are counted too, as in
    /// [`reserve_attempt`](AttemptLimiter::reserve_attempt)).
    ///
    /// Atomic: the lease's removal and the count are one step.
    async fn record_failure(
        &self,
        key: &AttemptKey,
        rule: &AttemptRule,
        lease: &AttemptLease,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
}
