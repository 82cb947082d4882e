-- service_cell: an empty shell that service_provider turns into a unique
-- service. Its first "init" request carries the main function (dumped by
-- skynet.service.new) and its arguments; the function then installs its own
-- dispatchers, replacing ours.
local skynet = require "skynet"

local cell_name = ...

local function no_dispatch()
	error("No dispatch function")
end

local request = {}

function request.init(code, ...)
	-- The main function may call skynet.start; run that start function
	-- inline, as this service is already started.
	local start
	skynet.start = function(f)
		start = f
	end
	skynet.dispatch("lua", no_dispatch)
	local main = assert(load(code, cell_name))
	assert(pcall(main, ...))
	if start then
		start()
	end
	skynet.ret()
end

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd, ...)
		request[cmd](...)
	end)
end)
