-- Saves tokens: Lua functions shared by the save and rotate scripts.
--
-- KEYS from `first_key`: triples of (token key, family key, family-revoked marker key). ARGV
-- from `first_arg`: six values a token (kind, client, family, expiry, record JSON, hash hex).
-- `revoked` answers whether any family was revoked recently (then nothing may be saved); `save`
-- writes. A family is a sorted set of its token hashes scored by expiry: expired members are
-- pruned on every save into it, so it never outgrows its unexpired tokens, and it expires with
-- its longest-lived member.

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
