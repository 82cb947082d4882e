-- clusterproxy: a local address standing for a remote service.
--   newservice("clusterproxy", node, address)   (made by cluster.proxy)
-- Lua and snax messages sent to the proxy travel unchanged to `address` on
-- `node` through that node's clustersender: a send becomes a cluster push, a
-- call a cluster request whose reply comes back as the proxy's own reply.

local skynet = require "skynet"
require "skynet.manager"	-- skynet.forward_type

local node, address = ...

-- Messages arrive as raw buffers: forward_type hands them over undecoded and
-- the framework does not free them, since they travel on.
skynet.register_protocol {
	name = "system",
	id = skynet.PTYPE_SYSTEM,
	unpack = function(...) return ... end,
}

local forward = {
	[skynet.PTYPE_LUA] = skynet.PTYPE_SYSTEM,
	[skynet.PTYPE_SNAX] = skynet.PTYPE_SYSTEM,
	[skynet.PTYPE_RESPONSE] = skynet.PTYPE_RESPONSE,
}

skynet.forward_type(forward, function()
	local clusterd = skynet.uniqueservice("clusterd")
	address = tonumber(address) or address
	local sender = skynet.call(clusterd, "lua", "sender", node)
	skynet.dispatch("system", function(session, _, msg, sz)
		if session == 0 then
			skynet.send(sender, "lua", "push", address, msg, sz)
		else
			skynet.ret(skynet.rawcall(sender, "lua", skynet.pack("req", address, msg, sz)))
		end
	end)
end)
