-- skynet.kill (by handle and by name) and skynet.exit: the KILL log lines, names and
-- launcher entries disappearing, later sends failing, and messages still queued at
-- kill time bouncing back to their callers as errors.
local skynet = require "skynet"
require "skynet.manager"
local tester = require "tester"

local mode = ...

if mode == "slave" then
	local CMD = {}

	function CMD.echo(x)
		skynet.retpack(x)
	end

	function CMD.register(name)
		skynet.register(name)
		skynet.retpack(true)
	end

	function CMD.kill_self_when(n)
		-- busy until n messages are queued, then kill this very service by handle:
		-- the queued messages are never dispatched and must bounce
		tester.spin_until_queued(n)
		skynet.kill(skynet.self())
	end

	function CMD.quit()
		skynet.exit()
	end

	tester.serve(CMD)
	return
end

local eq, ok, raises, failed = tester.eq, tester.ok, tester.raises, tester.failed

local function launched(addr)
	local list = skynet.call(".launcher", "lua", "LIST")
	return list[skynet.address(addr)] ~= nil
end

tester.run("test_kill", function()
	-- kill by handle
	local a = skynet.newservice(SERVICE_NAME, "slave")
	eq(skynet.call(a, "lua", "register", ".kill_a"), true, "registered")
	eq(skynet.localname(".kill_a"), a, "name before kill")
	ok(launched(a), "launcher lists the slave")
	skynet.kill(a)
	tester.wait_log(string.format("KILL :%x", a))
	eq(skynet.localname(".kill_a"), nil, "the name is gone with the service")
	eq(skynet.send(a, "lua", "echo", 1), nil, "send after kill")
	raises("call to invalid address", skynet.call, a, "lua", "echo", 1)
	eq(launched(a), false, "launcher forgot the killed service")

	-- kill by local name
	local b = skynet.newservice(SERVICE_NAME, "slave")
	skynet.call(b, "lua", "register", ".kill_b")
	skynet.kill(".kill_b")
	tester.wait_log(string.format("KILL :%x", b))
	eq(skynet.send(b, "lua", "echo", 1), nil, "send after kill by name")

	-- exit logs KILL self from the exiting service
	local c = skynet.newservice(SERVICE_NAME, "slave")
	raises("call failed", skynet.call, c, "lua", "quit")
	tester.wait_log(string.format("[%s] KILL self", skynet.address(c)))
	eq(skynet.send(c, "lua", "echo", 1), nil, "send after exit")
	eq(launched(c), false, "launcher forgot the exited service")

	-- queued messages bounce when their service is killed
	local d = skynet.newservice(SERVICE_NAME, "slave")
	skynet.send(d, "lua", "kill_self_when", 4)
	local results = tester.concurrent(4, function(i)
		return skynet.call(d, "lua", "echo", i)
	end)
	for i = 1, 4 do
		failed(results[i], "call failed", "queued call " .. i)
	end
	tester.wait_log(string.format("KILL :%x", d))
end)
