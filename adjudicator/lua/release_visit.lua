-- Give up a claim this request made and did not settle (a refusal), only if it still holds
-- it, leaving the hash as it was before the claim: a refused request changes nothing.
-- KEYS[1] the visit's claim hash
-- ARGV: 1 token field, 2 this request's token, 3 the claimant field to remove ('' to keep),
--       4.. the claim's field/value pairs before this request took it over (none: remove the
--       claim's fields, named in ARGV[5], ARGV[7], ... with empty values)
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
if ARGV[3] ~= '' then
  redis.call('HDEL', KEYS[1], ARGV[3])
end
local restore = {}
local remove = {}
for index = 4, #ARGV, 2 do
  if ARGV[index + 1] == '' then
    table.insert(remove, ARGV[index])
  else
    table.insert(restore, ARGV[index])
    table.insert(restore, ARGV[index + 1])
  end
end
if #remove > 0 then
  redis.call('HDEL', KEYS[1], unpack(remove))
end
if #restore > 0 then
  redis.call('HSET', KEYS[1], unpack(restore))
end
return 1
