-- Saves tokens: Lua functions shared by the save and update scripts.
--
-- ARGV from `first_arg`, to the end: six values a token (kind, client, family or '' for a token
-- that stands alone, expiry, record JSON, hash hex). KEYS from `first_key`: a token's key, then,
-- unless it stands alone, its family key and family-revoked marker key.
-- `revoked` answers whether any family is marked revoked (then nothing may be saved); `save`
-- writes. A family is a sorted set of its token hashes (live tokens and spent marks) scored by
-- expiry: `index` adds one and prunes expired members on every write into it, so it never
-- outgrows its unexpired entries, and it expires with its longest-lived member. A token that
-- stands alone has no family field and is in no family.

local function revoked(now, first_key, first_arg)
  local k, a = first_key, first_arg
  while a + 5 <= #ARGV do
    if ARGV[a + 2] ~= '' then
      local until_ = tonumber(redis.call('GET', KEYS[k + 2]))
      if until_ and until_ > now then return true end
      k = k + 3
    else
      k = k + 1
    end
    a = a + 6
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
  while a + 5 <= #ARGV do
    local tk = KEYS[k]
    local family = ARGV[a + 2] ~= ''
    local exp = tonumber(ARGV[a + 3])
    if exp and exp > now then
      if family then
        redis.call('HSET', tk, 's', 'live', 'k', ARGV[a], 'c', ARGV[a + 1], 'f', ARGV[a + 2],
          'e', exp, 'r', ARGV[a + 4])
      else
        redis.call('HSET', tk, 's', 'live', 'k', ARGV[a], 'c', ARGV[a + 1], 'e', exp,
          'r', ARGV[a + 4])
        redis.call('HDEL', tk, 'f')
      end
      redis.call('EXPIRE', tk, exp - now)
      if family then index(KEYS[k + 1], ARGV[a + 5], exp, now) end
    end
    if family then k = k + 3 else k = k + 1 end
    a = a + 6
  end
end
