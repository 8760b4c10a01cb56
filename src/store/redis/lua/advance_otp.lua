-- KEYS[1]: a user's last accepted one-time code (counter `c`, held until `u`). ARGV: now, the
-- counter, until (whole seconds, rounded up). Answers 0 if a counter as high is held at now;
-- otherwise records this one (held until the later of the two ends), answering 1.

local now, c, u = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 'c', 'u')
local hc, hu = tonumber(v[1]), tonumber(v[2])
if hc and hu and hu > now then
  if hc >= c then return 0 end
  if hu > u then u = hu end
end
if u > now then
  redis.call('HSET', KEYS[1], 'c', ARGV[2], 'u', u)
  redis.call('EXPIRE', KEYS[1], u - now)
else
  redis.call('DEL', KEYS[1])
end
return 1
