-- KEYS[1]: a family; KEYS[2]: its revoked marker (holding until when). ARGV: now, the token key
-- prefix, until when the family stays marked revoked. Deletes the live tokens, keeps spent
-- marks, sets the marker (unless it already holds a later time), answers how many unexpired
-- tokens went.
--
-- The token keys it visits are derived from the family's members, so they cannot be declared
-- in KEYS beforehand (reading the members first would be a read-then-write race). They carry
-- the same hash tag as the family key, so they are in its slot, which is what Redis Cluster
-- needs to run the script.

local now = tonumber(ARGV[1])
local until_ = tonumber(ARGV[3])
if until_ > now then
  local held = tonumber(redis.call('GET', KEYS[2]))
  if not held or held < until_ then
    redis.call('SET', KEYS[2], until_, 'EX', until_ - now)
  end
end
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
