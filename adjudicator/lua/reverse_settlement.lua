-- Reverse one settlement: subtract exactly what it added, once.
--
-- The caller read the settlement's immutable part (who, what it added, its amounts) and
-- passes the undo as field/value pairs; this script checks, atomically, that the settlement
-- is still settled, applies the undo, and captures the member's figures right after it.
-- Like the commit script it knows no field names (see onestop/storage/layout.py).
--
-- KEYS: 1 settlement hash, 2 member hash, 3 stays hash, 4 visit hash, 5 journal stream,
--       6 the owner's day totals of the reversal day (Asia/Shanghai),
--       7 the owner's reversals of that day (sorted set, scored by the reversal time),
--       8 the member's history hash (the settlement's entry goes with it),
--       9 the settlement's review hash (when the controls flagged it)
-- ARGV: 1 the settlement's status field, 2 the status that means settled,
--       3 the settlement id, 4 the visit's settlement-id field,
--       5 the settlement's state-after field, 6 the reversal time (epoch ms),
--       7-12 six lists of pairs, each a JSON array of text [first, second, ...]:
--       member increments (HINCRBY), state to capture (name, member field),
--       visit index (HSET, when it still names this settlement), settlement (HSET),
--       journal entry (XADD), day totals (HINCRBY),
--       13 the review's status field, 14 the status that means recovered
-- Uses journal_id() from prelude.lua, loaded in front of this script.
-- Returns {'OK', state} | {'ALREADY'} | {'NOTFOUND'} | {'RECOVERED'} (the agency recovered
-- from it after review: a reversal would give the funds back twice; nothing written), state
-- being the captured figures as a JSON object (name -> value).

local status = redis.call('HGET', KEYS[1], ARGV[1])
if not status then
  return {'NOTFOUND'}
end
if status ~= ARGV[2] then
  return {'ALREADY'}
end
if redis.call('HGET', KEYS[9], ARGV[13]) == ARGV[14] then
  return {'RECOVERED'}
end

local increments, capture, visit, settlement, entry, totals =
  cjson.decode(ARGV[7]), cjson.decode(ARGV[8]), cjson.decode(ARGV[9]),
  cjson.decode(ARGV[10]), cjson.decode(ARGV[11]), cjson.decode(ARGV[12])
for index = 1, #increments, 2 do
  redis.call('HINCRBY', KEYS[2], increments[index], increments[index + 1])
end
redis.call('HDEL', KEYS[3], ARGV[3])
redis.call('HDEL', KEYS[8], ARGV[3])
if redis.call('HGET', KEYS[4], ARGV[4]) == ARGV[3] then
  redis.call('HSET', KEYS[4], unpack(visit))
end

local state = {}
for index = 1, #capture, 2 do
  state[capture[index]] = redis.call('HGET', KEYS[2], capture[index + 1]) or '0'
end
local after = cjson.encode(state)
redis.call('HSET', KEYS[1], ARGV[5], after, unpack(settlement))
redis.call('XADD', KEYS[5], journal_id(KEYS[5], ARGV[6]), unpack(entry))
redis.call('ZADD', KEYS[7], ARGV[6], ARGV[3])
for index = 1, #totals, 2 do
  redis.call('HINCRBY', KEYS[6], totals[index], totals[index + 1])
end
return {'OK', after}
