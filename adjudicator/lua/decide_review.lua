-- Record the agency's decision on a flagged settlement, once.
--
-- KEYS: 1 the review hash, 2 the group's recoveries of the decision day (sorted set),
--       3 the settlement hash (all in the member's slot)
-- ARGV: 1 the review's status field, 2 the status that means open,
--       3 the decision time (epoch ms), 4 the settlement id,
--       5 a JSON array of the decision's field/value pairs (HSET),
--       6 '1' for a recovery, '0' for an acceptance,
--       7 the settlement's status field, 8 the status that means reversed
-- Returns {'OK'} | {'DECIDED'} (decided before: nothing written) | {'NOTFOUND'}
--       | {'REVERSED'} (a recovery of a settlement reversed meanwhile: nothing written)

local status = redis.call('HGET', KEYS[1], ARGV[1])
if not status then
  return {'NOTFOUND'}
end
if status ~= ARGV[2] then
  return {'DECIDED'}
end
-- Checked here, atomically: a reversal gives the funds back, a recovery on top would take
-- them twice. (The reversal script refuses a recovered settlement, the other order.)
if ARGV[6] == '1' and redis.call('HGET', KEYS[3], ARGV[7]) == ARGV[8] then
  return {'REVERSED'}
end
redis.call('HSET', KEYS[1], unpack(cjson.decode(ARGV[5])))
if ARGV[6] == '1' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
end
return {'OK'}
