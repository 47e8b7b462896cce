-- Point the id-number index at a member, if it still points where the caller saw it.
-- KEYS[1] index key; ARGV[1] member id; ARGV[2] the holder the caller saw ('' for none)
-- Returns 1 when the index now names ARGV[1], 0 when someone else took it meanwhile.
local holder = redis.call('GET', KEYS[1]) or ''
if holder == ARGV[1] then
  return 1
end
if holder ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
