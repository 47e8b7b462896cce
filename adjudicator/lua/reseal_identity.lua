-- Replace a member's sealed identity, if it is still the value the caller read.
-- KEYS[1] member hash; ARGV[1] the identity field, ARGV[2] the value read, ARGV[3] the new one
-- Returns 1 when replaced, 0 when the member changed meanwhile (read it again).
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
