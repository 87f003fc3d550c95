-- Take a lease: a slice of one request-rate window that one replica spends on its own until the
-- lease ends. The slice is counted in the window now, so the slices and the requests counted one
-- by one never sum past the limit. A moving window's slice is a member per request, scored at
-- the lease's end: each stays in the window at least as long as the request it stands for would.
-- A replica takes at most 1/share of what the window has left, so near the limit slices shrink to
-- nothing and each request is decided by the reserve script again.
-- KEYS: a moving window's sorted set; or a sliding window counter's previous, then current counter
-- ARGV: kind (1 moving, 2 sliding), now_ms, limit, period_ms, want, share, end_ms, lease id,
--       then for sliding windows: ms left in the current fixed window, when its counter may go
-- Returns {granted, x, y}, x and y from before the slice: moving: count, age of the oldest (ms);
--   sliding: previous count, current count.
local now, limit, period = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local want, share, ends, id = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local function slice(room)
  local grant = math.min(want, math.floor(room / share))
  if grant < 0 then
    return 0
  end
  return grant
end
if ARGV[1] == '1' then
  local key = KEYS[1]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - period)
  local count = redis.call('ZCARD', key)
  local oldest = 0
  if count > 0 then
    oldest = now - tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2])
  end
  local grant = slice(limit - count)
  local batch = {}
  for n = 1, grant do
    batch[#batch + 1] = ends
    batch[#batch + 1] = id .. ':' .. n
    if #batch >= 1000 or n == grant then
      redis.call('ZADD', key, unpack(batch))
      batch = {}
    end
  end
  -- Kept while the slice's last member can still count.
  if grant > 0 and redis.call('PTTL', key) < ends - now + period then
    redis.call('PEXPIRE', key, ends - now + period)
  end
  return {grant, count, oldest}
end
local previous = tonumber(redis.call('GET', KEYS[1]) or '0')
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
local grant = slice(limit - math.floor(previous * tonumber(ARGV[9]) / period + current))
if grant > 0 then
  redis.call('INCRBY', KEYS[2], grant)
  redis.call('PEXPIREAT', KEYS[2], ARGV[10])
end
return {grant, previous, current}
