-- Commit one settlement, or nothing.
--
-- The computation was done outside Redis from a snapshot whose member version was ARGV[1].
-- The version moves with every commit and reversal of the member (year-to-date figures,
-- balance, stays), so an unchanged version means every figure the computation assumed still
-- holds. Then, and only if the visit is not settled meanwhile, everything is applied: state,
-- stay, visit index, settlement record and journal entry.
--
-- KEYS: 1 member hash, 2 stays hash, 3 visit hash, 4 settlement hash, 5 journal stream,
--       6 the client's day totals of the commit day (Asia/Shanghai)
-- ARGV: 1 expected member version
--       2 policy year
--       3 increments "bf,op,su,ci,as,ab,ad,account"
--       4 settlement id
--       5 request fingerprint
--       6 settlement record (serialized)
--       7 stay "first|last" or ""
--       8 client id, 9 member id, 10 visit id
--       11 amounts "total,full_self_pay,...,cash" for the journal
--       12 commit time (epoch ms), 13 policy "region|scheme|year|version"
-- Uses journal_id() from journal_id.lua, loaded in front of this script.
-- Returns {'OK'} | {'CONFLICT'} | {'SETTLED'} | {'NOMEMBER'}

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'NOMEMBER'}
end
local version = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if version ~= tonumber(ARGV[1]) then
  return {'CONFLICT'}
end
if redis.call('HGET', KEYS[3], 'st') == 'settled' then
  return {'SETTLED'}
end

local fields = {'bf', 'op', 'su', 'ci', 'as', 'ab', 'ad'}
local increments = {}
for value in string.gmatch(ARGV[3], '[^,]+') do
  increments[#increments + 1] = tonumber(value)
end
for index, name in ipairs(fields) do
  if increments[index] ~= 0 then
    redis.call('HINCRBY', KEYS[1], ARGV[2] .. ':' .. name, increments[index])
  end
end
if increments[8] ~= 0 then
  redis.call('HINCRBY', KEYS[1], 'b', -increments[8])
end
redis.call('HINCRBY', KEYS[1], 'v', 1)

if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[4], ARGV[7])
end
redis.call('HSET', KEYS[3], 'id', ARGV[4], 'fp', ARGV[5], 'st', 'settled')
redis.call('HSET', KEYS[4],
  'r', ARGV[6], 'd', ARGV[3], 'y', ARGV[2], 'st', 'settled', 'fp', ARGV[5],
  'c', ARGV[8], 'm', ARGV[9], 'vi', ARGV[10], 'a', ARGV[11], 'p', ARGV[13], 't', ARGV[12])
redis.call('XADD', KEYS[5], journal_id(KEYS[5], ARGV[12]),
  'k', 'S', 'id', ARGV[4], 'c', ARGV[8], 'm', ARGV[9], 'v', ARGV[10], 't', ARGV[12],
  'a', ARGV[11], 'p', ARGV[13])
redis.call('HINCRBY', KEYS[6], 'settlements', 1)
local index = 0
for value in string.gmatch(ARGV[11], '[^,]+') do
  index = index + 1
  redis.call('HINCRBY', KEYS[6], 's' .. index, tonumber(value))
end
return {'OK'}
