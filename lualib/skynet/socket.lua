-- skynet.socket: the coroutine-blocking socket API a service uses.
--
-- This module owns three things:
--   * the table of socket objects this service currently holds (by socket id),
--   * the PTYPE_SOCKET protocol handler, which turns socket-server events
--     (spec: socket.md §2) into receive-buffer pushes and coroutine wake-ups,
--   * the public calls built on top: TCP open/listen/start/read*/close, UDP
--     objects, and the stateless operations re-exported from skynet.socketdriver.
--
-- A socket object lets at most one coroutine wait on it at a time (`waiter`).
-- What that coroutine waits for is kept in `want`:
--   number  at least that many bytes buffered (0: any data at all)
--   string  a line separator showing up in the buffer
--   true    the peer closing the connection (readall)
--   false   nothing yet (fresh object; connect/listen waits use CONNECT/ERROR)
-- Events that do not satisfy the waiter only fill the buffer.

local driver = require "skynet.socketdriver"
local skynet = require "skynet"
local core = require "skynet.core"

local assert = assert
local type = type
local pairs = pairs
local format = string.format
local running = coroutine.running

-- Past this many buffered bytes we stop reading a socket until its reader shows
-- up again, so a slow consumer cannot make the service hold unbounded data.
local HIGH_WATER = 128 * 1024

local socket = {}

-- Socket objects by id. Closing the Lua state (the service exits) closes every
-- socket still held, so the socket server stops feeding a dead service.
local held = setmetatable({}, {
	__gc = function(t)
		for id in pairs(t) do
			driver.close(id)
			t[id] = nil
		end
	end,
})

-- One-shot functions to run when a socket's CLOSE event arrives (socket.onclose).
local close_hooks = {}

local function lookup(id)
	return assert(held[id], "socket: not a socket of this service")
end

-- Resumes the coroutine waiting on `obj`, if any.
local function rouse(obj)
	local co = obj.waiter
	if co then
		obj.waiter = nil
		skynet.wakeup(co)
	end
end

-- Stops reading `obj` at the socket server. `paused` is nil while reading, true
-- once paused here, and false when the socket is being closed (then it must be
-- neither paused nor resumed).
local function throttle(obj, size)
	if obj.paused ~= nil then
		return
	end
	if size then
		skynet.error(format("Pause socket (%d) size : %d", obj.id, size))
	else
		skynet.error(format("Pause socket (%d)", obj.id))
	end
	driver.pause(obj.id)
	obj.paused = true
	-- Events read before the pause took effect may already sit in our mailbox;
	-- let them be handled before the caller carries on.
	skynet.yield()
end

-- Suspends the running coroutine until an event for `obj` wakes it. A paused
-- socket is resumed first: somebody is reading again.
local function park(obj)
	assert(not obj.waiter, "socket: another coroutine is already waiting on this socket")
	local me = running()
	obj.waiter = me
	if obj.paused then
		skynet.error(format("Resume socket (%d)", obj.id))
		driver.start(obj.id)
		skynet.wait(me)
		obj.paused = nil
	else
		skynet.wait(me)
	end
	-- Whatever we waited for is settled (or abandoned with the socket).
	obj.want = nil
	-- A close() issued meanwhile waits until the reader has taken the buffer.
	local closer = obj.closer
	if closer then
		skynet.wakeup(closer)
	end
end

---------------------------------------------------------------------------
-- socket-server events, indexed by the event number from socketdriver.unpack

local on_event = {}

-- 1 DATA: bytes for a TCP socket (a heap buffer we now own)
on_event[1] = function(id, size, ptr)
	local obj = held[id]
	if not obj then
		skynet.error("socket: drop package from " .. id)
		driver.drop(ptr, size)
		return
	end
	local total = driver.push(obj.buffer, obj.pool, ptr, size)
	local want = obj.want
	if type(want) == "number" then
		-- A sized read asked for this data, so the buffer limit does not apply.
		if total < want then
			return
		end
	else
		local cap = obj.cap
		if cap and total > cap then
			skynet.error(format("socket buffer overflow: fd=%d size=%d", id, total))
			driver.close(id)
			return
		end
		if want == true then
			-- readall waits for the peer's close; pausing would hide that close
			-- from us, so keep reading whatever the size.
			return
		end
		if type(want) ~= "string" then
			-- nobody is reading: just keep the buffer from growing without bound
			if total > HIGH_WATER then
				throttle(obj, total)
			end
			return
		end
		if not driver.readline(obj.buffer, nil, want) then
			return
		end
	end
	-- the waiting reader is satisfied
	obj.want = nil
	if total > HIGH_WATER then
		throttle(obj, total)
	end
	rouse(obj)
end

-- 2 CONNECT: a connect/listen/start/bind completed. For a listening socket the
-- text is the local address and `ud` the bound port.
on_event[2] = function(id, ud, text)
	local obj = held[id]
	-- Resuming a paused socket announces it again; only the first notice counts.
	if not obj or obj.connected then
		return
	end
	if obj.listening then
		obj.addr = text
		obj.port = ud
	end
	obj.connected = true
	rouse(obj)
end

-- 3 CLOSE: raised once per socket, by our close or by the peer's EOF
on_event[3] = function(id)
	local obj = held[id]
	if obj then
		obj.connected = false
		rouse(obj)
	else
		-- not ours any more (abandoned, or never adopted): free the id
		driver.close(id)
	end
	local hook = close_hooks[id]
	if hook then
		close_hooks[id] = nil
		hook(id)
	end
end

-- 4 ACCEPT: a listening socket produced connection `newid`
on_event[4] = function(id, newid, peer)
	local obj = held[id]
	local accept = obj and obj.callback
	if not accept then
		driver.close(newid)
		return
	end
	accept(newid, peer)
end

-- 5 ERROR
on_event[5] = function(id, _, err)
	local obj = held[id]
	if not obj then
		driver.shutdown(id)
		skynet.error("socket: error on unknown", id, err)
		return
	end
	if obj.callback and not obj.connecting then
		-- listening and UDP sockets survive errors (e.g. out of fds on accept)
		skynet.error("socket: accept error:", err)
		return
	end
	if obj.connected then
		skynet.error("socket: error on", id, err)
	elseif obj.connecting then
		-- the pending open/start reports this text as its failure
		obj.connecting = err
	end
	obj.connected = false
	driver.shutdown(id)
	rouse(obj)
end

-- 6 UDP: one datagram, plus the sender's binary address
on_event[6] = function(id, size, ptr, from)
	local obj = held[id]
	local deliver = obj and obj.callback
	if not deliver then
		skynet.error("socket: drop udp package from " .. id)
		driver.drop(ptr, size)
		return
	end
	local payload = skynet.tostring(ptr, size)
	core.trash(ptr, size)
	deliver(payload, from)
end

local function log_backlog(id, kbytes)
	skynet.error(format("WARNING: %d K bytes need to send out (fd = %d)", kbytes, id))
end

-- 7 WARNING: the send queue grew past a threshold (kbytes), or drained (0)
on_event[7] = function(id, kbytes)
	local obj = held[id]
	if obj then
		(obj.on_warning or log_backlog)(id, kbytes)
	end
end

skynet.register_protocol {
	name = "socket",
	id = skynet.PTYPE_SOCKET,
	unpack = driver.unpack,
	dispatch = function(_, _, event, ...)
		local handle = on_event[event]
		if handle then
			handle(...)
		end
	end,
}

---------------------------------------------------------------------------
-- TCP

-- Adopts socket `id` (whose open/start/bind request is already on its way) and
-- waits until the socket server reports it usable. With `on_accept` the object
-- is a listening socket that hands new connections to that function instead of
-- buffering data. Returns id, or nil and the error text.
local function await_ready(id, on_accept)
	assert(not close_hooks[id], "socket has onclose callback")
	local prev = held[id]
	-- a listening socket is re-adopted by start(); anything else is a misuse
	if prev and not prev.listening then
		error("socket is not closed")
	end
	local buf
	if not on_accept then
		buf = driver.buffer()
	end
	local obj = {
		id = id,
		protocol = "TCP",
		buffer = buf,
		pool = buf and {},
		callback = on_accept,
		connected = false,
		connecting = true,
		want = false,
	}
	held[id] = obj
	park(obj)
	local outcome = obj.connecting
	obj.connecting = nil
	if obj.connected then
		return id
	end
	held[id] = nil
	if outcome == true then
		-- closed before it ever came up, without an error text
		outcome = "socket closed"
	end
	return nil, outcome
end

function socket.open(addr, port)
	local id = driver.connect(addr, port)
	if id < 0 then
		-- rejected synchronously (the driver logged why); no event will follow
		return nil, "Invalid addr"
	end
	return await_ready(id)
end

function socket.bind(os_fd)
	return await_ready(driver.bind(os_fd))
end

function socket.stdin()
	return socket.bind(0)
end

-- Takes ownership of `id` (accepted elsewhere, handed over, or our own listening
-- socket when `on_accept` is given) and starts reading it.
function socket.start(id, on_accept)
	driver.start(id)
	return await_ready(id, on_accept)
end

function socket.pause(id)
	local obj = held[id]
	if obj then
		throttle(obj)
	end
end

-- Closes at once, dropping unsent data. The object stays until socket.close.
function socket.shutdown(id)
	if held[id] then
		driver.shutdown(id)
	end
end

-- Closes an id this service never adopted (e.g. an accepted id it rejects).
function socket.close_fd(id)
	assert(held[id] == nil, "Use socket.close instead")
	driver.close(id)
end

function socket.close(id)
	local obj = held[id]
	if not obj then
		return
	end
	driver.close(id)
	if obj.connected then
		obj.paused = false
		if obj.waiter then
			-- Another coroutine is blocked reading: it must get what is buffered
			-- before the object goes away. It wakes us after the CLOSE reached it.
			assert(not obj.closer, "socket: closed twice concurrently")
			local me = running()
			obj.closer = me
			skynet.wait(me)
		else
			-- wait for the CLOSE event, so the id is really released
			park(obj)
		end
		obj.connected = false
	end
	held[id] = nil
end

-- Reads exactly `sz` bytes, or (without `sz`) whatever is available, waiting if
-- there is nothing. On a closed socket returns false and the unread rest.
function socket.read(id, sz)
	local obj = lookup(id)
	local buf, pool = obj.buffer, obj.pool
	if sz == nil then
		local got = driver.readall(buf, pool)
		if got ~= "" then
			return got
		end
		if not obj.connected then
			return false, got
		end
		assert(not obj.want, "socket: already reading")
		obj.want = 0
		park(obj)
		got = driver.readall(buf, pool)
		if got == "" then
			return false, got
		end
		return got
	end
	if sz == 0 then
		return ""
	end
	local got = driver.pop(buf, pool, sz)
	if got then
		return got
	end
	if obj.closer or not obj.connected then
		return false, driver.readall(buf, pool)
	end
	assert(not obj.want, "socket: already reading")
	obj.want = sz
	park(obj)
	got = driver.pop(buf, pool, sz)
	if got then
		return got
	end
	return false, driver.readall(buf, pool)
end

-- Reads until the peer closes; returns everything (false when a closed socket
-- had nothing left).
function socket.readall(id)
	local obj = lookup(id)
	if not obj.connected then
		local rest = driver.readall(obj.buffer, obj.pool)
		return rest ~= "" and rest
	end
	assert(not obj.want, "socket: already reading")
	obj.want = true
	park(obj)
	return driver.readall(obj.buffer, obj.pool)
end

-- Reads up to the separator (default "\n"), which is consumed but not returned.
function socket.readline(id, sep)
	sep = sep or "\n"
	local obj = lookup(id)
	local buf, pool = obj.buffer, obj.pool
	local line = driver.readline(buf, pool, sep)
	if line then
		return line
	end
	if not obj.connected then
		return false, driver.readall(buf, pool)
	end
	assert(not obj.want, "socket: already reading")
	obj.want = sep
	park(obj)
	if obj.connected then
		return driver.readline(buf, pool, sep)
	end
	return false, driver.readall(buf, pool)
end

-- Waits for any new data (or the close); returns whether still connected.
function socket.block(id)
	local obj = held[id]
	if not obj or not obj.connected then
		return false
	end
	assert(not obj.want, "socket: already reading")
	obj.want = 0
	park(obj)
	return obj.connected
end

socket.write = assert(driver.send)
socket.lwrite = assert(driver.lsend)
socket.header = assert(driver.header)

function socket.invalid(id)
	return held[id] == nil
end

-- nil for an unknown id; otherwise true once neither up nor coming up.
function socket.disconnected(id)
	local obj = held[id]
	if obj then
		return not (obj.connected or obj.connecting)
	end
end

-- Binds and listens; returns id, local ip, port (the port is the real one when
-- 0 was asked for). Connections are accepted only after socket.start(id, f).
function socket.listen(host, port, backlog)
	local id = driver.listen(host, port, backlog)
	assert(held[id] == nil, "socket: listen id already in use")
	local obj = { id = id, connected = false, listening = true }
	held[id] = obj
	park(obj)
	return id, obj.addr, obj.port
end

-- Forgets `id` without closing it, so another service can socket.start it.
-- A coroutine blocked on it wakes up as if it had been closed.
function socket.abandon(id)
	local obj = held[id]
	if obj then
		obj.connected = false
		rouse(obj)
		close_hooks[id] = nil
		held[id] = nil
	end
end

-- Caps the bytes buffered while no sized read is pending; past it the socket is
-- closed (a defence against peers that never send the expected separator).
function socket.limit(id, limit)
	lookup(id).cap = limit
end

---------------------------------------------------------------------------
-- UDP: no buffering, every datagram goes straight to the callback

local function adopt_udp(id, callback)
	assert(not held[id], "socket is not closed")
	held[id] = {
		id = id,
		protocol = "UDP",
		connected = true,
		callback = callback,
	}
end

function socket.udp(callback, host, port)
	local id = driver.udp(host, port)
	adopt_udp(id, callback)
	return id
end

function socket.udp_connect(id, addr, port, callback)
	local obj = held[id]
	if obj then
		assert(obj.protocol == "UDP", "socket: not an udp socket")
		if callback then
			obj.callback = callback
		end
	else
		adopt_udp(id, callback)
	end
	driver.udp_connect(id, addr, port)
end

function socket.udp_listen(addr, port, callback)
	local id = driver.udp_listen(addr, port)
	adopt_udp(id, callback)
	return id
end

function socket.udp_dial(addr, port, callback)
	local id = driver.udp_dial(addr, port)
	adopt_udp(id, callback)
	return id
end

socket.sendto = assert(driver.udp_send)
socket.udp_address = assert(driver.udp_address)
socket.netstat = assert(driver.info)
socket.resolve = assert(driver.resolve)

---------------------------------------------------------------------------
-- notifications

-- callback(id, kbytes) replaces the default log line for send-queue warnings.
function socket.warning(id, callback)
	lookup(id).on_warning = callback
end

function socket.onclose(id, callback)
	close_hooks[id] = callback
end

return socket
