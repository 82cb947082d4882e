-- skynet/harbor.lua: global names and links between harbor nodes, all
-- served by the local `.cslave` service (cslave, or cdummy with harbor 0).

local skynet = require "skynet"

local harbor = {}

function harbor.globalname(name, handle)
	skynet.send(".cslave", "lua", "REGISTER", name, handle or skynet.self())
end

function harbor.queryname(name)
	return skynet.call(".cslave", "lua", "QUERYNAME", name)
end

-- returns when harbor `id` goes down
function harbor.link(id)
	skynet.call(".cslave", "lua", "LINK", id)
end

-- returns once harbor `id` is connected
function harbor.connect(id)
	skynet.call(".cslave", "lua", "CONNECT", id)
end

-- returns when the master goes down
function harbor.linkmaster()
	skynet.call(".cslave", "lua", "LINKMASTER")
end

return harbor
