-- Reserve: check every limit, then add every hold and join every in-flight set, all or nothing.
-- KEYS[1]             reservation marker (expires with the lease if never settled)
-- KEYS[2 .. 1+nh]     counters (tokens or micro-USD of one window)
-- KEYS[2+nh .. ]      in-flight sorted sets (score: lease end in ms)
-- ARGV: now_ms, lease_ms, member, nh, ns,
--       then per counter: amount, limit (-1: none), expire_at_ms,
--       then per set: limit (-1: none)
-- Returns {admitted (1/0), denied index (1-based over counters then sets, 0), values..., counts...}
local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local member = ARGV[3]
local nh = tonumber(ARGV[4])
local ns = tonumber(ARGV[5])
local values = {}
for i = 1, nh do
  local base = 5 + (i - 1) * 3
  local amount = tonumber(ARGV[base + 1])
  local limit = tonumber(ARGV[base + 2])
  local value = tonumber(redis.call('GET', KEYS[1 + i]) or '0')
  values[i] = value
  if limit >= 0 and value + amount > limit then
    return {0, i, unpack(values)}
  end
end
local counts = {}
local sbase = 5 + nh * 3
for j = 1, ns do
  local key = KEYS[1 + nh + j]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local count = redis.call('ZCARD', key)
  counts[j] = count
  local limit = tonumber(ARGV[sbase + j])
  if limit >= 0 and count >= limit then
    return {0, nh + j, unpack(values)}
  end
end
for i = 1, nh do
  local base = 5 + (i - 1) * 3
  redis.call('INCRBY', KEYS[1 + i], ARGV[base + 1])
  redis.call('PEXPIREAT', KEYS[1 + i], ARGV[base + 3])
end
for j = 1, ns do
  local key = KEYS[1 + nh + j]
  redis.call('ZADD', key, now + lease, member)
  redis.call('PEXPIRE', key, lease)
end
redis.call('SET', KEYS[1], '1', 'PX', lease)
local out = {1, 0}
for i = 1, nh do out[#out + 1] = values[i] end
for j = 1, ns do out[#out + 1] = counts[j] end
return out
