//! The Redis store (feature `redis`): see [`RedisStore`].
//!
//! This module holds the store itself: connecting, the eviction-policy check, key naming and the
//! helpers every store trait shares. Each trait's implementation has a module of its own
//! (`tokens`, `attempts`, `codes`, `device`, `mfa`), and each Lua script a file of its own under
//! `lua/`, starting with what it does and what its KEYS and ARGV hold.

mod attempts;
mod codes;
mod device;
mod mfa;
mod tokens;

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, Script, ServerErrorKind};
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::store::{AttemptKey, TokenKind, TokenRecord};
use crate::token::{
    AuthorizationCodeHash, DeviceCodeHash, MfaTokenHash, RequestIdHash, TokenHash, UserCodeHash,
};
use crate::types::{FamilyId, UserId};

// The Lua scripts. A `_fn` script defines functions only: `Scripts::new` puts it before each
// script that calls them.
const SAVE_FN: &str = include_str!("lua/save_fn.lua");
const SAVE: &str = include_str!("lua/save.lua");
const UPDATE: &str = include_str!("lua/update.lua");
const REVOKE_ONE: &str = include_str!("lua/revoke_one.lua");
const REVOKE_FAMILY: &str = include_str!("lua/revoke_family.lua");
const LIMITER_FN: &str = include_str!("lua/limiter_fn.lua");
const RESERVE: &str = include_str!("lua/reserve.lua");
const RECORD_FAILURE: &str = include_str!("lua/record_failure.lua");
const LIMITS_FN: &str = include_str!("lua/limits_fn.lua");
const SAVE_PENDING: &str = include_str!("lua/save_pending.lua");
const TAKE_PENDING: &str = include_str!("lua/take_pending.lua");
const SAVE_CODE: &str = include_str!("lua/save_code.lua");
const SPEND_CODE: &str = include_str!("lua/spend_code.lua");
const RESTORE_CODE: &str = include_str!("lua/restore_code.lua");
const PUT_DEVICE_FN: &str = include_str!("lua/put_device_fn.lua");
const SAVE_DEVICE: &str = include_str!("lua/save_device.lua");
const RESTORE_DEVICE: &str = include_str!("lua/restore_device.lua");
const FIND_DEVICE: &str = include_str!("lua/find_device.lua");
const DECIDE_DEVICE: &str = include_str!("lua/decide_device.lua");
const READ_DEVICE: &str = include_str!("lua/read_device.lua");
const RECORD_DEVICE_POLL: &str = include_str!("lua/record_device_poll.lua");
const TAKE_APPROVED_DEVICE: &str = include_str!("lua/take_approved_device.lua");
const SAVE_MFA: &str = include_str!("lua/save_mfa.lua");
const TAKE_MFA: &str = include_str!("lua/take_mfa.lua");
const ADVANCE_OTP: &str = include_str!("lua/advance_otp.lua");

struct Scripts {
    save_pending: Script,
    take_pending: Script,
    save_code: Script,
    spend_code: Script,
    restore_code: Script,
    save: Script,
    update: Script,
    revoke_one: Script,
    revoke_family: Script,
    reserve: Script,
    record_failure: Script,
    save_device: Script,
    restore_device: Script,
    find_device: Script,
    decide_device: Script,
    read_device: Script,
    record_device_poll: Script,
    take_approved_device: Script,
    save_mfa: Script,
    take_mfa: Script,
    advance_otp: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            save_pending: Script::new(&format!("{LIMITS_FN}\n{SAVE_PENDING}")),
            take_pending: Script::new(TAKE_PENDING),
            save_code: Script::new(SAVE_CODE),
            spend_code: Script::new(SPEND_CODE),
            restore_code: Script::new(RESTORE_CODE),
            save: Script::new(&format!("{SAVE_FN}\n{SAVE}")),
            update: Script::new(&format!("{SAVE_FN}\n{UPDATE}")),
            revoke_one: Script::new(REVOKE_ONE),
            revoke_family: Script::new(REVOKE_FAMILY),
            reserve: Script::new(&format!("{LIMITER_FN}\n{RESERVE}")),
            record_failure: Script::new(&format!("{LIMITER_FN}\n{RECORD_FAILURE}")),
            save_device: Script::new(&format!("{LIMITS_FN}\n{PUT_DEVICE_FN}\n{SAVE_DEVICE}")),
            restore_device: Script::new(&format!("{LIMITS_FN}\n{PUT_DEVICE_FN}\n{RESTORE_DEVICE}")),
            find_device: Script::new(FIND_DEVICE),
            decide_device: Script::new(DECIDE_DEVICE),
            read_device: Script::new(READ_DEVICE),
            record_device_poll: Script::new(RECORD_DEVICE_POLL),
            take_approved_device: Script::new(TAKE_APPROVED_DEVICE),
            save_mfa: Script::new(SAVE_MFA),
            take_mfa: Script::new(TAKE_MFA),
            advance_otp: Script::new(ADVANCE_OTP),
        }
    }
}

/// Tokens, failed-login counts, authorization requests and codes, device authorizations, and
/// second-factor state in Redis, so that many servers behind one address agree on every token
/// (feature `redis`).
///
/// # Key layout
///
/// Every key starts with the store's prefix in braces, `{grantor}` unless
/// [`RedisStore::connect_with_prefix`] says otherwise:
///
/// | key | type | holds | expires |
/// |---|---|---|---|
/// | `{grantor}:t:<sha256 hex>` | hash | one token: state (`live`/`rotated`), kind, client, family, expiry, and the [`TokenRecord`] as JSON (dropped once the token is marked spent; a [`SpentMark`](crate::SpentMark) keeps when it was spent, the hash of its successor, and until when it is kept as its expiry) | with the token, or its spent mark |
/// | `{grantor}:r:<family id>` | string | a mark that the family was revoked, refusing new tokens for it, holding until when | at the `remember_until` the engine passed (an hour after the revocation) |
/// | `{grantor}:f:<family id>` | sorted set | the hashes of a family's unexpired tokens and spent marks, scored by expiry | with its last token |
/// | `{grantor}:l:<hash of the attempt key>` | hash | a failed-attempt count and its window's end | with the window |
/// | `{grantor}:i:<hash of the attempt key>` | sorted set | the checks in flight on the key (random lease ids), scored by when each lease lapses | with its last lease |
/// | `{grantor}:p:<sha256 hex of the request id>` | hash | client, expiry, and the [`PendingAuthorization`](crate::PendingAuthorization) as JSON | with the request |
/// | `{grantor}:pc:<client id>`, `{grantor}:pa` | sorted set | the client's pending requests, and all of them (request id hashes scored by expiry), for [`PendingLimits`](crate::PendingLimits) | with their last member |
/// | `{grantor}:c:<sha256 hex of the code>` | hash | state (`live`/`used`), client, family, expiry, and the [`CodeGrant`](crate::CodeGrant) as JSON (dropped once used; a used code keeps its client and family as long as the tokens issued from it) | with the code, or its tokens once used |
/// | `{grantor}:d:<sha256 hex of the device code>` | hash | one device authorization: client, expiry, until when it is kept, status (`pending`/`approved`/`denied`), interval, last poll, the approving user, username and granted scope, and the [`DeviceAuthorization`](crate::DeviceAuthorization) as saved, as JSON | at the `keep_until` it was saved with (the engine keeps a request 10 minutes past its expiry), or when an approval is taken |
/// | `{grantor}:dc:<client id>`, `{grantor}:da` | sorted set | the client's unexpired device requests, and all of them (device code hashes scored by expiry), for [`PendingLimits`](crate::PendingLimits) | with their last member |
/// | `{grantor}:u:<sha256 hex of the normalised user code>` | string | the device code hash (hex) of the pending request it names | with the request, or when it is decided |
/// | `{grantor}:m:<sha256 hex of the mfa_token>` | hash | expiry and the [`MfaChallenge`](crate::MfaChallenge) as JSON | with the challenge, or when it is taken |
/// | `{grantor}:o:<hash of the user id>` | hash | the user's last accepted one-time code counter, and until when it holds | when that code would stop being accepted |
///
/// Keys and values hold SHA-256 hashes of tokens, never a token. Limiter keys name a username
/// or client, and one-time-code marks a user id, by its SHA-256, or, with
/// [`with_key_secret`](RedisStore::with_key_secret), by an HMAC-SHA256 under a secret that Redis
/// never sees: a plain hash keeps names out of sight but can be matched against a list of likely
/// usernames; the keyed one cannot. (Grant records hold the user's id and, when the user signed
/// in with one, the username, which introspection answers; a device request holds the approving
/// user's for the few minutes until the device collects its tokens.)
///
/// # Atomicity
///
/// Each store method is one round trip: a plain command (`HMGET` to find a token) or a Lua script
/// run by its SHA (`EVALSHA`, loaded on first use), which Redis runs atomically:
/// saving tokens, updating tokens (a compare-and-set over several tokens plus inserts), revoke-one,
/// revoke-a-family, the limiter's reserve and failure (its release is a plain `ZREM`), saving
/// pending requests within their bounds, taking them, saving, spending and giving back codes,
/// saving (within bounds), finding (reads, by user code or device code), deciding, recording a
/// poll (a compare-and-set), taking and putting back device authorizations, saving and taking `mfa_token`s, and advancing a
/// user's one-time code counter. Nothing reads in one round trip and writes in another.
///
/// # Eviction
///
/// [`connect`](RedisStore::connect) refuses a Redis whose `maxmemory-policy` is not
/// `noeviction` (see [`RedisStoreBuilder::allow_eviction`]): under memory pressure any other
/// policy would silently drop failed sign-in counts, revoked families and spent codes.
///
/// Every decision about time uses the `now` the engine passes in, sent to the scripts as unix
/// seconds; Redis's own clock only purges keys, through TTLs computed from that `now`.
///
/// # Redis Cluster
///
/// The braces make the prefix a hash tag: every key of one store hashes to the same slot, so the
/// multi-key scripts (an update touches the spent token, the new tokens and their family) are valid
/// unchanged on Redis Cluster. The price is that one store's keys live on one primary; to spread
/// load, give separate deployments or tenants separate prefixes.
///
/// # Failures
///
/// The connection is a [`redis::aio::ConnectionManager`], which reconnects by itself. While
/// Redis is unreachable, methods fail fast with [`StoreError::Unavailable`] (the engine answers
/// 503 `temporarily_unavailable`). A command refused at connection time never reached Redis, so
/// it is tried once more on a fresh connection: the first request after Redis is back succeeds,
/// without a restart.
///
/// The eviction policy is checked once, at connect: a later `CONFIG SET`, or a failover to a
/// server configured otherwise, goes unnoticed; keep `noeviction` in every server's
/// `redis.conf`.
///
/// A command that times out *after* Redis ran it cannot be told apart from one that never ran.
/// For a refresh that means the client gets a 503 while its old refresh token is already spent;
/// presenting it again is a replay, and revokes the family, unless the server has a
/// [grace period](crate::AuthorizationServerBuilder::refresh_token_grace_period), within which
/// the retry gets a fresh pair. A code, a device approval or an `mfa_token` whose tokens could
/// not be saved is given back. A timeout on the step that spends one (the code's exchange, the
/// poll that collects an approval) cannot be told apart from a failure before it: the client's
/// retry then finds the code used (a replay, which revokes what it issued) or the device code
/// collected, and starts again.
///
/// Cheap to clone: clones share one multiplexed connection.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use grantor::{AuthorizationServer, MemoryClientStore, RedisStore};
///
/// let redis = Arc::new(RedisStore::connect("redis://127.0.0.1:6379").await?);
/// let server = AuthorizationServer::builder(Arc::new(MemoryClientStore::new()), redis.clone())
///     .attempt_limiter(redis)
///     .enable_refresh_token_grant()
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    scripts: std::sync::Arc<Scripts>,
    key_secret: Option<std::sync::Arc<[u8]>>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field(
                "key_secret",
                &self.key_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

/// Settings for connecting a [`RedisStore`]: start with [`RedisStore::builder`].
#[derive(Clone, Debug)]
#[must_use]
pub struct RedisStoreBuilder {
    prefix: String,
    allow_eviction: bool,
}

impl RedisStoreBuilder {
    /// Keys go under `{prefix}:` (default `grantor`). The prefix may not contain braces:
    /// grantor adds them, to make it a Redis Cluster hash tag.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Connects even if Redis may evict keys.
    ///
    /// By default [`connect`](Self::connect) refuses a Redis whose `maxmemory-policy` is
    /// anything but `noeviction`: every other policy (`allkeys-lru`, `volatile-ttl`, …) lets
    /// Redis drop keys when memory runs short, and every grantor key has a TTL, so even the
    /// `volatile-*` ones may take them. A flood of anonymous requests would then evict the keys
    /// that make grantor safe: failed sign-in counts (guessing starts over), revoked families and
    /// spent codes (a replay succeeds). With `noeviction`, a full Redis refuses writes instead,
    /// and grantor answers `503 temporarily_unavailable`. Opt out only for a Redis that cannot
    /// fill up, or where you accept that trade.
    pub fn allow_eviction(mut self, allow: bool) -> Self {
        self.allow_eviction = allow;
        self
    }

    /// Connects to `url` and checks the eviction policy.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the URL or prefix is invalid, Redis cannot be reached now, or (unless
    /// [`allow_eviction`](Self::allow_eviction)) its `maxmemory-policy` is not `noeviction` or
    /// cannot be read.
    pub async fn connect(self, url: &str) -> Result<RedisStore, StoreError> {
        let prefix = self.prefix;
        if prefix.is_empty() || prefix.contains(['{', '}']) {
            return Err(StoreError::backend(
                "the Redis key prefix must be non-empty and without braces",
            ));
        }
        let client = redis::Client::open(url).map_err(store_error)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let mut conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(store_error)?;
        if !self.allow_eviction {
            let policy = eviction_policy(&mut conn).await?;
            if policy.as_deref() != Some("noeviction") {
                return Err(StoreError::backend(EvictionPolicyError { policy }));
            }
        }
        Ok(RedisStore {
            conn,
            prefix: format!("{{{prefix}}}"),
            scripts: std::sync::Arc::new(Scripts::new()),
            key_secret: None,
        })
    }
}

/// Redis may evict grantor's keys: refused by [`RedisStoreBuilder::connect`].
#[derive(Debug)]
struct EvictionPolicyError {
    /// The policy found, if it could be read.
    policy: Option<String>,
}

impl fmt::Display for EvictionPolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.policy {
            Some(policy) => write!(f, "Redis's maxmemory-policy is `{policy}`, "),
            None => f.write_str("Redis's maxmemory-policy could not be read, "),
        }?;
        f.write_str(
            "but grantor needs `noeviction`: any other policy lets Redis evict failed sign-in \
             counts, revoked token families and spent codes when memory runs short. Run \
             `CONFIG SET maxmemory-policy noeviction` (and set it in redis.conf), or opt out \
             knowingly with RedisStore::builder().allow_eviction(true)",
        )
    }
}

impl std::error::Error for EvictionPolicyError {}

/// The server's `maxmemory-policy`: from `CONFIG GET`, or, where that command is disabled (as
/// on some managed services), from `INFO memory`.
async fn eviction_policy(conn: &mut ConnectionManager) -> Result<Option<String>, StoreError> {
    let config: redis::RedisResult<std::collections::HashMap<String, String>> =
        redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(conn)
            .await;
    if let Ok(config) = config {
        if let Some(policy) = config.get("maxmemory-policy") {
            return Ok(Some(policy.clone()));
        }
    }
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(conn)
        .await
        .map_err(store_error)?;
    Ok(info
        .lines()
        .find_map(|line| line.strip_prefix("maxmemory_policy:"))
        .map(|policy| policy.trim().to_owned()))
}

/// How long one command may take before the store reports Redis unavailable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one connection attempt may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`, `rediss://…` needs the `redis` crate's TLS
    /// features) with the key prefix `grantor`, after checking that Redis will not evict
    /// grantor's keys (see [`RedisStoreBuilder::allow_eviction`]).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the URL is invalid, Redis cannot be reached now, or its
    /// `maxmemory-policy` is not `noeviction`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder().connect(url).await
    }

    /// Connects to `url` with keys under `{prefix}:`, as [`connect`](Self::connect) does. The
    /// prefix may not contain braces: grantor adds them, to make it a Redis Cluster hash tag.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect), and if the prefix is invalid.
    pub async fn connect_with_prefix(url: &str, prefix: &str) -> Result<Self, StoreError> {
        Self::builder().prefix(prefix).connect(url).await
    }

    /// A builder, for the settings `connect` does not take.
    pub fn builder() -> RedisStoreBuilder {
        RedisStoreBuilder {
            prefix: "grantor".to_owned(),
            allow_eviction: false,
        }
    }

    /// Names limiter keys and one-time-code marks by HMAC-SHA256 under `secret` instead of plain
    /// SHA-256, so that a copy of the database cannot be matched against a list of likely
    /// usernames or user ids. Every server sharing the store must use the same secret (for
    /// example from your secret manager); with a different one they would count failed logins
    /// separately, and each accept a one-time code once.
    pub fn with_key_secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.key_secret = Some(secret.as_ref().into());
        self
    }

    /// Runs one operation. If Redis refused the connection, the command never reached it, so it
    /// is safe to try once more on the fresh connection the manager is opening; `idempotent`
    /// operations (reads) are also retried after any transient failure.
    async fn run<T, F, Fut>(&self, idempotent: bool, op: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        match op(self.conn.clone()).await {
            Err(e) if e.is_connection_refusal() || (idempotent && is_transient(&e)) => {
                op(self.conn.clone()).await.map_err(store_error)
            }
            other => other.map_err(store_error),
        }
    }

    /// Runs a prepared script invocation through [`run`](Self::run).
    async fn invoke<T: redis::FromRedisValue>(
        &self,
        idempotent: bool,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.run(idempotent, |mut conn| async move {
            invocation.invoke_async(&mut conn).await
        })
        .await
    }

    /// The JSON record (`r`) of a hash whose expiry (`e`) is after `now`: one `HMGET`, a read.
    async fn live_json(
        &self,
        key: String,
        now: OffsetDateTime,
    ) -> Result<Option<String>, StoreError> {
        let mut command = redis::cmd("HMGET");
        command.arg(key).arg(&["e", "r"]);
        let command = &command;
        let (expires, json): (Option<i64>, Option<String>) = self
            .run(true, |mut conn| async move {
                command.query_async(&mut conn).await
            })
            .await?;
        Ok(json.filter(|_| expires.is_some_and(|e| e > now.unix_timestamp())))
    }

    fn token_key(&self, hash: &TokenHash) -> String {
        format!("{}:t:{}", self.prefix, hash.to_hex())
    }

    fn pending_key(&self, id: &RequestIdHash) -> String {
        format!("{}:p:{}", self.prefix, id.to_hex())
    }

    fn code_key(&self, code: &AuthorizationCodeHash) -> String {
        format!("{}:c:{}", self.prefix, code.to_hex())
    }

    fn family_key(&self, family: &FamilyId) -> String {
        format!("{}:f:{}", self.prefix, family)
    }

    fn revoked_key(&self, family: &FamilyId) -> String {
        format!("{}:r:{}", self.prefix, family)
    }

    fn device_key(&self, device_code: &DeviceCodeHash) -> String {
        format!("{}:d:{}", self.prefix, device_code.to_hex())
    }

    /// What device keys start with: the scripts that follow the user code index add the hex.
    fn device_key_prefix(&self) -> String {
        format!("{}:d:", self.prefix)
    }

    fn user_code_key(&self, user_code: &UserCodeHash) -> String {
        format!("{}:u:{}", self.prefix, user_code.to_hex())
    }

    fn mfa_key(&self, token: &MfaTokenHash) -> String {
        format!("{}:m:{}", self.prefix, token.to_hex())
    }

    fn otp_key(&self, user: &UserId) -> String {
        format!(
            "{}:o:{}",
            self.prefix,
            self.name_digest(&format!("user-id:{}", user.as_str()))
        )
    }

    fn limiter_key(&self, key: &AttemptKey) -> String {
        format!("{}:l:{}", self.prefix, self.name_digest(&key.storage_key()))
    }

    fn lease_key(&self, key: &AttemptKey) -> String {
        format!("{}:i:{}", self.prefix, self.name_digest(&key.storage_key()))
    }

    /// What the keys of per-client sets of pending authorization requests start with.
    fn pending_client_prefix(&self) -> String {
        format!("{}:pc:", self.prefix)
    }

    fn pending_all_key(&self) -> String {
        format!("{}:pa", self.prefix)
    }

    /// What the keys of per-client sets of live device requests start with.
    fn device_client_prefix(&self) -> String {
        format!("{}:dc:", self.prefix)
    }

    fn device_all_key(&self) -> String {
        format!("{}:da", self.prefix)
    }

    /// A user-derived name as it appears in a key: its SHA-256, or its HMAC-SHA256 under the
    /// key secret, in hex.
    fn name_digest(&self, name: &str) -> String {
        crate::store::keyed::name_digest(self.key_secret.as_deref(), name)
    }

    /// Adds the keys and arguments that save `tokens` to a script invocation: a token's key, and
    /// its family's key and revoked marker unless it stands alone (then its family argument is
    /// empty, and the scripts keep no family for it).
    fn add_tokens(
        &self,
        invocation: &mut redis::ScriptInvocation<'_>,
        tokens: &[(TokenHash, TokenRecord)],
    ) -> Result<(), StoreError> {
        for (hash, record) in tokens {
            let json = crate::store::encode_record(record)?;
            invocation.key(self.token_key(hash));
            if let Some(family) = &record.family_id {
                invocation
                    .key(self.family_key(family))
                    .key(self.revoked_key(family));
            }
            invocation
                .arg(kind_str(record.kind))
                .arg(record.client_id.as_str())
                .arg(record.family_id.as_ref().map_or("", FamilyId::as_str))
                .arg(record.expires_at.unix_timestamp())
                .arg(json)
                .arg(hash.to_hex());
        }
        Ok(())
    }
}

fn kind_str(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Access => "access",
        TokenKind::Refresh => "refresh",
    }
}

/// A Redis failure as a [`StoreError`]: unreachable, timed out, loading or failing over is
/// `Unavailable` (503); anything else is `Backend` (500).
fn store_error(e: RedisError) -> StoreError {
    if is_transient(&e) {
        StoreError::unavailable(e)
    } else {
        StoreError::backend(e)
    }
}

/// Whether a failure is Redis being unreachable, slow, loading or failing over.
fn is_transient(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_cluster_error()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        )
}

/// An instant as whole unix seconds, rounded up: how long something is kept, at least as long
/// as asked.
fn ceil_secs(at: OffsetDateTime) -> i64 {
    at.unix_timestamp()
        .saturating_add(i64::from(at.nanosecond() > 0))
}
