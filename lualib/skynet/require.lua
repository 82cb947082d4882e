-- skynet/require.lua: the `require` used inside services, and skynet.init.
--
-- Module bodies may block (call other services, sleep) while they load.
-- When a task coroutine requires a Lua module, the chunk runs right in that
-- coroutine; other tasks asking for the same module meanwhile wait until it
-- is ready instead of loading it twice. Functions a module registers with
-- skynet.init run once its chunk has finished. In the service main chunk
-- (the main thread, where nothing can block) modules go through the stock
-- require and their init functions are kept until skynet.start calls
-- init_all, just before the start function.

local M = {}

local main_thread, is_main = coroutine.running()
assert(is_main, "skynet.require must initialize in main thread")

local stock_require = _G.require
local loaded = package.loaded

-- thread -> init functions registered while that thread loads a module
local init_lists = { [main_thread] = {} }
-- module name -> { owner = loading thread, [i] = threads waiting for it }
local in_progress = {}

local function wait_for(job, name, co)
	assert(job.owner ~= co, "circular dependency")
	job[#job + 1] = co
	stock_require("skynet").wait(co)
	local m = loaded[name]
	if m == nil then
		error(string.format("require %s failed", name))
	end
	return m
end

local function load_in_task(name, path, chunk, co)
	local job = { owner = co }
	in_progress[name] = job
	local outer_inits = init_lists[co]
	local inits = {}
	init_lists[co] = inits

	local ok, err = xpcall(function()
		local value = chunk(name, path)
		for _, f in ipairs(inits) do
			f()
		end
		if value ~= nil then
			loaded[name] = value
		elseif loaded[name] == nil then
			loaded[name] = true
		end
	end, debug.traceback)

	init_lists[co] = outer_inits
	in_progress[name] = nil
	if #job > 0 then
		local skynet = stock_require "skynet"
		for _, waiter in ipairs(job) do
			skynet.wakeup(waiter)
		end
	end
	if not ok then
		error(err)
	end
	return loaded[name]
end

function M.require(name)
	local m = loaded[name]
	if m ~= nil then
		return m
	end
	local co, main = coroutine.running()
	if main then
		return stock_require(name)
	end
	local path = package.searchpath(name, package.path)
	local chunk = path and loadfile(path)
	if not chunk then
		-- C modules, preloads and broken files: the stock require reports them
		return stock_require(name)
	end
	local job = in_progress[name]
	if job then
		return wait_for(job, name, co)
	end
	return load_in_task(name, path, chunk, co)
end

function M.init_all()
	local inits = init_lists[main_thread]
	init_lists[main_thread] = nil
	if inits then
		for _, f in ipairs(inits) do
			f()
		end
	end
end

function M.init(f)
	assert(type(f) == "function")
	local inits = init_lists[coroutine.running()]
	assert(inits, "skynet.init must be called while a module is being required")
	inits[#inits + 1] = f
end

return M
