-- KEYS[1]: a code. ARGV: now, family, client, grant JSON. Makes a used mark of that family, still
-- kept at now, live again with the grant, if the code itself has not expired. Answers 1 if it
-- did, else 0.

local now = tonumber(ARGV[1])
local v = redis.call('HMGET', KEYS[1], 's', 'f', 'e', 'u')
local e, u = tonumber(v[3]), tonumber(v[4])
if v[1] ~= 'used' or v[2] ~= ARGV[2] or not e or e <= now or (u and u <= now) then return 0 end
redis.call('HSET', KEYS[1], 's', 'live', 'c', ARGV[3], 'r', ARGV[4])
redis.call('HDEL', KEYS[1], 'u')
redis.call('EXPIRE', KEYS[1], e - now)
return 1
