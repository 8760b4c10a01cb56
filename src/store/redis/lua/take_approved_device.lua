-- KEYS[1]: a device request; KEYS[2]: the set of all live requests. ARGV: now, what the
-- per-client set keys start with, the device code hash (hex). If the request is kept and
-- approved, deletes it (it is no longer counted) and answers its JSON, status, interval, last
-- poll, user, granted scope and username; otherwise changes nothing and answers nil.

local v = redis.call('HMGET', KEYS[1], 'k', 's', 'c', 'r', 'i', 'l', 'u', 'g', 'n')
if v[2] ~= 'approved' or not v[3] or not v[4] or not v[5] or not v[7] or not v[8] then
  return false
end
local k = tonumber(v[1])
if k and k <= tonumber(ARGV[1]) then return false end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('ZREM', ARGV[2] .. v[3], ARGV[3])
return {v[4], v[2], v[5], v[6], v[7], v[8], v[9]}
