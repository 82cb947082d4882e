-- snaxd: hosts one snax service (the file named by the launch argument, found
-- on the `snax` path): serves its accept.* (no reply) and response.* methods on
-- the "snax" protocol, runs init/exit/hotfix/profile, keeps per-method stats.
local skynet = require "skynet"
local snax_interface = require "snax.interface"
local profile = require "skynet.profile"
local snax = require "skynet.snax"

local snax_name = tostring(...)
local loader_path = skynet.getenv "snax_loader"
local loader = loader_path and assert(dofile(loader_path))
local methods, pattern = snax_interface(snax_name, _ENV, loader)
-- Modules beside the service file (<dir>/<name>/?.lua) come first.
local snax_path = pattern:sub(1, pattern:find("?", 1, true) - 1) .. snax_name .. "/"
package.path = snax_path .. "?.lua;" .. package.path
SERVICE_NAME = snax_name
SERVICE_PATH = snax_path

-- method name -> { count = calls, time = CPU seconds }; also the debug INFO
local stats = {}

local function account(method_name, seconds)
	local stat = stats[method_name]
	if not stat then
		stat = { count = 0, time = 0 }
		stats[method_name] = stat
	end
	stat.count, stat.time = stat.count + 1, stat.time + seconds
end

local function reply_with(f, ...)
	return skynet.ret(skynet.pack(f(...)))
end

-- profile measures the CPU this request used, not the time it spent suspended
-- in calls. Statistics are kept even for a failing method; the error is raised
-- afterwards so that the caller of a response method receives it and the
-- failure is logged with both tracebacks.
local function timing(method, ...)
	profile.start()
	local ok, err
	if method[2] == "response" then ok, err = xpcall(reply_with, debug.traceback, method[4], ...)
	else ok, err = xpcall(method[4], debug.traceback, ...) end
	local seconds = profile.stop()
	account(method[3], seconds)
	assert(ok, err)
end

skynet.start(function()
	local initialized = false
	-- system.<name>(the file's own function or nil, request arguments...)
	local system = {}
	function system.hotfix(_, ...)
		local hotfix = require "snax.hotfix"
		skynet.retpack(hotfix(methods, ...))
	end
	function system.profile() skynet.retpack(stats) end

	function system.init(f, ...)
		assert(not initialized, "Already init")
		if f then f(...) end
		skynet.ret()
		skynet.info_func(function() return stats end)
		initialized = true
	end

	function system.exit(f, ...)
		assert(initialized, "Never init")
		if f then f(...) end
		skynet.ret()
		initialized = false
		skynet.exit()
	end

	local function dispatch(_, _, id, ...)
		local method = methods[id]
		if method[2] == "system" then
			return system[method[3]](method[4], ...)
		end
		assert(initialized, "Init first")
		timing(method, ...)
	end
	skynet.dispatch("snax", dispatch)

	-- Cluster requests arrive on the lua protocol; a service opts in.
	function snax.enablecluster()
		skynet.dispatch("lua", dispatch)
	end
end)
