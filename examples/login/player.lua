-- player: the agent of one logged-in user of the login example. It owns
-- that user's session state and answers its requests:
--   "ping"        -> "pong"
--   "whoami"      -> the user id
--   "ticket"      -> "ticket N", N counting up per agent (so a repeated
--                    answer shows the gate's response cache at work)
--   "slow:TEXT"   -> TEXT, after half a second
--   "fail"        -> raises, so the client gets an error response
--   "logout"      -> "bye", then the user is logged out
--   anything else -> echoed back
local skynet = require "skynet"

skynet.register_protocol {
	name = "client",
	id = skynet.PTYPE_CLIENT,
	unpack = skynet.tostring,
}

local gate, uid, subid
local tickets = 0
local leaving = false

local function leave()
	if leaving then
		return	-- a kick and a logout request may race
	end
	leaving = true
	if gate then
		skynet.call(gate, "lua", "logout", uid, subid)
	end
	skynet.exit()
end

local command = {}

function command.login(source, who, sid, secret)
	gate, uid, subid = source, who, sid
	skynet.error(string.format("%s is login (subid %d)", uid, subid))
end

function command.logout()
	skynet.error(string.format("%s is logout", uid))
	leave()
end

function command.afk()
	-- the connection broke; the user may reconnect with the same subid
	skynet.error(string.format("%s is afk", uid))
end

local request = {}

function request.ping()
	return "pong"
end

function request.whoami()
	return uid
end

function request.ticket()
	tickets = tickets + 1
	return "ticket " .. tickets
end

function request.fail()
	error("request fail asked for an error")
end

function request.logout()
	-- answer first, leave after the answer is on its way
	skynet.fork(function()
		skynet.error(string.format("%s asked to logout", uid))
		leave()
	end)
	return "bye"
end

skynet.start(function()
	skynet.dispatch("lua", function(_, source, cmd, ...)
		local f = assert(command[cmd], cmd)
		skynet.retpack(f(source, ...))
	end)
	skynet.dispatch("client", function(_, _, msg)
		local slow = msg:match "^slow:(.*)$"
		if slow then
			skynet.sleep(50)
			skynet.ret(slow)
			return
		end
		local f = request[msg]
		skynet.ret(f and f() or msg)
	end)
end)
