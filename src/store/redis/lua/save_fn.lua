-- Saves tokens: Lua functions shared by the save and update scripts.
--
-- KEYS from `first_key`: triples of (token key, family key, family-revoked marker key). ARGV
-- from `first_arg`: six values a token (kind, client, family, expiry, record JSON, hash hex).
-- `revoked` answers whether any family is marked revoked (then nothing may be saved); `save`
-- writes. A family is a sorted set of its token hashes (live tokens and spent marks) scored by
-- expiry: `index` adds one and prunes expired members on every write into it, so it never
-- outgrows its unexpired entries, and it expires with its longest-lived member.

local function revoked(now, first_key)
  local k = first_key
  while k + 2 <= #KEYS do
    local until_ = tonumber(redis.call('GET', KEYS[k + 2]))
    if until_ and until_ > now then return true end
    k = k + 3
  end
  return false
end
local function index(fk, hex, exp, now)
  redis.call('ZADD', fk, exp, hex)
  redis.call('ZREMRANGEBYSCORE', fk, '-inf', now)
  local top = redis.call('ZRANGE', fk, -1, -1, 'WITHSCORES')
  redis.call('EXPIRE', fk, math.max(tonumber(top[2]) - now, 1))
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
      index(fk, ARGV[a + 5], exp, now)
    end
    k = k + 3
    a = a + 6
  end
end
