-- main: boots the example game server. The schemas go into the shared sproto slots
-- first (protoloader), then the consoles, the store, and the watchdog with its gate.
-- The ports come from the config keys gate_port (8888) and debug_port (8000).
local skynet = require "skynet"

skynet.start(function()
	skynet.error("Server start")
	skynet.uniqueservice("protoloader")
	if not skynet.getenv "daemon" then
		skynet.newservice("console")
	end
	skynet.newservice("debug_console", "127.0.0.1", tonumber(skynet.getenv "debug_port") or 8000)
	skynet.newservice("simpledb")
	local watchdog = skynet.newservice("watchdog")
	local addr, port = skynet.call(watchdog, "lua", "start", {
		address = "127.0.0.1",
		port = tonumber(skynet.getenv "gate_port") or 8888,
		maxclient = 64,
		nodelay = true,
	})
	skynet.error(string.format("Watchdog listen on %s:%d", addr, port))
	skynet.exit()
end)
