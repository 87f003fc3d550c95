-- An account's stored bytes and responses, the expired ones forgotten first; with a size and
-- a limit, when a write of that size will fit as responses expire (responses_lib.lua is sent
-- in front of it).
-- KEYS[1..5]: the account's accounting. ARGV[1]: the size (0: none); ARGV[2]: the limit or -1;
-- ARGV[3]: '1' when read before a write, refused (as the write would be) at a full Redis.
-- Returns {bytes, responses, ms when the size fits (-1: never by expiry, or not asked)}.
local WALK_MAX = 100000 -- responses walked to find when a size fits; past it: not known
local A = accounting(KEYS, 1)
if ARGV[3] == '1' then
  guard(A)
end
local now = now_ms()
collect(A, now)
local used = tonumber(redis.call('GET', A.used) or '0')
local responses = redis.call('HLEN', A.sizes)
local need, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local room_at = -1
if need > 0 and limit >= 0 and need <= limit then
  if used + need <= limit then
    room_at = now
  else
    local left, start = used, 0
    while room_at < 0 and start < WALK_MAX do
      local batch = redis.call('ZRANGE', A.expiry, start, start + 999, 'WITHSCORES')
      if #batch == 0 then
        break
      end
      for i = 1, #batch, 2 do
        left = left - tonumber(redis.call('HGET', A.sizes, batch[i]) or '0')
        if left + need <= limit then
          room_at = tonumber(batch[i + 1])
          break
        end
      end
      start = start + 1000
    end
  end
end
return {used, responses, room_at}
