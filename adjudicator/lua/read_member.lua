-- A consistent snapshot of what settling one visit of one member reads.
-- KEYS[1] member hash, KEYS[2] stays hash, KEYS[3] visit hash, KEYS[4] history hash (all in
-- the member's slot)
-- ARGV[1] '1' to read the history too (some policy runs controls across visits), else '0'
local history = {}
if ARGV[1] == '1' then
  history = redis.call('HGETALL', KEYS[4])
end
return {
  redis.call('HGETALL', KEYS[1]),
  redis.call('HGETALL', KEYS[2]),
  redis.call('HGETALL', KEYS[3]),
  history,
}
