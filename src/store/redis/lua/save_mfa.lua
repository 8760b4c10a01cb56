-- KEYS[1]: an mfa challenge. ARGV: now, expiry, challenge JSON. Saves it until its expiry (an
-- expired one replaces whatever was there with nothing).

local ttl = tonumber(ARGV[2]) - tonumber(ARGV[1])
if ttl <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('HSET', KEYS[1], 'e', ARGV[2], 'r', ARGV[3])
redis.call('EXPIRE', KEYS[1], ttl)
return 1
