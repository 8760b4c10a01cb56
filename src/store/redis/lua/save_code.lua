-- KEYS[1]: a code. ARGV: now, client, family, expiry, grant JSON.

local ttl = tonumber(ARGV[4]) - tonumber(ARGV[1])
if ttl <= 0 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 's', 'live', 'c', ARGV[2], 'f', ARGV[3], 'e', ARGV[4], 'r', ARGV[5])
redis.call('EXPIRE', KEYS[1], ttl)
return 1
