-- The hash (hex) of the refresh token among the new tokens whose six values start at ARGV
-- `first_arg`, or nil: the successor of the token they replace.

local function successor(first_arg)
  local a = first_arg
  while a + 5 <= #ARGV do
    if ARGV[a] == 'refresh' then return ARGV[a + 5] end
    a = a + 6
  end
  return nil
end
