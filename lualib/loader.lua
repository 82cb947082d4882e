-- loader.lua: the first Lua code every snlua service runs.
--
-- snlua calls it with the service's argument string ("name arg1 arg2 ...")
-- and the globals LUA_SERVICE, LUA_PATH, LUA_CPATH and optionally
-- LUA_PRELOAD. It finds the service file along LUA_SERVICE, publishes
-- SERVICE_NAME and SERVICE_PATH, moves the search paths into package.*,
-- runs the preload script, swaps in skynet's require and finally runs the
-- service's main chunk with the remaining arguments.

local args = {}
for word in string.gmatch(..., "%S+") do
	args[#args + 1] = word
end

SERVICE_NAME = args[1]

local function expand(pattern)
	return (pattern:gsub("%?", function() return SERVICE_NAME end))
end

local main, found_pattern
local failures = {}
for pattern in string.gmatch(LUA_SERVICE, "[^;]+") do
	local chunk, err = loadfile(expand(pattern))
	if chunk then
		main, found_pattern = chunk, pattern
		break
	end
	failures[#failures + 1] = err
end

if not main then
	error(table.concat(failures, "\n"))
end

LUA_SERVICE = nil
package.path, LUA_PATH = LUA_PATH, nil
package.cpath, LUA_CPATH = LUA_CPATH, nil

-- A pattern such as "./test/?/init.lua" makes the service a directory: its
-- own modules are then found next to the main file. Otherwise SERVICE_PATH is
-- simply the directory the pattern searches.
local service_dir = found_pattern:match "(.*/)[^/?]+$"
if service_dir then
	SERVICE_PATH = expand(service_dir)
	package.path = SERVICE_PATH .. "?.lua;" .. package.path
else
	SERVICE_PATH = found_pattern:match "(.*/).+$"
end

if LUA_PRELOAD then
	local preload = assert(loadfile(LUA_PRELOAD))
	preload(table.unpack(args))
	LUA_PRELOAD = nil
end

_G.require = (require "skynet.require").require

main(select(2, table.unpack(args)))
