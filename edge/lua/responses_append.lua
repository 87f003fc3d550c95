-- Append events to a response's log and change its state, only when the change is allowed.
-- One script, so a terminal status is set exactly once and nothing is logged after it; the
-- bytes it adds are counted against the account in the same step (responses_lib.lua is sent
-- in front of it).
-- KEYS[1]: the record hash; KEYS[2]: its event stream (entry ids are "<seq>-1");
-- KEYS[3..7]: the account's accounting.
-- ARGV[1]: ttl in ms; ARGV[2]: expected status or ''; ARGV[3]: owning attempt or '';
-- ARGV[4]: new status or ''; ARGV[5]: new owning attempt or ''; ARGV[6]: new response or '';
-- ARGV[7]: the response id; ARGV[8]: the account's limit or -1; ARGV[9]: the response's cap
-- or -1 (either one set: a write adding bytes past it is refused); ARGV[10]: m, the number of
-- output item ids of the new response; ARGV[11 .. 10 + m]: those ids; then the events.
-- Returns the log's new length, or -1 (terminal or unexpected status), -2 (missing),
-- -3 (another attempt owns the run), -4 (past the account's limit), -5 (past the cap).
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return -2
end
if status == 'completed' or status == 'failed' or status == 'cancelled'
    or status == 'incomplete' then
  return -1
end
if ARGV[2] ~= '' and status ~= ARGV[2] then
  return -1
end
if ARGV[3] ~= '' and redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[3] then
  return -3
end
local A = accounting(KEYS, 3)
guard(A) -- first: nothing is logged at a full Redis
local id = ARGV[7]
local m = tonumber(ARGV[10])
local first_event = 11 + m
local added = 0
for i = first_event, #ARGV do
  added = added + #ARGV[i]
end
local fresh = {}
if ARGV[6] ~= '' then
  local item_total
  fresh, item_total = new_items(A, id, ARGV, 11, 10 + m)
  added = added + #ARGV[6] - redis.call('HSTRLEN', KEYS[1], 'response') + item_total
end
local now = now_ms()
local limit, cap = tonumber(ARGV[8]), tonumber(ARGV[9])
if added > 0 and (limit >= 0 or cap >= 0) then
  collect(A, now)
  local held = tonumber(redis.call('HGET', A.sizes, id) or '0')
  if cap >= 0 and held + added > cap then
    return -5
  end
  if limit >= 0 and tonumber(redis.call('GET', A.used) or '0') + added > limit then
    return -4
  end
end
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
for i = first_event, #ARGV do
  redis.call('XADD', KEYS[2], string.format('%d-1', seq), 'data', ARGV[i])
  seq = seq + 1
end
redis.call('HSET', KEYS[1], 'seq', seq)
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'status', ARGV[4])
end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'attempt', ARGV[5])
end
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[1], 'response', ARGV[6])
end
local expires = now + tonumber(ARGV[1])
redis.call('PEXPIREAT', KEYS[1], expires)
redis.call('PEXPIREAT', KEYS[2], expires)
index(A, id, fresh)
count(A, id, added, expires)
return seq
