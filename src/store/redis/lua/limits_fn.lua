-- Counting requests anyone can make (pending authorization requests, device requests)
-- against `PendingLimits`: each is a member of a sorted set for its client and one for all,
-- scored by when it expires.
--
-- `full` drops the expired members and answers how long until the oldest one expires if a
-- limit is reached (else nil); `count` adds a member, keeping each set until its last member
-- expires.

local function full(now, client_set, all_set, per_client, total)
  for _, pair in ipairs({{client_set, per_client}, {all_set, total}}) do
    redis.call('ZREMRANGEBYSCORE', pair[1], '-inf', now)
    if redis.call('ZCARD', pair[1]) >= pair[2] then
      local oldest = redis.call('ZRANGE', pair[1], 0, 0, 'WITHSCORES')
      if oldest[2] then return math.max(tonumber(oldest[2]) - now, 1) end
      return 1
    end
  end
  return nil
end
local function count(now, set, expiry, member)
  redis.call('ZADD', set, expiry, member)
  local top = redis.call('ZRANGE', set, -1, -1, 'WITHSCORES')
  redis.call('EXPIRE', set, math.max(tonumber(top[2]) - now, 1))
end
