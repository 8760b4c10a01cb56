-- KEYS: the request, its client's set, the set of all (as `put_device`), then its user code
-- index. ARGV: the limit per client, the limit in all, the device key prefix, then
-- `put_device`'s values.
--
-- Answers {0, 0}, saving nothing, if the user code indexes an unexpired request; {2, seconds}
-- if a limit is reached; otherwise saves the request and the index (until its expiry) and
-- answers {1, 0}. The request behind an existing index is derived from the index's value, so
-- it cannot be declared in KEYS; it has the same hash tag, so it is in the same slot.

local now, e = tonumber(ARGV[4]), tonumber(ARGV[5])
local held = redis.call('GET', KEYS[4])
if held then
  local he = tonumber(redis.call('HGET', ARGV[3] .. held, 'e'))
  if he and he > now then return {0, 0} end
end
local wait = full(now, KEYS[2], KEYS[3], tonumber(ARGV[1]), tonumber(ARGV[2]))
if wait then return {2, wait} end
put_device(4)
if e > now then redis.call('SET', KEYS[4], ARGV[7], 'EX', e - now) end
return {1, 0}
