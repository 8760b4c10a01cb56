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
    Admission, AttemptKey, AttemptLease, AttemptLimiter, AttemptRule, AttemptVerdict, CodeGrant,
    CodeRedemption, CodeStore, DeviceAuthorization, DeviceCodeStore, DeviceDecision, DevicePoll,
    DeviceSave, DeviceStatus, MfaChallenge, MfaStore, PendingAuthorization, PendingLimits,
    Rotation, TokenKind, TokenLookup, TokenRecord, TokenStore, EXPIRED_DEVICE_CODE_MEMORY,
};
use crate::error::StoreError;
use crate::scope::Scope;
use crate::token::TokenHash;
use crate::types::{ClientId, FamilyId, UserId, Username};

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

/// The hash (hex) of the refresh token among the new tokens whose six values start at ARGV
/// `first_arg`, or nil: the successor of the token they replace.
const SUCCESSOR_FN: &str = r"
local function successor(first_arg)
  local a = first_arg
  while a + 5 <= #ARGV do
    if ARGV[a] == 'refresh' then return ARGV[a + 5] end
    a = a + 6
  end
  return nil
end
";

/// KEYS[1]: the old refresh token; then token/family/marker key triples for the new tokens.
/// ARGV: now, client, spend ('1' or '0'), then six values a new token.
/// Checks everything before it writes anything. A spent token keeps when it was spent (`a`)
/// and its successor (`n`).
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
  redis.call('HSET', KEYS[1], 's', 'rotated', 'a', now)
  redis.call('HDEL', KEYS[1], 'r', 'n')
  local next = successor(4)
  if next then redis.call('HSET', KEYS[1], 'n', next) end
end
save(now, 2, 4)
return {'issued', v[6]}
";

/// KEYS[1]: a spent refresh token; KEYS[2]: its successor; then token/family/marker key
/// triples for the new tokens. ARGV: now, client, the successor's hash (hex), then six values a
/// new token. As `TokenStore::reissue_rotated` says: the successor, still live and unused, is
/// spent with no successor of its own, and the new refresh token succeeds the old one.
const REISSUE: &str = r"
local now = tonumber(ARGV[1])
local o = redis.call('HMGET', KEYS[1], 's', 'c', 'f', 'e', 'n')
local oe = tonumber(o[4])
if o[1] ~= 'rotated' or not oe or oe <= now or not o[2] or not o[3] then
  return {'notfound'}
end
local reused = {'reused', o[2], o[3]}
if o[2] ~= ARGV[2] or o[5] ~= ARGV[3] then return reused end
local v = redis.call('HMGET', KEYS[2], 's', 'k', 'c', 'e', 'r')
local e = tonumber(v[4])
if v[1] ~= 'live' or v[2] ~= 'refresh' or v[3] ~= ARGV[2] or not e or e <= now or not v[5] then
  return reused
end
if revoked(now, 3) then return {'notfound'} end
redis.call('HSET', KEYS[2], 's', 'rotated', 'a', now)
redis.call('HDEL', KEYS[2], 'r', 'n')
local next = successor(4)
if next then
  redis.call('HSET', KEYS[1], 'n', next)
else
  redis.call('HDEL', KEYS[1], 'n')
end
save(now, 3, 4)
return {'issued', v[5]}
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

/// A limiter key (failures `n` in a window ending `e`) and its leases (a sorted set of lease ids
/// scored by when they lapse), brought up to `now`: a closed window is forgotten, and each lapsed
/// lease counts as a failure (its check's request was dropped, or outlived its lease), opening a
/// window of `window` seconds if none is open. Answers the failures and the window's end (nil if
/// none is open). The lease set lives a window past its last lease, so that lapsed leases are
/// still there to be counted.
const LIMITER_FN: &str = r"
local function settle(key, leases, now, window)
  local v = redis.call('HMGET', key, 'n', 'e')
  local n, e = tonumber(v[1]) or 0, tonumber(v[2])
  if not e or e <= now then n = 0; e = nil end
  local lapsed = redis.call('ZCOUNT', leases, '-inf', now)
  if lapsed > 0 then
    redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
    n = n + lapsed
    if not e then e = now + window end
    redis.call('HSET', key, 'n', n, 'e', e)
    redis.call('EXPIRE', key, e - now)
  end
  return n, e
end
";

/// KEYS[1]: a limiter key; KEYS[2]: its leases. ARGV: now, max failures, window seconds, lease
/// id, lease end. Answers {1, 0} (allowed, the lease held), {2, 0} (busy: failures and leases
/// reach the limit) or {0, seconds left} (refused).
const RESERVE: &str = r"
local now, max, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local n, e = settle(KEYS[1], KEYS[2], now, window)
if n >= max then
  if e then return {0, e - now} end
  return {0, window}
end
if n + redis.call('ZCARD', KEYS[2]) >= max then return {2, 0} end
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('EXPIRE', KEYS[2], math.max(tonumber(top[2]) - now, 1) + window)
return {1, 0}
";

/// KEYS[1]: a limiter key; KEYS[2]: its leases. ARGV: now, window seconds, lease id. Ends the
/// lease and counts a failure, opening a window if none is open.
const RECORD_FAILURE: &str = r"
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[3])
local n, e = settle(KEYS[1], KEYS[2], now, window)
if not e then e = now + window end
redis.call('HSET', KEYS[1], 'n', n + 1, 'e', e)
redis.call('EXPIRE', KEYS[1], e - now)
return 1
";

/// Counting requests anyone can make (pending authorization requests, device requests)
/// against `PendingLimits`: each is a member of a sorted set for its client and one for all,
/// scored by when it expires.
///
/// `full` drops the expired members and answers how long until the oldest one expires if a
/// limit is reached (else nil); `count` adds a member, keeping each set until its last member
/// expires.
const LIMITS_FN: &str = r"
local function full(now, client_set, all_set, per_client, total)
  for _, pair in ipairs({{client_set, per_client}, {all_set, total}}) do
    redis.call('ZREMRANGEBYSCORE', pair[1], '-inf', now)
    if redis.call('ZCARD', pair[1]) >= pair[2] then
      local oldest = redis.call('ZRANGE', pair[1], 0, 0, 'WITHSCORES')
      if oldest[2] then return math.max(tonumber(oldest[2]) - now, 1) end
      return 1
    end
  end
  return nil
end
local function count(now, set, expiry, member)
  redis.call('ZADD', set, expiry, member)
  local top = redis.call('ZRANGE', set, -1, -1, 'WITHSCORES')
  redis.call('EXPIRE', set, math.max(tonumber(top[2]) - now, 1))
end
";

/// KEYS[1]: a pending request; KEYS[2]: its client's set of pending requests; KEYS[3]: the set
/// of all. ARGV: now, expiry, the limit per client, the limit in all, the request id hash
/// (hex), client, the request as JSON. Answers {1, 0} (saved) or {0, seconds} (a limit is
/// reached: nothing saved).
const SAVE_PENDING: &str = r"
local now, e = tonumber(ARGV[1]), tonumber(ARGV[2])
local wait = full(now, KEYS[2], KEYS[3], tonumber(ARGV[3]), tonumber(ARGV[4]))
if wait then return {0, wait} end
if e <= now then return {1, 0} end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'c', ARGV[6], 'e', e, 'r', ARGV[7])
redis.call('EXPIRE', KEYS[1], e - now)
count(now, KEYS[2], e, ARGV[5])
count(now, KEYS[3], e, ARGV[5])
return {1, 0}
";

/// KEYS[1]: a pending request; KEYS[2]: the set of all. ARGV: now, the request id hash (hex),
/// what the per-client set keys start with. Deletes the request, answering its JSON if it was
/// still waiting. The client's set is named by the client the request holds, so it cannot be
/// declared in KEYS; it has the same hash tag, so it is in the same slot.
const TAKE_PENDING: &str = r"
local v = redis.call('HMGET', KEYS[1], 'c', 'e', 'r')
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
if v[1] then redis.call('ZREM', ARGV[3] .. v[1], ARGV[2]) end
local e = tonumber(v[2])
if not e or e <= tonumber(ARGV[1]) or not v[3] then return false end
return v[3]
";

/// KEYS[1]: a code. ARGV: now, client, family, expiry, grant JSON.
const SAVE_CODE: &str = r"
local ttl = tonumber(ARGV[4]) - tonumber(ARGV[1])
if ttl <= 0 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 's', 'live', 'c', ARGV[2], 'f', ARGV[3], 'e', ARGV[4], 'r', ARGV[5])
redis.call('EXPIRE', KEYS[1], ttl)
return 1
";

/// KEYS[1]: a code. ARGV: now, client, until when a used mark is kept. Spends a live code of
/// the client, keeping a used mark with its client and family until then; a code of another
/// client is left alone.
const TAKE_CODE: &str = r"
local now = tonumber(ARGV[1])
local v = redis.call('HMGET', KEYS[1], 's', 'c', 'f', 'e', 'r', 'u')
local e, u = tonumber(v[4]), tonumber(v[6])
local kept = e
if e and u and u > e then kept = u end
if not v[1] or not kept or kept <= now then return {'unknown'} end
if v[2] ~= ARGV[2] then return {'other'} end
if v[1] == 'used' then
  if v[3] then return {'used', v[3]} end
  return {'unknown'}
end
if v[1] ~= 'live' or not v[5] or e <= now then return {'unknown'} end
local keep = math.max(tonumber(ARGV[3]), e)
redis.call('HSET', KEYS[1], 's', 'used', 'u', keep)
redis.call('HDEL', KEYS[1], 'r')
redis.call('EXPIRE', KEYS[1], math.max(keep - now, 1))
return {'redeemed', v[5]}
";

/// KEYS[1]: a code. ARGV: now, family, grant JSON. Makes a used code of that family live again,
/// if the code itself has not expired.
const RESTORE_CODE: &str = r"
local now = tonumber(ARGV[1])
local v = redis.call('HMGET', KEYS[1], 's', 'f', 'e')
local e = tonumber(v[3])
if v[1] ~= 'used' or v[2] ~= ARGV[2] or not e or e <= now then return 0 end
redis.call('HSET', KEYS[1], 's', 'live', 'r', ARGV[3])
redis.call('HDEL', KEYS[1], 'u')
redis.call('EXPIRE', KEYS[1], e - now)
return 1
";

/// Writes a device request: KEYS[1] the request, KEYS[2] its client's set of live requests,
/// KEYS[3] the set of all; from ARGV `a`: now, expiry, how long an expired request is
/// remembered, the device code hash (hex), client, status (`pending`/`approved`/`denied`),
/// interval, last poll (`''` if none), user, username and granted scope (`''` unless approved),
/// and the request as JSON. The request is kept until its expiry plus the memory, and counted
/// until its expiry.
const PUT_DEVICE_FN: &str = r"
local function put_device(a)
  local now, e, memory = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  redis.call('DEL', KEYS[1])
  if e + memory <= now then return end
  redis.call('HSET', KEYS[1], 'c', ARGV[a + 4], 'e', ARGV[a + 1], 's', ARGV[a + 5],
    'i', ARGV[a + 6], 'r', ARGV[a + 11])
  if ARGV[a + 7] ~= '' then redis.call('HSET', KEYS[1], 'l', ARGV[a + 7]) end
  if ARGV[a + 5] == 'approved' then
    redis.call('HSET', KEYS[1], 'u', ARGV[a + 8], 'g', ARGV[a + 10])
    if ARGV[a + 9] ~= '' then redis.call('HSET', KEYS[1], 'n', ARGV[a + 9]) end
  end
  redis.call('EXPIRE', KEYS[1], e + memory - now)
  if e > now then
    count(now, KEYS[2], e, ARGV[a + 3])
    count(now, KEYS[3], e, ARGV[a + 3])
  end
end
";

/// KEYS: the request, its client's set, the set of all (as `put_device`), then its user code
/// index. ARGV: the limit per client, the limit in all, the device key prefix, then
/// `put_device`'s values.
///
/// Answers {0, 0}, saving nothing, if the user code indexes an unexpired request; {2, seconds}
/// if a limit is reached; otherwise saves the request and the index (until its expiry) and
/// answers {1, 0}. The request behind an existing index is derived from the index's value, so
/// it cannot be declared in KEYS; it has the same hash tag, so it is in the same slot.
const SAVE_DEVICE: &str = r"
local now, e = tonumber(ARGV[4]), tonumber(ARGV[5])
local held = redis.call('GET', KEYS[4])
if held then
  local he = tonumber(redis.call('HGET', ARGV[3] .. held, 'e'))
  if he and he > now then return {0, 0} end
end
local wait = full(now, KEYS[2], KEYS[3], tonumber(ARGV[1]), tonumber(ARGV[2]))
if wait then return {2, wait} end
put_device(4)
if e > now then redis.call('SET', KEYS[4], ARGV[7], 'EX', e - now) end
return {1, 0}
";

/// KEYS: as `put_device`. ARGV: `put_device`'s values. Puts back a collected approval unless
/// something is stored under the device code: answers 1 if it did, else 0.
const RESTORE_DEVICE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local now, e, memory = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if e + memory <= now then return 0 end
put_device(1)
return 1
";

/// KEYS[1]: a user code index. ARGV: now, the device key prefix. A read: answers the request's
/// JSON, status, interval, last poll, user, granted scope and username if it is pending and
/// unexpired, else nil.
const FIND_DEVICE: &str = r"
local hex = redis.call('GET', KEYS[1])
if not hex then return false end
local v = redis.call('HMGET', ARGV[2] .. hex, 'e', 's', 'r', 'i', 'l', 'u', 'g', 'n')
local e = tonumber(v[1])
if v[2] ~= 'pending' or not e or e <= tonumber(ARGV[1]) then return false end
return {v[3], v[2], v[4], v[5], v[6], v[7], v[8]}
";

/// KEYS[1]: a user code index. ARGV: now, the device key prefix, `approved` or `denied`, user,
/// granted scope, username (`''` if none). Records the decision on a pending, unexpired
/// request and removes the index, answering 1; else changes nothing and answers 0.
const DECIDE_DEVICE: &str = r"
local hex = redis.call('GET', KEYS[1])
if not hex then return 0 end
local dk = ARGV[2] .. hex
local v = redis.call('HMGET', dk, 's', 'e')
local e = tonumber(v[2])
if v[1] ~= 'pending' or not e or e <= tonumber(ARGV[1]) then return 0 end
if ARGV[3] == 'approved' then
  redis.call('HSET', dk, 's', 'approved', 'u', ARGV[4], 'g', ARGV[5])
  if ARGV[6] ~= '' then redis.call('HSET', dk, 'n', ARGV[6]) end
else
  redis.call('HSET', dk, 's', 'denied')
end
redis.call('DEL', KEYS[1])
return 1
";

/// KEYS[1]: a device request; KEYS[2]: the set of all live requests. ARGV: now, client, how
/// long an expired request is remembered, what the per-client set keys start with, the device
/// code hash (hex). One poll, as `DeviceCodeStore::poll_device_authorization` says: answers
/// `{'unknown'}`, `{'other'}`, `{'expired'}`, `{'denied'}`, `{'pending'}`, `{'slow_down',
/// interval}`, or `{'approved', json, status, interval, last poll, user, scope, username}`
/// (the request deleted, and no longer counted).
const POLL_DEVICE: &str = r"
local now, memory = tonumber(ARGV[1]), tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 'c', 'e', 's', 'i', 'l', 'r', 'u', 'g', 'n')
local e = tonumber(v[2])
if not v[1] or not e or e + memory <= now then return {'unknown'} end
if v[1] ~= ARGV[2] then return {'other'} end
if e <= now then return {'expired'} end
if v[3] == 'denied' then return {'denied'} end
if v[3] == 'approved' then
  if not v[4] or not v[6] or not v[7] or not v[8] then return {'unknown'} end
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[5])
  redis.call('ZREM', ARGV[4] .. v[1], ARGV[5])
  return {'approved', v[6], v[3], v[4], v[5] or '', v[7], v[8], v[9] or ''}
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

/// KEYS[1]: a user's last accepted one-time code (counter `c`, held until `u`). ARGV: now, the
/// counter, until (whole seconds, rounded up). Answers 0 if a counter as high is held at now;
/// otherwise records this one (held until the later of the two ends), answering 1.
const ADVANCE_OTP: &str = r"
local now, c, u = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 'c', 'u')
local hc, hu = tonumber(v[1]), tonumber(v[2])
if hc and hu and hu > now then
  if hc >= c then return 0 end
  if hu > u then u = hu end
end
if u > now then
  redis.call('HSET', KEYS[1], 'c', ARGV[2], 'u', u)
  redis.call('EXPIRE', KEYS[1], u - now)
else
  redis.call('DEL', KEYS[1])
end
return 1
";

struct Scripts {
    save_pending: Script,
    take_pending: Script,
    save_code: Script,
    take_code: Script,
    restore_code: Script,
    save: Script,
    rotate: Script,
    reissue: Script,
    revoke_one: Script,
    revoke_family: Script,
    reserve: Script,
    record_failure: Script,
    save_device: Script,
    restore_device: Script,
    find_device: Script,
    decide_device: Script,
    poll_device: Script,
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
            take_code: Script::new(TAKE_CODE),
            restore_code: Script::new(RESTORE_CODE),
            save: Script::new(&format!("{SAVE_FN}\n{SAVE}")),
            rotate: Script::new(&format!("{SAVE_FN}\n{SUCCESSOR_FN}\n{ROTATE}")),
            reissue: Script::new(&format!("{SAVE_FN}\n{SUCCESSOR_FN}\n{REISSUE}")),
            revoke_one: Script::new(REVOKE_ONE),
            revoke_family: Script::new(REVOKE_FAMILY),
            reserve: Script::new(&format!("{LIMITER_FN}\n{RESERVE}")),
            record_failure: Script::new(&format!("{LIMITER_FN}\n{RECORD_FAILURE}")),
            save_device: Script::new(&format!("{LIMITS_FN}\n{PUT_DEVICE_FN}\n{SAVE_DEVICE}")),
            restore_device: Script::new(&format!("{LIMITS_FN}\n{PUT_DEVICE_FN}\n{RESTORE_DEVICE}")),
            find_device: Script::new(FIND_DEVICE),
            decide_device: Script::new(DECIDE_DEVICE),
            poll_device: Script::new(POLL_DEVICE),
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
/// | `{grantor}:t:<sha256 hex>` | hash | one token: state (`live`/`rotated`), kind, client, family, expiry, and the [`TokenRecord`] as JSON (dropped once rotated; a rotated token keeps when it was rotated and the hash of its successor) | with the token |
/// | `{grantor}:r:<family id>` | string | a mark that the family was revoked, refusing new tokens for it | after an hour |
/// | `{grantor}:f:<family id>` | sorted set | the hashes of a family's unexpired tokens, scored by expiry | with its last token |
/// | `{grantor}:l:<hash of the attempt key>` | hash | a failed-attempt count and its window's end | with the window |
/// | `{grantor}:i:<hash of the attempt key>` | sorted set | the checks in flight on the key (random lease ids), scored by when each lease lapses | with its last lease |
/// | `{grantor}:p:<sha256 hex of the request id>` | hash | client, expiry, and the [`PendingAuthorization`] as JSON | with the request |
/// | `{grantor}:pc:<client id>`, `{grantor}:pa` | sorted set | the client's pending requests, and all of them (request id hashes scored by expiry), for [`PendingLimits`] | with their last member |
/// | `{grantor}:c:<sha256 hex of the code>` | hash | state (`live`/`used`), client, family, expiry, and the [`CodeGrant`] as JSON (dropped once used; a used code keeps its client and family as long as the tokens issued from it) | with the code, or its tokens once used |
/// | `{grantor}:d:<sha256 hex of the device code>` | hash | one device authorization: client, expiry, status (`pending`/`approved`/`denied`), interval, last poll, the approving user, username and granted scope, and the [`DeviceAuthorization`] as saved, as JSON | [`EXPIRED_DEVICE_CODE_MEMORY`] seconds after the request expires, or when an approval is collected |
/// | `{grantor}:dc:<client id>`, `{grantor}:da` | sorted set | the client's unexpired device requests, and all of them (device code hashes scored by expiry), for [`PendingLimits`] | with their last member |
/// | `{grantor}:u:<sha256 hex of the normalised user code>` | string | the device code hash (hex) of the pending request it names | with the request, or when it is decided |
/// | `{grantor}:m:<sha256 hex of the mfa_token>` | hash | expiry and the [`MfaChallenge`] as JSON | with the challenge, or when it is taken |
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
/// saving tokens, rotate-and-detect-reuse, reissuing within a grace period, revoke-one,
/// revoke-a-family, the limiter's reserve and failure (its release is a plain `ZREM`), saving
/// pending requests within their bounds, taking them, saving, spending and giving back codes,
/// saving (within bounds), finding (a read that follows the user code index), deciding, polling
/// and putting back device authorizations, saving and taking `mfa_token`s, and advancing a
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

/// What the rotate and reissue scripts answered.
fn parse_rotation(answer: Vec<String>) -> Result<Rotation, StoreError> {
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

/// An instant as whole unix seconds, rounded up: how long something is kept, at least as long
/// as asked.
fn ceil_secs(at: OffsetDateTime) -> i64 {
    at.unix_timestamp()
        .saturating_add(i64::from(at.nanosecond() > 0))
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
            .arg(&["s", "c", "f", "e", "r", "a", "n"]);
        let command = &command;
        #[allow(clippy::type_complexity)]
        let (state, client, family, expires, record, rotated_at, successor): (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
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
                rotated_at: OffsetDateTime::from_unix_timestamp(rotated_at.unwrap_or(0))
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                successor: successor.as_deref().and_then(TokenHash::from_hex),
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
        parse_rotation(self.invoke(false, &invocation).await?)
    }

    async fn reissue_rotated(
        &self,
        old: &TokenHash,
        successor: &TokenHash,
        client: &ClientId,
        new_tokens: &[(TokenHash, TokenRecord)],
        now: OffsetDateTime,
    ) -> Result<Rotation, StoreError> {
        let mut invocation = self.scripts.reissue.prepare_invoke();
        invocation
            .key(self.token_key(old))
            .key(self.token_key(successor))
            .arg(now.unix_timestamp())
            .arg(client.as_str())
            .arg(successor.to_hex());
        self.add_tokens(&mut invocation, new_tokens)?;
        parse_rotation(self.invoke(false, &invocation).await?)
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
        lease: &AttemptLease,
        now: OffsetDateTime,
    ) -> Result<AttemptVerdict, StoreError> {
        let mut invocation = self.scripts.reserve.prepare_invoke();
        invocation
            .key(self.limiter_key(key))
            .key(self.lease_key(key))
            .arg(now.unix_timestamp())
            .arg(rule.max_failures)
            .arg(window_secs(rule.window))
            .arg(lease.id)
            .arg(ceil_secs(lease.until));
        let (verdict, left): (i64, i64) = self.invoke(false, &invocation).await?;
        Ok(match verdict {
            1 => AttemptVerdict::Allowed,
            2 => AttemptVerdict::Busy,
            _ => AttemptVerdict::Refused {
                retry_after: Duration::from_secs(u64::try_from(left).unwrap_or(0)),
            },
        })
    }

    async fn release_attempt(
        &self,
        key: &AttemptKey,
        lease: &AttemptLease,
        _now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut command = redis::cmd("ZREM");
        command.arg(self.lease_key(key)).arg(lease.id);
        let command = &command;
        self.run(true, |mut conn| async move {
            command.query_async::<i64>(&mut conn).await
        })
        .await?;
        Ok(())
    }

    async fn record_failure(
        &self,
        key: &AttemptKey,
        rule: &AttemptRule,
        lease: &AttemptLease,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut invocation = self.scripts.record_failure.prepare_invoke();
        invocation
            .key(self.limiter_key(key))
            .key(self.lease_key(key))
            .arg(now.unix_timestamp())
            .arg(window_secs(rule.window))
            .arg(lease.id);
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
        limits: &PendingLimits,
        now: OffsetDateTime,
    ) -> Result<Admission, StoreError> {
        let json = serde_json::to_string(request).map_err(StoreError::backend)?;
        let mut invocation = self.scripts.save_pending.prepare_invoke();
        invocation
            .key(self.pending_key(id))
            .key(format!(
                "{}{}",
                self.pending_client_prefix(),
                request.client_id
            ))
            .key(self.pending_all_key())
            .arg(now.unix_timestamp())
            .arg(ceil_secs(request.expires_at))
            .arg(limits.per_client)
            .arg(limits.total)
            .arg(id.to_hex())
            .arg(request.client_id.as_str())
            .arg(json);
        let (saved, wait): (i64, i64) = self.invoke(false, &invocation).await?;
        Ok(if saved == 1 {
            Admission::Admitted
        } else {
            Admission::Full {
                retry_after: Duration::from_secs(u64::try_from(wait).unwrap_or(1).max(1)),
            }
        })
    }

    async fn find_pending(
        &self,
        id: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        match self.live_json(self.pending_key(id), now).await? {
            Some(json) => parse_pending(&json, now),
            None => Ok(None),
        }
    }

    async fn take_pending(
        &self,
        id: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let mut invocation = self.scripts.take_pending.prepare_invoke();
        invocation
            .key(self.pending_key(id))
            .key(self.pending_all_key())
            .arg(now.unix_timestamp())
            .arg(id.to_hex())
            .arg(self.pending_client_prefix());
        let json: Option<String> = self.invoke(false, &invocation).await?;
        match json {
            Some(json) => parse_pending(&json, now),
            None => Ok(None),
        }
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
            .arg(grant.client_id.as_str())
            .arg(grant.family_id.as_str())
            .arg(grant.expires_at.unix_timestamp())
            .arg(json);
        self.invoke::<i64>(false, &invocation).await?;
        Ok(())
    }

    async fn take_code(
        &self,
        code: &TokenHash,
        client: &ClientId,
        keep_used_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<CodeRedemption, StoreError> {
        let mut invocation = self.scripts.take_code.prepare_invoke();
        invocation
            .key(self.code_key(code))
            .arg(now.unix_timestamp())
            .arg(client.as_str())
            .arg(ceil_secs(keep_used_until));
        let answer: Vec<String> = self.invoke(false, &invocation).await?;
        let mut answer = answer.into_iter();
        Ok(match (answer.next().as_deref(), answer.next()) {
            (Some("redeemed"), Some(json)) => {
                CodeRedemption::Redeemed(serde_json::from_str(&json).map_err(StoreError::backend)?)
            }
            (Some("used"), Some(family)) => CodeRedemption::AlreadyUsed {
                family_id: FamilyId::new(family),
            },
            (Some("other"), _) => CodeRedemption::OtherClient,
            _ => CodeRedemption::Unknown,
        })
    }

    async fn restore_code(
        &self,
        code: &TokenHash,
        grant: &CodeGrant,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(grant).map_err(StoreError::backend)?;
        let mut invocation = self.scripts.restore_code.prepare_invoke();
        invocation
            .key(self.code_key(code))
            .arg(now.unix_timestamp())
            .arg(grant.family_id.as_str())
            .arg(json);
        let restored: i64 = self.invoke(false, &invocation).await?;
        Ok(restored == 1)
    }
}

/// A pending request from its JSON, if it is still waiting at `now`.
fn parse_pending(
    json: &str,
    now: OffsetDateTime,
) -> Result<Option<PendingAuthorization>, StoreError> {
    let request: PendingAuthorization = serde_json::from_str(json).map_err(StoreError::backend)?;
    Ok((request.expires_at > now).then_some(request))
}

/// How a device authorization's status is kept: its word, and for an approval the user, the
/// username and the granted scope.
fn status_fields(status: &DeviceStatus) -> (&'static str, String, String, String) {
    match status {
        DeviceStatus::Approved {
            user_id,
            username,
            scope,
        } => (
            "approved",
            user_id.as_str().to_owned(),
            username
                .as_ref()
                .map(|u| u.as_str().to_owned())
                .unwrap_or_default(),
            scope.to_string(),
        ),
        DeviceStatus::Denied => ("denied", String::new(), String::new(), String::new()),
        _ => ("pending", String::new(), String::new(), String::new()),
    }
}

/// A device authorization from what a script answered: the request as saved (JSON), then its
/// mutable fields (status, interval, last poll, user, granted scope, username; `''` for none).
/// A missing part is a miss; a part that does not parse is a backend error.
fn parse_device(
    fields: impl IntoIterator<Item = Option<String>>,
) -> Result<Option<DeviceAuthorization>, StoreError> {
    let mut fields = fields.into_iter();
    let mut next = || fields.next().flatten();
    let (json, status, interval, last_poll, user, scope, username) =
        (next(), next(), next(), next(), next(), next(), next());
    // The scripts answer `''` for no last poll and no username (a nil would end the reply).
    let (last_poll, username) = (
        last_poll.filter(|v| !v.is_empty()),
        username.filter(|v| !v.is_empty()),
    );
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
            username: username.map(Username::new),
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

impl RedisStore {
    /// Adds what `PUT_DEVICE_FN` reads (its keys, and its values from the invocation's next
    /// argument on) to a script invocation.
    fn add_device(
        &self,
        invocation: &mut redis::ScriptInvocation<'_>,
        device_code: &TokenHash,
        request: &DeviceAuthorization,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(request).map_err(StoreError::backend)?;
        let (status, user, username, scope) = status_fields(&request.status);
        invocation
            .key(self.device_key(device_code))
            .key(format!(
                "{}{}",
                self.device_client_prefix(),
                request.client_id
            ))
            .key(self.device_all_key())
            .arg(now.unix_timestamp())
            .arg(request.expires_at.unix_timestamp())
            .arg(EXPIRED_DEVICE_CODE_MEMORY)
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
            .arg(username)
            .arg(scope)
            .arg(json);
        Ok(())
    }
}

#[async_trait]
impl DeviceCodeStore for RedisStore {
    async fn save_device_authorization(
        &self,
        device_code: &TokenHash,
        user_code: &TokenHash,
        request: &DeviceAuthorization,
        limits: &PendingLimits,
        now: OffsetDateTime,
    ) -> Result<DeviceSave, StoreError> {
        let mut invocation = self.scripts.save_device.prepare_invoke();
        invocation
            .arg(limits.per_client)
            .arg(limits.total)
            .arg(self.device_key_prefix());
        self.add_device(&mut invocation, device_code, request, now)?;
        invocation.key(self.user_code_key(user_code));
        let (saved, wait): (i64, i64) = self.invoke(false, &invocation).await?;
        Ok(match saved {
            1 => DeviceSave::Saved,
            0 => DeviceSave::UserCodeInUse,
            _ => DeviceSave::Full {
                retry_after: Duration::from_secs(u64::try_from(wait).unwrap_or(1).max(1)),
            },
        })
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
        let (status, user, username, scope) = status_fields(&decision.status());
        let mut invocation = self.scripts.decide_device.prepare_invoke();
        invocation
            .key(self.user_code_key(user_code))
            .arg(now.unix_timestamp())
            .arg(self.device_key_prefix())
            .arg(status)
            .arg(user)
            .arg(scope)
            .arg(username);
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
            .key(self.device_all_key())
            .arg(now.unix_timestamp())
            .arg(client.as_str())
            .arg(EXPIRED_DEVICE_CODE_MEMORY)
            .arg(self.device_client_prefix())
            .arg(device_code.to_hex());
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

    async fn restore_device_approval(
        &self,
        device_code: &TokenHash,
        request: &DeviceAuthorization,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.scripts.restore_device.prepare_invoke();
        self.add_device(&mut invocation, device_code, request, now)?;
        let restored: i64 = self.invoke(false, &invocation).await?;
        Ok(restored == 1)
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
        self.live_json(self.mfa_key(token), now)
            .await?
            .map(|json| serde_json::from_str(&json).map_err(StoreError::backend))
            .transpose()
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

    async fn advance_otp_counter(
        &self,
        user: &UserId,
        counter: u64,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.scripts.advance_otp.prepare_invoke();
        invocation
            .key(self.otp_key(user))
            .arg(now.unix_timestamp())
            .arg(counter.to_string())
            // Whole seconds, rounded up: a code is refused at least as long as asked.
            .arg(ceil_secs(until));
        let advanced: i64 = self.invoke(false, &invocation).await?;
        Ok(advanced == 1)
    }
}
