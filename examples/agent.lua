-- agent: one client's session. Packets from the gate are sproto requests
-- (examples/proto.lua): handshake, get, set, quit. Every 5 seconds the agent sends the
-- client a heartbeat. A packet that is not a valid request closes the client, with a
-- log line saying why; other clients are not affected.
local skynet = require "skynet"
local socket = require "skynet.socket"
local sprotoloader = require "sprotoloader"

local watchdog
local client_fd
local host
local send_request

local REQUEST = {}

function REQUEST.handshake()
	return { msg = "Welcome to skynet, I will send heartbeat every 5 sec." }
end

function REQUEST.get(args)
	return { result = skynet.call("SIMPLEDB", "lua", "get", args.what) }
end

function REQUEST.set(args)
	skynet.call("SIMPLEDB", "lua", "set", args.what, args.value)
end

function REQUEST.quit()
	skynet.call(watchdog, "lua", "close", client_fd)
end

local function send_package(pack)
	socket.write(client_fd, string.pack(">s2", pack))
end

local function drop_client(why)
	skynet.error(string.format("agent: closing client %d: %s", client_fd, why))
	skynet.call(watchdog, "lua", "close", client_fd)
end

local function serve(name, args, respond)
	local f = REQUEST[name]
	if not f then
		return drop_client("no request " .. tostring(name))
	end
	local result = f(args)
	if respond then
		send_package(respond(result))
	end
end

skynet.register_protocol {
	name = "client",
	id = skynet.PTYPE_CLIENT,
	unpack = function(msg, sz)
		return pcall(host.dispatch, host, msg, sz)
	end,
	dispatch = function(fd, _, ok, kind, ...)
		skynet.ignoreret()	-- the session is the client's fd
		if fd ~= client_fd then
			return
		end
		if not ok then
			return drop_client(kind)
		end
		if kind ~= "REQUEST" then
			return drop_client("unexpected " .. tostring(kind))
		end
		local done, err = pcall(serve, ...)
		if not done then
			skynet.error(err)
		end
	end,
}

local CMD = {}

function CMD.start(conf)
	watchdog = conf.watchdog
	client_fd = conf.client
	host = sprotoloader.load(1):host "package"
	send_request = host:attach(sprotoloader.load(2))
	skynet.fork(function()
		while client_fd do
			send_package(send_request "heartbeat")
			skynet.sleep(500)
		end
	end)
	skynet.call(conf.gate, "lua", "forward", client_fd)
end

function CMD.disconnect()
	client_fd = nil
	skynet.exit()
end

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd, ...)
		local f = assert(CMD[cmd], cmd)
		skynet.retpack(f(...))
	end)
end)
