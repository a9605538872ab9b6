-- W5 startup: an (almost) empty program; the driver measures process wall time.
local corio = require "corio"
