-- KEYS[1]: a spent refresh token; KEYS[2]: its successor; then token/family/marker key
-- triples for the new tokens. ARGV: now, client, the successor's hash (hex), then six values a
-- new token. As `TokenStore::reissue_rotated` says: the successor, still live and unused, is
-- spent with no successor of its own, and the new refresh token succeeds the old one.

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
