-- skynet.timeout: expiry order (by delay, then registration order), timeouts of 0 and
-- below run after the current coroutine yields, timeouts set from timeout callbacks,
-- an erroring callback not disturbing the others, and the "call with a timeout" idiom
-- built from fork + sleep(ti, token) + wakeup.
local skynet = require "skynet"

local mode = ...

if mode == "slave" then
	local held
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, cmd, x)
			if cmd == "hold" then
				held = skynet.response()
			elseif cmd == "release" then
				held(true, x)
				skynet.retpack(true)
			elseif cmd == "echo" then
				skynet.retpack(x)
			end
		end)
	end)
	return
end

local tester = require "tester"
local eq, ok, deep_eq = tester.eq, tester.ok, tester.deep_eq

-- Calls with a deadline: false on timeout, else the answer.
local function timeout_call(ti, ...)
	local token = {}
	local ret
	skynet.fork(function(...)
		ret = table.pack(pcall(skynet.call, ...))
		skynet.wakeup(token)
	end, ...)
	local r = skynet.sleep(ti, token)
	if ret then
		eq(r, "BREAK", "a sleep ended by wakeup")
		assert(ret[1], ret[2])
		return table.unpack(ret, 2, ret.n)
	end
	eq(r, nil, "a sleep that ran out")
	return false
end

tester.run("test_timeout", function()
	local me = coroutine.running()

	-- expiry order
	local order = {}
	local function mark(tag, last)
		return function()
			order[#order + 1] = tag
			if last then
				skynet.wakeup(me)
			end
		end
	end
	skynet.timeout(30, mark("30", true))
	skynet.timeout(10, mark("10a"))
	skynet.timeout(20, mark("20"))
	skynet.timeout(10, mark("10b"))
	skynet.timeout(0, mark("0"))
	skynet.timeout(-5, mark("-5"))
	order[#order + 1] = "registered"
	skynet.wait(me)
	deep_eq(order, { "registered", "0", "-5", "10a", "10b", "20", "30" }, "expiry order")

	-- a timeout set from inside a timeout callback
	order = {}
	skynet.timeout(3, function()
		order[#order + 1] = "outer"
		skynet.timeout(0, function()
			order[#order + 1] = "inner"
			skynet.wakeup(me)
		end)
		order[#order + 1] = "outer done"
	end)
	skynet.wait(me)
	deep_eq(order, { "outer", "outer done", "inner" }, "nested timeout")

	-- an erroring callback is logged; the next ones still run
	local after = false
	skynet.timeout(1, function()
		error("timeout boom")
	end)
	skynet.timeout(2, function()
		after = true
		skynet.wakeup(me)
	end)
	skynet.wait(me)
	eq(after, true, "timeout after an erroring one")
	tester.wait_log("timeout boom")

	-- the counter has moved at least as far as the delay asked for
	local t0 = skynet.now()
	skynet.sleep(5)
	ok(skynet.now() - t0 >= 4, "skynet.now() advanced by the sleep")

	-- the call-with-deadline idiom
	local slave = skynet.newservice(SERVICE_NAME, "slave")
	eq(timeout_call(1000, slave, "lua", "echo", "quick"), "quick", "answer before the deadline")
	eq(timeout_call(5, slave, "lua", "hold"), false, "no answer before the deadline")
	eq(skynet.call(slave, "lua", "release", "late"), true, "late answer released")
	eq(skynet.call(slave, "lua", "echo", "after"), "after", "slave serving after a late answer")
end)
