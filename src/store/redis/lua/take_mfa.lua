-- KEYS[1]: an mfa challenge. ARGV: now. Deletes it, answering its JSON if it was live.

local v = redis.call('HMGET', KEYS[1], 'e', 'r')
redis.call('DEL', KEYS[1])
local e = tonumber(v[1])
if not e or e <= tonumber(ARGV[1]) or not v[2] then return false end
return v[2]
