-- skynet.sleep / skynet.wakeup / skynet.wait / skynet.yield: return values, tokens,
-- wakeup order, and a woken sleeper not being resumed a second time by its stale timer.
local skynet = require "skynet"
local tester = require "tester"
local eq, ok, deep_eq = tester.eq, tester.ok, tester.deep_eq

tester.run("test_sleep", function()
	local me = coroutine.running()

	eq(skynet.sleep(1), nil, "an expired sleep returns nothing")
	eq(skynet.wakeup(me), nil, "wakeup of a coroutine that is not sleeping")

	-- wakeup cuts a long sleep short
	local result
	local sleeper = skynet.fork(function()
		result = skynet.sleep(100000)
		skynet.wakeup(me)
	end)
	skynet.yield()
	eq(skynet.wakeup(sleeper), true, "wakeup of a sleeping coroutine")
	skynet.wait(me)
	eq(result, "BREAK", "a woken sleep returns BREAK")

	-- sleeping on an explicit token
	local token = {}
	skynet.fork(function()
		skynet.yield()
		eq(skynet.wakeup(token), true, "wakeup by token")
	end)
	eq(skynet.sleep(100000, token), "BREAK", "sleep on a token")

	-- wait + wakeup, with and without a token
	skynet.fork(function()
		skynet.wakeup(me)
	end)
	eq(skynet.wait(), nil, "wait returns nothing")
	local wtoken = "wait token"
	skynet.fork(function()
		skynet.wakeup(wtoken)
	end)
	skynet.wait(wtoken)

	-- woken coroutines resume in the order they were woken
	local order, waiters = {}, {}
	for i = 1, 5 do
		waiters[i] = skynet.fork(function()
			skynet.wait()
			order[#order + 1] = i
			if #order == 5 then
				skynet.wakeup(me)
			end
		end)
	end
	skynet.yield()
	for _, i in ipairs { 3, 1, 5, 2, 4 } do
		skynet.wakeup(waiters[i])
	end
	skynet.wait(me)
	deep_eq(order, { 3, 1, 5, 2, 4 }, "wakeup order")

	-- the timer of a woken sleep still expires later; it must not wake the next sleep
	local second, t0, t1
	local s = skynet.fork(function()
		skynet.sleep(20)
		t0 = skynet.now()
		second = skynet.sleep(60)
		t1 = skynet.now()
		skynet.wakeup(me)
	end)
	skynet.yield()
	skynet.wakeup(s)
	skynet.wait(me)
	eq(second, nil, "the second sleep ran its full length")
	ok(t1 - t0 >= 59, "the second sleep was not cut short by the first timer")

	-- yield lets queued forks run, then comes back
	local ran = false
	skynet.fork(function()
		ran = true
	end)
	eq(ran, false, "a fork does not run before the forking coroutine yields")
	skynet.yield()
	eq(ran, true, "yield ran the fork")
end)
