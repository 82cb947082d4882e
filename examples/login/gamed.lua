-- gamed: the example's game gate (snax.msgserver). It owns the users the
-- login server admitted to this game server: it hands out subids, starts
-- one agent (player) per user, relays requests to it, and reports logouts
-- back to the login server.
local msgserver = require "snax.msgserver"
local skynet = require "skynet"

local logind = tonumber(...)
local servername	-- set when the gate opens
local next_subid = 0
local by_uid = {}	-- uid -> { username, agent, uid, subid }
local by_name = {}	-- username -> same record

local server = {}

local timeout = tonumber(skynet.getenv("handshake_timeout") or "")
if timeout then
	server.handshake_timeout = timeout
end

-- the login server: a new login for uid; returns its subid
function server.login_handler(uid, secret)
	assert(by_uid[uid] == nil, uid .. " is already login")
	next_subid = next_subid + 1
	local subid = next_subid
	local username = msgserver.username(uid, subid, servername)
	local agent = skynet.newservice("player")
	skynet.call(agent, "lua", "login", uid, subid, secret)
	local u = { username = username, agent = agent, uid = uid, subid = subid }
	by_uid[uid] = u
	by_name[username] = u
	msgserver.login(username, secret)
	return subid
end

-- the agent: its user is leaving
function server.logout_handler(uid, subid)
	local u = by_uid[uid]
	if u and u.subid == tonumber(subid) then
		msgserver.logout(u.username)
		by_uid[uid] = nil
		by_name[u.username] = nil
		skynet.call(logind, "lua", "logout", uid, subid)
	end
end

-- the login server: uid logs in elsewhere, end this session
function server.kick_handler(uid, subid)
	local u = by_uid[uid]
	if u and u.subid == tonumber(subid) then
		-- the agent exits while answering, so the call may fail
		pcall(skynet.call, u.agent, "lua", "logout")
	end
end

-- ourselves: a handshaken connection dropped; the user stays logged in
function server.disconnect_handler(username)
	local u = by_name[username]
	if u then
		skynet.call(u.agent, "lua", "afk")
	end
end

-- ourselves: one request of a user; the agent's answer is the response
function server.request_handler(username, msg)
	local u = assert(by_name[username], "no agent")
	return skynet.tostring(skynet.rawcall(u.agent, "client", msg))
end

-- ourselves: the gate is open, tell the login server where we are
function server.register_handler(name)
	servername = name
	skynet.call(logind, "lua", "register_gate", servername, skynet.self())
end

msgserver.start(server)
