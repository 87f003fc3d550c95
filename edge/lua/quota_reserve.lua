-- Reserve: check every limit of a call, then count it in every request-rate window, add every
-- hold and join every in-flight set, all or nothing.
-- KEYS[1]                    reservation marker (expires with the lease if never settled)
-- KEYS[2 .. 1+nh]            counters (tokens or micro-USD of one window)
-- KEYS[2+nh .. 1+nh+ns]      in-flight sorted sets (score: lease end in ms)
-- then per request-rate window: a moving window's sorted set (score: request time in ms), or a
--   sliding window counter's previous then current fixed-window counters
-- ARGV: now_ms, lease_ms, member, nh, ns, nw,
--       per counter: amount, limit (-1: none), expire_at_ms; per set: limit (-1: none);
--       per window: kind (1 moving, 2 sliding), limit, period_ms, left_ms, expire_at_ms
--       (sliding windows: what remains of the current fixed window, and when its counter may go,
--       once it has served as the previous window; moving windows: 0, then how long past the
--       window's length its set is kept, for the members of a lease scored at the lease's end)
-- Returns {admitted (1/0), counter values..., set sizes..., then per window: allowed (1/0),
--   moving: count, age of the oldest entry (ms), age of the limit-th newest (ms, refusals);
--   sliding: previous count, current count, 0}; every figure is from before this call.
local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local member = ARGV[3]
local nh, ns, nw = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local out = {1}
for i = 1, nh do
  local base = 6 + (i - 1) * 3
  local limit = tonumber(ARGV[base + 2])
  local value = tonumber(redis.call('GET', KEYS[1 + i]) or '0')
  if limit >= 0 and value + tonumber(ARGV[base + 1]) > limit then
    out[1] = 0
  end
  out[#out + 1] = value
end
local sbase = 6 + nh * 3
for j = 1, ns do
  local key = KEYS[1 + nh + j]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local count = redis.call('ZCARD', key)
  local limit = tonumber(ARGV[sbase + j])
  if limit >= 0 and count >= limit then
    out[1] = 0
  end
  out[#out + 1] = count
end
local wbase = sbase + ns
local k = 2 + nh + ns
for w = 1, nw do
  local a = wbase + (w - 1) * 5
  local limit, period = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local allowed, x, y, z
  if ARGV[a + 1] == '1' then
    local key = KEYS[k]
    k = k + 1
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - period)
    x = redis.call('ZCARD', key)
    y, z = 0, 0
    if x > 0 then
      y = now - tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2])
    end
    allowed = x < limit
    if not allowed then
      z = now - tonumber(redis.call('ZRANGE', key, x - limit, x - limit, 'WITHSCORES')[2])
    end
  else
    x = tonumber(redis.call('GET', KEYS[k]) or '0')
    y = tonumber(redis.call('GET', KEYS[k + 1]) or '0')
    z = 0
    k = k + 2
    allowed = math.floor(x * tonumber(ARGV[a + 4]) / period + y) + 1 <= limit
  end
  if not allowed then
    out[1] = 0
  end
  out[#out + 1] = allowed and 1 or 0
  out[#out + 1] = x
  out[#out + 1] = y
  out[#out + 1] = z
end
-- A marker already there means this reservation was released before it arrived (its caller
-- left while the call was on its way, and the release came first): count nothing.
if redis.call('EXISTS', KEYS[1]) == 1 then
  out[1] = 0
end
if out[1] == 0 then
  return out
end
for i = 1, nh do
  local base = 6 + (i - 1) * 3
  redis.call('INCRBY', KEYS[1 + i], ARGV[base + 1])
  redis.call('PEXPIREAT', KEYS[1 + i], ARGV[base + 3])
end
for j = 1, ns do
  local key = KEYS[1 + nh + j]
  redis.call('ZADD', key, now + lease, member)
  redis.call('PEXPIRE', key, lease)
end
k = 2 + nh + ns
for w = 1, nw do
  local a = wbase + (w - 1) * 5
  if ARGV[a + 1] == '1' then
    redis.call('ZADD', KEYS[k], now, member)
    redis.call('PEXPIRE', KEYS[k], tonumber(ARGV[a + 3]) + tonumber(ARGV[a + 5]))
    k = k + 1
  else
    redis.call('INCR', KEYS[k + 1])
    redis.call('PEXPIREAT', KEYS[k + 1], ARGV[a + 5])
    k = k + 2
  end
end
redis.call('SET', KEYS[1], '1', 'PX', lease)
return out
