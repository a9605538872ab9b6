-- W5 startup on luv: load the binding and run the (empty) loop once.
local uv = require "luv"
uv.run()
