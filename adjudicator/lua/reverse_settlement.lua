-- Reverse one settlement: subtract exactly the increments it stored, once.
--
-- KEYS: 1 settlement hash, 2 member hash, 3 stays hash, 4 visit hash, 5 journal stream,
--       6 the owner's day totals of the reversal day (Asia/Shanghai)
-- ARGV: 1 client id that asks ('' for the agency: any client), 2 reversal time (epoch ms)
-- Uses journal_id() from journal_id.lua, loaded in front of this script.
-- Returns {'OK', ytd} | {'ALREADY', ytd, reversed_at_ms} | {'NOTFOUND'}
-- where ytd is "bf,op,su,ci,as,ab,balance" of the settlement's year after the undo.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'NOTFOUND'}
end
local record = redis.call('HMGET', KEYS[1], 'st', 'c', 'y', 'd', 'ry', 'ra', 'vi', 'a', 'p', 'm')
local status, client, year, increments_text = record[1], record[2], record[3], record[4]
if ARGV[1] ~= '' and ARGV[1] ~= client then
  return {'NOTFOUND'}
end
if status == 'reversed' then
  return {'ALREADY', record[5], record[6]}
end

local fields = {'bf', 'op', 'su', 'ci', 'as', 'ab', 'ad'}
local increments = {}
for value in string.gmatch(increments_text, '[^,]+') do
  increments[#increments + 1] = tonumber(value)
end
for index, name in ipairs(fields) do
  if increments[index] ~= 0 then
    redis.call('HINCRBY', KEYS[2], year .. ':' .. name, -increments[index])
  end
end
if increments[8] ~= 0 then
  redis.call('HINCRBY', KEYS[2], 'b', increments[8])
end
redis.call('HINCRBY', KEYS[2], 'v', 1)

local settlement_id = string.match(KEYS[1], ':s:(.+)$')
redis.call('HDEL', KEYS[3], settlement_id)
if redis.call('HGET', KEYS[4], 'id') == settlement_id then
  redis.call('HSET', KEYS[4], 'st', 'reversed')
end

local state = redis.call('HMGET', KEYS[2],
  year .. ':bf', year .. ':op', year .. ':su', year .. ':ci', year .. ':as', year .. ':ab', 'b')
for index = 1, #state do
  state[index] = state[index] or '0'
end
local after = table.concat(state, ',')
redis.call('HSET', KEYS[1], 'st', 'reversed', 'ra', ARGV[2], 'ry', after)
redis.call('XADD', KEYS[5], journal_id(KEYS[5], ARGV[2]),
  'k', 'R', 'id', settlement_id, 'c', client, 'm', record[10], 'v', record[7], 't', ARGV[2],
  'a', record[8], 'p', record[9])
redis.call('HINCRBY', KEYS[6], 'reversals', 1)
local index = 0
for value in string.gmatch(record[8], '[^,]+') do
  index = index + 1
  redis.call('HINCRBY', KEYS[6], 'r' .. index, tonumber(value))
end
return {'OK', after}
