-- cmaster: the master of a harbor group, run by the node whose config sets
-- `standalone`. Every cslave connects here, says who it is (H), and learns
-- which slaves to link to (W, C). Global names are registered here (R) and
-- spread to every slave (N); a slave asks about names it does not know (Q).
-- When a slave's connection drops, every slave hears D.
local skynet = require "skynet"
local socket = require "skynet.socket"
local packet = require "skynet.harborpacket"

-- harbor id -> { fd = socket (0 once down), addr = its harbor address }
local slaves = {}
-- global name -> handle (the first registration wins)
local names = {}

local function broadcast(...)
	local bytes = packet.pack(...)
	for _, s in pairs(slaves) do
		if s.fd ~= 0 then
			socket.write(s.fd, bytes)
		end
	end
end

-- H id address: tell the live slaves to link to the newcomer and the newcomer
-- how many links to wait for.
local function welcome(fd)
	local t, id, addr = packet.read(fd)
	assert(t == "H", "Invalid handshake type " .. t)
	assert(id ~= 0, "Invalid slave id 0")
	local known = slaves[id]
	if known then
		error(string.format("Slave %d already register on %s", id, known.addr))
	end
	local live = 0
	local connect = packet.pack("C", id, addr)
	for _, s in pairs(slaves) do
		if s.fd ~= 0 then
			socket.write(s.fd, connect)
			live = live + 1
		end
	end
	packet.write(fd, "W", live)
	slaves[id] = { fd = fd, addr = addr }
	return id, addr
end

local request = {}

function request.R(fd, name, handle)
	assert(type(handle) == "number", "Invalid request")
	if names[name] == nil then
		names[name] = handle
	end
	broadcast("N", name, handle)
end

function request.Q(fd, name)
	local handle = names[name]
	if handle then
		packet.write(fd, "N", name, handle)
	end
end

local function serve(fd)
	local t, name, handle = packet.read(fd)
	local f = request[t]
	if f then
		f(fd, name, handle)
	else
		skynet.error("Invalid slave message type " .. t)
	end
end

local function watch(id, addr)
	local fd = slaves[id].fd
	skynet.error(string.format("Harbor %d (fd=%d) report %s", id, fd, addr))
	while pcall(serve, fd) do end
	skynet.error("slave " .. id .. " is down")
	slaves[id].fd = 0
	broadcast("D", id)
	socket.close(fd)
end

skynet.start(function()
	local addr = skynet.getenv "standalone"
	skynet.error("master listen socket " .. tostring(addr))
	local listener = socket.listen(addr)
	socket.start(listener, function(fd, from)
		skynet.error("connect from " .. from .. " " .. fd)
		socket.start(fd)
		local ok, id, slave_addr = pcall(welcome, fd)
		if ok then
			skynet.fork(watch, id, slave_addr)
		else
			skynet.error(string.format("disconnect fd = %d, error = %s", fd, id))
			socket.close(fd)
		end
	end)
end)
