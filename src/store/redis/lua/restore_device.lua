-- KEYS: as `put_device`. ARGV: `put_device`'s values. Insert-if-absent: answers 0, changing
-- nothing, if a request is kept under the device code; 2, saving nothing, if the time it is to
-- be kept until is not after now; otherwise saves it and answers 1.

local now, k = tonumber(ARGV[1]), tonumber(ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 1 then
  local held = tonumber(redis.call('HGET', KEYS[1], 'k'))
  if not held or held > now then return 0 end
end
if k <= now then return 2 end
put_device(1)
return 1
