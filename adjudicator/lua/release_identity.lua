-- Remove an id-number index entry only if it still names this member.
-- KEYS[1] index key; ARGV[1] member id
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
