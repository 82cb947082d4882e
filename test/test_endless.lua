-- Endless-loop detection and SIGNAL: a message running for more than one monitor period
-- is reported (`maybe in an endless loop`) and flags the service (skynet.endless());
-- `SIGNAL :addr 0` raises `signal 0` inside the loop, caught by pcall in one slave and
-- failing the request in the other; both keep serving afterwards.
local skynet = require "skynet"
local c = require "skynet.core"
local tester = require "tester"

local mode = ...

if mode == "slave" then
	local CMD = {}

	function CMD.loop_pcall()
		local ok, err = pcall(function()
			local x = 0
			while true do
				x = x + 1
			end
		end)
		skynet.retpack(ok, tostring(err), skynet.endless())
	end

	function CMD.loop()
		local x = 0
		while true do
			x = x + 1
		end
	end

	function CMD.endless()
		skynet.retpack(skynet.endless())
	end

	function CMD.ping(x)
		skynet.retpack(x)
	end

	tester.serve(CMD)
	return
end

local eq, ok, failed = tester.eq, tester.ok, tester.failed

tester.run("test_endless", function()
	local s1 = skynet.newservice(SERVICE_NAME, "slave")
	local s2 = skynet.newservice(SERVICE_NAME, "slave")
	eq(skynet.call(s1, "lua", "endless"), false, "not flagged before looping")

	local loops = { { s1, "loop_pcall" }, { s2, "loop" } }
	local wait_loops = tester.fork_all(2, function(i)
		return skynet.call(loops[i][1], "lua", loops[i][2])
	end)

	-- the monitor checks every 5 s, so the report comes 5-10 s into the loop
	local pattern = "to [ %s ] maybe in an endless loop"
	local l1 = tester.wait_log(string.format(pattern, skynet.address(s1)), 4000)
	local l2 = tester.wait_log(string.format(pattern, skynet.address(s2)), 4000)
	ok(l1:find(string.format("A message from [ %s ]", skynet.address(skynet.self())), 1, true),
		"the report names the sender: " .. l1)
	ok(l2:find("(version = ", 1, true), "the report has the version: " .. l2)

	c.command("SIGNAL", skynet.address(s1) .. " 0")
	c.command("SIGNAL", skynet.address(s2) .. " 0")
	local r = wait_loops()
	local r1, r2 = r[1], r[2]

	-- the loop wrapped in pcall sees the error and the endless flag
	eq(r1[1], true, "the pcall loop request itself succeeds")
	eq(r1[2], false, "pcall reports the loop failed")
	ok(r1[3]:find("signal 0", 1, true), "the loop failed with signal 0: " .. r1[3])
	eq(r1[4], true, "skynet.endless() after the loop")
	eq(skynet.call(s1, "lua", "endless"), false, "skynet.endless() clears the flag")

	-- the uncaught one fails the call
	failed(r2, "call failed", "the uncaught loop request")
	eq(skynet.call(s2, "lua", "endless"), true, "flag still set on the uncaught slave")
	eq(skynet.call(s2, "lua", "endless"), false, "flag cleared")

	eq(skynet.call(s1, "lua", "ping", 1), 1, "slave 1 serving after the signal")
	eq(skynet.call(s2, "lua", "ping", 2), 2, "slave 2 serving after the signal")
	tester.wait_log("recv a signal 0")
end, { watchdog = 6000 })
