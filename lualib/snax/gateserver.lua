-- snax/gateserver.lua: the skeleton of a TCP gate service. It owns the
-- listening socket, the table of client connections and the 2-byte
-- big-endian packet framing (skynet.netpack); the service that requires it
-- supplies a handler table that decides what a connection and a packet mean.
--
--   gateserver.start(handler)     turns the calling service into a gate
--   gateserver.openclient(fd)     starts reading a connection (after connect)
--   gateserver.closeclient(fd)    closes a connection
--
-- handler fields:
--   connect(fd, "ip:port")   required; a client arrived (not reading yet)
--   message(fd, msg, sz)     required; one packet, msg is a heap buffer the
--                            handler now owns (free it, redirect it, or
--                            turn it into a string with netpack.tostring)
--   open(source, conf)       the "open" command succeeded; its result is
--                            the command's result
--   disconnect(fd)           the connection is gone (peer or local close)
--   error(fd, text)          a socket error; disconnect follows
--   warning(fd, kbytes)      the send buffer of fd is large (0 = drained)
--   command(cmd, source, ...) every "lua" command other than open/close
--   embed                    true: do not call skynet.start (the caller is
--                            already inside its own start function)
--
-- "open" takes { address = "0.0.0.0", port, maxclient = 1024, nodelay,
-- backlog }; address and port are rewritten to what was really bound (port
-- 0 picks a free one) before handler.open sees the table.
--
-- Every accepted socket that passed the maxclient check is tracked until
-- its single CLOSE event arrives, and a socket the peer closed is closed
-- here after handler.disconnect returns, so neither a vanished client nor a
-- handler that forgets to call closeclient leaves a socket behind.

local skynet = require "skynet"
local netpack = require "skynet.netpack"
local driver = require "skynet.socketdriver"

local gateserver = {}

-- fd -> "open"    reading or waiting for openclient
--       "closing" we asked the socket server to close it; its CLOSE is due
-- A peer-closed socket is closed and forgotten at once, so it has no state.
local clients = {}
local client_count = 0

local listen_id		-- the listening socket, nil while not listening
local packets		-- the netpack queue; netpack.filter may replace it

-- netpack queues hold C-side buffers and have no finaliser of their own:
-- free whatever is left when this service's state is collected.
local queue_guard = setmetatable({}, {
	__gc = function()
		netpack.clear(packets)
	end,
})
gateserver._queue_guard = queue_guard	-- keep it reachable until the VM closes

local function forget(fd)
	if clients[fd] then
		clients[fd] = nil
		client_count = client_count - 1
	end
end

function gateserver.openclient(fd)
	if clients[fd] == "open" then
		driver.start(fd)
	end
end

function gateserver.closeclient(fd)
	if clients[fd] == "open" then
		-- the CLOSE event this raises finishes the bookkeeping
		clients[fd] = "closing"
		driver.close(fd)
	end
end

function gateserver.start(handler)
	assert(handler.message, "gateserver needs handler.message")
	assert(handler.connect, "gateserver needs handler.connect")

	local maxclient = 1024
	local nodelay = false
	-- the coroutine running "open" while it waits for the listen confirmation
	local listen_waiter

	local command = {}

	function command.open(source, conf)
		assert(listen_id == nil, "gate is already listening")
		local address = conf.address or "0.0.0.0"
		local port = conf.port
		maxclient = conf.maxclient or 1024
		nodelay = conf.nodelay and true or false
		skynet.error("Listen on", address, port)
		local id = driver.listen(address, port, conf.backlog)
		-- the socket server confirms the listen with an "init" event that
		-- carries the address really bound; wait for it before accepting
		local waiter = { co = coroutine.running(), id = id }
		listen_waiter = waiter
		skynet.wait(waiter.co)
		listen_waiter = nil
		listen_id = id
		conf.address, conf.port = waiter.address, waiter.port
		driver.start(id)
		if handler.open then
			return handler.open(source, conf)
		end
	end

	function command.close()
		assert(listen_id, "gate is not listening")
		driver.close(listen_id)
	end

	-- hands one packet to the handler, or frees it when its connection is
	-- no longer being served (a packet can still be queued behind a close)
	local function deliver(fd, msg, sz)
		if clients[fd] == "open" then
			handler.message(fd, msg, sz)
		else
			skynet.error(string.format("Drop message from fd (%d) : %d bytes", fd, sz))
			skynet.trash(msg, sz)
		end
	end

	-- Drains the queue one packet per coroutine: before handling a packet it
	-- forks the next pump, so a handler that yields (a request waiting for an
	-- agent) never holds up the packets queued behind it.
	local function pump()
		local fd, msg, sz = netpack.pop(packets)
		if fd then
			skynet.fork(pump)
			deliver(fd, msg, sz)
		end
	end

	local function notify_disconnect(fd)
		if handler.disconnect then
			local ok, err = pcall(handler.disconnect, fd)
			if not ok then
				skynet.error(string.format("gateserver disconnect handler (fd = %d) error: %s", fd, err))
			end
		end
	end

	local event = {}

	event.data = deliver
	event.more = pump

	function event.open(fd, addr)
		if client_count >= maxclient then
			skynet.error(string.format("Refuse connection from %s (fd = %d): %d clients already (maxclient)",
				addr, fd, client_count))
			-- never tracked, so its CLOSE event is ignored below
			driver.close(fd)
			return
		end
		clients[fd] = "open"
		client_count = client_count + 1
		if nodelay then
			driver.nodelay(fd)
		end
		local ok, err = pcall(handler.connect, fd, addr)
		if not ok then
			-- an unstarted socket never reports its peer leaving: close it
			skynet.error(string.format("gateserver connect handler (fd = %d) error: %s", fd, err))
			gateserver.closeclient(fd)
		end
	end

	function event.close(fd)
		if fd == listen_id then
			listen_id = nil
			return
		end
		local state = clients[fd]
		if state == nil then
			return	-- refused, or already finished
		end
		if state == "open" then
			-- the peer hung up. Tell the handler while the fd is still
			-- known, then release the half-closed socket ourselves unless
			-- the handler already did (a failing handler must not leak it).
			notify_disconnect(fd)
			if clients[fd] == "open" then
				driver.close(fd)
			end
			forget(fd)
		else
			-- our own close completed
			forget(fd)
			notify_disconnect(fd)
		end
	end

	function event.error(fd, text)
		if fd == listen_id then
			skynet.error("gateserver accept error:", text)
			return
		end
		if clients[fd] == "open" then
			-- drop it; the CLOSE raised by the shutdown calls disconnect
			clients[fd] = "closing"
			driver.shutdown(fd)
			if handler.error then
				handler.error(fd, text)
			end
		end
	end

	function event.warning(fd, kbytes)
		if handler.warning then
			handler.warning(fd, kbytes)
		end
	end

	function event.init(id, addr, port)
		local waiter = listen_waiter
		if waiter and waiter.id == id and waiter.co then
			waiter.address, waiter.port = addr, port
			local co = waiter.co
			waiter.co = nil
			skynet.wakeup(co)
		end
		-- "start" confirmations of client sockets need nothing
	end

	skynet.register_protocol {
		name = "socket",
		id = skynet.PTYPE_SOCKET,
		unpack = function(msg, sz)
			return netpack.filter(packets, msg, sz)
		end,
		dispatch = function(_, _, queue, kind, ...)
			packets = queue
			if kind then
				event[kind](...)
			end
		end,
	}

	local function serve_commands()
		skynet.dispatch("lua", function(_, source, cmd, ...)
			local f = command[cmd]
			if f then
				skynet.ret(skynet.pack(f(source, ...)))
			else
				skynet.ret(skynet.pack(handler.command(cmd, source, ...)))
			end
		end)
	end

	if handler.embed then
		serve_commands()
	else
		skynet.start(serve_commands)
	end
end

return gateserver
