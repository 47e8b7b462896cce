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
