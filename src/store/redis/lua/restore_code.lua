-- KEYS[1]: a code. ARGV: now, family, grant JSON. Makes a used code of that family live again,
-- if the code itself has not expired.

local now = tonumber(ARGV[1])
local v = redis.call('HMGET', KEYS[1], 's', 'f', 'e')
local e = tonumber(v[3])
if v[1] ~= 'used' or v[2] ~= ARGV[2] or not e or e <= now then return 0 end
redis.call('HSET', KEYS[1], 's', 'live', 'r', ARGV[3])
redis.call('HDEL', KEYS[1], 'u')
redis.call('EXPIRE', KEYS[1], e - now)
return 1
