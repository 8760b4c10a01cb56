-- KEYS[1]: a device request; KEYS[2]: the set of all live requests. ARGV: now, client, how
-- long an expired request is remembered, what the per-client set keys start with, the device
-- code hash (hex). One poll, as `DeviceCodeStore::poll_device_authorization` says: answers
-- `{'unknown'}`, `{'other'}`, `{'expired'}`, `{'denied'}`, `{'pending'}`, `{'slow_down',
-- interval}`, or `{'approved', json, status, interval, last poll, user, scope, username}`
-- (the request deleted, and no longer counted).

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
