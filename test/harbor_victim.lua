-- Harbor fault tests, node 2: a service known as VICTIM that answers "ping".
-- runtime/tests/harbor.rs kills this node to drop the link.
local skynet = require "skynet"
require "skynet.manager"

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd)
		skynet.ret(skynet.pack(cmd == "ping" and "pong" or "?"))
	end)
	skynet.name("VICTIM", skynet.self())
	print("victim ready")
end)
