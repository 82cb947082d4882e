-- clustersender: the outgoing link to one remote node.
--   newservice("clustersender", node, nodename, "host:port")
-- Commands (lua protocol, from cluster.lua, clusterproxy and clusterd):
--   req(addr, msg, sz)      a call; answers with the remote reply, or an error
--   push(addr, msg, sz)     a send; no answer
--   changenode(address)     reconnect to a new address, or close on false
-- Requests go through a socketchannel in session mode: the responses of the
-- peer may come back in any order and are matched by session. When the link
-- breaks, every waiting request fails at once; the next one reconnects.

local skynet = require "skynet"
local sc = require "skynet.socketchannel"
local socket = require "skynet.socket"
local core = require "skynet.cluster.core"

local node, nodename, init_host, init_port = ...

local channel
local session = 1

local command = {}

-- A traced request tells the peer its tag first; a tag made here names the
-- node and session so the peer's trace log can be matched with ours.
local function send_trace(tag)
	if tag:sub(1, 1) ~= "(" then
		local remote = string.format("(%s-%s-%d)%s", nodename, node, session, tag)
		skynet.tracelog(tag, string.format("session %s", remote))
		tag = remote
	end
	skynet.tracelog(tag, string.format("cluster %s", node))
	channel:request(core.packtrace(tag))
end

local function request(addr, msg, sz)
	-- packrequest frees msg
	local current = session
	local packet, nextsession, parts = core.packrequest(addr, session, msg, sz)
	session = nextsession
	local tag = skynet.tracetag()
	if tag then
		send_trace(tag)
	end
	return channel:request(packet, current, parts)
end

function command.req(...)
	local ok, reply = pcall(request, ...)
	if not ok then
		skynet.error(reply)
		skynet.response()(false)
	elseif type(reply) == "table" then
		-- a large reply arrived in parts
		skynet.ret(core.concat(reply))
	else
		skynet.ret(reply)
	end
end

function command.push(addr, msg, sz)
	local packet, nextsession, parts = core.packpush(addr, session, msg, sz)
	-- only a push in parts uses up a session (its parts carry it)
	if parts then
		session = nextsession
	end
	channel:request(packet, nil, parts)
end

function command.changenode(host, port)
	if host then
		channel:changehost(host, port)
		channel:connect(true)
	else
		skynet.error("Close cluster sender", channel.__host, channel.__port)
		channel:close()
	end
	skynet.ret(skynet.pack(nil))
end

-- One response: session, ok, data, more (see cluster.core.unpackresponse).
local function read_response(sock)
	local size = socket.header(sock:read(2))
	return core.unpackresponse(sock:read(size))
end

skynet.start(function()
	channel = sc.channel {
		host = init_host,
		port = tonumber(init_port),
		response = read_response,
		nodelay = true,
	}
	skynet.dispatch("lua", function(_, _, cmd, ...)
		local f = assert(command[cmd])
		f(...)
	end)
end)
