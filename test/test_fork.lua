-- skynet.fork: deferred start in FIFO order, arguments (nils included), forks started
-- from forks, an erroring fork not stopping the others, and skynet.killthread on a
-- queued and on a sleeping fork.
local skynet = require "skynet"
local tester = require "tester"
local eq, ok, deep_eq = tester.eq, tester.ok, tester.deep_eq

tester.run("test_fork", function()
	local me = coroutine.running()
	local order = {}

	for i = 1, 5 do
		skynet.fork(function()
			order[#order + 1] = i
		end)
	end
	order[#order + 1] = "forked"
	skynet.yield()
	deep_eq(order, { "forked", 1, 2, 3, 4, 5 }, "fork order")

	-- arguments
	local got
	local co = skynet.fork(function(...)
		got = table.pack(...)
	end, 1, nil, "three", nil)
	eq(type(co), "thread", "fork returns the coroutine")
	skynet.yield()
	eq(got.n, 4, "argument count")
	eq(got[1], 1, "arg 1")
	eq(got[2], nil, "arg 2")
	eq(got[3], "three", "arg 3")

	-- forks from forks
	order = {}
	skynet.fork(function()
		order[#order + 1] = "a"
		skynet.fork(function()
			order[#order + 1] = "c"
			skynet.wakeup(me)
		end)
		order[#order + 1] = "b"
	end)
	skynet.wait(me)
	deep_eq(order, { "a", "b", "c" }, "nested fork")

	-- an erroring fork
	local survived = false
	skynet.fork(function()
		error("fork boom")
	end)
	skynet.fork(function()
		survived = true
	end)
	skynet.yield()
	eq(survived, true, "the fork after an erroring one ran")
	tester.wait_log("fork boom")

	-- killthread on a fork that has not started yet
	local killed_ran = false
	local k = skynet.fork(function()
		killed_ran = true
	end)
	eq(skynet.killthread(k), k, "killthread returns the killed coroutine")
	skynet.yield()
	eq(killed_ran, false, "a killed queued fork never runs")

	-- killthread on a sleeping fork
	local woke = false
	local s = skynet.fork(function()
		skynet.sleep(5)
		woke = true
	end)
	skynet.yield()
	ok(skynet.killthread(s), "killthread of a sleeping fork")
	skynet.sleep(20)
	eq(woke, false, "a killed sleeping fork never resumes")
end)
