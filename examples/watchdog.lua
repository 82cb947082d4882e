-- watchdog: owns the gate and one agent per client.
--   start(conf)  opens the gate (conf as the gate's open); returns address, port
--   close(fd)    closes a client and ends its agent
local skynet = require "skynet"

local gate
local agents = {}

local function close_agent(fd)
	local agent = agents[fd]
	agents[fd] = nil
	if agent then
		skynet.call(gate, "lua", "kick", fd)
		skynet.send(agent, "lua", "disconnect")
	end
end

local SOCKET = {}

function SOCKET.open(fd, addr)
	skynet.error("New client from : " .. addr)
	local agent = skynet.newservice("agent")
	agents[fd] = agent
	skynet.call(agent, "lua", "start", { gate = gate, client = fd, watchdog = skynet.self() })
end

function SOCKET.close(fd)
	skynet.error("socket close", fd)
	close_agent(fd)
end

function SOCKET.error(fd, msg)
	skynet.error("socket error", fd, msg)
	close_agent(fd)
end

function SOCKET.warning(fd, size)
	skynet.error("socket warning", fd, size)
end

function SOCKET.data()
end

local CMD = {}

function CMD.start(conf)
	return skynet.call(gate, "lua", "open", conf)
end

function CMD.close(fd)
	close_agent(fd)
end

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd, subcmd, ...)
		if cmd == "socket" then
			SOCKET[subcmd](...)
		else
			local f = assert(CMD[cmd], cmd)
			skynet.retpack(f(subcmd, ...))
		end
	end)
	gate = skynet.newservice("gate")
end)
