-- Regression (issue 15, point 3; tests/diff seeds 104573 and 104684 of
-- diff.py, and 77486 92501 128207 156657 197929): a task cancelled while
-- it waited for its group, and cancelled again in the same loop turn just
-- after the group's last child ended (after the child woke the wait, before
-- the task ran), got the group's CANCELLED and then a second CANCELLED at
-- its next await.  A moment earlier the second request was answered by the
-- same CANCELLED (the group's wait takes it and goes on waiting), as in
-- asyncio: the outcome hung on which came first.  The group's CANCELLED
-- now answers both; gather's too.
local corio = require "corio"

describe("regress: a group's CANCELLED answers a cancel made as its last child ends", function()
  -- wait(spawn_child, spawn_other) runs the group or the gather: the
  -- first child waits for ever, the other (if any) runs alongside.
  local function run(wait, second_early)
    local never, ready = corio.sync.Event(), corio.sync.Event()
    local me
    local function child() never:wait() end
    me = corio.spawn(function()
      local ok, e = pcall(wait, function(spawn)
        local c = spawn(child)
        if second_early then
          -- while the wait goes on (the child is still unwinding)
          spawn(function()
            pcall(never.wait, never)
            me:cancel("second")
          end)
          ready:set()
        else
          -- after the child woke the wait (the group's or gather's own
          -- callback, added when the wait began, runs first), before
          -- this task runs again
          corio.spawn(function()
            c:add_done_callback(function() me:cancel("second") end)
            ready:set()
          end)
        end
      end, never)
      assert(not ok and corio.is_cancelled(e), tostring(e))
      corio.yield()                    -- not cancelled: nothing is left
      return "went on", me:cancelling()
    end)
    ready:wait()
    assert.is_true(me:cancel("first"))
    return me:await()
  end

  local function group(children, never)
    local g <close> = corio.group()
    children(function(fn) return g:spawn(fn) end)
    never:wait()
  end

  local function gather(children)
    local list = {}
    children(function(fn)
      list[#list + 1] = corio.spawn(fn)
      return list[#list]
    end)
    corio.gather(list)
  end

  for _, w in ipairs({ { "group", group }, { "gather", gather } }) do
    it(w[1] .. ": when the request comes as the last child ends", function()
      assert.are.same({ "went on", 2 }, { run(w[2], false) })
    end)

    it(w[1] .. ": when it comes while the wait goes on (as before)", function()
      assert.are.same({ "went on", 2 }, { run(w[2], true) })
    end)
  end
end)
