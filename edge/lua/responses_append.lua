-- Append events to a response's log and change its state, only when the change is allowed.
-- One script, so a terminal status is set exactly once and nothing is logged after it.
-- KEYS[1]: the record hash; KEYS[2]: its event stream (entry ids are "<seq>-1").
-- ARGV[1]: ttl in ms; ARGV[2]: expected status or ''; ARGV[3]: owning attempt or '';
-- ARGV[4]: new status or ''; ARGV[5]: new owning attempt or ''; ARGV[6]: new response or '';
-- ARGV[7...]: the events.
-- Returns the log's new length, or -1 (terminal or unexpected status), -2 (missing),
-- -3 (another attempt owns the run).
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
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
for i = 7, #ARGV do
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
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return seq
