-- KEYS[1]: a user code index. ARGV: now, the device key prefix, `approved` or `denied`, user,
-- granted scope, username (`''` if none). Records the decision on a pending, unexpired
-- request and removes the index, answering 1; else changes nothing and answers 0.

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
