-- Claim a (client, visit) for a member: a visit id names one visit of one client.
--
-- The member's own visit index lives in the member's slot group; requests naming different
-- members meet here, in the visit's own group (docs/adr/0008-a-visit-belongs-to-one-member.md).
-- The caller decides from the holder's visit index whether a claim of another member still
-- stands (settled, or being settled) or may be taken over (reversed, or stale), and takes it
-- over by naming the token it saw: a compare-and-set.
--
-- KEYS[1] the visit's claim hash
-- ARGV: 1 member field, 2 token field, 3 claimed-at field (names from layout.py),
--       4 the member id, 5 this request's token, 6 now (epoch ms),
--       7 the token of another member's claim to take over ('' for none),
--       8 the field that records this member among the visit's claimants
-- Returns {'CLAIMED', 1 if the member is a new claimant else 0} (this request holds it now)
--       | {'OWN'} (the member held it already) | {'OTHER', member id, token, claimed-at ms}
local holder = redis.call('HGET', KEYS[1], ARGV[1])
if holder == ARGV[4] then
  return {'OWN'}
end
local token = redis.call('HGET', KEYS[1], ARGV[2]) or ''
if not holder or (ARGV[7] ~= '' and token == ARGV[7]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[4], ARGV[2], ARGV[5], ARGV[3], ARGV[6])
  return {'CLAIMED', redis.call('HSETNX', KEYS[1], ARGV[8], ARGV[6])}
end
return {'OTHER', holder, token, redis.call('HGET', KEYS[1], ARGV[3]) or '0'}
