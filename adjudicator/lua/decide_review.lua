-- Record the agency's decision on a flagged settlement, once.
--
-- KEYS: 1 the review hash, 2 the group's recoveries of the decision day (sorted set),
--       3 the settlement's client's day totals of the decision day (Asia/Shanghai)
-- ARGV: 1 the review's status field, 2 the status that means open,
--       3 the decision time (epoch ms), 4 the settlement id,
--       5 a JSON array of the decision's field/value pairs (HSET),
--       6 a JSON array of day-total increments (empty for an acceptance: nothing recovered)
-- Returns {'OK'} | {'DECIDED'} (decided before: nothing written) | {'NOTFOUND'}

local status = redis.call('HGET', KEYS[1], ARGV[1])
if not status then
  return {'NOTFOUND'}
end
if status ~= ARGV[2] then
  return {'DECIDED'}
end
redis.call('HSET', KEYS[1], unpack(cjson.decode(ARGV[5])))
local totals = cjson.decode(ARGV[6])
if #totals > 0 then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  for index = 1, #totals, 2 do
    redis.call('HINCRBY', KEYS[3], totals[index], totals[index + 1])
  end
end
return {'OK'}
