-- Insert or replace a stored response and start its event log, count its bytes against its
-- account and index its items: all or nothing (responses_lib.lua is sent in front of it).
-- KEYS[1]: the record hash; KEYS[2]: its event stream; KEYS[3..7]: the account's accounting.
-- ARGV[1]: the response id; ARGV[2]: ttl in ms; ARGV[3]: the account's limit or -1;
-- ARGV[4]: the response's cap or -1; ARGV[5]: '1' to refuse past the limit, '0' to count;
-- ARGV[6]: its bytes but the index's (overhead, record, object, events); ARGV[7]: the record;
-- ARGV[8]: the object; ARGV[9]: its status; ARGV[10]: its owning attempt or '';
-- ARGV[11]: n, the number of events; ARGV[12 .. 11 + n]: the events; then the item ids.
-- Returns the bytes the response holds, or -4 (past the account's limit), -5 (past the cap).
local A = accounting(KEYS, 3)
local id = ARGV[1]
guard(A) -- first: nothing is stored at a full Redis
local now = now_ms()
collect(A, now)
local n = tonumber(ARGV[11])
local first_item = 12 + n
local size = tonumber(ARGV[6])
for i = first_item, #ARGV do
  size = size + item_bytes(ARGV[i], id)
end
local limit, cap = tonumber(ARGV[3]), tonumber(ARGV[4])
if cap >= 0 and size > cap then
  return -5
end
-- A replaced record's bytes are given back: only the bytes it adds count against the limit.
local held = tonumber(redis.call('HGET', A.sizes, id) or '0')
local used = tonumber(redis.call('GET', A.used) or '0')
if ARGV[5] == '1' and limit >= 0 and used - held + size > limit then
  return -4
end
forget(A, id)
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'record', ARGV[7], 'response', ARGV[8], 'status', ARGV[9], 'seq', n)
if ARGV[10] ~= '' then
  redis.call('HSET', KEYS[1], 'attempt', ARGV[10])
end
for i = 1, n do
  redis.call('XADD', KEYS[2], string.format('%d-1', i - 1), 'data', ARGV[11 + i])
end
local expires = now + tonumber(ARGV[2])
redis.call('PEXPIREAT', KEYS[1], expires)
if n > 0 then
  redis.call('PEXPIREAT', KEYS[2], expires)
end
local items = {}
for i = first_item, #ARGV do
  items[#items + 1] = ARGV[i]
end
index(A, id, items)
count(A, id, size, expires)
return size
