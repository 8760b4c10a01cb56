-- KEYS[1]: a pending request; KEYS[2]: its client's set of pending requests; KEYS[3]: the set
-- of all. ARGV: now, expiry, the limit per client, the limit in all, the request id hash
-- (hex), client, the request as JSON. Answers {1, 0} (saved) or {0, seconds} (a limit is
-- reached: nothing saved).

local now, e = tonumber(ARGV[1]), tonumber(ARGV[2])
local wait = full(now, KEYS[2], KEYS[3], tonumber(ARGV[3]), tonumber(ARGV[4]))
if wait then return {0, wait} end
if e <= now then return {1, 0} end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'c', ARGV[6], 'e', e, 'r', ARGV[7])
redis.call('EXPIRE', KEYS[1], e - now)
count(now, KEYS[2], e, ARGV[5])
count(now, KEYS[3], e, ARGV[5])
return {1, 0}
