-- logind: the example's login server (snax.loginserver). It owns the
-- example's account rule (any user name, one shared password from the
-- config), the table of game servers that registered, and the table of
-- users online, which it uses to kick a user who logs in a second time.
local login = require "snax.loginserver"
local crypt = require "skynet.crypt"
local skynet = require "skynet"

local function setting(key, default)
	local v = skynet.getenv(key)
	if v == nil or v == "" then
		return default
	end
	return v
end

local password = setting("login_password", "password")
local timeout = tonumber(setting("handshake_timeout", ""))

local conf = {
	host = setting("login_host", "127.0.0.1"),
	port = tonumber(setting("login_port", "8001")),
	backlog = tonumber(setting("backlog", "")),
	multilogin = false,	-- a second login of a user waits for the first
	name = "login_master",
	handshake_timeout = timeout,
}

local gates = {}	-- server name -> gate address
local online = {}	-- uid -> { gate, subid, server }

-- token = base64(user) "@" base64(server) ":" base64(password)
function conf.auth_handler(token)
	local user64, server64, pass64 = token:match "^([^@]+)@([^:]+):(.+)$"
	assert(user64, "malformed token")
	local user = crypt.base64decode(user64)
	local server = crypt.base64decode(server64)
	assert(crypt.base64decode(pass64) == password, "Invalid password")
	return server, user
end

function conf.login_handler(server, uid, secret)
	skynet.error(string.format("%s@%s is login, secret is %s", uid, server, crypt.hexencode(secret)))
	local gate = assert(gates[server], "Unknown server")
	local before = online[uid]
	if before then
		-- one session per user: the gate logs the old one out, which
		-- reaches us as a "logout" command and clears online[uid]
		skynet.error(string.format("%s is online (subid %s), kick it", uid, before.subid))
		skynet.call(before.gate, "lua", "kick", uid, before.subid)
		assert(online[uid] == nil, "user " .. uid .. " is still online")
	end
	local subid = tostring(skynet.call(gate, "lua", "login", uid, secret))
	online[uid] = { gate = gate, subid = subid, server = server }
	return subid
end

local command = {}

function command.register_gate(server, address)
	gates[server] = address
end

function command.logout(uid, subid)
	local u = online[uid]
	if u and u.subid == tostring(subid) then
		skynet.error(string.format("%s@%s is logout", uid, u.server))
		online[uid] = nil
	end
end

function conf.command_handler(cmd, ...)
	local f = assert(command[cmd], cmd)
	return f(...)
end

login(conf)
