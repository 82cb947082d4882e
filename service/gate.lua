-- gate: the general-purpose Lua gate (newservice "gate"). It owns the
-- per-connection routing of a snax.gateserver: packets of a connection go
-- either to its watchdog as strings or, once an agent is attached, straight
-- to that agent as PTYPE_CLIENT messages.
--
-- Watchdog protocol (all "lua" sends from the gate to the watchdog):
--   "socket", "open", fd, "ip:port"     a client connected (not reading yet)
--   "socket", "data", fd, packet        a packet of a client with no agent
--   "socket", "close", fd               the connection is gone
--   "socket", "error", fd, text         socket error (a close follows)
--   "socket", "warning", fd, kbytes     send buffer of fd is large
-- Commands the gate serves besides gateserver's open/close:
--   open(conf)                  conf.watchdog overrides the caller as watchdog;
--                               returns the address and port bound
--   accept(fd)                  start reading fd, packets go to the watchdog
--   forward(fd, client, agent)  start reading fd, packets go to agent
--                               (default: the caller) as PTYPE_CLIENT with
--                               session = fd and source = client (default 0)
--   kick(fd)                    close fd

local skynet = require "skynet"
local gateserver = require "snax.gateserver"

local watchdog
-- fd -> { ip = "ip:port", agent = address or nil, client = address or nil }
local routes = {}

skynet.register_protocol {
	name = "client",
	id = skynet.PTYPE_CLIENT,
}

local function tell_watchdog(...)
	skynet.send(watchdog, "lua", "socket", ...)
end

local handler = {}

function handler.open(source, conf)
	watchdog = conf.watchdog or source
	return conf.address, conf.port
end

function handler.connect(fd, addr)
	routes[fd] = { ip = addr }
	tell_watchdog("open", fd, addr)
end

function handler.message(fd, msg, sz)
	local route = routes[fd]
	if route and route.agent then
		-- the buffer travels with the message; the agent's dispatch frees it
		skynet.redirect(route.agent, route.client, "client", fd, msg, sz)
	else
		-- the watchdog gets a copy, so the buffer is ours to free
		local packet = skynet.tostring(msg, sz)
		skynet.trash(msg, sz)
		tell_watchdog("data", fd, packet)
	end
end

function handler.disconnect(fd)
	routes[fd] = nil
	tell_watchdog("close", fd)
end

function handler.error(fd, text)
	routes[fd] = nil
	tell_watchdog("error", fd, text)
end

function handler.warning(fd, kbytes)
	tell_watchdog("warning", fd, kbytes)
end

local command = {}

function command.forward(source, fd, client, agent)
	local route = assert(routes[fd], "forward: unknown fd")
	route.client = client or 0
	route.agent = agent or source
	gateserver.openclient(fd)
end

function command.accept(source, fd)
	local route = assert(routes[fd], "accept: unknown fd")
	route.agent, route.client = nil, nil
	gateserver.openclient(fd)
end

function command.kick(source, fd)
	gateserver.closeclient(fd)
end

function handler.command(cmd, source, ...)
	local f = assert(command[cmd], cmd)
	return f(source, ...)
end

gateserver.start(handler)
