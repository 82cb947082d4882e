-- skynet/manager.lua: service management on top of skynet.lua — launching
-- native services, killing, naming (local `.name` and global names), abort,
-- exit monitors, and the alternative dispatch installers forward_type and
-- filter. Requiring it returns the skynet table with these added.

local skynet = require "skynet"
local core = require "skynet.core"

-- handle from a number or a ":hex" string; nil for names
local function to_handle(addr)
	local kind = type(addr)
	if kind == "number" then
		return addr
	elseif kind == "string" then
		local hex = addr:match "^:(%x+)"
		if hex then
			return tonumber(hex, 16)
		end
	end
end

function skynet.launch(...)
	local addr = core.command("LAUNCH", table.concat({ ... }, " "))
	if addr then
		return tonumber(addr:sub(2), 16)
	end
end

function skynet.kill(name)
	local handle = to_handle(name)
	if handle then
		-- let the launcher forget it (and fail pending newservice calls)
		skynet.send(".launcher", "lua", "REMOVE", handle, true)
		name = skynet.address(handle)
	end
	core.command("KILL", name)
end

function skynet.abort()
	core.command("ABORT")
end

-- Global names are handled by the harbor service; returns false for local
-- (".name") names so the caller uses the core's name table instead.
local function register_global(name, handle)
	local first = name:sub(1, 1)
	assert(first ~= ":")
	if first == "." then
		return false
	end
	assert(#name < 16)	-- the harbor protocol limits names to 15 bytes
	assert(tonumber(name) == nil)	-- a numeric name would read as a handle
	require("skynet.harbor").globalname(name, handle)
	return true
end

function skynet.register(name)
	if not register_global(name) then
		core.command("REG", name)
	end
end

function skynet.name(name, handle)
	if not register_global(name, handle) then
		core.command("NAME", name .. " " .. skynet.address(handle))
	end
end

local dispatch_message = skynet.dispatch_message

-- Install a callback in forward mode: the core keeps message buffers alive
-- after the callback, so types listed in `map` can be dispatched as another
-- protocol and passed on (e.g. redirected) without a copy. Unmapped types
-- are dispatched normally and their buffer released here.
function skynet.forward_type(map, start_func)
	core.callback(function(ptype, msg, sz, ...)
		local as = map[ptype]
		if as then
			dispatch_message(as, msg, sz, ...)
		else
			local ok, err = pcall(dispatch_message, ptype, msg, sz, ...)
			core.trash(msg, sz)
			if not ok then
				error(err)
			end
		end
	end, true)
	skynet.timeout(0, function()
		skynet.init_service(start_func)
	end)
end

-- Install a callback whose messages first go through f(type, msg, sz,
-- session, source), which returns the (possibly rewritten) arguments.
function skynet.filter(f, start_func)
	core.callback(function(...)
		dispatch_message(f(...))
	end)
	skynet.timeout(0, function()
		skynet.init_service(start_func)
	end)
end

-- Make the unique service `service` the exit monitor of this node: the core
-- notifies it of every service that exits.
function skynet.monitor(service, query)
	local monitor
	if query then
		monitor = skynet.queryservice(true, service)
	else
		monitor = skynet.uniqueservice(true, service)
	end
	assert(monitor, "Monitor launch failed")
	core.command("MONITOR", string.format(":%08x", monitor))
	return monitor
end

return skynet
