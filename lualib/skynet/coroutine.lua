-- skynet/coroutine.lua: user coroutines that coexist with the scheduler.
--
-- Service tasks are themselves coroutines driven by the framework through
-- yields (a call, a sleep, a wait all yield to it). A plain coroutine.yield
-- in service code would therefore be taken for a framework suspension.
-- Coroutines created here tag their own yields with "USER"; any other yield
-- coming out of them is a framework suspension that is passed up unchanged,
-- and the coroutine counts as "blocked" until the framework resumes it.

local stock = coroutine
local resume = stock.resume	-- the profiling resume installed by snlua
local yield = stock.yield
local status = stock.status
local running = stock.running
local close = stock.close
local select = select
local error = error

-- thread -> true (ours, may be resumed) or false (blocked in the framework);
-- absent for foreign or finished coroutines
local ours = setmetatable({}, { __mode = "kv" })
-- thread -> the framework task at the bottom of its chain of resumers
local root_task = setmetatable({}, { __mode = "kv" })

local skynetco = {
	isyieldable = stock.isyieldable,
	running = stock.running,
}

function skynetco.create(f)
	local co = stock.create(f)
	ours[co] = true
	return co
end

local function unblock(co, ...)
	ours[co] = true
	return ...
end

-- look at what a resume of co produced and keep going until co either
-- yields for the user, finishes or fails
local function settle(co, ok, ...)
	if not ok then
		return false, ...
	end
	if status(co) == "dead" then
		ours[co] = nil
		return true, ...
	end
	if (...) == "USER" then
		return true, select(2, ...)
	end
	-- forward the framework suspension, then hand its answer back down
	ours[co] = false
	return settle(co, unblock(co, resume(co, yield(...))))
end

function skynetco.resume(co, ...)
	local state = ours[co]
	if state == false then
		return false, "cannot resume a skynet coroutine suspend by skynet framework"
	end
	if state == nil then
		if status(co) == "dead" then
			return resume(co, ...)	-- the stock "cannot resume dead coroutine"
		end
		return false, "cannot resume none skynet coroutine"
	end
	local from = running()
	root_task[co] = root_task[from] or from
	return settle(co, resume(co, ...))
end

-- (thread, true) for a framework task; (its root task, false) for ours
function skynetco.thread(co)
	co = co or running()
	if ours[co] ~= nil then
		return root_task[co], false
	end
	return co, true
end

function skynetco.status(co)
	local s = status(co)
	if s == "suspended" and ours[co] == false then
		return "blocked"
	end
	return s
end

function skynetco.yield(...)
	return yield("USER", ...)
end

local function unwrap(ok, ...)
	if ok then
		return ...
	end
	-- level 2: blame the caller of the wrapped function, like coroutine.wrap
	error((...), 2)
end

function skynetco.wrap(f)
	local co = skynetco.create(f)
	return function(...)
		return unwrap(skynetco.resume(co, ...))
	end
end

function skynetco.close(co)
	ours[co] = nil
	return close(co)
end

return skynetco
