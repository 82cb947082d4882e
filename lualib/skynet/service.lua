-- skynet.service: named unique services built from a Lua function instead of
-- a file. service.new(name, f, ...) ships f (as dumped bytecode) to a fresh
-- service_cell through the service_provider; every later caller with the same
-- name gets the same address.
local skynet = require "skynet"
require "skynet.manager"

local service = {}

-- name -> address, as already resolved by this service
local known = {}
local provider

local function get_provider()
	if not provider then
		provider = skynet.uniqueservice "service_provider"
	end
	return provider
end

-- The function runs in another Lua state, so it may only refer to globals:
-- its single upvalue must be _ENV.
local function check_portable(f)
	local info = debug.getinfo(f, "u")
	assert(info.nups == 1)
	assert(debug.getupvalue(f, 1) == "_ENV")
end

function service.new(name, mainfunc, ...)
	local p = get_provider()
	local address, booting = skynet.call(p, "lua", "test", name)
	if not address then
		if booting then
			address = skynet.call(p, "lua", "query", name)
		else
			check_portable(mainfunc)
			address = skynet.call(p, "lua", "launch", name, string.dump(mainfunc), ...)
		end
	end
	known[name] = address
	return address
end

-- Kill the named service; false when there was nothing to close.
function service.close(name)
	local address = skynet.call(get_provider(), "lua", "close", name)
	if not address then
		return false
	end
	known[name] = nil
	skynet.kill(address)
	return true
end

-- Wait until the named service exists and return its address.
function service.query(name)
	local address = known[name]
	if not address then
		address = skynet.call(get_provider(), "lua", "query", name)
		known[name] = address
	end
	return address
end

return service
