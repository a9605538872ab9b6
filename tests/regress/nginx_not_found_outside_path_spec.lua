-- Regression (issue 12, audit point 6): the interop specs looked nginx up
-- on PATH only; Debian installs it in /usr/sbin, which a user's PATH
-- (and some CI shells) leave out, so the nginx interop tests failed with
-- "nginx is not installed" on a machine that has it.  The peers are now
-- looked up on PATH, then in the sbin folders.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local S = dofile(here .. "../support.lua")

describe("regress: interop peers outside PATH", function()
  after_each(S.cleanup)

  it("the nginx interop specs run with /usr/sbin and /sbin off PATH", function()
    local out = S.sh("env PATH=/usr/local/bin:/usr/bin:/bin " .. S.shquote(S.corio) ..
      " test --filter=nginx " .. S.shquote(here .. "../http_interop_spec.lua") .. " 2>&1; echo rc=$?")
    assert.matches("rc=0", out, 1, true)
    assert.matches("2 passed, 0 failed", out, 1, true)
  end)
end)
