-- Delete a stored response and its event log, and give its bytes and index entries back to
-- its account (responses_lib.lua is sent in front of it).
-- KEYS[1]: the record hash; KEYS[2]: its event stream; KEYS[3..7]: the account's accounting.
-- ARGV[1]: the response id. Returns how many of the two keys existed.
local A = accounting(KEYS, 3)
local removed = redis.call('DEL', KEYS[1], KEYS[2])
forget(A, ARGV[1])
return removed
