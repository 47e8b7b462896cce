-- Delete one key the archive holds, only if it is still exactly what was archived.
--
-- The archive job wrote the key's content to a part on disk before calling this. Whatever
-- changed the key since (a reversal, a new request for the visit) is newer than the archive:
-- the key then stays, and a later run archives the newer content.
--
-- KEYS: 1 the key, 2 a member hash whose version to move when the key goes (or the key
--       itself again when there is none)
-- ARGV: 1 the kind: 'hash' or 'list' or 'zset',
--       2 the member's version field ('' when KEYS[2] is not a member),
--       3.. the expected content: for a hash, field and SHA-1 (hex) of its value pairs; for a
--       list, the SHA-1 of each element in order; for a sorted set, member and score pairs
-- Returns 1 (deleted), 0 (changed: kept) or 2 (already gone)
--
-- A visit index that leaves Redis moves its member's version, so that a settlement computed
-- from a snapshot that still saw it is computed again (and finds the archived one).

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 2
end
local kind, count = ARGV[1], #ARGV - 2
if kind == 'hash' then
  if redis.call('HLEN', KEYS[1]) * 2 ~= count then
    return 0
  end
  for index = 3, #ARGV, 2 do
    local value = redis.call('HGET', KEYS[1], ARGV[index])
    if not value or redis.sha1hex(value) ~= ARGV[index + 1] then
      return 0
    end
  end
elseif kind == 'list' then
  local items = redis.call('LRANGE', KEYS[1], 0, -1)
  if #items ~= count then
    return 0
  end
  for index = 1, #items do
    if redis.sha1hex(items[index]) ~= ARGV[index + 2] then
      return 0
    end
  end
elseif kind == 'zset' then
  if redis.call('ZCARD', KEYS[1]) * 2 ~= count then
    return 0
  end
  for index = 3, #ARGV, 2 do
    local score = redis.call('ZSCORE', KEYS[1], ARGV[index])
    if not score or tonumber(score) ~= tonumber(ARGV[index + 1]) then
      return 0
    end
  end
else
  return redis.error_reply('unknown kind ' .. kind)
end
redis.call('DEL', KEYS[1])
if ARGV[2] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
end
return 1
