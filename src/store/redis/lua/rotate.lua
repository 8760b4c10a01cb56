-- KEYS[1]: the old refresh token; then token/family/marker key triples for the new tokens.
-- ARGV: now, client, spend ('1' or '0'), then six values a new token.
-- Checks everything before it writes anything. A spent token keeps when it was spent (`a`)
-- and its successor (`n`).

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
