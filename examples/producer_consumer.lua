--[[
producer_consumer.lua -- a three-stage pipeline with backpressure.

    source --> [raw: Queue(4)] --> 3 parsers --> [parsed: Queue(2)] --> sink

Each stage is a task (or several); the bounded queues between them are the
backpressure: when the slow sink falls behind, `parsed` fills up, the
parsers block in put(), `raw` fills up, and the source blocks too -- nothing
grows without bound.  Closing a queue tells the next stage that no more
items will come: its getters drain what is left and then get CLOSED.  A
task group owns every stage, so if one fails the others are cancelled and
the error comes out of the `<close>` scope.

Run: corio examples/producer_consumer.lua [items]
]]
local corio = require "corio"
local sync = require "corio.sync"

local N = tonumber(arg and arg[1]) or 40
local raw, parsed = sync.Queue(4), sync.Queue(2)
local peak_raw, peak_parsed, blocked = 0, 0, 0

-- Drains a queue until it is closed and empty: `for item in drain(q)`.
local function drain(q)
  return function()
    local ok, item = pcall(q.get, q)
    if ok then return item end
    if corio.Error.is(item, "CLOSED") then return nil end
    error(item, 0)                      -- CANCELLED and others pass on
  end
end

local function source()
  for i = 1, N do
    if raw:full() then blocked = blocked + 1 end
    raw:put(("record %d"):format(i))    -- waits while raw is full
    peak_raw = math.max(peak_raw, raw:qsize())
  end
  raw:close()
end

local function parser(id)
  for line in drain(raw) do
    corio.sleep(0.001)                  -- some work
    parsed:put({ n = tonumber(line:match("%d+")), by = id })
    peak_parsed = math.max(peak_parsed, parsed:qsize())
  end
end

local function sink()
  local total, count = 0, 0
  for rec in drain(parsed) do
    corio.sleep(0.005)                  -- the slow end of the pipeline
    total, count = total + rec.n, count + 1
  end
  return total, count
end

local t0 = corio.now()
local sink_task
do
  local g <close> = corio.group()
  g:spawn(source)
  local parsers = {}
  for id = 1, 3 do parsers[id] = g:spawn(parser, id) end
  sink_task = g:spawn(sink)
  -- When every parser is done, no more parsed records will come.
  g:spawn(function()
    corio.gather(parsers)
    parsed:close()
  end)
end                                     -- every stage has finished here

local total, count = sink_task:result()
print(("%d records through the pipeline in %.2f s, sum %d"):format(count,
  corio.now() - t0, total))
print(("peak queue sizes: raw %d/%d, parsed %d/%d; the source waited for " ..
  "room %d times"):format(peak_raw, raw:maxsize(), peak_parsed,
  parsed:maxsize(), blocked))
assert(count == N and total == N * (N + 1) // 2)
assert(peak_raw <= raw:maxsize() and peak_parsed <= parsed:maxsize())
