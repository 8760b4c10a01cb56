-- `TokenStore::update_tokens`: a compare-and-set over several tokens, plus inserts.
--
-- KEYS: one token key an expectation; then (token key, family key) pairs, one a mark; then the
-- inserts' keys (as `save`: a token's key, and its family and marker keys unless it stands
-- alone).
-- ARGV: now, how many expectations, how many marks; then two values an expectation (`live` or
-- `spent`, and for `spent` the successor's hash hex, or '' for none); six values a mark
-- (client, family, spent at, successor hex or '', keep until, the marked token's hash hex);
-- then six values an insert (as `save`).
-- Answers 'conflict' (an expectation failed), 'revoked' (a family of the inserts is marked
-- revoked) or 'applied'. Checks everything before it writes anything.
--
-- A spent mark keeps the fields of the token's hash that say whose it is (`c`, `f`), sets the
-- state to `rotated`, when it was spent (`a`), its successor (`n`, absent for none) and until
-- when it is kept (`e`, and the key's TTL), and drops the record (`r`).

local now = tonumber(ARGV[1])
local ne, nm = tonumber(ARGV[2]), tonumber(ARGV[3])
local a = 4
for i = 1, ne do
  local v = redis.call('HMGET', KEYS[i], 's', 'e', 'r', 'c', 'f', 'n')
  local e = tonumber(v[2])
  if not e or e <= now then return 'conflict' end
  if ARGV[a] == 'live' then
    if v[1] ~= 'live' or not v[3] then return 'conflict' end
  elseif v[1] ~= 'rotated' or not v[4] or not v[5] or (v[6] or '') ~= ARGV[a + 1] then
    return 'conflict'
  end
  a = a + 2
end
local first_insert = ne + 2 * nm + 1
local first_insert_arg = a + 6 * nm
if revoked(now, first_insert, first_insert_arg) then return 'revoked' end
local k = ne + 1
for i = 1, nm do
  local tk, fk = KEYS[k], KEYS[k + 1]
  local keep = tonumber(ARGV[a + 4])
  if keep > now then
    redis.call('HSET', tk, 's', 'rotated', 'c', ARGV[a], 'f', ARGV[a + 1], 'a', ARGV[a + 2],
      'e', keep)
    redis.call('HDEL', tk, 'r')
    if ARGV[a + 3] ~= '' then
      redis.call('HSET', tk, 'n', ARGV[a + 3])
    else
      redis.call('HDEL', tk, 'n')
    end
    redis.call('EXPIRE', tk, keep - now)
    index(fk, ARGV[a + 5], keep, now)
  else
    redis.call('DEL', tk)
    redis.call('ZREM', fk, ARGV[a + 5])
  end
  k = k + 2
  a = a + 6
end
save(now, first_insert, a)
return 'applied'
