-- skynet.response closures: answering later from another coroutine, answering with an
-- error, the "TEST" probe, answering twice, a custom pack function, answering a caller
-- that has died, and the warning for a request nobody answered.
local skynet = require "skynet"
local tester = require "tester"

local mode, arg = ...

if mode == "slave" then
	local held = {}
	local results = {}
	local CMD = {}

	function CMD.later(x)
		local resp = skynet.response()
		skynet.fork(function()
			skynet.sleep(2)
			resp(true, "later", x)
		end)
	end

	function CMD.fail()
		local resp = skynet.response()
		skynet.fork(function()
			results.fail_ret = resp(false)
		end)
	end

	function CMD.probe()
		local resp = skynet.response()
		local r = {}
		r.before = resp("TEST")
		r.first = resp(true, "first")
		r.after = resp("TEST")
		local ok, err = pcall(resp, true, "again")
		r.again_ok = ok
		r.again_err = tostring(err)
		results.probe = r
	end

	function CMD.custom(a, b)
		local resp = skynet.response(function(...)
			return table.concat({ ... }, ",")
		end)
		resp(true, a, b)
	end

	function CMD.hold(name)
		held[name] = skynet.response()
	end

	function CMD.pending(name)
		skynet.retpack(held[name]("TEST"))
	end

	function CMD.release(name, ...)
		skynet.retpack(held[name](true, ...))
	end

	function CMD.forget()
		-- returns without answering: lualib must warn
	end

	function CMD.results()
		skynet.retpack(results)
	end

	tester.serve(CMD)
	return
elseif mode == "client" then
	-- calls the slave and then dies while the call is still pending
	local slave = tonumber(arg)
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, cmd)
			if cmd == "go" then
				skynet.fork(function()
					pcall(skynet.call, slave, "lua", "hold", "client")
				end)
				skynet.yield()
				skynet.retpack(true)
			elseif cmd == "quit" then
				skynet.exit()
			end
		end)
	end)
	return
end

local eq, ok, raises = tester.eq, tester.ok, tester.raises

tester.run("test_response", function()
	local slave = skynet.newservice(SERVICE_NAME, "slave")

	local tag, x = skynet.call(slave, "lua", "later", 42)
	eq(tag, "later", "deferred answer")
	eq(x, 42, "deferred answer value")

	raises("call failed", skynet.call, slave, "lua", "fail")

	eq(skynet.call(slave, "lua", "probe"), "first", "probe answer")

	local msg, sz = skynet.rawcall(slave, "lua", skynet.pack("custom", "a", "b"))
	eq(skynet.tostring(msg, sz), "a,b", "answer packed by a custom function")

	local res = skynet.call(slave, "lua", "results")
	eq(res.fail_ret, true, "resp(false) reached a live caller")
	local p = res.probe
	eq(p.before, true, "TEST before answering")
	eq(p.first, true, "first answer sent")
	eq(p.after, false, "TEST after answering")
	eq(p.again_ok, false, "answering twice fails")
	ok(p.again_err:find("Can't response more than once", 1, true), "answer twice error: " .. p.again_err)

	-- a caller that dies while its request is held: the slave learns about it (the dying
	-- service reports to everyone it waits on), so the late answer is not delivered
	local client = skynet.newservice(SERVICE_NAME, "client", tostring(slave))
	eq(skynet.call(client, "lua", "go"), true, "client sent its request")
	raises("call failed", skynet.call, client, "lua", "quit")
	local waited = 0
	while skynet.call(slave, "lua", "pending", "client") do
		waited = waited + 1
		ok(waited < 2000, "the slave never learnt that the client died")
		skynet.sleep(1)
	end
	eq(skynet.call(slave, "lua", "release", "client", "too late"), false, "answer to a dead caller")

	-- a held request from us is still answered normally
	skynet.fork(function()
		skynet.call(slave, "lua", "hold", "main")
	end)
	skynet.yield()
	eq(skynet.call(slave, "lua", "pending", "main"), true, "our request is pending")
	eq(skynet.call(slave, "lua", "release", "main", "ok"), true, "answer to a live caller")

	-- nobody answers this one; the coroutine waiting for it just stays suspended
	skynet.fork(skynet.call, slave, "lua", "forget")
	local line = tester.wait_log("Maybe forgot response session")
	ok(line:find(skynet.address(skynet.self()), 1, true), "the warning names the caller: " .. line)
end)
