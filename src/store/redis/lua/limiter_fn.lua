-- A limiter key (failures `n` in a window ending `e`) and its leases (a sorted set of lease ids
-- scored by when they lapse), brought up to `now`: a closed window is forgotten, and each lapsed
-- lease counts as a failure (its check's request was dropped, or outlived its lease), opening a
-- window of `window` seconds if none is open. Answers the failures and the window's end (nil if
-- none is open). The lease set lives a window past its last lease, so that lapsed leases are
-- still there to be counted.

local function settle(key, leases, now, window)
  local v = redis.call('HMGET', key, 'n', 'e')
  local n, e = tonumber(v[1]) or 0, tonumber(v[2])
  if not e or e <= now then n = 0; e = nil end
  local lapsed = redis.call('ZCOUNT', leases, '-inf', now)
  if lapsed > 0 then
    redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
    n = n + lapsed
    if not e then e = now + window end
    redis.call('HSET', key, 'n', n, 'e', e)
    redis.call('EXPIRE', key, e - now)
  end
  return n, e
end
