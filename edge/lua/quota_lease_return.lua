-- End a lease: give back what it did not spend, and put each spent request at its real time.
-- KEYS[1]: a moving window's sorted set, or the sliding window counter the slice was counted in
-- ARGV: kind (1 moving, 2 sliding), lease id, granted, then
--       moving: per slot of the slice spent so far, its time in ms (0: given back after all)
--       sliding: how many were spent
-- Returns how many were given back.
local id, granted = ARGV[2], tonumber(ARGV[3])
if ARGV[1] == '2' then
  local unused = granted - tonumber(ARGV[4])
  -- A counter whose window has ended and been dropped has nothing left to give back.
  if unused > 0 and redis.call('EXISTS', KEYS[1]) == 1 then
    if redis.call('DECRBY', KEYS[1], unused) < 0 then
      redis.call('SET', KEYS[1], 0, 'KEEPTTL')
    end
  end
  return unused
end
local key = KEYS[1]
local moved, gone = {}, {}
local function flush()
  if #moved > 0 then
    -- XX: a member the window has already forgotten is not brought back.
    redis.call('ZADD', key, 'XX', unpack(moved))
    moved = {}
  end
  if #gone > 0 then
    redis.call('ZREM', key, unpack(gone))
    gone = {}
  end
end
local unused = 0
for n = 1, granted do
  local at = tonumber(ARGV[3 + n] or '0')
  if at > 0 then
    moved[#moved + 1] = at
    moved[#moved + 1] = id .. ':' .. n
  else
    gone[#gone + 1] = id .. ':' .. n
    unused = unused + 1
  end
  if #moved >= 1000 or #gone >= 500 then
    flush()
  end
end
flush()
return unused
