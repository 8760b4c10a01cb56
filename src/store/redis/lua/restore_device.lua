-- KEYS: as `put_device`. ARGV: `put_device`'s values. Puts back a collected approval unless
-- something is stored under the device code: answers 1 if it did, else 0.

if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local now, e, memory = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if e + memory <= now then return 0 end
put_device(1)
return 1
