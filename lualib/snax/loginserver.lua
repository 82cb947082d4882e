-- snax/loginserver.lua: the login-server half of the login protocol. It
-- owns the line-based handshake that gives client and server a shared
-- DH secret and carries the client's encrypted token, and the layout of a
-- login service: one master that listens, serialises logins per user and
-- answers, and `instance` slaves (the same service file started again)
-- that run the CPU-heavy handshakes.
--
-- Wire format (text lines ending in "\n"):
--   S->C  base64(challenge)                 8 random bytes
--   C->S  base64(dhexchange(clientkey))
--   S->C  base64(dhexchange(serverkey))     secret = dhsecret(peer, own key)
--   C->S  base64(hmac64(challenge, secret))
--   C->S  base64(desencode(secret, token))
--   S->C  "200 " .. base64(subid) | "401 Unauthorized" | "403 Forbidden"
--         | "406 Not Acceptable"; then the server closes the connection.
-- A client that breaks the handshake (bad base64, wrong key size, wrong
-- HMAC, undecryptable token) or is refused by auth_handler gets 401.
--
-- Usage: require "snax.loginserver" (conf), where conf has
--   host ("0.0.0.0"), port, backlog (the socket layer's default when nil),
--   instance (8 slaves), name ("login": the master
--   registers ".login"), multilogin (false: one login at a time per user),
--   auth_handler(token) -> server, uid        runs in a slave; error = 401
--   login_handler(server, uid, secret) -> subid   runs in the master;
--                                             error = 403
--   command_handler(cmd, ...)                 "lua" requests to the master
--   handshake_timeout                         seconds a client may take
--                                             (default 60; false or 0 = none)
--   line_limit                                longest line accepted (8192)

local skynet = require "skynet"
require "skynet.manager"
local socket = require "skynet.socket"
local crypt = require "skynet.crypt"

-- raised inside a slave when the client's socket is gone; such clients get
-- no answer, only a log line
local LOST = setmetatable({}, { __tostring = function() return "socket closed" end })

local function send_line(fd, text, step)
	if not socket.write(fd, text .. "\n") then
		skynet.error(string.format("%s failed: socket (fd = %d) closed", step, fd))
		error(LOST)
	end
end

local function recv_line(fd, step)
	local line = socket.readline(fd)
	if not line then
		skynet.error(string.format("%s failed: socket (fd = %d) closed", step, fd))
		error(LOST)
	end
	return line
end

local function decode(text, what)
	local ok, bytes = pcall(crypt.base64decode, text)
	if not ok then
		error("bad base64 in " .. what, 0)
	end
	return bytes
end

-------------------------------------------------------------------------------
-- slave: one handshake per "lua" request (fd, addr)

local function run_slave(conf)
	local auth_handler = assert(conf.auth_handler, "loginserver needs auth_handler")
	local limit = conf.line_limit or 8192
	local timeout = conf.handshake_timeout
	if timeout == nil then
		timeout = 60
	elseif timeout and timeout <= 0 then
		timeout = false
	end

	-- returns server, uid, secret; raises a reason string or LOST
	local function handshake(fd)
		-- a client that streams bytes without newlines is cut off by the
		-- socket layer instead of growing our buffer
		socket.limit(fd, limit)
		local challenge = crypt.randomkey()
		send_line(fd, crypt.base64encode(challenge), "auth")

		local clientkey = decode(recv_line(fd, "auth"), "client key")
		if #clientkey ~= 8 then
			error("Invalid client key", 0)
		end
		local serverkey = crypt.randomkey()
		send_line(fd, crypt.base64encode(crypt.dhexchange(serverkey)), "auth")
		local ok, secret = pcall(crypt.dhsecret, clientkey, serverkey)
		if not ok then
			error("Invalid client key", 0)
		end

		local proof = decode(recv_line(fd, "auth"), "challenge response")
		if proof ~= crypt.hmac64(challenge, secret) then
			error("challenge failed", 0)
		end

		local sealed = decode(recv_line(fd, "auth"), "token")
		local opened, token = pcall(crypt.desdecode, secret, sealed)
		if not opened then
			error("token can not be decrypted", 0)
		end
		local accepted, server, uid = pcall(auth_handler, token)
		if not accepted then
			error(server, 0)
		end
		return server, uid, secret
	end

	local function serve(fd, addr)
		skynet.error(string.format("connect from %s (fd = %d)", addr, fd))
		if not socket.start(fd) then
			-- gone before we could take it over
			skynet.error(string.format("auth failed: socket (fd = %d) closed before start", fd))
			return nil, "socket closed"
		end
		local done = false
		if timeout then
			skynet.timeout(math.floor(timeout * 100), function()
				if not done then
					skynet.error(string.format("handshake timeout (fd = %d)", fd))
					-- the blocked readline sees the close and fails
					socket.shutdown(fd)
				end
			end)
		end
		local ok, server, uid, secret = pcall(handshake, fd)
		done = true
		-- the master writes the answer and closes; we only stop tracking fd
		socket.abandon(fd)
		if ok then
			return true, server, uid, secret
		elseif server == LOST then
			return nil, "socket closed"
		else
			return false, tostring(server)
		end
	end

	skynet.dispatch("lua", function(_, _, fd, addr)
		skynet.retpack(serve(fd, addr))
	end)
end

-------------------------------------------------------------------------------
-- master: accepts, hands each client to a slave, decides and answers

local function run_master(conf, name)
	local host = conf.host or "0.0.0.0"
	local port = assert(tonumber(conf.port), "loginserver needs a port")
	local login_handler = assert(conf.login_handler, "loginserver needs login_handler")
	local command_handler = assert(conf.command_handler, "loginserver needs command_handler")
	local count = conf.instance or 8
	assert(count > 0, "loginserver needs at least one instance")

	skynet.dispatch("lua", function(_, _, cmd, ...)
		skynet.retpack(command_handler(cmd, ...))
	end)

	skynet.register(name)
	local slaves = {}
	for i = 1, count do
		slaves[i] = skynet.newservice(SERVICE_NAME)
	end

	local logging_in = {}	-- uid -> true while its login_handler runs
	local turn = 0

	-- raises a reason for the log after writing the status line, if any
	local function admit(fd, addr)
		turn = turn % #slaves + 1
		local ok, server, uid, secret = skynet.call(slaves[turn], "lua", fd, addr)
		if ok == nil then
			error(server, 0)	-- the client went away; the slave logged it
		elseif not ok then
			socket.write(fd, "401 Unauthorized\n")
			error(server, 0)
		end
		if not conf.multilogin then
			if logging_in[uid] then
				socket.write(fd, "406 Not Acceptable\n")
				error(string.format("User %s is already login", uid), 0)
			end
			logging_in[uid] = true
		end
		local done, subid = pcall(login_handler, server, uid, secret)
		logging_in[uid] = nil
		if not done then
			socket.write(fd, "403 Forbidden\n")
			error(subid, 0)
		end
		socket.write(fd, "200 " .. crypt.base64encode(subid or "") .. "\n")
	end

	skynet.error(string.format("login server listen at : %s %d", host, port))
	local listen_id = socket.listen(host, port, conf.backlog)
	socket.start(listen_id, function(fd, addr)
		local ok, why = pcall(admit, fd, addr)
		if not ok then
			skynet.error(string.format("invalid client (fd = %d) error = %s", fd, tostring(why)))
		end
		-- the slave's service owns the socket now and we never adopted it,
		-- so close the bare id; queued answer bytes are still flushed
		socket.close_fd(fd)
	end)
end

local function loginserver(conf)
	local name = "." .. (conf.name or "login")
	skynet.start(function()
		-- the first instance registers the name; every later instance of the
		-- same file is a slave
		if skynet.localname(name) then
			run_slave(conf)
		else
			run_master(conf, name)
		end
	end)
end

return loginserver
