-- client.lua: the login example's client, for a plain Lua 5.5 with
-- client.socket and client.crypt (`skynet lua examples/login/client.lua`).
-- It owns the client side of both halves of the login protocol (the line
-- protocol of snax.loginserver, the framed protocol of snax.msgserver) and
-- a scripted walk through what the example server offers. It prints one
-- transcript line per step and raises (exit status 1) when the server does
-- something unexpected.
--
-- Arguments are key=value pairs:
--   host=127.0.0.1  login=8001  gate=8888  server=sample
--   user=alice  pass=password
--   mode=full   the whole walk: login, requests, reconnect, kick, logout
--   mode=quick  login, one request, logout
--   mode=login  only the login server part; prints subid and secret
--   timeout=10  seconds to wait for any one answer

local socket = require "client.socket"
local crypt = require "client.crypt"

if _VERSION ~= "Lua 5.5" then
	error "Use lua 5.5"
end

local opt = {
	host = "127.0.0.1", login = "8001", gate = "8888", server = "sample",
	user = "alice", pass = "password", mode = "full", timeout = "10",
}
for _, a in ipairs(arg or {}) do
	local k, v = a:match "^([%w_]+)=(.*)$"
	if not k or opt[k] == nil then
		error("unknown argument " .. a)
	end
	opt[k] = v
end
local WAIT = tonumber(opt.timeout)

local function say(...)
	print(...)
	io.stdout:flush()
end

-------------------------------------------------------------------------------
-- a connection with a receive buffer and blocking reads built on the
-- non-blocking client.socket.recv

local Conn = {}
Conn.__index = Conn

local function dial(port)
	local fd = socket.connect(opt.host, tonumber(port))
	return setmetatable({ fd = fd, pending = "", closed = false }, Conn)
end

-- reads whatever is there; false once the peer has closed
function Conn:fill()
	if self.closed then
		return false
	end
	local data = socket.recv(self.fd)
	if data == "" then
		self.closed = true
		return false
	end
	if data then
		self.pending = self.pending .. data
	end
	return true
end

-- waits until cut(pending) finds a unit; returns it, or nil if the peer
-- closed first
function Conn:read(cut, what)
	local waited = 0
	while true do
		local unit, rest = cut(self.pending)
		if unit then
			self.pending = rest
			return unit
		end
		if not self:fill() then
			return nil
		end
		socket.usleep(1000)
		waited = waited + 0.001
		if waited > WAIT then
			error("timeout waiting for " .. what)
		end
	end
end

-- waits for the peer to close; true if it did
function Conn:wait_close()
	local waited = 0
	while self:fill() do
		socket.usleep(1000)
		waited = waited + 0.001
		if waited > WAIT then
			return false
		end
	end
	return true
end

function Conn:close()
	socket.close(self.fd)
end

local function cut_line(buf)
	local nl = buf:find("\n", 1, true)
	if nl then
		return buf:sub(1, nl - 1), buf:sub(nl + 1)
	end
end

local function cut_packet(buf)
	if #buf < 2 then
		return
	end
	local size = string.unpack(">I2", buf)
	if #buf < size + 2 then
		return
	end
	return buf:sub(3, size + 2), buf:sub(size + 3)
end

function Conn:line(what)
	return assert(self:read(cut_line, what), what .. ": server closed")
end

function Conn:packet(what)
	return self:read(cut_packet, what)
end

function Conn:send(bytes)
	socket.send(self.fd, bytes)
end

-------------------------------------------------------------------------------
-- login server

-- returns the status line, and subid and secret when it is 200
local function login(user, pass)
	local c = dial(opt.login)
	local challenge = crypt.base64decode(c:line("challenge"))
	local mykey = crypt.randomkey()
	c:send(crypt.base64encode(crypt.dhexchange(mykey)) .. "\n")
	local secret = crypt.dhsecret(crypt.base64decode(c:line("server key")), mykey)
	c:send(crypt.base64encode(crypt.hmac64(challenge, secret)) .. "\n")
	local token = string.format("%s@%s:%s", crypt.base64encode(user),
		crypt.base64encode(opt.server), crypt.base64encode(pass))
	c:send(crypt.base64encode(crypt.desencode(secret, token)) .. "\n")
	local status = c:read(cut_line, "login result") or "(closed)"
	c:close()
	if status:sub(1, 4) == "200 " then
		return status, crypt.base64decode(status:sub(5)), secret
	end
	return status
end

-------------------------------------------------------------------------------
-- game gate

local Session = {}
Session.__index = Session

-- one logged-in user: remembers subid, secret and the handshake index
local function session(user, subid, secret)
	return setmetatable({ user = user, subid = subid, secret = secret, index = 0 }, Session)
end

-- opens a gate connection and handshakes; returns the status and the
-- connection (still open only when the status is 200)
function Session:connect()
	self.index = self.index + 1
	local c = dial(opt.gate)
	local name = string.format("%s@%s#%s", crypt.base64encode(self.user),
		crypt.base64encode(opt.server), crypt.base64encode(self.subid))
	local signed = string.format("%s:%d", name, self.index)
	local mac = crypt.hmac64(crypt.hashkey(signed), self.secret)
	c:send(string.pack(">s2", signed .. ":" .. crypt.base64encode(mac)))
	local status = c:packet("handshake result") or "(closed)"
	if status ~= "200 OK" then
		c:close()
		return status
	end
	return status, c
end

local function send_request(c, text, session_id)
	c:send(string.pack(">s2", text .. string.pack(">I4", session_id)))
end

-- returns ok, text, session of the next response
local function read_response(c)
	local p = assert(c:packet("response"), "gate closed before the response")
	local text, ok, session_id = string.unpack("c" .. (#p - 5) .. "B>I4", p)
	return ok == 1, text, session_id
end

local function show(c, label)
	local ok, text, sid = read_response(c)
	say(string.format("%s -> %s %s (session %d)", label, ok and "ok" or "error", text, sid))
	return ok, text, sid
end

local function request(c, text, sid)
	send_request(c, text, sid)
	return show(c, "request " .. text)
end

local function expect(cond, what)
	if not cond then
		error("unexpected: " .. what, 2)
	end
end

-------------------------------------------------------------------------------
-- the walks

local function must_login(user)
	local status, subid, secret = login(user, opt.pass)
	say(string.format("login %s: %s", user, status))
	expect(subid, "login refused")
	say("subid " .. subid)
	return session(user, subid, secret)
end

local function must_connect(s, label)
	local status, c = s:connect()
	say(string.format("%s (subid %s, index %d): %s", label, s.subid, s.index, status))
	expect(c, "handshake refused")
	return c
end

local walks = {}

function walks.login()
	local status, subid, secret = login(opt.user, opt.pass)
	say(string.format("login %s: %s", opt.user, status))
	expect(subid, "login refused")
	say("subid " .. subid)
	say("secret " .. crypt.hexencode(secret))
end

function walks.quick()
	local s = must_login(opt.user)
	local c = must_connect(s, "connect")
	local _, text = request(c, "ping", 1)
	expect(text == "pong", "ping answer")
	local ok, bye = request(c, "logout", 2)
	expect(ok and bye == "bye", "logout answer")
	say("closed after logout: " .. tostring(c:wait_close()))
	c:close()
end

function walks.full()
	local user = opt.user
	-- a wrong password is refused by the login server
	say(string.format("login %s with a wrong password: %s", user, (login(user, opt.pass .. "!"))))

	local s = must_login(user)
	local c = must_connect(s, "connect")
	local _, pong = request(c, "ping", 1)
	expect(pong == "pong", "ping answer")
	local _, me = request(c, "whoami", 2)
	expect(me == user, "whoami answer")
	local _, t1 = request(c, "ticket", 3)
	local ok = request(c, "fail", 4)
	expect(not ok, "fail should fail")
	-- ask for something slow and hang up before the answer
	send_request(c, "slow:late answer", 5)
	say("request slow:late answer (session 5) sent, disconnect before the answer")
	c:close()

	-- same subid, next index: the gate still knows the user
	c = must_connect(s, "connect again")
	-- repeat session 5: the gate delivers the answer of the first run
	send_request(c, "slow:late answer", 5)
	local _, late = show(c, "resend slow:late answer")
	expect(late == "late answer", "late answer")
	-- repeat session 3: answered from the cache, not run again
	send_request(c, "ticket", 3)
	local _, again = show(c, "resend ticket")
	expect(again == t1, "cached ticket")
	local _, t2 = request(c, "ticket", 6)
	expect(t2 ~= t1, "new ticket")
	-- an old index is refused
	local index = s.index
	s.index = 0
	local status = s:connect()
	say(string.format("connect with a used index (subid %s, index %d): %s", s.subid, s.index, status))
	s.index = index

	-- logging in again elsewhere kicks the first session
	local s2 = must_login(user)
	expect(s2.subid ~= s.subid, "a new subid")
	say("first connection closed by the server: " .. tostring(c:wait_close()))
	c:close()
	status = s:connect()
	say(string.format("connect with the kicked subid %s: %s", s.subid, status))

	local c2 = must_connect(s2, "connect")
	local _, pong2 = request(c2, "ping", 1)
	expect(pong2 == "pong", "ping answer")
	local _, bye = request(c2, "logout", 2)
	expect(bye == "bye", "logout answer")
	say("closed after logout: " .. tostring(c2:wait_close()))
	c2:close()
	status = s2:connect()
	say(string.format("connect after logout (subid %s): %s", s2.subid, status))
end

local walk = assert(walks[opt.mode], "unknown mode " .. opt.mode)
walk()
say("done")
