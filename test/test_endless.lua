-- Endless-loop detection and SIGNAL: a message running for more than one monitor period
-- is reported (`maybe in an endless loop`) and flags the service (skynet.endless());
-- `SIGNAL :addr 0` raises `signal 0` inside the loop, caught by pcall in one slave and
-- failing the request in the other; both keep serving afterwards.
local skynet = require "skynet"
local c = require "skynet.core"

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

	skynet.start(function()
		skynet.dispatch("lua", function(_, _, cmd, ...)
			assert(CMD[cmd], cmd)(...)
		end)
	end)
	return
end

local tester = require "tester"
local eq, ok = tester.eq, tester.ok

tester.run("test_endless", function()
	local me = coroutine.running()
	local s1 = skynet.newservice(SERVICE_NAME, "slave")
	local s2 = skynet.newservice(SERVICE_NAME, "slave")
	eq(skynet.call(s1, "lua", "endless"), false, "not flagged before looping")

	local r1, r2
	local function done()
		if r1 and r2 then
			skynet.wakeup(me)
		end
	end
	skynet.fork(function()
		r1 = table.pack(pcall(skynet.call, s1, "lua", "loop_pcall"))
		done()
	end)
	skynet.fork(function()
		r2 = table.pack(pcall(skynet.call, s2, "lua", "loop"))
		done()
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
	skynet.wait(me)

	-- the loop wrapped in pcall sees the error and the endless flag
	eq(r1[1], true, "the pcall loop request itself succeeds")
	eq(r1[2], false, "pcall reports the loop failed")
	ok(r1[3]:find("signal 0", 1, true), "the loop failed with signal 0: " .. r1[3])
	eq(r1[4], true, "skynet.endless() after the loop")
	eq(skynet.call(s1, "lua", "endless"), false, "skynet.endless() clears the flag")

	-- the uncaught one fails the call
	eq(r2[1], false, "the uncaught loop request fails")
	ok(tostring(r2[2]):find("call failed", 1, true), "uncaught loop: " .. tostring(r2[2]))
	eq(skynet.call(s2, "lua", "endless"), true, "flag still set on the uncaught slave")
	eq(skynet.call(s2, "lua", "endless"), false, "flag cleared")

	eq(skynet.call(s1, "lua", "ping", 1), 1, "slave 1 serving after the signal")
	eq(skynet.call(s2, "lua", "ping", 2), 2, "slave 2 serving after the signal")
	tester.wait_log("recv a signal 0")
end, { watchdog = 6000 })
