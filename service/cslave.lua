-- cslave (.cslave on a node with harbor id 1..255): this node's member of the
-- harbor group. It joins the master (cmaster), opens or accepts one socket to
-- every other slave and hands each to the native `harbor` router, which then
-- carries the messages. It keeps the global name table and serves the calls of
-- lualib/skynet/harbor.lua (REGISTER, QUERYNAME, LINK, CONNECT, LINKMASTER).
local skynet = require "skynet"
local socket = require "skynet.socket"
local socketdriver = require "skynet.socketdriver"
local packet = require "skynet.harborpacket"
require "skynet.manager"

local router
-- harbor id -> socket id while linked, false once it went down
local links = {}
-- harbor id -> address to connect to, held until our own handshake is done
local deferred = {}
-- global name -> handle
local names = {}
-- global name -> responses waiting for it
local name_waiters = {}
-- harbor id -> responses waiting for it to be linked (CONNECT) or to go down (LINK)
local link_waiters = {}
-- responses waiting for the master to go down
local master_waiters = {}

local function answer_all(list, ...)
	for _, reply in ipairs(list) do
		reply(true, ...)
	end
end

local function link_changed(id)
	local waiters = link_waiters[id]
	if waiters then
		link_waiters[id] = nil
		answer_all(waiters)
	end
end

local function name_known(name)
	local waiters = name_waiters[name]
	if waiters then
		name_waiters[name] = nil
		answer_all(waiters, names[name])
	end
end

-- The router binds a name to the source of its N command.
local function tell_router(name, handle)
	skynet.redirect(router, handle, "harbor", 0, "N " .. name)
end

local function hand_over(fd, id, how)
	links[id] = fd
	link_changed(id)
	socket.abandon(fd)
	skynet.send(router, "harbor", string.format("%s %d %d", how, fd, id))
end

local function connect(id, address)
	if links[id] ~= nil then
		return
	end
	local ok, err = pcall(function()
		local fd = assert(socket.open(address), "Can't connect to " .. address)
		socketdriver.nodelay(fd)
		skynet.error(string.format("Connect to harbor %d (fd=%d), %s", id, fd, address))
		hand_over(fd, id, "S")
	end)
	if not ok then
		skynet.error(err)
	end
end

-- Our handshake is done: link to the slaves the master announced meanwhile
-- and give the router the names learnt so far.
local function ready()
	local pending = deferred
	deferred = nil
	for id, address in pairs(pending) do
		connect(id, address)
	end
	for name, handle in pairs(names) do
		tell_router(name, handle)
	end
end

local from_master = {}

function from_master.C(id, address)
	if deferred then
		deferred[id] = address
	else
		connect(id, address)
	end
end

function from_master.N(name, handle)
	names[name] = handle
	name_known(name)
	if not deferred then
		tell_router(name, handle)
	end
end

-- A slave left the group. A link to it belongs to the router, which reports D
-- itself when the link drops; waiters are answered then, when a send to that
-- harbor is sure to bounce.
function from_master.D(id)
	if not links[id] then
		links[id] = false
		link_changed(id)
	end
end

local function listen_master(master)
	while true do
		local ok, t, a, b = pcall(packet.read, master)
		if not ok then
			break
		end
		local f = from_master[t]
		if f then
			f(a, b)
		end
	end
	skynet.error("Master disconnect")
	answer_all(master_waiters)
	socket.close(master)
end

-- Another slave connected to us: its first byte is its harbor id.
local function accept(fd)
	socket.start(fd)
	local byte = socket.read(fd, 1)
	if not byte then
		skynet.error(string.format("Connection (fd =%d) closed", fd))
		socket.close(fd)
		return
	end
	local id = string.byte(byte)
	if links[id] ~= nil then
		skynet.error(string.format("Slave %d exist (fd =%d)", id, fd))
		socket.close(fd)
		return
	end
	skynet.error(string.format("Harbor %d connected (fd = %d)", id, fd))
	hand_over(fd, id, "A")
end

local function raw_protocol(name, id)
	skynet.register_protocol {
		name = name,
		id = id,
		pack = function(...) return ... end,
		unpack = skynet.tostring,
	}
end
raw_protocol("harbor", skynet.PTYPE_HARBOR)
raw_protocol("text", skynet.PTYPE_TEXT)

-- Notifications from the router: Q name (unknown global name), D id (link down).
local function router_notice(master)
	return function(_, _, text)
		local t, arg = text:sub(1, 1), text:sub(3)
		if t == "Q" then
			local handle = names[arg]
			if handle then
				tell_router(arg, handle)
			else
				packet.write(master, "Q", arg)
			end
		elseif t == "D" then
			local id = tonumber(arg)
			if links[id] then
				link_changed(id)
			end
			links[id] = false
		else
			skynet.error("Unknown command ", text)
		end
	end
end

local request = {}

function request.REGISTER(master, name, handle)
	assert(names[name] == nil)
	names[name] = handle
	name_known(name)
	packet.write(master, "R", name, handle)
	tell_router(name, handle)
end

local function wait_link(id)
	local waiters = link_waiters[id]
	if not waiters then
		waiters = {}
		link_waiters[id] = waiters
	end
	table.insert(waiters, skynet.response())
end

-- returns when harbor `id` goes down (at once if it is not linked)
function request.LINK(_, id)
	if links[id] then
		wait_link(id)
	else
		skynet.ret()
	end
end

-- returns once harbor `id` is linked
function request.CONNECT(_, id)
	if links[id] then
		skynet.ret()
	else
		wait_link(id)
	end
end

function request.LINKMASTER()
	table.insert(master_waiters, skynet.response())
end

function request.QUERYNAME(master, name)
	if name:sub(1, 1) == "." then
		skynet.ret(skynet.pack(skynet.localname(name)))
		return
	end
	local handle = names[name]
	if handle then
		skynet.ret(skynet.pack(handle))
		return
	end
	local waiters = name_waiters[name]
	if not waiters then
		waiters = {}
		name_waiters[name] = waiters
		packet.write(master, "Q", name)
	end
	table.insert(waiters, skynet.response())
end

-- Accepts the `expected` slaves that joined before us, then returns.
local function accept_earlier(listener, expected)
	if expected == 0 then
		return
	end
	local me = coroutine.running()
	socket.start(listener, function(fd, addr)
		skynet.error(string.format("New connection (fd = %d, %s)", fd, addr))
		socketdriver.nodelay(fd)
		if pcall(accept, fd) then
			local n = 0
			for _ in pairs(links) do
				n = n + 1
			end
			if n >= expected then
				skynet.wakeup(me)
			end
		end
	end)
	skynet.wait(me)
end

skynet.start(function()
	local master_addr = skynet.getenv "master"
	local harbor_id = tonumber(skynet.getenv "harbor")
	local address = assert(skynet.getenv "address")
	local listener = socket.listen(address)
	skynet.error("slave connect to master " .. tostring(master_addr))
	local master = assert(socket.open(master_addr), "Can't connect to master")

	skynet.dispatch("lua", function(_, _, cmd, ...)
		local f = assert(request[cmd])
		f(master, ...)
	end)
	skynet.dispatch("text", router_notice(master))

	router = assert(skynet.launch("harbor", harbor_id, skynet.self()))

	packet.write(master, "H", harbor_id, address)
	local t, expected = packet.read(master)
	assert(t == "W" and type(expected) == "number", "slave shakehand failed")
	skynet.error(string.format("Waiting for %d harbors", expected))
	skynet.fork(listen_master, master)
	accept_earlier(listener, expected)
	socket.close(listener)
	skynet.error("Shakehand ready")
	skynet.fork(ready)
end)
