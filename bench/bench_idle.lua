-- The trivial service the spawn benchmark starts by the thousand: it only
-- answers "mem" with its Lua heap size, so its footprint is that of an idle
-- service with the skynet library loaded.
local skynet = require "skynet"

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd)
		if cmd == "mem" then
			local now = collectgarbage "count"
			collectgarbage "collect"
			skynet.ret(skynet.pack(now, collectgarbage "count"))
		end
	end)
end)
