-- KEYS[1]: a pending request; KEYS[2]: the set of all. ARGV: now, the request id hash (hex),
-- what the per-client set keys start with. Deletes the request, answering its JSON if it was
-- still waiting. The client's set is named by the client the request holds, so it cannot be
-- declared in KEYS; it has the same hash tag, so it is in the same slot.

local v = redis.call('HMGET', KEYS[1], 'c', 'e', 'r')
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
if v[1] then redis.call('ZREM', ARGV[3] .. v[1], ARGV[2]) end
local e = tonumber(v[2])
if not e or e <= tonumber(ARGV[1]) or not v[3] then return false end
return v[3]
