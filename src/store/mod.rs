//! The hooks the host application implements: clients, users, tokens and failed-attempt counts.
//!
//! | trait | what it answers | in-memory default |
//! |---|---|---|
//! | [`ClientStore`] | a registered client by id | [`MemoryClientStore`] |
//! | [`UserVerifier`] | whether a username and password belong to a user | [`MemoryUserVerifier`] |
//! | [`TokenStore`] | issued tokens, by hash, with their grant records | [`MemoryTokenStore`] |
//! | [`AttemptLimiter`] | whether a login may be tried now (brute-force protection) | [`MemoryAttemptLimiter`] |
//! | [`CodeStore`] | authorization requests awaiting a decision, and authorization codes | [`MemoryCodeStore`] |
//! | [`DeviceCodeStore`] | device authorization requests (RFC 8628) | [`MemoryDeviceCodeStore`] |
//! | [`MfaStore`] | password sign-ins owing a second factor, and used one-time codes | [`MemoryMfaStore`] |
//!
//! With the `redis` feature, `RedisStore` implements [`TokenStore`], [`AttemptLimiter`],
//! [`CodeStore`], [`DeviceCodeStore`] and [`MfaStore`] in Redis, for several servers that must
//! share them. Both stores pass one conformance suite
//! (`tests/conformance/`), and so must any store of your own.
//!
//! Every trait is `Send + Sync` with `&self` methods: interior mutability (a connection pool, a
//! lock) is the implementor's business, and the server holds each as an `Arc<dyn Trait>`.
//!
//! Every method is **one step that a real database can do atomically**: one `GETDEL` or script in
//! Redis, one statement or transaction in SQL (`DELETE … RETURNING`, `UPDATE … WHERE state =
//! 'live' RETURNING`). The engine never reads a value, decides, and writes it back across two
//! calls: where a step must be single-use (rotating a refresh token, counting an attempt) the
//! method itself is the check and the write. Each method's documentation says who calls it, what
//! must be atomic, and what each answer means.

mod device;
mod expiry;
mod memory;
mod mfa;
#[cfg(feature = "redis")]
mod redis;

use std::net::IpAddr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[cfg(feature = "redis")]
pub use self::redis::{RedisStore, RedisStoreBuilder};
pub use device::{
    polled_too_soon, DeviceAuthorization, DeviceCodeStore, DeviceDecision, DevicePoll, DeviceSave,
    DeviceStatus, EXPIRED_DEVICE_CODE_MEMORY,
};
pub use memory::{
    MemoryAttemptLimiter, MemoryClientStore, MemoryCodeStore, MemoryDeviceCodeStore,
    MemoryMfaStore, MemoryTokenStore, MemoryUserVerifier,
};
pub use mfa::{MfaChallenge, MfaStore};

use crate::authorize::ResponseType;
use crate::error::StoreError;
use crate::pkce::CodeChallenge;
use crate::scope::Scope;
use crate::token::{SecretHash, TokenHash};
use crate::types::{
    ClientId, FamilyId, GrantType, OneTimeCode, Password, RedirectUri, UserId, Username,
};

/// Whether a client can keep a secret (RFC 6749 §2.1).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientKind {
    /// A public client (a SPA, a mobile or CLI app): it has no secret and authenticates with
    /// `client_id` alone. PKCE is required for it wherever codes are involved.
    Public,
    /// A confidential client: it authenticates with its secret, kept here only as a hash.
    Confidential {
        /// The salted hash of the client's secret.
        secret: SecretHash,
    },
}

/// A registered client, as a [`ClientStore`] returns it.
///
/// ```
/// use grantor::{Client, ClientSecret, GrantType, SecretHash, Scope};
///
/// let client = Client::confidential("clientapp", SecretHash::new(&ClientSecret::new("123456")))
///     .with_grant_types([GrantType::Password, GrantType::RefreshToken])
///     .with_allowed_scope("read write".parse().unwrap())
///     .with_default_scope("read".parse().unwrap());
/// assert!(client.allows(GrantType::Password));
/// assert!(!client.allows(GrantType::ClientCredentials));
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    /// The client identifier.
    pub id: ClientId,
    /// Public or confidential, with the secret's hash for the latter.
    pub kind: ClientKind,
    /// The registered redirection URIs, matched exactly.
    pub redirect_uris: Vec<RedirectUri>,
    /// The grant types this client may use; any other gets `unauthorized_client`.
    pub grant_types: Vec<GrantType>,
    /// Every scope token this client may ask for.
    pub allowed_scope: Scope,
    /// The scope granted when a request names none (RFC 6749 §3.3). If empty, such a request
    /// fails with `invalid_scope`.
    pub default_scope: Scope,
}

impl Client {
    /// A public client with no grant types, no scopes and no redirect URIs yet.
    pub fn public(id: impl Into<ClientId>) -> Self {
        Self::with_kind(id.into(), ClientKind::Public)
    }

    /// A confidential client with the given secret hash, and no grant types, scopes or redirect
    /// URIs yet.
    pub fn confidential(id: impl Into<ClientId>, secret: SecretHash) -> Self {
        Self::with_kind(id.into(), ClientKind::Confidential { secret })
    }

    fn with_kind(id: ClientId, kind: ClientKind) -> Self {
        Self {
            id,
            kind,
            redirect_uris: Vec::new(),
            grant_types: Vec::new(),
            allowed_scope: Scope::empty(),
            default_scope: Scope::empty(),
        }
    }

    /// Sets the grant types the client may use.
    pub fn with_grant_types(mut self, grants: impl IntoIterator<Item = GrantType>) -> Self {
        self.grant_types = grants.into_iter().collect();
        self
    }

    /// Sets every scope the client may ask for.
    pub fn with_allowed_scope(mut self, scope: Scope) -> Self {
        self.allowed_scope = scope;
        self
    }

    /// Sets the scope granted when a request names none.
    pub fn with_default_scope(mut self, scope: Scope) -> Self {
        self.default_scope = scope;
        self
    }

    /// Sets the registered redirection URIs.
    pub fn with_redirect_uris<I, U>(mut self, uris: I) -> Self
    where
        I: IntoIterator<Item = U>,
        U: Into<RedirectUri>,
    {
        self.redirect_uris = uris.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the client may use `grant`.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Whether the client is public (has no secret).
    pub fn is_public(&self) -> bool {
        matches!(self.kind, ClientKind::Public)
    }
}

/// Looks up registered clients.
///
/// Called by: every token-endpoint request (client authentication, RFC 6749 §2.3 and §3.2.1).
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// The client registered as `id`, or `Ok(None)` if there is none.
    ///
    /// A read: nothing here needs to be atomic. Return `Err` only when the lookup itself failed.
    async fn find_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError>;
}

/// The answer of [`UserVerifier::verify_password`].
///
/// `#[non_exhaustive]`: later versions may add answers, and the engine treats any answer it
/// does not know as a refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserVerdict {
    /// The credentials are right; this is the user.
    Authenticated(UserId),
    /// The password is right, and the user has a second factor that must be checked too
    /// ([`UserVerifier::verify_otp`]). The password grant answers `403 mfa_required` with an
    /// `mfa_token`; the client finishes with the `mfa-otp` grant.
    ///
    /// Answer this only for a right password: a wrong one is [`Refused`](UserVerdict::Refused)
    /// whether or not the user has a second factor, so that nobody learns which users have one.
    SecondFactorRequired(UserId),
    /// Wrong password, unknown user, locked or disabled account: the client is told only
    /// `invalid_grant`, the same for each, so users cannot be enumerated.
    Refused,
}

/// The answer of [`UserVerifier::verify_otp`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtpVerdict {
    /// The code is right. `counter` names it (a TOTP time step, an HOTP counter) and it stays
    /// acceptable until `valid_until`: the engine refuses the same `counter` for this user until
    /// then (RFC 6238 §5.2).
    Accepted {
        /// Which code was accepted: the TOTP time step it belongs to.
        counter: u64,
        /// Until when the code would otherwise still be accepted (with clock drift allowed).
        valid_until: OffsetDateTime,
    },
    /// Wrong code.
    Refused,
}

/// Checks a resource owner's credentials for the password grant (RFC 6749 §4.3.2).
///
/// Called by: the `password` grant, only after the client is authenticated and the
/// [`AttemptLimiter`] has let the attempt through.
///
/// # Security
///
/// Hash user passwords with a slow password KDF (argon2, scrypt, bcrypt). Take the same time for
/// an unknown user as for a wrong password (verify against a decoy hash), so that timing does not
/// tell which usernames exist.
#[async_trait]
pub trait UserVerifier: Send + Sync {
    /// Whether `password` is `username`'s password. `client` is the authenticated client that
    /// asks, for hosts that restrict which users may sign in to which app.
    ///
    /// A read: nothing here needs to be atomic. Return `Err` only when the check could not be
    /// made (database down); a wrong password is `Ok(UserVerdict::Refused)`.
    async fn verify_password(
        &self,
        username: &Username,
        password: &Password,
        client: &ClientId,
    ) -> Result<UserVerdict, StoreError>;

    /// Whether `otp` is a right one-time code for `user` at `now`: the second step after
    /// [`verify_password`](UserVerifier::verify_password) answered
    /// [`UserVerdict::SecondFactorRequired`]. With the `totp` feature, `Totp::verify` answers
    /// exactly this.
    ///
    /// The default answers [`OtpVerdict::Refused`]: a verifier that never asks for a second
    /// factor need not implement it. A read; the engine itself refuses a code used twice.
    async fn verify_otp(
        &self,
        user: &UserId,
        otp: &OneTimeCode,
        now: OffsetDateTime,
    ) -> Result<OtpVerdict, StoreError> {
        let _ = (user, otp, now);
        Ok(OtpVerdict::Refused)
    }
}

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
/// The store receives only [`TokenHash`]es. It must never be handed, or derive, an issued token.
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

    /// A stable string form, e.g. `user:tom` or `client:clientapp`, for use as a storage key.
    pub fn storage_key(&self) -> String {
        match self {
            Self::Username(u) => format!("user:{u}"),
            Self::Client(c) => format!("client:{c}"),
            Self::Address(a) => format!("addr:{a}"),
            Self::UserCodeEntry(who) => format!("user_code:{who}"),
            Self::SecondFactor(user) => format!("second_factor:{user}"),
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
/// - any number of concurrent *wrong* guesses reach the [`UserVerifier`] at most `max_failures`
///   times per window, because every one of them held a place until it failed.
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

/// A validated authorization request (RFC 6749 §4.1.1, §4.2.1) waiting for the user's decision.
///
/// Kept by a [`CodeStore`] under the hash of its
/// [`AuthorizationRequestId`](crate::AuthorizationRequestId); the host reads it to draw its
/// consent page, and cannot change it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// Bounds on requests that anyone may make without credentials (pending authorization
/// requests, device authorization requests), so that a flood cannot grow a store without limit.
///
/// # Security
///
/// A bound is also a lever: anyone who knows a public client's id can fill its bound (1,000
/// requests per 10 minutes by default, under two a second) and keep new sign-ins to that client
/// waiting until the oldest request expires. The per-client bound keeps such a flood from
/// reaching other clients; limit the rate of these endpoints per caller address in front of
/// grantor (a reverse proxy) so that one caller cannot fill it, and watch the `tracing` warnings
/// ("too many are waiting").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingLimits {
    /// Unexpired requests one client may have waiting.
    pub per_client: u32,
    /// Unexpired requests waiting in all.
    pub total: u32,
}

impl Default for PendingLimits {
    /// 1,000 per client and 10,000 in all.
    fn default() -> Self {
        Self {
            per_client: 1_000,
            total: 10_000,
        }
    }
}

/// The answer of a save bounded by [`PendingLimits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Admission {
    /// Saved.
    Admitted,
    /// A limit is reached: nothing was saved.
    Full {
        /// How long until the oldest request counted against the limit expires.
        retry_after: std::time::Duration,
    },
}

/// Keeps authorization requests awaiting a decision, and authorization codes.
///
/// Called by: the authorization endpoint, [`approve`](crate::AuthorizationServer::approve) and
/// [`deny`](crate::AuthorizationServer::deny), and the `authorization_code` grant.
///
/// Everything is stored under a [`TokenHash`] of the request id or code, never the value itself,
/// and every entry expires at its `expires_at` as judged by the `now` passed in.
#[async_trait]
pub trait CodeStore: Send + Sync {
    /// Saves a validated authorization request under the hash of its id, unless `limits` are
    /// reached: as many unexpired requests of its client as `limits.per_client`, or as many in
    /// all as `limits.total`. Then it saves nothing and answers [`Admission::Full`] with how
    /// long until the oldest such request expires (anyone can make these requests, so they must
    /// not grow without bound).
    ///
    /// Atomic: the counts and the save are one step, so concurrent saves cannot overrun a limit.
    async fn save_pending(
        &self,
        id: &TokenHash,
        request: &PendingAuthorization,
        limits: &PendingLimits,
        now: OffsetDateTime,
    ) -> Result<Admission, StoreError>;

    /// Reads a pending request, leaving it in place (to draw a page again after a wrong
    /// password). A read.
    async fn find_pending(
        &self,
        id: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError>;

    /// Removes and answers a pending request. Atomic (Redis `GETDEL`, SQL `DELETE … RETURNING`):
    /// of concurrent calls with one id, one gets the request and the others `None`, so one
    /// request yields one decision.
    async fn take_pending(
        &self,
        id: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError>;

    /// Saves an issued authorization code under its hash.
    async fn save_code(
        &self,
        code: &TokenHash,
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
        code: &TokenHash,
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
        code: &TokenHash,
        grant: &CodeGrant,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
}
