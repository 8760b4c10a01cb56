-- Writes a device request: KEYS[1] the request, KEYS[2] its client's set of live requests,
-- KEYS[3] the set of all; from ARGV `a`: now, expiry, how long an expired request is
-- remembered, the device code hash (hex), client, status (`pending`/`approved`/`denied`),
-- interval, last poll (`''` if none), user, username and granted scope (`''` unless approved),
-- and the request as JSON. The request is kept until its expiry plus the memory, and counted
-- until its expiry.

local function put_device(a)
  local now, e, memory = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  redis.call('DEL', KEYS[1])
  if e + memory <= now then return end
  redis.call('HSET', KEYS[1], 'c', ARGV[a + 4], 'e', ARGV[a + 1], 's', ARGV[a + 5],
    'i', ARGV[a + 6], 'r', ARGV[a + 11])
  if ARGV[a + 7] ~= '' then redis.call('HSET', KEYS[1], 'l', ARGV[a + 7]) end
  if ARGV[a + 5] == 'approved' then
    redis.call('HSET', KEYS[1], 'u', ARGV[a + 8], 'g', ARGV[a + 10])
    if ARGV[a + 9] ~= '' then redis.call('HSET', KEYS[1], 'n', ARGV[a + 9]) end
  end
  redis.call('EXPIRE', KEYS[1], e + memory - now)
  if e > now then
    count(now, KEYS[2], e, ARGV[a + 3])
    count(now, KEYS[3], e, ARGV[a + 3])
  end
end
