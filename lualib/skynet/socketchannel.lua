-- skynet.socketchannel: a reconnecting client connection for request/response
-- protocols. The redis, mysql and mongo clients and clustersender are built on it.
--
-- This module owns the channel object: connecting (primary host, then backup
-- hosts, each followed by the optional auth step), reconnecting on demand,
-- matching responses to the coroutines that sent the requests, and turning any
-- socket failure inside a transaction into an error raised in the requester.
--
-- Responses are matched in one of two modes:
--   order mode    (desc.response absent): the server answers in request order.
--                 Every request brings its own reader function; a dispatcher
--                 coroutine runs the readers one after the other.
--   session mode  (desc.response given): desc.response(sock) reads any one
--                 response and returns session, ok, data[, more]; a request
--                 brings the session it waits for.
-- A reader that returns a true `more` (padding) says "another part follows"; the
-- parts are delivered together as an array.
--
-- Failures: socketchannel.error (tostring "[Error: socket]") is raised for a
-- broken or refused connection; errors raised by a reader reach the requester as
-- error messages; a reader returning false, msg makes the request raise msg.
--
-- Fields __host and __port are read by users (clustersender); the rest is private.

local skynet = require "skynet"
local socket = require "skynet.socket"
local socketdriver = require "skynet.socketdriver"

local assert = assert
local error = error
local ipairs = ipairs
local pairs = pairs
local pcall = pcall
local setmetatable = setmetatable
local type = type
local format = string.format
local tremove = table.remove
local running = coroutine.running

local socketchannel = {}

local socket_error = setmetatable({}, {
	__tostring = function()
		return "[Error: socket]"
	end,
})
socketchannel.error = socket_error

---------------------------------------------------------------------------
-- the connection object handed to readers and auth: { fd } with read/readline
-- that raise socket_error instead of returning false

local function raising(op)
	return function(conn, ...)
		local got = op(conn[1], ...)
		if not got then
			error(socket_error)
		end
		return got
	end
end

local conn_methods = {
	read = raising(socket.read),
	readline = raising(socket.readline),
}

-- A connection object that is dropped without close still releases its socket.
local function release_conn(conn)
	local fd = conn[1]
	conn[1] = false
	if fd then
		socket.shutdown(fd)
	end
end

local default_conn_meta = { __index = conn_methods, __gc = release_conn }

---------------------------------------------------------------------------
-- channel internals

local channel = {}
local channel_meta = { __index = channel }

-- Queued in order mode to tell a dispatcher of an old connection to stop.
local STOP = setmetatable({}, { __name = "socketchannel.stop" })

function socketchannel.channel(desc)
	local conn_meta = default_conn_meta
	if desc.socket_read or desc.socket_readline then
		-- the protocol supplies its own framing for reads
		conn_meta = {
			__index = {
				read = desc.socket_read or conn_methods.read,
				readline = desc.socket_readline or conn_methods.readline,
			},
			__gc = release_conn,
		}
	end
	local self = {
		__host = assert(desc.host, "socketchannel: host required"),
		__port = desc.port,
		_backup = desc.backup,
		_auth = desc.auth,
		_reader = desc.response,	-- set: session mode
		-- order mode: array of { reader, co } (or STOP);
		-- session mode: session -> co
		_pending = {},
		_status = {},	-- co -> ok flag (or socket_error) of its finished transaction
		_value = {},	-- co -> data / error message of its finished transaction
		_parts = {},	-- co -> parts of a multi-part response received so far
		_joiners = false,	-- coroutines waiting for a connect in progress
		_sock = false,	-- the connection object, false while not connected
		_closed = false,
		_auth_co = false,	-- coroutine running the auth function
		_idle = false,	-- order-mode dispatcher parked for lack of requests
		_dispatcher = false,
		_nodelay = desc.nodelay,
		_on_overload = desc.overload,
		_overloaded = false,
		_conn_meta = conn_meta,
	}
	return setmetatable(self, channel_meta)
end

local function wake_idle_dispatcher(self)
	local idle = self._idle
	if idle then
		self._idle = false
		skynet.wakeup(idle)
	end
end

-- Forgets the current connection and closes its socket. Never raises.
local function drop_socket(self)
	local conn = self._sock
	if not conn then
		return
	end
	self._sock = false
	-- an idle order-mode dispatcher must notice the connection is gone
	wake_idle_dispatcher(self)
	pcall(socket.close, conn[1])
end

-- Completes the transaction of `co` normally.
local function deliver(self, co, status, value)
	local parts = self._parts[co]
	self._parts[co] = nil
	if status and parts then
		parts[#parts + 1] = value
		value = parts
	end
	self._status[co] = status
	self._value[co] = value
	skynet.wakeup(co)
end

-- Completes the transaction of `co` with a socket failure (msg optional).
local function fail(self, co, msg)
	self._parts[co] = nil
	self._status[co] = socket_error
	self._value[co] = msg
	skynet.wakeup(co)
end

-- Fails every transaction still waiting on this channel.
local function fail_all(self, msg)
	local pending = self._pending
	self._pending = {}
	if self._reader then
		for _, co in pairs(pending) do
			fail(self, co, msg)
		end
	else
		for _, entry in ipairs(pending) do
			if entry ~= STOP then
				fail(self, entry[2], msg)
			end
		end
	end
end

-- Registers the running coroutine as waiting for `how` (a reader function in
-- order mode, a session in session mode).
local function enqueue(self, how, co)
	if self._reader then
		self._pending[how] = co
	else
		local pending = self._pending
		pending[#pending + 1] = { how, co }
		wake_idle_dispatcher(self)
	end
end

local function await_reply(self, co)
	skynet.wait(co)
	local status, value = self._status[co], self._value[co]
	self._status[co] = nil
	self._value[co] = nil
	if status == socket_error then
		error(value or socket_error)
	end
	-- a reader answering false, msg fails the request with msg
	assert(status, value)
	return value
end

---------------------------------------------------------------------------
-- dispatchers: one coroutine per connection reads the responses

local function run_by_session(self)
	local read_one = self._reader
	while self._sock do
		local ok, session, status, value, more = pcall(read_one, self._sock)
		if not ok or not session then
			-- broken stream: nothing more can be matched on this connection
			drop_socket(self)
			local msg = session
			if msg == socket_error then
				msg = nil
			end
			fail_all(self, msg)
			return
		end
		local co = self._pending[session]
		if not co then
			skynet.error("socket: unknown session :", session)
		else
			if more and status then
				local parts = self._parts[co]
				if not parts then
					parts = {}
					self._parts[co] = parts
				end
				parts[#parts + 1] = value
			else
				self._pending[session] = nil
				deliver(self, co, status, value)
			end
			if not self._sock then
				-- closed while that response was being handled
				fail_all(self, "channel_closed")
				return
			end
		end
	end
end

-- Runs one order-mode reader, gathering a multi-part answer into an array.
local function read_reply(reader, conn)
	local status, value, more = reader(conn)
	if not (status and more) then
		return status, value
	end
	local parts = { value }
	repeat
		status, value, more = reader(conn)
		if not status then
			return status, value
		end
		parts[#parts + 1] = value
	until not more
	return true, parts
end

-- The next queued request, waiting for one; nil once the connection is gone.
local function next_request(self)
	while self._sock do
		local entry = tremove(self._pending, 1)
		if entry then
			return entry
		end
		local me = running()
		self._idle = me
		skynet.wait(me)
	end
end

local function run_in_order(self)
	while self._sock do
		local entry = next_request(self)
		if entry == nil or entry == STOP then
			fail_all(self, "channel_closed")
			return
		end
		local reader, co = entry[1], entry[2]
		local conn = self._sock
		if not conn then
			fail(self, co)
			fail_all(self)
			return
		end
		local ok, status, value = pcall(read_reply, reader, conn)
		if not ok then
			drop_socket(self)
			local msg = status
			if msg == socket_error then
				msg = nil
			end
			fail(self, co, msg)
			fail_all(self, msg)
			return
		end
		deliver(self, co, status, value)
		if not self._sock then
			fail_all(self, "channel_closed")
			return
		end
	end
end

-- In order mode an idle dispatcher does not read, so it would not see the peer
-- closing; the socket's close hook drops the connection for it.
local function on_peer_close(self, fd)
	local conn = self._sock
	if self._idle and conn and conn[1] == fd then
		skynet.error("socket closed by peer : ", self.__host, self.__port)
		drop_socket(self)
	end
end

local function start_dispatcher(self)
	self._dispatcher = skynet.fork(function()
		local conn = self._sock
		-- the connection may already be gone if it failed during auth
		if conn then
			if self._reader then
				pcall(run_by_session, self)
			else
				socket.onclose(conn[1], function(fd)
					on_peer_close(self, fd)
				end)
				pcall(run_in_order, self)
			end
		end
		self._dispatcher = false
	end)
end

-- Asks an order-mode dispatcher still alive from an earlier connection to quit.
local function stop_dispatcher(self)
	if not self._reader and self._dispatcher then
		local pending = self._pending
		pending[#pending + 1] = STOP
		wake_idle_dispatcher(self)
	end
end

---------------------------------------------------------------------------
-- connecting

-- Wires up a freshly opened socket: options, overload reports, dispatcher, then
-- auth. Returns "ok", "auth failed", or "again" (auth moved the channel to
-- another host and dropped this connection).
local function establish(self, fd, host, port)
	self.__host = host
	self.__port = port
	assert(not self._sock and not self._auth_co)
	stop_dispatcher(self)
	if self._nodelay then
		socketdriver.nodelay(fd)
	end

	local notify = self._on_overload
	if notify then
		local function on_warning(id, kbytes)
			local conn = self._sock
			if not conn or conn[1] ~= id then
				return
			end
			if kbytes == 0 then
				if self._overloaded then
					self._overloaded = false
					notify(false)
				end
			elseif not self._overloaded then
				self._overloaded = true
				notify(true)
			else
				skynet.error(format("WARNING: %d K bytes need to send out (fd = %d)", kbytes, id),
					self.__host, self.__port)
			end
		end
		-- a new connection has an empty send queue: end an overload reported
		-- for the previous one
		skynet.fork(on_warning, fd, 0)
		socket.warning(fd, on_warning)
	end

	while self._dispatcher do
		skynet.yield()
	end
	if not self._reader then
		-- A dispatcher that quit before ever reading leaves our STOP behind;
		-- it must not stop the new one.
		local pending = self._pending
		for i = #pending, 1, -1 do
			if pending[i] == STOP then
				tremove(pending, i)
			end
		end
	end
	self._sock = setmetatable({ fd }, self._conn_meta)
	start_dispatcher(self)

	local auth = self._auth
	if not auth then
		return "ok"
	end
	self._auth_co = running()
	local ok, err = pcall(auth, self)
	self._auth_co = false
	if not ok then
		drop_socket(self)
		if err ~= socket_error then
			skynet.error("socket: auth failed", err)
		end
		return "auth failed"
	end
	if not self._sock then
		return "again"
	end
	return "ok"
end

-- One pass over the primary host and the backups. Returns true, or false and
-- the reason.
local function connect_once(self)
	if self._closed then
		return false
	end
	local candidates, seen = {}, {}
	local function add_backups()
		local list = self._backup
		if not list then
			return
		end
		for _, b in ipairs(list) do
			local host, port
			if type(b) == "table" then
				host, port = b.host, b.port
			else
				host, port = b, self.__port
			end
			local key = host .. ":" .. port
			if not seen[key] then
				seen[key] = true
				candidates[#candidates + 1] = { host = host, port = port }
			end
		end
	end
	local function next_candidate()
		local c = tremove(candidates, 1)
		if c then
			skynet.error("socket: connect to backup host", c.host, c.port)
		end
		return c
	end

	add_backups()
	local host, port = self.__host, self.__port
	while true do
		local fd, err = socket.open(host, port)
		if fd then
			local result = establish(self, fd, host, port)
			if result == "ok" then
				return true
			elseif result == "again" then
				return connect_once(self)
			end
			-- auth failed; it may have told us about more hosts
			add_backups()
			local c = next_candidate()
			if not c then
				return false, "no more backup host"
			end
			host, port = c.host, c.port
		else
			local c = next_candidate()
			if not c then
				return false, err
			end
			host, port = c.host, c.port
		end
	end
end

-- Connects, retrying with a growing delay unless `once`. Returns the last error
-- when giving up after a single pass.
local function keep_connecting(self, once)
	local delay = 0
	while not self._closed do
		local ok, err = connect_once(self)
		if ok then
			if not once then
				skynet.error("socket: connect to", self.__host, self.__port)
			end
			return
		end
		if once then
			return err
		end
		skynet.error("socket: connect", err)
		if delay > 1000 then
			skynet.error("socket: try to reconnect", self.__host, self.__port)
			skynet.sleep(delay)
			delay = 0
		else
			skynet.sleep(delay)
		end
		delay = delay + 100
	end
end

-- true: usable by the running coroutine; false: give up (channel closed, or
-- the connection died under our own auth); nil: a (re)connect is needed.
local function usable(self)
	local conn = self._sock
	if conn then
		local auth_co = self._auth_co
		local me = running()
		if socket.disconnected(conn[1]) then
			skynet.error("socket: disconnect detected ", self.__host, self.__port)
			drop_socket(self)
			if auth_co and auth_co == me then
				return false
			end
			return nil
		end
		-- while auth runs, only the auth coroutine may use the connection;
		-- others wait for the connect to finish
		if not auth_co or auth_co == me then
			return true
		end
	end
	if self._closed then
		return false
	end
	return nil
end

local function ensure_connected(self, once)
	local state = usable(self)
	if state ~= nil then
		return state
	end
	local err
	local joiners = self._joiners
	if joiners then
		-- someone else is connecting already; share its outcome
		local me = running()
		joiners[#joiners + 1] = me
		skynet.wait(me)
	else
		joiners = {}
		self._joiners = joiners
		err = keep_connecting(self, once)
		self._joiners = false
		for _, co in ipairs(joiners) do
			skynet.wakeup(co)
		end
	end
	state = usable(self)
	if state == nil then
		skynet.error("Connect failed", err, self.__host, self.__port)
		error(socket_error)
	end
	return state
end

local function write_failed(self)
	drop_socket(self)
	fail_all(self)
	error(socket_error)
end

---------------------------------------------------------------------------
-- public methods

-- Connects now (once: a single pass, raising socket_error on failure).
function channel:connect(once)
	self._closed = false
	return ensure_connected(self, once)
end

-- Sends `request` (plus the `padding` parts, if any) and, unless `response` is
-- nil, waits for the matching answer: `response` is the reader function (order
-- mode) or the session (session mode).
function channel:request(request, response, padding)
	assert(ensure_connected(self, true))
	local fd = self._sock[1]
	if padding then
		-- A request in several parts goes out low priority, so ordinary
		-- requests are not held behind a large multi-part one.
		if not socket.lwrite(fd, request) then
			write_failed(self)
		end
		for _, piece in ipairs(padding) do
			if not socket.lwrite(fd, piece) then
				write_failed(self)
			end
		end
	elseif not socket.write(fd, request) then
		write_failed(self)
	end
	if response == nil then
		return
	end
	local co = running()
	enqueue(self, response, co)
	return await_reply(self, co)
end

-- Waits for an unsolicited response (e.g. pub/sub messages), reconnecting as
-- needed.
function channel:response(response)
	assert(ensure_connected(self))
	local co = running()
	enqueue(self, response, co)
	return await_reply(self, co)
end

function channel:close()
	if not self._closed then
		stop_dispatcher(self)
		self._closed = true
		drop_socket(self)
	end
end

-- Points the channel at another host; the next request reconnects there.
function channel:changehost(host, port)
	self.__host = host
	if port then
		self.__port = port
	end
	if not self._closed then
		drop_socket(self)
	end
end

function channel:changebackup(backup)
	self._backup = backup
end

channel_meta.__gc = channel.close

return socketchannel
