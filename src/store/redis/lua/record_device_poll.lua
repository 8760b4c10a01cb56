-- KEYS[1]: a device request. ARGV: now, the last poll expected (unix seconds, `''` for none),
-- the interval expected, the new last poll (`''` for none), the new interval. Compare-and-set:
-- if the request is kept, pending, and its last poll and interval are the ones expected, sets
-- its last poll and interval and answers 1; otherwise changes nothing and answers 0.

local v = redis.call('HMGET', KEYS[1], 'k', 's', 'l', 'i')
if v[2] ~= 'pending' then return 0 end
local k = tonumber(v[1])
if k and k <= tonumber(ARGV[1]) then return 0 end
if tonumber(v[3]) ~= tonumber(ARGV[2]) then return 0 end
if tonumber(v[4]) ~= tonumber(ARGV[3]) then return 0 end
if ARGV[4] == '' then
  redis.call('HDEL', KEYS[1], 'l')
else
  redis.call('HSET', KEYS[1], 'l', ARGV[4])
end
redis.call('HSET', KEYS[1], 'i', ARGV[5])
return 1
