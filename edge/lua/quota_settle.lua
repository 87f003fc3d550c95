-- Settle once: charge (or refund) the difference between real usage and the reservation, leave
-- the in-flight sets, and add the call to the daily usage hashes. A reservation that expired
-- changes no counter, but its usage is still recorded: the call did happen. The marker is kept
-- for a while as 'settled', so that running this again (a retry after a timeout, when the
-- first attempt may have run after all) changes and records nothing.
-- A usage hash gets its expiry once, when this call creates it: the end of the current UTC day
-- plus the retention, never sooner than an expiry renewed by each write of the day would be.
-- Every later call of the day writes its counts only (no EXPIRE, no TTL read).
-- KEYS[1]                 reservation marker
-- KEYS[2 .. 1+nd]         counters to adjust
-- KEYS[2+nd .. 1+nd+ns]   in-flight sets
-- KEYS[2+nd+ns .. ]       usage hashes (one per scope, for the call's day), then, when a
--                         detail prefix is given, the account's detail hash for that day
-- ARGV: member, nd, ns, keep_s (how long the settled marker is kept), then per counter: delta,
--       then retention_s, nf, then per usage field: name, amount, then the detail prefix
--       ('<key id>\t<model>', or empty): the detail hash's fields are '<prefix>\t<name>'.
-- Returns 1 when settled now, 0 when there was nothing open.
local member = ARGV[1]
local nd = tonumber(ARGV[2])
local ns = tonumber(ARGV[3])
-- One command reads the marker and marks it settled (a second run only renews 'settled').
local state = redis.call('SET', KEYS[1], 'settled', 'EX', ARGV[4], 'GET')
if state == 'settled' then
  return 0
end
local ubase = 5 + nd
local nf = tonumber(ARGV[ubase + 1] or '0')
local prefix = ARGV[ubase + 2 * nf + 2] or ''
local last = #KEYS
if prefix ~= '' then
  last = last - 1
end
local expire_at = nil
for k = 2 + nd + ns, #KEYS do
  local head = ''
  if k > last then
    head = prefix .. '\t'
  end
  -- A field that ends equal to what was added was absent: the hash may be new. A hash whose
  -- every field was there already was created (and given its expiry) by an earlier call.
  local created = false
  for f = 1, nf do
    local amount = tonumber(ARGV[ubase + 2 * f + 1])
    if amount ~= 0 then
      if redis.call('HINCRBY', KEYS[k], head .. ARGV[ubase + 2 * f], amount) == amount then
        created = true
      end
    end
  end
  if created then
    if not expire_at then
      local day = 86400
      expire_at = (math.floor(tonumber(redis.call('TIME')[1]) / day) + 1) * day + ARGV[ubase]
    end
    redis.call('EXPIREAT', KEYS[k], expire_at)
  end
end
if not state then
  return 0
end
for i = 1, nd do
  local delta = tonumber(ARGV[4 + i])
  -- A counter whose window has ended is gone: there is nothing left to correct.
  if delta ~= 0 and redis.call('EXISTS', KEYS[1 + i]) == 1 then
    if redis.call('INCRBY', KEYS[1 + i], delta) < 0 then
      redis.call('SET', KEYS[1 + i], 0, 'KEEPTTL')
    end
  end
end
for j = 2 + nd, 1 + nd + ns do
  redis.call('ZREM', KEYS[j], member)
end
return 1
