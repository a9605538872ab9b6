-- W5 startup on cqueues: load the library and run an empty controller.
local cqueues = require "cqueues"
assert(cqueues.new():loop())
