-- Shared by the commit and reversal scripts, loaded in front of each.

-- Journal entries are keyed by the adjudicator's clock (never behind the stream's last id),
-- so a settlement day is one id range of each stream.
local function journal_id(stream, at_ms)
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if #last > 0 then
    local last_ms, last_seq = string.match(last[1][1], '^(%d+)-(%d+)$')
    if tonumber(last_ms) >= tonumber(at_ms) then
      return last_ms .. '-' .. (tonumber(last_seq) + 1)
    end
  end
  return at_ms .. '-0'
end

-- The field/value lists of ARGV from position ``first`` on: ``count`` lists, each a number
-- of pairs followed by that many pairs. Returns the lists as flat arrays.
local function read_lists(args, first, count)
  local lists = {}
  local position = first
  for list = 1, count do
    local pairs_count = tonumber(args[position])
    local values = {}
    for index = 1, pairs_count * 2 do
      values[index] = args[position + index]
    end
    lists[list] = values
    position = position + pairs_count * 2 + 1
  end
  return lists
end
