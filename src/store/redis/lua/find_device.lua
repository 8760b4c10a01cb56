-- KEYS[1]: a user code index. ARGV: now, the device key prefix. A read: answers the request's
-- JSON, status, interval, last poll, user, granted scope and username if it is pending and
-- unexpired, else nil.

local hex = redis.call('GET', KEYS[1])
if not hex then return false end
local v = redis.call('HMGET', ARGV[2] .. hex, 'e', 's', 'r', 'i', 'l', 'u', 'g', 'n')
local e = tonumber(v[1])
if v[2] ~= 'pending' or not e or e <= tonumber(ARGV[1]) then return false end
return {v[3], v[2], v[4], v[5], v[6], v[7], v[8]}
