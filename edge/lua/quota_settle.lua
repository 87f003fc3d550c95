-- Settle once: charge (or refund) the difference between real usage and the reservation, and
-- leave the in-flight sets. A reservation already settled or expired changes nothing.
-- KEYS[1]            reservation marker
-- KEYS[2 .. 1+nd]    counters to adjust
-- KEYS[2+nd .. ]     in-flight sets
-- ARGV: member, nd, then per counter: delta
-- Returns 1 when settled now, 0 when there was nothing open.
if redis.call('DEL', KEYS[1]) == 0 then
  return 0
end
local member = ARGV[1]
local nd = tonumber(ARGV[2])
for i = 1, nd do
  local delta = tonumber(ARGV[2 + i])
  -- A counter whose window has ended is gone: there is nothing left to correct.
  if delta ~= 0 and redis.call('EXISTS', KEYS[1 + i]) == 1 then
    if redis.call('INCRBY', KEYS[1 + i], delta) < 0 then
      redis.call('SET', KEYS[1 + i], 0, 'KEEPTTL')
    end
  end
end
for j = 2 + nd, #KEYS do
  redis.call('ZREM', KEYS[j], member)
end
return 1
