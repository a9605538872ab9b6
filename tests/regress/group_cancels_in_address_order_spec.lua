-- Regression (issue 15, point 3; tests/diff seed 930 of diff.py, which
-- diverged only after seed 929 had run in the same process): a task group
-- cancelled its children in the iteration order of a table keyed by the
-- tasks, which follows their addresses, so which child saw its CANCELLED
-- first depended on what had been allocated before.  A group cancels its
-- children in the order they were spawned.
local corio = require "corio"

describe("regress: a group cancels its children in spawn order", function()
  local function run(n, fail_with)
    local seen = {}
    local never = corio.sync.Event()
    local ok, err = pcall(function()
      local g <close> = corio.group()
      for i = 1, n do
        g:spawn(function()
          local ok_w, e = pcall(never.wait, never)
          assert(not ok_w and corio.is_cancelled(e))
          seen[#seen + 1] = i
        end)
      end
      if fail_with then
        g:spawn(function()
          corio.yield()
          error(fail_with, 0)
        end)
      end
      corio.yield()
      if not fail_with then error("body failed", 0) end
    end)
    assert.is_false(ok)
    return seen, err
  end

  it("when a child fails", function()
    for round = 1, 5 do
      local garbage = {}                   -- move the next addresses
      for k = 1, 11 * round do garbage[k] = corio.future() end
      local seen, err = run(40, "child failed")
      assert.are.equal("child failed", err)
      local want = {}
      for i = 1, 40 do want[i] = i end
      assert.are.same(want, seen)
    end
  end)

  it("when the body fails", function()
    local seen, err = run(40)
    assert.are.equal("body failed", err)
    local want = {}
    for i = 1, 40 do want[i] = i end
    assert.are.same(want, seen)
  end)
end)
