//! The Redis store (feature `redis`): see [`RedisStore`].

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac as _};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, Script, ServerErrorKind};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

use super::{
    AttemptKey, AttemptLimiter, AttemptRule, AttemptVerdict, CodeGrant, CodeRedemption, CodeStore,
    DeviceAuthorization, DeviceCodeStore, DeviceDecision, DevicePoll, DeviceStatus, MfaChallenge,
    MfaStore, PendingAuthorization, Rotation, TokenKind, TokenLookup, TokenRecord, TokenStore,
    EXPIRED_DEVICE_CODE_MEMORY,
};
use crate::error::StoreError;
use crate::scope::Scope;
use crate::token::TokenHash;
use crate::types::{ClientId, FamilyId, UserId};

/// Saves tokens: Lua functions shared by the save and rotate scripts.
///
/// KEYS from `first_key`: triples of (token key, family key, family-revoked marker key). ARGV
/// from `first_arg`: six values a token (kind, client, family, expiry, record JSON, hash hex).
/// `revoked` answers whether any family was revoked recently (then nothing may be saved); `save`
/// writes. A family is a sorted set of its token hashes scored by expiry: expired members are
/// pruned on every save into it, so it never outgrows its unexpired tokens, and it expires with
/// its longest-lived member.
const SAVE_FN: &str = r"
local function revoked(now, first_key)
  local k = first_key
  while k + 2 <= #KEYS do
    local until_ = tonumber(redis.call('GET', KEYS[k + 2]))
    if until_ and until_ > now then return true end
    k = k + 3
  end
  return false
end
local function save(now, first_key, first_arg)
  local k, a = first_key, first_arg
  while k + 2 <= #KEYS do
    local tk, fk = KEYS[k], KEYS[k + 1]
    local exp = tonumber(ARGV[a + 3])
    if exp and exp > now then
      redis.call('HSET', tk, 's', 'live', 'k', ARGV[a], 'c', ARGV[a + 1], 'f', ARGV[a + 2],
        'e', exp, 'r', ARGV[a + 4])
      redis.call('EXPIRE', tk, exp - now)
      redis.call('ZADD', fk, exp, ARGV[a + 5])
      redis.call('ZREMRANGEBYSCORE', fk, '-inf', now)
      local top = redis.call('ZRANGE', fk, -1, -1, 'WITHSCORES')
      redis.call('EXPIRE', fk, math.max(tonumber(top[2]) - now, 1))
    end
    k = k + 3
    a = a + 6
  end
end
";

/// KEYS: token/family/marker key triples. ARGV: now, then six values a token.
/// Answers 1 (saved) or 0 (a family was revoked: nothing saved).
const SAVE: &str = "local now = tonumber(ARGV[1])\nif revoked(now, 1) then return 0 end\nsave(now, 1, 2)\nreturn 1";

/// KEYS[1]: the old refresh token; then token/family/marker key triples for the new tokens.
/// ARGV: now, client, spend ('1' or '0'), then six values a new token.
/// Checks everything before it writes anything.
const ROTATE: &str = r"
local now = tonumber(ARGV[1])
local v = redis.call('HMGET', KEYS[1], 's', 'k', 'c', 'f', 'e', 'r')
local e = tonumber(v[5])
if not v[1] or not e or e <= now then return {'notfound'} end
if v[1] == 'rotated' then
  if v[3] and v[4] then return {'reused', v[3], v[4]} end
  return {'notfound'}
end
if v[1] ~= 'live' or v[2] ~= 'refresh' or v[3] ~= ARGV[2] or not v[6] then
  return {'notfound'}
end
if revoked(now, 2) then return {'notfound'} end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 's', 'rotated')
  redis.call('HDEL', KEYS[1], 'r')
end
save(now, 2, 4)
return {'issued', v[6]}
";

/// KEYS[1]: a token. ARGV: now. Deletes it if live, answering its record.
const REVOKE_ONE: &str = r"
local v = redis.call('HMGET', KEYS[1], 's', 'e', 'r')
local e = tonumber(v[2])
if v[1] ~= 'live' or not e or e <= tonumber(ARGV[1]) or not v[3] then return false end
redis.call('DEL', KEYS[1])
return v[3]
";

/// KEYS[1]: a family; KEYS[2]: its revoked marker (holding until when). ARGV: now, the token key
/// prefix, how long to remember the revocation. Deletes the live tokens, keeps rotation marks, sets the marker,
/// answers how many unexpired tokens went.
///
/// The token keys it visits are derived from the family's members, so they cannot be declared
/// in KEYS beforehand (reading the members first would be a read-then-write race). They carry
/// the same hash tag as the family key, so they are in its slot, which is what Redis Cluster
/// needs to run the script.
const REVOKE_FAMILY: &str = r"
local now = tonumber(ARGV[1])
redis.call('SET', KEYS[2], now + tonumber(ARGV[3]), 'EX', ARGV[3])
local n = 0
for _, hex in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  local tk = ARGV[2] .. hex
  local v = redis.call('HMGET', tk, 's', 'e')
  if v[1] == 'live' then
    redis.call('DEL', tk)
    redis.call('ZREM', KEYS[1], hex)
    local e = tonumber(v[2])
    if e and e > now then n = n + 1 end
  elseif not v[1] then
    redis.call('ZREM', KEYS[1], hex)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return n
";

/// KEYS[1]: a limiter key. ARGV: now, max failures, window seconds.
/// Answers {1, 0} (allowed, counted) or {0, seconds left} (refused).
const RESERVE: &str = r"
local now, max, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 'n', 'e')
local n, e = tonumber(v[1]) or 0, tonumber(v[2])
if not e or e <= now then n = 0; e = now + window end
if n >= max then return {0, e - now} end
redis.call('HSET', KEYS[1], 'n', n + 1, 'e', e)
redis.call('EXPIRE', KEYS[1], e - now)
return {1, 0}
";

/// KEYS[1]: a limiter key. ARGV: now. Gives one attempt back within an open window.
const RELEASE: &str = r"
local v = redis.call('HMGET', KEYS[1], 'n', 'e')
local n, e = tonumber(v[1]), tonumber(v[2])
if n and e and e > tonumber(ARGV[1]) and n > 0 then
  redis.call('HSET', KEYS[1], 'n', n - 1)
end
return 1
";

/// KEYS[1]: a code. ARGV: now, family, expiry, grant JSON.
const SAVE_CODE: &str = r"
local ttl = tonumber(ARGV[3]) - tonumber(ARGV[1])
if ttl <= 0 then return 0 end
redis.call('HSET', KEYS[1], 's', 'live', 'f', ARGV[2], 'e', ARGV[3], 'r', ARGV[4])
redis.call('EXPIRE', KEYS[1], ttl)
return 1
";

/// KEYS[1]: a code. ARGV: now. Spends a live code, keeping a used mark with its family.
const TAKE_CODE: &str = r"
local v = redis.call('HMGET', KEYS[1], 's', 'f', 'e', 'r')
local e = tonumber(v[3])
if not v[1] or not e or e <= tonumber(ARGV[1]) then return {'unknown'} end
if v[1] == 'used' then
  if v[2] then return {'used', v[2]} end
  return {'unknown'}
end
if v[1] ~= 'live' or not v[4] then return {'unknown'} end
redis.call('HSET', KEYS[1], 's', 'used')
redis.call('HDEL', KEYS[1], 'r')
return {'redeemed', v[4]}
";

/// KEYS[1]: a device request; KEYS[2]: its user code index. ARGV: now, expiry, how long an
/// expired request is remembered, the device key prefix, the device code hash hex, then the
/// request: client, status (`pending`/`approved`/`denied`), interval, last poll (`''` if none),
/// user and granted scope (`''` unless approved), and the request as JSON.
///
/// Answers 0, saving nothing, if the user code indexes an unexpired request; otherwise saves
/// the request (until its expiry plus the memory) and the index (until its expiry), answering 1.
/// The request behind an existing index is derived from the index's value, so it cannot be
/// declared in KEYS; it has the same hash tag, so it is in the same slot.
const SAVE_DEVICE: &str = r"
local now, e, memory = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local held = redis.call('GET', KEYS[2])
if held then
  local he = tonumber(redis.call('HGET', ARGV[4] .. held, 'e'))
  if he and he > now then return 0 end
end
redis.call('DEL', KEYS[1])
if e + memory > now then
  redis.call('HSET', KEYS[1], 'c', ARGV[6], 'e', ARGV[2], 's', ARGV[7], 'i', ARGV[8],
    'r', ARGV[12])
  if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'l', ARGV[9]) end
  if ARGV[7] == 'approved' then redis.call('HSET', KEYS[1], 'u', ARGV[10], 'g', ARGV[11]) end
  redis.call('EXPIRE', KEYS[1], e + memory - now)
end
if e > now then redis.call('SET', KEYS[2], ARGV[5], 'EX', e - now) end
return 1
";

/// KEYS[1]: a user code index. ARGV: now, the device key prefix. A read: answers the request's
/// JSON, status, interval, last poll, user and granted scope if it is pending and unexpired,
/// else nil.
const FIND_DEVICE: &str = r"
local hex = redis.call('GET', KEYS[1])
if not hex then return false end
local v = redis.call('HMGET', ARGV[2] .. hex, 'e', 's', 'r', 'i', 'l', 'u', 'g')
local e = tonumber(v[1])
if v[2] ~= 'pending' or not e or e <= tonumber(ARGV[1]) then return false end
return {v[3], v[2], v[4], v[5], v[6], v[7]}
";

/// KEYS[1]: a user code index. ARGV: now, the device key prefix, `approved` or `denied`, user,
/// granted scope. Records the decision on a pending, unexpired request and removes the index,
/// answering 1; else changes nothing and answers 0.
const DECIDE_DEVICE: &str = r"
local hex = redis.call('GET', KEYS[1])
if not hex then return 0 end
local dk = ARGV[2] .. hex
local v = redis.call('HMGET', dk, 's', 'e')
local e = tonumber(v[2])
if v[1] ~= 'pending' or not e or e <= tonumber(ARGV[1]) then return 0 end
if ARGV[3] == 'approved' then
  redis.call('HSET', dk, 's', 'approved', 'u', ARGV[4], 'g', ARGV[5])
else
  redis.call('HSET', dk, 's', 'denied')
end
redis.call('DEL', KEYS[1])
return 1
";

/// KEYS[1]: a device request. ARGV: now, client, how long an expired request is remembered.
/// One poll, as `DeviceCodeStore::poll_device_authorization` says: answers `{'unknown'}`,
/// `{'other'}`, `{'expired'}`, `{'denied'}`, `{'pending'}`, `{'slow_down', interval}`, or
/// `{'approved', json, status, interval, last poll, user, scope}` (the request deleted).
const POLL_DEVICE: &str = r"
local now, memory = tonumber(ARGV[1]), tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 'c', 'e', 's', 'i', 'l', 'r', 'u', 'g')
local e = tonumber(v[2])
if not v[1] or not e or e + memory <= now then return {'unknown'} end
if v[1] ~= ARGV[2] then return {'other'} end
if e <= now then return {'expired'} end
if v[3] == 'denied' then return {'denied'} end
if v[3] == 'approved' then
  if not v[4] or not v[6] or not v[7] or not v[8] then return {'unknown'} end
  redis.call('DEL', KEYS[1])
  return {'approved', v[6], v[3], v[4], v[5], v[7], v[8]}
end
local i = tonumber(v[4])
if v[3] ~= 'pending' or not i then return {'unknown'} end
local l = tonumber(v[5])
redis.call('HSET', KEYS[1], 'l', ARGV[1])
if l and now - l < i then
  local grown = string.format('%d', i + 5)
  redis.call('HSET', KEYS[1], 'i', grown)
  return {'slow_down', grown}
end
return {'pending'}
";

/// KEYS[1]: an mfa challenge. ARGV: now, expiry, challenge JSON. Saves it until its expiry (an
/// expired one replaces whatever was there with nothing).
const SAVE_MFA: &str = r"
local ttl = tonumber(ARGV[2]) - tonumber(ARGV[1])
if ttl <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('HSET', KEYS[1], 'e', ARGV[2], 'r', ARGV[3])
redis.call('EXPIRE', KEYS[1], ttl)
return 1
";

/// KEYS[1]: an mfa challenge. ARGV: now. Deletes it, answering its JSON if it was live.
const TAKE_MFA: &str = r"
local v = redis.call('HMGET', KEYS[1], 'e', 'r')
redis.call('DEL', KEYS[1])
local e = tonumber(v[1])
if not e or e <= tonumber(ARGV[1]) or not v[2] then return false end
return v[2]
";

/// KEYS[1]: a used one-time code mark (holding until when). ARGV: now, until (whole seconds,
/// rounded up). Answers 0 if the mark is there and unexpired at now; otherwise sets it, 1.
const MARK_OTP: &str = r"
local now, u = tonumber(ARGV[1]), tonumber(ARGV[2])
local held = tonumber(redis.call('GET', KEYS[1]))
if held and held > now then return 0 end
if u > now then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', u - now)
else
  redis.call('DEL', KEYS[1])
end
return 1
";

struct Scripts {
    save_code: Script,
    take_code: Script,
    save: Script,
    rotate: Script,
    revoke_one: Script,
    revoke_family: Script,
    reserve: Script,
    release: Script,
    save_device: Script,
    find_device: Script,
    decide_device: Script,
    poll_device: Script,
    save_mfa: Script,
    take_mfa: Script,
    mark_otp: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            save_code: Script::new(SAVE_CODE),
            take_code: Script::new(TAKE_CODE),
            save: Script::new(&format!("{SAVE_FN}\n{SAVE}")),
            rotate: Script::new(&format!("{SAVE_FN}\n{ROTATE}")),
            revoke_one: Script::new(REVOKE_ONE),
            revoke_family: Script::new(REVOKE_FAMILY),
            reserve: Script::new(RESERVE),
            release: Script::new(RELEASE),
            save_device: Script::new(SAVE_DEVICE),
            find_device: Script::new(FIND_DEVICE),
            decide_device: Script::new(DECIDE_DEVICE),
            poll_device: Script::new(POLL_DEVICE),
            save_mfa: Script::new(SAVE_MFA),
            take_mfa: Script::new(TAKE_MFA),
            mark_otp: Script::new(MARK_OTP),
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
/// | `{grantor}:t:<sha256 hex>` | hash | one token: state (`live`/`rotated`), kind, client, family, expiry, and the [`TokenRecord`] as JSON (dropped once rotated) | with the token |
/// | `{grantor}:r:<family id>` | string | a mark that the family was revoked, refusing new tokens for it | after an hour |
/// | `{grantor}:f:<family id>` | sorted set | the hashes of a family's unexpired tokens, scored by expiry | with its last token |
/// | `{grantor}:l:<hash of the attempt key>` | hash | a failed-attempt count and its window's end | with the window |
/// | `{grantor}:p:<sha256 hex of the request id>` | string | a [`PendingAuthorization`] as JSON | with the request |
/// | `{grantor}:c:<sha256 hex of the code>` | hash | state (`live`/`used`), family, expiry, and the [`CodeGrant`] as JSON (dropped once used) | with the code |
/// | `{grantor}:d:<sha256 hex of the device code>` | hash | one device authorization: client, expiry, status (`pending`/`approved`/`denied`), interval, last poll, the approving user and granted scope, and the [`DeviceAuthorization`] as saved, as JSON | [`EXPIRED_DEVICE_CODE_MEMORY`] seconds after the request expires, or when an approval is collected |
/// | `{grantor}:u:<sha256 hex of the normalised user code>` | string | the device code hash (hex) of the pending request it names | with the request, or when it is decided |
/// | `{grantor}:m:<sha256 hex of the mfa_token>` | hash | expiry and the [`MfaChallenge`] as JSON | with the challenge, or when it is taken |
/// | `{grantor}:o:<hash of the user id>:<counter>` | string | a mark that the user's one-time code number `counter` was used, holding until when | when the code would stop being accepted |
///
/// Keys and values hold SHA-256 hashes of tokens, never a token. Limiter keys name a username
/// or client, and one-time-code marks a user id, by its SHA-256, or, with
/// [`with_key_secret`](RedisStore::with_key_secret), by an HMAC-SHA256 under a secret that Redis
/// never sees: a plain hash keeps names out of sight but can be matched against a list of likely
/// usernames; the keyed one cannot. (A device request does hold the approving user's id and the
/// granted scope in its value, for the few minutes until the device collects its tokens.)
///
/// # Atomicity
///
/// Each store method is one round trip: a plain command (`HMGET` to find a token) or a Lua script
/// run by its SHA (`EVALSHA`, loaded on first use), which Redis runs atomically:
/// saving tokens, rotate-and-detect-reuse, revoke-one, revoke-a-family, the limiter's
/// reserve and release (its check is a plain `HMGET`), saving and spending codes, saving,
/// finding (a read that follows the user code index), deciding and polling device
/// authorizations, saving and taking `mfa_token`s, and marking one-time codes used. Nothing reads
/// in one round trip and writes in another.
///
/// Every decision about time uses the `now` the engine passes in, sent to the scripts as unix
/// seconds; Redis's own clock only purges keys, through TTLs computed from that `now`.
///
/// # Redis Cluster
///
/// The braces make the prefix a hash tag: every key of one store hashes to the same slot, so the
/// multi-key scripts (rotation touches the old token, the new tokens and their family) are valid
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
/// A command that times out *after* Redis ran it cannot be told apart from one that never ran.
/// For a refresh that means the client gets a 503 while its old refresh token is already spent;
/// presenting it again is then a replay, and revokes the family. The client signs in again.
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

/// How long one command may take before the store reports Redis unavailable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one connection attempt may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`, `rediss://…` needs the `redis` crate's TLS
    /// features) with the key prefix `grantor`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the URL is invalid or Redis cannot be reached now.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_prefix(url, "grantor").await
    }

    /// Connects to `url` with keys under `{prefix}:`. The prefix may not contain braces: grantor
    /// adds them, to make it a Redis Cluster hash tag.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the URL or prefix is invalid or Redis cannot be reached now.
    pub async fn connect_with_prefix(url: &str, prefix: &str) -> Result<Self, StoreError> {
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
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(store_error)?;
        Ok(Self {
            conn,
            prefix: format!("{{{prefix}}}"),
            scripts: std::sync::Arc::new(Scripts::new()),
            key_secret: None,
        })
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

    fn token_key(&self, hash: &TokenHash) -> String {
        format!("{}:t:{}", self.prefix, hash.to_hex())
    }

    fn pending_key(&self, id: &TokenHash) -> String {
        format!("{}:p:{}", self.prefix, id.to_hex())
    }

    fn code_key(&self, code: &TokenHash) -> String {
        format!("{}:c:{}", self.prefix, code.to_hex())
    }

    fn family_key(&self, family: &FamilyId) -> String {
        format!("{}:f:{}", self.prefix, family)
    }

    fn revoked_key(&self, family: &FamilyId) -> String {
        format!("{}:r:{}", self.prefix, family)
    }

    fn device_key(&self, device_code: &TokenHash) -> String {
        format!("{}:d:{}", self.prefix, device_code.to_hex())
    }

    /// What device keys start with: the scripts that follow the user code index add the hex.
    fn device_key_prefix(&self) -> String {
        format!("{}:d:", self.prefix)
    }

    fn user_code_key(&self, user_code: &TokenHash) -> String {
        format!("{}:u:{}", self.prefix, user_code.to_hex())
    }

    fn mfa_key(&self, token: &TokenHash) -> String {
        format!("{}:m:{}", self.prefix, token.to_hex())
    }

    fn otp_key(&self, user: &UserId, counter: u64) -> String {
        format!(
            "{}:o:{}:{counter}",
            self.prefix,
            self.name_digest(&format!("user-id:{}", user.as_str()))
        )
    }

    fn limiter_key(&self, key: &AttemptKey) -> String {
        format!("{}:l:{}", self.prefix, self.name_digest(&key.storage_key()))
    }

    /// A user-derived name as it appears in a key: its SHA-256, or its HMAC-SHA256 under the
    /// key secret, in hex.
    fn name_digest(&self, name: &str) -> String {
        let digest: [u8; 32] = match &self.key_secret {
            Some(secret) => match Hmac::<Sha256>::new_from_slice(secret) {
                Ok(mac) => mac
                    .chain_update(name.as_bytes())
                    .finalize()
                    .into_bytes()
                    .into(),
                // HMAC takes keys of any length; this arm is never taken.
                Err(_) => Sha256::digest(name.as_bytes()).into(),
            },
            None => Sha256::digest(name.as_bytes()).into(),
        };
        TokenHash::from_bytes(digest).to_hex()
    }

    /// Adds the keys and arguments that save `tokens` to a script invocation.
    fn add_tokens(
        &self,
        invocation: &mut redis::ScriptInvocation<'_>,
        tokens: &[(TokenHash, TokenRecord)],
    ) -> Result<(), StoreError> {
        for (hash, record) in tokens {
            let json = serde_json::to_string(record).map_err(StoreError::backend)?;
            invocation
                .key(self.token_key(hash))
                .key(self.family_key(&record.family_id))
                .key(self.revoked_key(&record.family_id))
                .arg(kind_str(record.kind))
                .arg(record.client_id.as_str())
                .arg(record.family_id.as_str())
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

fn parse_record(json: &str) -> Result<TokenRecord, StoreError> {
    serde_json::from_str(json).map_err(StoreError::backend)
}

#[async_trait]
impl TokenStore for RedisStore {
    async fn save_tokens(
        &self,
        tokens: &[(TokenHash, TokenRecord)],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        if tokens.is_empty() {
            return Ok(true);
        }
        let mut invocation = self.scripts.save.prepare_invoke();
        invocation.arg(now.unix_timestamp());
        self.add_tokens(&mut invocation, tokens)?;
        let saved: i64 = self.invoke(false, &invocation).await?;
        Ok(saved == 1)
    }

    async fn find_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<TokenLookup, StoreError> {
        let mut command = redis::cmd("HMGET");
        command
            .arg(self.token_key(hash))
            .arg(&["s", "c", "f", "e", "r"]);
        let command = &command;
        #[allow(clippy::type_complexity)]
        let (state, client, family, expires, record): (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<String>,
        ) = self
            .run(true, |mut conn| async move {
                command.query_async(&mut conn).await
            })
            .await?;
        if expires.is_none_or(|e| e <= now.unix_timestamp()) {
            return Ok(TokenLookup::Unknown);
        }
        Ok(match (state.as_deref(), client, family, record) {
            (Some("live"), _, _, Some(json)) => TokenLookup::Live(parse_record(&json)?),
            (Some("rotated"), Some(client), Some(family), _) => TokenLookup::Rotated {
                client_id: ClientId::new(client),
                family_id: FamilyId::new(family),
            },
            _ => TokenLookup::Unknown,
        })
    }

    async fn rotate_refresh_token(
        &self,
        old: &TokenHash,
        client: &ClientId,
        new_tokens: &[(TokenHash, TokenRecord)],
        spend_old: bool,
        now: OffsetDateTime,
    ) -> Result<Rotation, StoreError> {
        let mut invocation = self.scripts.rotate.prepare_invoke();
        invocation
            .key(self.token_key(old))
            .arg(now.unix_timestamp())
            .arg(client.as_str())
            .arg(if spend_old { "1" } else { "0" });
        self.add_tokens(&mut invocation, new_tokens)?;
        let answer: Vec<String> = self.invoke(false, &invocation).await?;
        let mut answer = answer.into_iter();
        Ok(
            match (answer.next().as_deref(), answer.next(), answer.next()) {
                (Some("issued"), Some(json), _) => Rotation::Issued(parse_record(&json)?),
                (Some("reused"), Some(client), Some(family)) => Rotation::Reused {
                    client_id: ClientId::new(client),
                    family_id: FamilyId::new(family),
                },
                _ => Rotation::NotFound,
            },
        )
    }

    async fn revoke_token(
        &self,
        hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let mut invocation = self.scripts.revoke_one.prepare_invoke();
        invocation
            .key(self.token_key(hash))
            .arg(now.unix_timestamp());
        let record: Option<String> = self.invoke(false, &invocation).await?;
        record.as_deref().map(parse_record).transpose()
    }

    async fn revoke_family(
        &self,
        family: &FamilyId,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut invocation = self.scripts.revoke_family.prepare_invoke();
        invocation
            .key(self.family_key(family))
            .key(self.revoked_key(family))
            .arg(now.unix_timestamp())
            .arg(format!("{}:t:", self.prefix))
            .arg(super::REVOKED_FAMILY_MEMORY);
        self.invoke(false, &invocation).await
    }
}

/// A window in whole seconds, rounded up, and at least one.
fn window_secs(window: Duration) -> u64 {
    (window.as_secs() + u64::from(window.subsec_nanos() > 0)).max(1)
}

#[async_trait]
impl AttemptLimiter for RedisStore {
    async fn reserve_attempt(
        &self,
        key: &AttemptKey,
        rule: &AttemptRule,
        now: OffsetDateTime,
    ) -> Result<AttemptVerdict, StoreError> {
        let mut invocation = self.scripts.reserve.prepare_invoke();
        invocation
            .key(self.limiter_key(key))
            .arg(now.unix_timestamp())
            .arg(rule.max_failures)
            .arg(window_secs(rule.window));
        let (allowed, left): (i64, i64) = self.invoke(false, &invocation).await?;
        Ok(if allowed == 1 {
            AttemptVerdict::Allowed
        } else {
            AttemptVerdict::Refused {
                retry_after: Duration::from_secs(u64::try_from(left).unwrap_or(0)),
            }
        })
    }

    async fn check_attempts(
        &self,
        key: &AttemptKey,
        rule: &AttemptRule,
        now: OffsetDateTime,
    ) -> Result<AttemptVerdict, StoreError> {
        let mut command = redis::cmd("HMGET");
        command.arg(self.limiter_key(key)).arg(&["n", "e"]);
        let command = &command;
        let (count, ends): (Option<u64>, Option<i64>) = self
            .run(true, |mut conn| async move {
                command.query_async(&mut conn).await
            })
            .await?;
        let now = now.unix_timestamp();
        Ok(match (count, ends) {
            (Some(count), Some(ends)) if ends > now && count >= u64::from(rule.max_failures) => {
                AttemptVerdict::Refused {
                    retry_after: Duration::from_secs(u64::try_from(ends - now).unwrap_or(0)),
                }
            }
            _ => AttemptVerdict::Allowed,
        })
    }

    async fn release_attempt(
        &self,
        key: &AttemptKey,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut invocation = self.scripts.release.prepare_invoke();
        invocation
            .key(self.limiter_key(key))
            .arg(now.unix_timestamp());
        self.invoke::<i64>(false, &invocation).await?;
        Ok(())
    }
}

#[async_trait]
impl CodeStore for RedisStore {
    async fn save_pending(
        &self,
        id: &TokenHash,
        request: &PendingAuthorization,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let ttl = request.expires_at.unix_timestamp() - now.unix_timestamp();
        if ttl <= 0 {
            return Ok(());
        }
        let json = serde_json::to_string(request).map_err(StoreError::backend)?;
        let mut command = redis::cmd("SET");
        command
            .arg(self.pending_key(id))
            .arg(json)
            .arg("EX")
            .arg(ttl);
        let command = &command;
        self.run(false, |mut conn| async move {
            command.query_async::<()>(&mut conn).await
        })
        .await
    }

    async fn find_pending(
        &self,
        id: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        self.pending_command("GET", id, now).await
    }

    async fn take_pending(
        &self,
        id: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        // GETDEL: read and delete in one step, so one request yields one decision.
        self.pending_command("GETDEL", id, now).await
    }

    async fn save_code(
        &self,
        code: &TokenHash,
        grant: &CodeGrant,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(grant).map_err(StoreError::backend)?;
        let mut invocation = self.scripts.save_code.prepare_invoke();
        invocation
            .key(self.code_key(code))
            .arg(now.unix_timestamp())
            .arg(grant.family_id.as_str())
            .arg(grant.expires_at.unix_timestamp())
            .arg(json);
        self.invoke::<i64>(false, &invocation).await?;
        Ok(())
    }

    async fn take_code(
        &self,
        code: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<CodeRedemption, StoreError> {
        let mut invocation = self.scripts.take_code.prepare_invoke();
        invocation
            .key(self.code_key(code))
            .arg(now.unix_timestamp());
        let answer: Vec<String> = self.invoke(false, &invocation).await?;
        let mut answer = answer.into_iter();
        Ok(match (answer.next().as_deref(), answer.next()) {
            (Some("redeemed"), Some(json)) => {
                CodeRedemption::Redeemed(serde_json::from_str(&json).map_err(StoreError::backend)?)
            }
            (Some("used"), Some(family)) => CodeRedemption::AlreadyUsed {
                family_id: FamilyId::new(family),
            },
            _ => CodeRedemption::Unknown,
        })
    }
}

impl RedisStore {
    /// Runs `GET` (a read, retried) or `GETDEL` on a pending request, answering it if it is
    /// still waiting at `now`.
    async fn pending_command(
        &self,
        name: &str,
        id: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let mut command = redis::cmd(name);
        command.arg(self.pending_key(id));
        let command = &command;
        let json: Option<String> = self
            .run(name == "GET", |mut conn| async move {
                command.query_async(&mut conn).await
            })
            .await?;
        let Some(json) = json else { return Ok(None) };
        let request: PendingAuthorization =
            serde_json::from_str(&json).map_err(StoreError::backend)?;
        Ok((request.expires_at > now).then_some(request))
    }
}

/// How a device authorization's status is kept: its word, and for an approval the user and the
/// granted scope.
fn status_fields(status: &DeviceStatus) -> (&'static str, String, String) {
    match status {
        DeviceStatus::Pending => ("pending", String::new(), String::new()),
        DeviceStatus::Approved { user_id, scope } => {
            ("approved", user_id.as_str().to_owned(), scope.to_string())
        }
        DeviceStatus::Denied => ("denied", String::new(), String::new()),
    }
}

/// A device authorization from what a script answered: the request as saved (JSON), then its
/// mutable fields (status, interval, last poll, user, granted scope). A missing part is a miss; a
/// part that does not parse is a backend error.
fn parse_device(
    fields: impl IntoIterator<Item = Option<String>>,
) -> Result<Option<DeviceAuthorization>, StoreError> {
    let mut fields = fields.into_iter();
    let mut next = || fields.next().flatten();
    let (json, status, interval, last_poll, user, scope) =
        (next(), next(), next(), next(), next(), next());
    let (Some(json), Some(status), Some(interval)) = (json, status, interval) else {
        return Ok(None);
    };
    let mut request: DeviceAuthorization =
        serde_json::from_str(&json).map_err(StoreError::backend)?;
    request.status = match (status.as_str(), user, scope) {
        ("pending", _, _) => DeviceStatus::Pending,
        ("denied", _, _) => DeviceStatus::Denied,
        ("approved", Some(user), Some(scope)) => DeviceStatus::Approved {
            user_id: UserId::new(user),
            scope: Scope::parse(&scope).map_err(StoreError::backend)?,
        },
        _ => return Ok(None),
    };
    request.interval = interval.parse().map_err(StoreError::backend)?;
    request.last_poll = last_poll
        .map(|l| {
            let secs: i64 = l.parse().map_err(StoreError::backend)?;
            OffsetDateTime::from_unix_timestamp(secs).map_err(StoreError::backend)
        })
        .transpose()?;
    Ok(Some(request))
}

#[async_trait]
impl DeviceCodeStore for RedisStore {
    async fn save_device_authorization(
        &self,
        device_code: &TokenHash,
        user_code: &TokenHash,
        request: &DeviceAuthorization,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(request).map_err(StoreError::backend)?;
        let (status, user, scope) = status_fields(&request.status);
        let mut invocation = self.scripts.save_device.prepare_invoke();
        invocation
            .key(self.device_key(device_code))
            .key(self.user_code_key(user_code))
            .arg(now.unix_timestamp())
            .arg(request.expires_at.unix_timestamp())
            .arg(EXPIRED_DEVICE_CODE_MEMORY)
            .arg(self.device_key_prefix())
            .arg(device_code.to_hex())
            .arg(request.client_id.as_str())
            .arg(status)
            .arg(request.interval.to_string())
            .arg(
                request
                    .last_poll
                    .map(|l| l.unix_timestamp().to_string())
                    .unwrap_or_default(),
            )
            .arg(user)
            .arg(scope)
            .arg(json);
        let saved: i64 = self.invoke(false, &invocation).await?;
        Ok(saved == 1)
    }

    async fn find_device_authorization(
        &self,
        user_code: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        let mut invocation = self.scripts.find_device.prepare_invoke();
        invocation
            .key(self.user_code_key(user_code))
            .arg(now.unix_timestamp())
            .arg(self.device_key_prefix());
        let fields: Option<Vec<Option<String>>> = self.invoke(true, &invocation).await?;
        match fields {
            Some(fields) => parse_device(fields),
            None => Ok(None),
        }
    }

    async fn decide_device_authorization(
        &self,
        user_code: &TokenHash,
        decision: &DeviceDecision,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let (status, user, scope) = match decision {
            DeviceDecision::Approve { user_id, scope } => {
                ("approved", user_id.as_str().to_owned(), scope.to_string())
            }
            DeviceDecision::Deny => ("denied", String::new(), String::new()),
        };
        let mut invocation = self.scripts.decide_device.prepare_invoke();
        invocation
            .key(self.user_code_key(user_code))
            .arg(now.unix_timestamp())
            .arg(self.device_key_prefix())
            .arg(status)
            .arg(user)
            .arg(scope);
        let decided: i64 = self.invoke(false, &invocation).await?;
        Ok(decided == 1)
    }

    async fn poll_device_authorization(
        &self,
        device_code: &TokenHash,
        client: &ClientId,
        now: OffsetDateTime,
    ) -> Result<DevicePoll, StoreError> {
        let mut invocation = self.scripts.poll_device.prepare_invoke();
        invocation
            .key(self.device_key(device_code))
            .arg(now.unix_timestamp())
            .arg(client.as_str())
            .arg(EXPIRED_DEVICE_CODE_MEMORY);
        let answer: Vec<Option<String>> = self.invoke(false, &invocation).await?;
        let mut answer = answer.into_iter();
        Ok(match answer.next().flatten().as_deref() {
            Some("pending") => DevicePoll::Pending,
            Some("slow_down") => match answer.next().flatten() {
                Some(interval) => DevicePoll::SlowDown {
                    interval: interval.parse().map_err(StoreError::backend)?,
                },
                None => DevicePoll::Unknown,
            },
            Some("denied") => DevicePoll::Denied,
            Some("approved") => match parse_device(answer)? {
                Some(request) => DevicePoll::Approved(request),
                None => DevicePoll::Unknown,
            },
            Some("expired") => DevicePoll::Expired,
            Some("other") => DevicePoll::OtherClient,
            _ => DevicePoll::Unknown,
        })
    }
}

#[async_trait]
impl MfaStore for RedisStore {
    async fn save_mfa_token(
        &self,
        token: &TokenHash,
        challenge: &MfaChallenge,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(challenge).map_err(StoreError::backend)?;
        let mut invocation = self.scripts.save_mfa.prepare_invoke();
        invocation
            .key(self.mfa_key(token))
            .arg(now.unix_timestamp())
            .arg(challenge.expires_at.unix_timestamp())
            .arg(json);
        self.invoke::<i64>(false, &invocation).await?;
        Ok(())
    }

    async fn find_mfa_token(
        &self,
        token: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<MfaChallenge>, StoreError> {
        let mut command = redis::cmd("HMGET");
        command.arg(self.mfa_key(token)).arg(&["e", "r"]);
        let command = &command;
        let (expires, json): (Option<i64>, Option<String>) = self
            .run(true, |mut conn| async move {
                command.query_async(&mut conn).await
            })
            .await?;
        match (expires, json) {
            (Some(e), Some(json)) if e > now.unix_timestamp() => {
                serde_json::from_str(&json).map_err(StoreError::backend)
            }
            _ => Ok(None),
        }
    }

    async fn take_mfa_token(
        &self,
        token: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<MfaChallenge>, StoreError> {
        let mut invocation = self.scripts.take_mfa.prepare_invoke();
        invocation
            .key(self.mfa_key(token))
            .arg(now.unix_timestamp());
        let json: Option<String> = self.invoke(false, &invocation).await?;
        json.map(|json| serde_json::from_str(&json).map_err(StoreError::backend))
            .transpose()
    }

    async fn mark_otp_used(
        &self,
        user: &UserId,
        counter: u64,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        // Whole seconds, rounded up: a code is refused at least as long as asked.
        let until = until
            .unix_timestamp()
            .saturating_add(i64::from(until.nanosecond() > 0));
        let mut invocation = self.scripts.mark_otp.prepare_invoke();
        invocation
            .key(self.otp_key(user, counter))
            .arg(now.unix_timestamp())
            .arg(until);
        let marked: i64 = self.invoke(false, &invocation).await?;
        Ok(marked == 1)
    }
}
