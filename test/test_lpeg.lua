-- lpeg and re inside a service: the module is preloaded for every snlua VM and re.lua
-- is on the default lua_path; runs the same cases as `skynet lua test/lpeg_test.lua`.
local tester = require "tester"

tester.run("test_lpeg", function()
	local run = require "lpeg_cases"
	tester.eq(run(), 10, "cases run")
end)
