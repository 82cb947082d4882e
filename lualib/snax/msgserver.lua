-- snax/msgserver.lua: the game-side half of the login protocol, built on
-- snax.gateserver. It owns the table of users a login server has admitted,
-- the per-connection handshake that proves a client holds its user's
-- secret, and the request/response framing with a per-user response cache
-- that lets a client reconnect and collect answers it missed.
--
-- Wire format (every packet is netpack-framed: 2-byte big-endian length):
--   handshake  C->S  username ":" index ":" base64(hmac)
--              where username = base64(uid) "@" base64(server) "#" base64(subid),
--              index is a decimal number larger than any index this user
--              used before, and hmac = hmac64(hashkey(username:index), secret)
--              S->C  "200 OK" | "400 Bad Request" | "401 Unauthorized"
--                    | "403 Index Expired" | "404 User Not Found"
--              anything but 200 is followed by a close.
--   request    C->S  content .. u32be(session)
--   response   S->C  content .. u8(ok) .. u32be(session)   (ok: 1 or 0)
-- A request whose session already has an answer from an earlier
-- connection is not run again: the cached answer is sent instead.
--
-- Module API:
--   msgserver.username(uid, subid, servername) -> username
--   msgserver.userid(username) -> uid, subid, servername
--   msgserver.login(username, secret)   admit a user (login_handler uses it)
--   msgserver.logout(username)          forget a user, closing its connection
--   msgserver.ip(username)              "ip:port" of its live connection, or nil
--   msgserver.start(conf)               run the service
-- conf:
--   login_handler(uid, secret) -> subid  lua command "login"
--   logout_handler(uid, subid)           lua command "logout"
--   kick_handler(uid, subid)             lua command "kick"
--   request_handler(username, content) -> answer (may yield; an error
--                                        becomes an ok = 0 response)
--   register_handler(servername)         when the gate opens (the "open"
--                                        conf must carry servername)
--   disconnect_handler(username)         optional; a handshaken connection
--                                        went away (the user stays online)
--   expired_number                       answers kept per user (default 128)
--   handshake_timeout                    seconds a new connection may take
--                                        to handshake (default 60; false or 0 = none)

local skynet = require "skynet"
local gateserver = require "snax.gateserver"
local netpack = require "skynet.netpack"
local crypt = require "skynet.crypt"
local driver = require "skynet.socketdriver"

local b64encode = crypt.base64encode
local b64decode = crypt.base64decode
local spack, sunpack = string.pack, string.unpack

local msgserver = {}

skynet.register_protocol {
	name = "client",
	id = skynet.PTYPE_CLIENT,
}

-- username -> user record:
--   { username, secret, last_index, fd (live connection or nil), ip,
--     answers = { [session] = entry }, kept = { entry, ... } oldest first }
local users = {}
-- fd -> user record, for handshaken connections
local bound = {}
-- fd -> { addr = "ip:port" }, for connections that still owe a handshake
local greeting = {}

function msgserver.username(uid, subid, servername)
	return string.format("%s@%s#%s", b64encode(uid), b64encode(servername), b64encode(tostring(subid)))
end

function msgserver.userid(username)
	local uid, servername, subid = username:match "^([^@]*)@([^#]*)#(.*)$"
	return b64decode(uid), b64decode(subid), b64decode(servername)
end

function msgserver.login(username, secret)
	assert(users[username] == nil, "user is already logged in")
	users[username] = {
		username = username,
		secret = secret,
		last_index = 0,
		answers = {},
		kept = {},
	}
end

-- drops the link between a user and its connection and closes the socket
local function unbind(fd)
	local u = bound[fd]
	if u then
		bound[fd] = nil
		if u.fd == fd then
			u.fd = nil
		end
		gateserver.closeclient(fd)
	end
end

function msgserver.logout(username)
	local u = users[username]
	users[username] = nil
	if u and u.fd then
		unbind(u.fd)
	end
end

function msgserver.ip(username)
	local u = users[username]
	if u and u.fd then
		return u.ip
	end
end

-- client-supplied text for a log line: escaped and cut short, so a hostile
-- client can neither forge log lines nor flood the log
local function printable(text)
	local shown = text:sub(1, 64):gsub("[^%w%p ]", function(c)
		return string.format("\\x%02x", c:byte())
	end)
	if #text > 64 then
		shown = shown .. "..."
	end
	return shown
end

-- Checks a handshake line; returns the user it proves, or nil and the
-- status line to answer with plus a reason for the log.
local function verify(line)
	local username, index, mac64 = line:match "^([^:]+):(%d+):([^:]+)$"
	if not username then
		return nil, "400 Bad Request", "malformed handshake"
	end
	local u = users[username]
	if u == nil then
		return nil, "404 User Not Found", "unknown user " .. printable(username)
	end
	local ok, mac = pcall(b64decode, mac64)
	if not ok then
		return nil, "400 Bad Request", "bad base64 in handshake"
	end
	local n = math.tointeger(tonumber(index))
	if n == nil then
		return nil, "400 Bad Request", "bad index " .. index
	end
	if n <= u.last_index then
		return nil, "403 Index Expired", string.format("index %d not above %d", n, u.last_index)
	end
	-- the text the client signed is everything before the last colon
	if crypt.hmac_hash(u.secret, username .. ":" .. index) ~= mac then
		return nil, "401 Unauthorized", "hmac mismatch"
	end
	u.last_index = n
	return u
end

local function reply(fd, text)
	driver.send(fd, netpack.pack(text))
end

function msgserver.start(conf)
	local keep = conf.expired_number or 128
	local request_handler = assert(conf.request_handler, "msgserver needs request_handler")
	local handshake_timeout = conf.handshake_timeout
	if handshake_timeout == nil then
		handshake_timeout = 60
	elseif handshake_timeout and handshake_timeout <= 0 then
		handshake_timeout = false
	end

	local command = {
		login = assert(conf.login_handler, "msgserver needs login_handler"),
		logout = assert(conf.logout_handler, "msgserver needs logout_handler"),
		kick = assert(conf.kick_handler, "msgserver needs kick_handler"),
	}

	local handler = {}

	function handler.command(cmd, source, ...)
		local f = assert(command[cmd], cmd)
		return f(...)
	end

	function handler.open(source, gateconf)
		return conf.register_handler(assert(gateconf.servername, "open needs servername"))
	end

	function handler.connect(fd, addr)
		local pending = { addr = addr }
		greeting[fd] = pending
		gateserver.openclient(fd)
		if handshake_timeout then
			skynet.timeout(math.floor(handshake_timeout * 100), function()
				-- still the same connection and still silent
				if greeting[fd] == pending then
					greeting[fd] = nil
					skynet.error(string.format("handshake timeout: close %s (fd = %d)", addr, fd))
					gateserver.closeclient(fd)
				end
			end)
		end
	end

	function handler.disconnect(fd)
		local pending = greeting[fd]
		if pending then
			greeting[fd] = nil
			skynet.error(string.format("closed before handshake: %s (fd = %d)", pending.addr, fd))
			return
		end
		local u = bound[fd]
		if u == nil then
			return
		end
		if conf.disconnect_handler then
			conf.disconnect_handler(u.username)
		end
		-- the handler may have logged the user out (and so closed fd)
		unbind(fd)
	end

	function handler.error(fd, text)
		skynet.error(string.format("socket error (fd = %d): %s", fd, text))
		handler.disconnect(fd)
	end

	local function handshake(fd, pending, line)
		local u, status, why = verify(line)
		if not u then
			skynet.error(string.format("handshake rejected: %s (fd = %d) %s: %s", pending.addr, fd, status, why))
			reply(fd, status)
			gateserver.closeclient(fd)
			return
		end
		-- a newer connection supersedes an older one of the same user
		if u.fd and u.fd ~= fd then
			skynet.error(string.format("user %s reconnected (fd = %d), close old fd %d", u.username, fd, u.fd))
			unbind(u.fd)
		end
		u.fd = fd
		u.ip = pending.addr
		bound[fd] = u
		reply(fd, "200 OK")
	end

	-- forgets the oldest finished answers once twice `keep` are held
	local function trim(u)
		local kept = u.kept
		if #kept < keep * 2 then
			return
		end
		local survivors = {}
		for i = #kept - keep + 1, #kept do
			survivors[#survivors + 1] = kept[i]
		end
		for i = 1, #kept - keep do
			local e = kept[i]
			if u.answers[e.session] == e then
				u.answers[e.session] = nil
			end
		end
		u.kept = survivors
	end

	local function send_answer(u, e)
		local fd = e.fd
		e.fd = nil
		if fd and bound[fd] == u then
			driver.send(fd, e.packed)
		end
	end

	-- one request of a handshaken connection; errors close the connection
	local function serve(fd, u, packet)
		if #packet < 4 then
			error(string.format("request of %d bytes has no session", #packet))
		end
		local session = sunpack(">I4", packet, #packet - 3)
		local content = packet:sub(1, -5)
		local e = u.answers[session]
		if e and e.connection == u.last_index then
			-- the same connection reuses a session: fine once it was answered
			if e.packed == nil then
				error(string.format("session %d is still being served", session))
			end
			u.answers[session] = nil
			e = nil
		end
		if e then
			-- a request repeated after a reconnect: answer from the cache
			-- (or when the first run finishes) instead of running it again
			e.fd = fd
			e.connection = u.last_index
			if e.packed then
				send_answer(u, e)
			end
			return
		end
		e = { session = session, fd = fd, connection = u.last_index }
		u.answers[session] = e
		local ok, answer = pcall(request_handler, u.username, content)
		if ok then
			e.packed = spack(">s2", (answer or "") .. spack(">BI4", 1, session))
		else
			skynet.error(string.format("request of %s (session %d) failed: %s", u.username, session, answer))
			e.packed = spack(">s2", spack(">BI4", 0, session))
		end
		-- the user may have logged out while the handler ran
		if users[u.username] == u then
			u.kept[#u.kept + 1] = e
			trim(u)
		end
		send_answer(u, e)
	end

	function handler.message(fd, msg, sz)
		local packet = netpack.tostring(msg, sz)
		local pending = greeting[fd]
		if pending then
			greeting[fd] = nil
			handshake(fd, pending, packet)
			return
		end
		local u = bound[fd]
		if u == nil then
			return	-- closed while the packet was queued
		end
		local ok, err = pcall(serve, fd, u, packet)
		if not ok then
			skynet.error(string.format("Invalid package from fd %d (%s): %s", fd, u.username, err))
			unbind(fd)
		end
	end

	return gateserver.start(handler)
end

return msgserver
