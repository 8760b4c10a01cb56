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
    PendingAuthorization, Rotation, TokenKind, TokenLookup, TokenRecord, TokenStore,
};
use crate::error::StoreError;
use crate::token::TokenHash;
use crate::types::{ClientId, FamilyId};

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

struct Scripts {
    save_code: Script,
    take_code: Script,
    save: Script,
    rotate: Script,
    revoke_one: Script,
    revoke_family: Script,
    reserve: Script,
    release: Script,
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
        }
    }
}

/// Tokens and failed-login counts in Redis, so that many servers behind one
/// address agree on every token (feature `redis`).
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
///
/// Keys and values hold SHA-256 hashes of tokens, never a token. Limiter keys name a username
/// or client by its SHA-256, or, with [`with_key_secret`](RedisStore::with_key_secret), by an
/// HMAC-SHA256 under a secret that Redis never sees: a plain hash keeps names out of sight but
/// can be matched against a list of likely usernames; the keyed one cannot.
///
/// # Atomicity
///
/// Each store method is one round trip: a plain command (`HMGET` to find a token) or a Lua script
/// run by its SHA (`EVALSHA`, loaded on first use), which Redis runs atomically:
/// saving tokens, rotate-and-detect-reuse, revoke-one, revoke-a-family, and the limiter's
/// reserve and release (its check is a plain `HMGET`). Nothing reads in one round trip and
/// writes in another.
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

    /// Names limiter keys by HMAC-SHA256 under `secret` instead of plain SHA-256, so that a copy
    /// of the database cannot be matched against a list of likely usernames. Every server
    /// sharing the store must use the same secret (for example from your secret manager); with
    /// a different one they would count failed logins separately.
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

    fn limiter_key(&self, key: &AttemptKey) -> String {
        let name = key.storage_key();
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
        format!(
            "{}:l:{}",
            self.prefix,
            TokenHash::from_bytes(digest).to_hex()
        )
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
        let invocation = &invocation;
        let saved: i64 = self
            .run(false, |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
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
        let invocation = &invocation;
        let answer: Vec<String> = self
            .run(false, |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
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
        let invocation = &invocation;
        let record: Option<String> = self
            .run(false, |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
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
        let invocation = &invocation;
        self.run(false, |mut conn| async move {
            invocation.invoke_async(&mut conn).await
        })
        .await
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
        let invocation = &invocation;
        let (allowed, left): (i64, i64) = self
            .run(false, |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
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
        let invocation = &invocation;
        self.run(false, |mut conn| async move {
            invocation.invoke_async::<i64>(&mut conn).await
        })
        .await?;
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
        let invocation = &invocation;
        self.run(false, |mut conn| async move {
            invocation.invoke_async::<i64>(&mut conn).await
        })
        .await?;
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
        let invocation = &invocation;
        let answer: Vec<String> = self
            .run(false, |mut conn| async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
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
