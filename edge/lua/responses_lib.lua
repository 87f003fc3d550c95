-- Shared by the responses_*.lua scripts, sent in front of each: an account's storage accounting.
-- Its keys (all tagged with the account): the bytes its responses hold in all (a string), each
-- response's bytes (a hash), each response's entries in the item index (a hash of
-- space-separated item ids), each response's expiry time in ms (a sorted set) and the item
-- index itself (a hash: item id -> response id). A response's own keys carry the same tag, so
-- a script that writes both touches one slot of a Redis Cluster.
local RESPONSE_OVERHEAD = 256 -- as edge/store/responses.py counts it
local ITEM_OVERHEAD = 64
local COLLECT_MAX = 4096 -- expired responses forgotten in one call; the next call goes on

-- The accounting keys, given as KEYS[first .. first + 4].
local function accounting(keys, first)
  return {
    used = keys[first],
    sizes = keys[first + 1],
    owned = keys[first + 2],
    expiry = keys[first + 3],
    items = keys[first + 4],
  }
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function item_bytes(item, id)
  return #item + #id + ITEM_OVERHEAD
end

-- Refuse to store while Redis is at its maxmemory. Redis checks a script against maxmemory at
-- its first write only, and only if that command is one it refuses when full (INCRBY is; DEL,
-- HDEL and ZREM are not): a script that stores data makes this its first write. Scripts that
-- only free memory (delete, forget what expired) do not, and run at a full Redis.
local function guard(A)
  redis.call('INCRBY', A.used, 0)
end

-- Drop what the account counts for one response: its bytes, its expiry, its index entries
-- (those that still name it). Its first write frees (see `guard`).
local function forget(A, id)
  local size = tonumber(redis.call('HGET', A.sizes, id) or '0')
  redis.call('HDEL', A.sizes, id)
  redis.call('ZREM', A.expiry, id)
  if size ~= 0 then
    redis.call('INCRBY', A.used, -size)
  end
  local owned = redis.call('HGET', A.owned, id)
  if owned then
    for item in string.gmatch(owned, '%S+') do
      if redis.call('HGET', A.items, item) == id then
        redis.call('HDEL', A.items, item)
      end
    end
    redis.call('HDEL', A.owned, id)
  end
  if tonumber(redis.call('GET', A.used) or '0') == 0 then
    redis.call('DEL', A.used)
  end
end

-- Forget the responses whose retention has passed (their own keys expired at that time).
local function collect(A, now)
  local due = redis.call('ZRANGEBYSCORE', A.expiry, '-inf', now, 'LIMIT', 0, COLLECT_MAX)
  for _, id in ipairs(due) do
    forget(A, id)
  end
end

-- The items of argv[first .. last] that the response does not index yet, and their bytes.
local function new_items(A, id, argv, first, last)
  local have = {}
  for item in string.gmatch(redis.call('HGET', A.owned, id) or '', '%S+') do
    have[item] = true
  end
  local fresh, bytes = {}, 0
  for i = first, last do
    local item = argv[i]
    if not have[item] then
      have[item] = true
      fresh[#fresh + 1] = item
      bytes = bytes + item_bytes(item, id)
    end
  end
  return fresh, bytes
end

-- Index items to the response (a later response indexing the same id takes it over).
local function index(A, id, fresh)
  if #fresh == 0 then
    return
  end
  for _, item in ipairs(fresh) do
    redis.call('HSET', A.items, item, id)
  end
  local owned = redis.call('HGET', A.owned, id)
  local listed = table.concat(fresh, ' ')
  redis.call('HSET', A.owned, id, owned and (owned .. ' ' .. listed) or listed)
end

-- Count bytes for a response and set its expiry.
local function count(A, id, bytes, expires)
  if bytes ~= 0 then
    redis.call('HINCRBY', A.sizes, id, bytes)
    redis.call('INCRBY', A.used, bytes)
  end
  redis.call('ZADD', A.expiry, expires, id)
end
