-- skynet/queue.lua: critical sections among the tasks of one service.
--
-- skynet.queue() returns cs; cs(f, ...) runs f(...) so that only one task is
-- inside the section at a time. Other tasks calling cs meanwhile wait in
-- arrival order. The task inside may call cs again (nesting) without
-- blocking itself. An error raised by f is re-raised, with its traceback,
-- after the section has been handed on.

local skynet = require "skynet"

local traceback = debug.traceback

function skynet.queue()
	local owner	-- the task inside the section
	local depth = 0	-- how many nested cs calls the owner is in
	local waiting = {}

	local function leave(ok, ...)
		depth = depth - 1
		if depth == 0 then
			-- hand the section directly to the next waiter, so no newcomer
			-- can slip in before it wakes up
			owner = table.remove(waiting, 1)
			if owner then
				skynet.wakeup(owner)
			end
		end
		if not ok then
			error((...))
		end
		return ...
	end

	return function(f, ...)
		local co = coroutine.running()
		if owner and owner ~= co then
			waiting[#waiting + 1] = co
			skynet.wait()
			assert(depth == 0)
		end
		owner = co
		depth = depth + 1
		return leave(xpcall(f, traceback, ...))
	end
end

return skynet.queue
