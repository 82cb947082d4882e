-- Helper service for the tests (not a test itself): answers "echo" with its arguments
-- and "args" with the arguments it was launched with. Launched with "exit_in_start" it
-- exits from its start function instead.
local skynet = require "skynet"

local args = table.pack(...)

skynet.start(function()
	if args[1] == "exit_in_start" then
		skynet.exit()
	end
	skynet.dispatch("lua", function(_, _, cmd, ...)
		if cmd == "echo" then
			skynet.retpack(...)
		elseif cmd == "args" then
			skynet.retpack(table.unpack(args, 1, args.n))
		else
			error("svc_echo: unknown command " .. tostring(cmd))
		end
	end)
end)
