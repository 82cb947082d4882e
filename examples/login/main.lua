-- main: start service of examples/config.login. It owns the wiring of the
-- login example: the login server (logind), the game gate (gamed) that
-- registers itself with it, and the gate's listening port. Addresses and
-- names come from the config so tests can run the node on their own ports.
local skynet = require "skynet"

local function setting(key, default)
	local v = skynet.getenv(key)
	if v == nil or v == "" then
		return default
	end
	return v
end

skynet.start(function()
	local logind = skynet.newservice("logind")
	local gamed = skynet.newservice("gamed", logind)
	skynet.call(gamed, "lua", "open", {
		address = setting("gate_host", "0.0.0.0"),
		port = tonumber(setting("gate_port", "8888")),
		maxclient = tonumber(setting("gate_maxclient", "1024")),
		backlog = tonumber(setting("backlog", "")),
		servername = setting("servername", "sample"),
	})
	skynet.error("login example ready")
end)
