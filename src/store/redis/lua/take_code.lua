-- KEYS[1]: a code. ARGV: now, client, until when a used mark is kept. Spends a live code of
-- the client, keeping a used mark with its client and family until then; a code of another
-- client is left alone.

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
