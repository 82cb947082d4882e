-- simpledb (global name SIMPLEDB): an in-memory key/value service.
--   GET key        -> value
--   SET key value  -> previous value
local skynet = require "skynet"
require "skynet.manager"

local db = {}

local command = {}

function command.GET(key)
	return db[key]
end

function command.SET(key, value)
	local previous = db[key]
	db[key] = value
	return previous
end

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd, ...)
		local f = command[string.upper(cmd)]
		if not f then
			error(string.format("Unknown command %s", tostring(cmd)))
		end
		skynet.retpack(f(...))
	end)
	skynet.register "SIMPLEDB"
end)
