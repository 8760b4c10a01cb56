-- KEYS[1]: a device request. ARGV: now. A read: answers the request's JSON, status, interval,
-- last poll, user, granted scope and username while it is kept (until its `k`; a request
-- without one as long as its key lives), else nil.

local v = redis.call('HMGET', KEYS[1], 'k', 's', 'r', 'i', 'l', 'u', 'g', 'n')
if not v[2] or not v[3] then return false end
local k = tonumber(v[1])
if k and k <= tonumber(ARGV[1]) then return false end
return {v[3], v[2], v[4], v[5], v[6], v[7], v[8]}
