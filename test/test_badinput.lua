-- Bad input the node must survive: a service whose start function raises, a service
-- file that does not exist, a service exiting in its start function, unknown text
-- commands, malformed packed data (directly and as a "lua" message), bad addresses;
-- afterwards everything still serves.
local skynet = require "skynet"
local c = require "skynet.core"

local mode = ...

if mode == "slave" then
	local handled = 0
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, cmd)
			handled = handled + 1
			if cmd == "count" then
				skynet.retpack(handled)
			end
		end)
	end)
	return
end

local tester = require "tester"
local eq, ok, raises = tester.eq, tester.ok, tester.raises

tester.run("test_badinput", function()
	local slave = skynet.newservice(SERVICE_NAME, "slave")

	-- launching failures reach the caller as errors
	raises(nil, skynet.newservice, "svc_failing")
	tester.wait_log("svc_failing start boom")
	raises(nil, skynet.newservice, "no_such_service_file")
	-- a service that exits during start: newservice gives no address
	eq(skynet.newservice("svc_echo", "exit_in_start"), nil, "newservice of a service exiting in start")
	local echo = skynet.newservice("svc_echo")
	eq(skynet.call(echo, "lua", "echo", "fine"), "fine", "launching still works")

	-- unknown text commands give nothing
	eq(c.command("NOPE"), nil, "unknown command")
	eq(select("#", c.command("NOPE", "x")), 0, "unknown command with a parameter")
	eq(c.intcommand("NOPE"), nil, "unknown intcommand")
	eq(c.addresscommand("NOPE"), nil, "unknown addresscommand")
	eq(c.intcommand("STAT", "nonsense"), 0, "unknown STAT item")

	-- malformed serialized data
	raises("Invalid serialize stream", skynet.unpack, "\7")
	raises("Invalid serialize stream", skynet.unpack, "\21\255\0ab") -- long string cut short
	raises("Invalid serialize stream", skynet.unpack, "\26") -- number cookie 3
	raises("Invalid serialize stream", skynet.unpack, "\38") -- table, no terminator
	raises("Invalid serialize stream", skynet.unpack, skynet.packstring(1, "abc"):sub(1, -2))
	eq(select("#", skynet.unpack("")), 0, "empty input gives no values")

	-- a malformed "lua" message only costs that message
	skynet.rawsend(slave, "lua", "\7")
	tester.wait_log("Invalid serialize stream")
	eq(skynet.call(slave, "lua", "count"), 1, "the slave skipped the bad message and serves")

	-- bad addresses
	raises("Invalid service address 0", c.send, 0, skynet.PTYPE_LUA, 0, "x")
	raises("must be a string or number", c.send, {}, skynet.PTYPE_LUA, 0, "x")
	raises("call to invalid address", skynet.call, 0x00abcdef, "lua", "count")
	eq(skynet.send(".nobody", "lua", "x"), nil, "send to an unknown name")

	eq(skynet.call(slave, "lua", "count"), 2, "still serving at the end")
end)
