-- Calls that cannot be answered: the callee exits while handling the request, while
-- holding other requests, or with requests still queued (each queued message bounces
-- back as PTYPE_ERROR); and calls/sends to a dead handle, a handle that never existed
-- and an unknown local name.
local skynet = require "skynet"
local tester = require "tester"

local mode = ...

if mode == "slave" then
	local CMD = {}

	function CMD.echo(x)
		skynet.retpack(x)
	end

	function CMD.die()
		-- exit while the caller waits for this very request
		skynet.exit()
	end

	function CMD.hold()
		skynet.response() -- never used: exit must fail it
	end

	function CMD.block()
		skynet.sleep(1000000)
		skynet.retpack("woke up")
	end

	function CMD.exit_when(n)
		-- keep the worker busy until n messages wait in the queue, then exit: they
		-- were never dispatched, so the core bounces every one of them
		tester.spin_until_queued(n)
		skynet.exit()
	end

	tester.serve(CMD)
	return
end

local eq, raises, failed = tester.eq, tester.raises, tester.failed

tester.run("test_deadcall", function()
	-- exiting while handling the call
	local s1 = skynet.newservice(SERVICE_NAME, "slave")
	eq(skynet.call(s1, "lua", "echo", 1), 1, "slave alive")
	raises("call failed", skynet.call, s1, "lua", "die")

	-- the handle is gone now
	eq(skynet.send(s1, "lua", "echo", 2), nil, "send to a dead service")
	raises("call to invalid address", skynet.call, s1, "lua", "echo", 3)

	-- a handle that never existed and a name nobody registered
	raises("call to invalid address", skynet.call, 0x00ffff00, "lua", "echo", 4)
	eq(skynet.send(".no_such_service", "lua", "echo", 5), nil, "send to an unknown name")
	raises("call to invalid address", skynet.call, ".no_such_service", "lua", "echo", 6)

	-- exit with requests held in a response closure and in a sleeping coroutine
	local s2 = skynet.newservice(SERVICE_NAME, "slave")
	local held = tester.concurrent(3, function(i)
		if i == 1 then
			return skynet.call(s2, "lua", "hold")
		elseif i == 2 then
			return skynet.call(s2, "lua", "block")
		else
			skynet.yield() -- let the other two arrive first
			return skynet.call(s2, "lua", "die")
		end
	end)
	for i = 1, 3 do
		failed(held[i], "call failed", "held request " .. i)
	end

	-- exit with requests still in the queue
	local s3 = skynet.newservice(SERVICE_NAME, "slave")
	skynet.send(s3, "lua", "exit_when", 5)
	local queued = tester.concurrent(5, function(i)
		return skynet.call(s3, "lua", "echo", i)
	end)
	for i = 1, 5 do
		failed(queued[i], "call failed", "queued request " .. i)
	end
	raises("call to invalid address", skynet.call, s3, "lua", "echo", 7)
end)
