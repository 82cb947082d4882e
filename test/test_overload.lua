-- The overload warning: a service that is busy while more than 1024 messages pile up
-- in its queue gets `error: May overload, message queue length = N` logged from its
-- address when it pops the next one, and then goes on serving.
local skynet = require "skynet"
local tester = require "tester"

local mode = ...

local FLOOD = 1500

if mode == "slave" then
	local handled = 0
	local CMD = {}

	function CMD.busy(n)
		-- hold this worker until the flood has arrived
		tester.spin_until_queued(n)
	end

	function CMD.nop()
		handled = handled + 1
	end

	function CMD.count()
		skynet.retpack(handled)
	end

	tester.serve(CMD)
	return
end

local eq, ok = tester.eq, tester.ok

tester.run("test_overload", function()
	local slave = skynet.newservice(SERVICE_NAME, "slave")
	skynet.send(slave, "lua", "busy", FLOOD)
	for _ = 1, FLOOD do
		skynet.send(slave, "lua", "nop")
	end
	eq(skynet.call(slave, "lua", "count"), FLOOD, "every flooded message was handled")
	local line = tester.wait_log("May overload, message queue length = ")
	ok(line:find(string.format("[%s] error: May overload", skynet.address(slave)), 1, true),
		"the warning comes from the slave: " .. line)
	local n = tonumber(line:match "message queue length = (%d+)")
	-- the slave may not have started on "busy" before the whole flood (and the
	-- final call) arrived, so everything can still be queued
	ok(n and n > 1024 and n <= FLOOD + 1, "reported length " .. tostring(n))
end)
