-- print from several services at once: runtime/tests/lua_services.rs checks that
-- every line on stdout is whole ("P <service> <n> a b c d", tab-separated).
local skynet = require "skynet"

local mode, who = ...

local LINES = 500

if mode == "printer" then
	skynet.start(function()
		skynet.dispatch("lua", function()
			for n = 1, LINES do
				print("P", who, n, "a", "b", "c", "d")
			end
			skynet.retpack(true)
		end)
	end)
	return
end

local tester = require "tester"

tester.run("test_print", function()
	local printers = {}
	for i = 1, 4 do
		printers[i] = skynet.newservice(SERVICE_NAME, "printer", i)
	end
	tester.concurrent(#printers, function(i)
		return skynet.call(printers[i], "lua")
	end)
end)
