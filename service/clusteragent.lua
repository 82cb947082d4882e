-- clusteragent: serves one incoming cluster connection.
--   newservice("clusteragent", clusterd, gate, fd)
-- The gate forwards the connection's packets here as PTYPE_CLIENT messages
-- (session = fd); each is a request in cluster.core's format. Calls go to the
-- local service named by the request and their replies are written back to
-- fd; pushes are sent and forgotten. A request whose message is large arrives
-- as a header and parts, kept by session until the last part.
-- A packet that is not a valid request closes the connection (the gate
-- reports the close to clusterd, which ends this agent).
-- Commands from clusterd: "exit", "namechange" (registered names moved).

local skynet = require "skynet"
local socket = require "skynet.socket"
local core = require "skynet.cluster.core"

local clusterd, gate, fd = ...
clusterd = tonumber(clusterd)
gate = tonumber(gate)
fd = tonumber(fd)

local partial = {}	-- session -> large request being assembled
local lookups = {}	-- "@name" -> coroutines waiting for clusterd's answer
local names	-- "@name" -> address, filled on demand

local function lookup(cache, name)
	local waiting = lookups[name]
	if waiting then
		local co = coroutine.running()
		table.insert(waiting, co)
		skynet.wait(co)
		return rawget(cache, name)
	end
	waiting = {}
	lookups[name] = waiting
	local addr = skynet.call(clusterd, "lua", "queryname", name:sub(2))
	if addr then
		cache[name] = addr
	end
	lookups[name] = nil
	for _, co in ipairs(waiting) do
		skynet.wakeup(co)
	end
	return addr
end

local function forget_names()
	names = setmetatable({}, { __index = lookup })
end
forget_names()

local function reply(session, ok, msg, sz)
	local packet = core.packresponse(session, ok, msg, sz)
	if type(packet) == "table" then
		for _, part in ipairs(packet) do
			socket.lwrite(fd, part)
		end
	else
		socket.write(fd, packet)
	end
end

-- The tag the peer sent before its next request (skynet.trace across nodes).
local tracetag

local function call(addr, msg, sz)
	local tag = tracetag
	tracetag = nil
	if tag then
		return pcall(skynet.tracecall, tag, addr, "lua", msg, sz)
	end
	return pcall(skynet.rawcall, addr, "lua", msg, sz)
end

-- Address 0: the request asks for a registered name.
local function query_name(session, msg, sz)
	local name = skynet.unpack(msg, sz)
	skynet.trash(msg, sz)
	local addr = names["@" .. name]
	if addr then
		reply(session, true, skynet.packstring(addr))
	else
		reply(session, false, "name not found")
	end
end

local function serve(addr, session, msg, sz, is_push)
	if addr == 0 then
		return query_name(session, msg, sz)
	end
	if core.isname(addr) then
		addr = names[addr]
	end
	if not addr then
		tracetag = nil
		if is_push then
			skynet.trash(msg, sz)
		else
			reply(session, false, "Invalid name")
		end
		return
	end
	if is_push then
		tracetag = nil
		skynet.rawsend(addr, "lua", msg, sz)
		return
	end
	local ok, rmsg, rsz = call(addr, msg, sz)
	if ok then
		reply(session, true, rmsg, rsz)
	else
		reply(session, false, rmsg)
	end
end

-- A packet cluster.core cannot read: say why, drop the connection, and ignore
-- whatever the gate still delivers for it.
local BAD = {}
local broken = false

local function checked(ok, ...)
	if ok then
		return ...
	end
	broken = true
	skynet.error(string.format("Close cluster connection %d: %s", fd, ...))
	socket.close_fd(fd)
	return BAD
end

local function unpack(msg, sz)
	if broken then
		return BAD
	end
	return checked(pcall(core.unpackrequest, msg, sz))
end

local function dispatch(_, _, addr, session, msg, sz, more, is_push)
	skynet.ignoreret()	-- the message session is the fd: nothing to answer
	if addr == BAD then
		return
	end
	if session == nil then
		tracetag = addr
		return
	end
	local req = partial[session]
	if more then
		if not req then
			req = { addr = addr, is_push = is_push, tracetag = tracetag }
			tracetag = nil
			partial[session] = req
		end
		core.append(req, msg, sz)
		return
	end
	if req then
		-- the last part of a large request
		partial[session] = nil
		core.append(req, msg, sz)
		tracetag = req.tracetag
		addr, is_push = req.addr, req.is_push
		msg, sz = core.concat(req)
		if not msg then
			tracetag = nil
			reply(session, false, "Invalid large req")
			checked(false, "a large request's parts do not add up to its size")
			return
		end
	end
	serve(addr, session, msg, sz, is_push)
end

skynet.start(function()
	skynet.register_protocol {
		name = "client",
		id = skynet.PTYPE_CLIENT,
		unpack = unpack,
		dispatch = dispatch,
	}
	-- The gate may refuse when the connection is already gone; clusterd then
	-- tells this agent to exit.
	pcall(skynet.call, gate, "lua", "forward", fd)
	skynet.dispatch("lua", function(_, source, cmd)
		if cmd == "exit" then
			socket.close_fd(fd)
			skynet.exit()
		elseif cmd == "namechange" then
			forget_names()
		else
			skynet.error(string.format("Invalid command %s from %s", cmd, skynet.address(source)))
		end
	end)
end)
