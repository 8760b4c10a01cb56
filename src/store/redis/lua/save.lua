-- KEYS: per token, its key, then its family key and marker key unless it stands alone (see
-- save_fn). ARGV: now, then six values a token.
-- Answers 1 (saved) or 0 (a family is marked revoked: nothing saved).

local now = tonumber(ARGV[1])
if revoked(now, 1, 2) then return 0 end
save(now, 1, 2)
return 1
