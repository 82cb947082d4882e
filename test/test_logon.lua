-- LOGON/LOGOFF: the per-service message log under `logpath`. A slave gets one message
-- while its log is on and one after LOGOFF; the file must hold the open line, exactly
-- the first message as `:source type session time hex-payload`, and the close line.
local skynet = require "skynet"
local c = require "skynet.core"
local tester = require "tester"

local mode = ...

if mode == "slave" then
	tester.serve({
		ping = function(tag)
			skynet.retpack(tag)
		end,
	})
	return
end

local eq, ok = tester.eq, tester.ok

tester.run("test_logon", function()
	local dir = assert(skynet.getenv "logpath", "logpath is set by the harness")
	local slave = skynet.newservice(SERVICE_NAME, "slave")
	c.command("LOGON", skynet.address(slave))
	eq(skynet.call(slave, "lua", "ping", "logged"), "logged", "first call")
	c.command("LOGOFF", skynet.address(slave))
	eq(skynet.call(slave, "lua", "ping", "unlogged"), "unlogged", "second call")

	local path = string.format("%s/%08x.log", dir, slave)
	tester.wait_log("Close log file " .. skynet.address(slave))
	ok(tester.find_log("Open log file " .. path), "Open log file line")
	local f = assert(io.open(path))
	local text = f:read "a"
	f:close()
	local lines = {}
	for line in text:gmatch "[^\n]+" do
		lines[#lines + 1] = line
	end
	eq(#lines, 3, "log lines:\n" .. text)
	ok(lines[1]:match "^open time: %d+ ", "open line: " .. lines[1])
	local payload = skynet.packstring("ping", "logged")
	local hex = payload:gsub(".", function(ch) return string.format("%02x", ch:byte()) end)
	local want = string.format(":%08x %d ", skynet.self(), skynet.PTYPE_LUA)
	ok(lines[2]:sub(1, #want) == want, "message line: " .. lines[2])
	ok(lines[2]:match(" %d+ %d+ " .. hex .. "$"), "message payload: " .. lines[2])
	ok(lines[3]:match "^close time: %d+$", "close line: " .. lines[3])
end)
