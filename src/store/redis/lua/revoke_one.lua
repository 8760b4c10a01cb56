-- KEYS[1]: a token. ARGV: now. Deletes it if live, answering its record.

local v = redis.call('HMGET', KEYS[1], 's', 'e', 'r')
local e = tonumber(v[2])
if v[1] ~= 'live' or not e or e <= tonumber(ARGV[1]) or not v[3] then return false end
redis.call('DEL', KEYS[1])
return v[3]
