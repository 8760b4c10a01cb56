-- KEYS[1]: a limiter key; KEYS[2]: its leases. ARGV: now, window seconds, lease id. Ends the
-- lease and counts a failure, opening a window if none is open.

local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[3])
local n, e = settle(KEYS[1], KEYS[2], now, window)
if not e then e = now + window end
redis.call('HSET', KEYS[1], 'n', n + 1, 'e', e)
redis.call('EXPIRE', KEYS[1], e - now)
return 1
