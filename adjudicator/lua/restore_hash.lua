-- Put an archived hash back into Redis, unless Redis holds that key already.
--
-- A reversal of an archived settlement, or a request for an archived visit, needs the
-- settlement and the visit in Redis, where the reversal and commit scripts act atomically.
-- What Redis holds is never older than the archive, so an existing key is left alone. The key
-- is noted in its slot group's set of restored keys, so that the archive job moves it back
-- once it is quiet again.
--
-- KEYS: 1 the key, 2 the group's restored keys (sorted set, scored by the restore time)
-- ARGV: 1 now (epoch ms), 2.. the hash's field/value pairs
-- Returns 1 (restored) or 0 (Redis held it already)
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('ZADD', KEYS[2], ARGV[1], KEYS[1])
return 1
