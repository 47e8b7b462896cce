-- Commit one settlement, or nothing.
--
-- The computation was done outside Redis from a snapshot whose member version was ARGV[2].
-- The version moves with every commit and reversal of the member (year-to-date figures,
-- balance, stays), so an unchanged version means every figure the computation assumed still
-- holds. Then, and only if the visit is not settled meanwhile, everything is applied: state,
-- stay, visit index, settlement record, journal entry, day totals and the day's list of the
-- client's settlement ids.
--
-- The script knows no field names: the caller (adjudicator/store.py, names from
-- onestop/storage/layout.py) passes every name with its value.
--
-- KEYS: 1 member hash, 2 stays hash, 3 visit hash, 4 settlement hash, 5 journal stream,
--       6 the client's day totals of the commit day (Asia/Shanghai),
--       7 the client's list of settlement ids of that day,
--       8 the member's history hash, 9 the settlement's review hash,
--       10 the group's flagged settlement ids of the commit day (sorted set)
-- ARGV: 1 the member's version field, 2 the version the computation read,
--       3 the visit's status field, 4 the status that means settled,
--       5 the commit time (epoch ms), keying the journal entry,
--       6 the settlement's record field, 7 the record (binary),
--       8-13 six lists of field/value pairs, each a JSON array of text [field, value, ...]:
--       member increments (HINCRBY), stay (HSET), visit index (HSET), settlement (HSET),
--       journal entry (XADD), day totals (HINCRBY),
--       14 the settlement id,
--       15 the history entry the settlement adds (empty: none),
--       16 a JSON array of history fields to drop (entries grown too old or too many),
--       17 a JSON array of the review's field/value pairs (empty array: not flagged)
-- Uses journal_id() from prelude.lua, loaded in front of this script.
-- Returns {'OK'} | {'CONFLICT'} | {'SETTLED'} | {'NOMEMBER'}

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'NOMEMBER'}
end
if (redis.call('HGET', KEYS[1], ARGV[1]) or '0') ~= ARGV[2] then
  return {'CONFLICT'}
end
if redis.call('HGET', KEYS[3], ARGV[3]) == ARGV[4] then
  return {'SETTLED'}
end

local increments, stay, visit, settlement, entry, totals =
  cjson.decode(ARGV[8]), cjson.decode(ARGV[9]), cjson.decode(ARGV[10]),
  cjson.decode(ARGV[11]), cjson.decode(ARGV[12]), cjson.decode(ARGV[13])
-- Increments travel as text: HINCRBY reads them as 64-bit integers, exactly.
for index = 1, #increments, 2 do
  redis.call('HINCRBY', KEYS[1], increments[index], increments[index + 1])
end
if #stay > 0 then
  redis.call('HSET', KEYS[2], unpack(stay))
end
redis.call('HSET', KEYS[3], unpack(visit))
redis.call('HSET', KEYS[4], ARGV[6], ARGV[7], unpack(settlement))
redis.call('XADD', KEYS[5], journal_id(KEYS[5], ARGV[5]), unpack(entry))
for index = 1, #totals, 2 do
  redis.call('HINCRBY', KEYS[6], totals[index], totals[index + 1])
end
redis.call('RPUSH', KEYS[7], ARGV[14])
if ARGV[15] ~= '' then
  local forget = cjson.decode(ARGV[16])
  if #forget > 0 then
    redis.call('HDEL', KEYS[8], unpack(forget))
  end
  redis.call('HSET', KEYS[8], ARGV[14], ARGV[15])
end
local review = cjson.decode(ARGV[17])
if #review > 0 then
  redis.call('HSET', KEYS[9], unpack(review))
  redis.call('ZADD', KEYS[10], ARGV[5], ARGV[14])
end
return {'OK'}
