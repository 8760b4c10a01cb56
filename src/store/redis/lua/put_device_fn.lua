-- Writes a device request: KEYS[1] the request, KEYS[2] its client's set of live requests,
-- KEYS[3] the set of all; from ARGV `a`: now, expiry, until when the request is kept, the
-- device code hash (hex), client, status (`pending`/`approved`/`denied`), interval, last poll
-- (`''` if none), user, username and granted scope (`''` unless approved), and the request as
-- JSON. The request is kept until the time given (`k`, and the key's TTL), and counted until
-- its expiry. Nothing is written if that time is not after now.
--
-- A request written before `k` was kept has none: it is kept as long as its key lives.

local function put_device(a)
  local now, expiry, keep, hex, client, status, interval, last, user, username, scope, json =
    unpack(ARGV, a, a + 11)
  local e, k
  now, e, k = tonumber(now), tonumber(expiry), tonumber(keep)
  redis.call('DEL', KEYS[1])
  if k <= now then return end
  redis.call('HSET', KEYS[1], 'c', client, 'e', expiry, 'k', keep, 's', status,
    'i', interval, 'r', json)
  if last ~= '' then redis.call('HSET', KEYS[1], 'l', last) end
  if status == 'approved' then
    redis.call('HSET', KEYS[1], 'u', user, 'g', scope)
    if username ~= '' then redis.call('HSET', KEYS[1], 'n', username) end
  end
  redis.call('EXPIRE', KEYS[1], k - now)
  if e > now then
    count(now, KEYS[2], e, hex)
    count(now, KEYS[3], e, hex)
  end
end
