-- KEYS[1]: a code. ARGV: now, the used mark's client, its family, and until when it is kept
-- (whole seconds, rounded up). If the code is live at now, makes it that used mark (the code's
-- expiry `e` stays, for a give-back) and answers the grant JSON it held; otherwise changes
-- nothing and answers nil.

local now = tonumber(ARGV[1])
local v = redis.call('HMGET', KEYS[1], 's', 'e', 'r')
local e = tonumber(v[2])
if v[1] ~= 'live' or not e or e <= now or not v[3] then return false end
local keep = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 's', 'used', 'c', ARGV[2], 'f', ARGV[3], 'u', keep)
redis.call('HDEL', KEYS[1], 'r')
redis.call('EXPIRE', KEYS[1], math.max(keep - now, 1))
return v[3]
