-- KEYS[1]: a limiter key; KEYS[2]: its leases. ARGV: now, max failures, window seconds, lease
-- id, lease end. Answers {1, 0} (allowed, the lease held), {2, 0} (busy: failures and leases
-- reach the limit) or {0, seconds left} (refused).

local now, max, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local n, e = settle(KEYS[1], KEYS[2], now, window)
if n >= max then
  if e then return {0, e - now} end
  return {0, window}
end
if n + redis.call('ZCARD', KEYS[2]) >= max then return {2, 0} end
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('EXPIRE', KEYS[2], math.max(tonumber(top[2]) - now, 1) + window)
return {1, 0}
