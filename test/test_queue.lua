-- skynet.queue: a critical section runs callers one at a time in arrival order even
-- when they block inside it, is re-entrant for the coroutine holding it, passes return
-- values through and is released when the protected function raises.
local skynet = require "skynet"
local queue = require "skynet.queue"
local tester = require "tester"
local eq, deep_eq, raises = tester.eq, tester.deep_eq, tester.raises

local function run_workers(cs, n, trace)
	local results = tester.concurrent(n, function(i)
		local function work()
			trace[#trace + 1] = "enter " .. i
			-- earlier workers sleep longer, so without the lock they would
			-- finish last
			skynet.sleep(n - i + 1)
			trace[#trace + 1] = "leave " .. i
		end
		if cs then
			cs(work)
		else
			work()
		end
	end)
	for i = 1, n do
		tester.ok(results[i][1], "worker " .. i .. ": " .. tostring(results[i][2]))
	end
end

tester.run("test_queue", function()
	-- without a critical section the workers interleave
	local free = {}
	run_workers(nil, 3, free)
	deep_eq(free, { "enter 1", "enter 2", "enter 3", "leave 3", "leave 2", "leave 1" }, "no lock")

	local cs = queue()
	local locked = {}
	run_workers(cs, 3, locked)
	deep_eq(locked, { "enter 1", "leave 1", "enter 2", "leave 2", "enter 3", "leave 3" }, "locked")

	-- re-entrant, with return values
	local a, b = cs(function(x)
		return cs(function(y)
			return y + 1, "inner"
		end, x * 10)
	end, 4)
	eq(a, 41, "nested return 1")
	eq(b, "inner", "nested return 2")

	-- an error inside releases the lock
	raises("cs boom", cs, function()
		skynet.sleep(1)
		error("cs boom")
	end)
	eq(cs(function()
		return "free again"
	end), "free again", "lock released after an error")
end)
