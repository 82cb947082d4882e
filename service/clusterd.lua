-- clusterd: the node's cluster manager (uniqueservice "clusterd").
--
-- It owns the table of node addresses (the `cluster` config file, or tables
-- given to cluster.reload; keys starting with "__" are options such as
-- __nowaiting), one clustersender per remote node, the proxies, the names
-- registered for remote callers, and the listening gates. Each accepted
-- connection gets a clusteragent; the gate reports opens and closes here.
--
-- Opening a node's sender is done by one coroutine at a time per node; others
-- asking for the same node wait for it. When an address changes while an open
-- is in progress, the open starts over with the new address.

local skynet = require "skynet"
require "skynet.manager"
local core = require "skynet.cluster.core"

local config_file = skynet.getenv "cluster"
local nodename = core.nodename()

local options = {}
local addresses = {}	-- node -> "host:port", or false for a node taken down
local senders = {}	-- node -> clustersender address (kept once made)
local sender_off = {}	-- node -> true once its sender was turned off
local ready = {}	-- node -> sender known to point at the current address
local opening = {}	-- node -> { waiting coroutines..., namequery = co }

local command = {}

local function sender_for(node, address)
	local s = senders[node]
	if s then
		return s
	end
	s = skynet.newservice("clustersender", node, nodename, address)
	-- newservice yields: another open may have made one meanwhile
	if senders[node] then
		skynet.kill(s)
		return senders[node]
	end
	senders[node] = s
	return s
end

-- Points the node's sender at `address`: returns ok, sender or error text.
local function connect(node, address)
	local s = sender_for(node, address)
	if pcall(skynet.call, s, "lua", "changenode", address) then
		ready[node] = s
		sender_off[node] = nil
		return true, s
	end
	return false, string.format("changenode [%s] (%s) failed", node, address)
end

-- Turns the node's sender off (address false); no sender is nothing to do.
local function disconnect(node)
	local s = senders[node]
	if s == nil or sender_off[node] then
		return true, s
	end
	local ok, err = pcall(skynet.call, s, "lua", "changenode", false)
	if ok then
		sender_off[node] = true
		return true, s
	end
	return false, err
end

local function wait_other_open(node, state)
	local co = coroutine.running()
	local s
	while state do
		table.insert(state, co)
		skynet.wait(co)
		s = state.sender
		state = opening[node]
	end
	return assert(addresses[node] and s)
end

local function open(node)
	if opening[node] then
		return wait_other_open(node, opening[node])
	end
	local state = {}
	opening[node] = state
	local address = addresses[node]
	if address == nil and not options.nowaiting then
		state.namequery = coroutine.running()
		skynet.error("Waiting for cluster node [" .. node .. "]")
		skynet.wait(state.namequery)
		address = addresses[node]
	end
	local ok, result
	if address then
		ok, result = connect(node, address)
	elseif address == false then
		ok, result = disconnect(node)
	else
		ok, result = false, string.format("cluster node [%s] is absent.", node)
	end
	if ok then
		state.sender = result
	end
	opening[node] = nil
	for _, co in ipairs(state) do
		skynet.wakeup(co)
	end
	if addresses[node] ~= address then
		return open(node)
	end
	assert(ok, result)
	return result
end

local function channel(node)
	return ready[node] or open(node)
end

local function read_config_file()
	local env = {}
	if config_file then
		local f = assert(io.open(config_file))
		local source = f:read "a"
		f:close()
		assert(load(source, "@" .. config_file, "t", env))()
	end
	return env
end

local function set_option(key, value)
	local opt = key:sub(3)
	options[opt] = value
	skynet.error(string.format("Config %s = %s", opt, value))
end

local function set_address(node, address)
	assert(address == false or type(address) == "string")
	local moved = false
	if addresses[node] ~= address then
		-- a node already in use reconnects at once, at its new address
		moved = senders[node] ~= nil
		if moved then
			ready[node] = nil
		end
		addresses[node] = address
	end
	local state = opening[node]
	if state and state.namequery and not options.nowaiting then
		skynet.error(string.format("Cluster node [%s] resolved : %s", node, address))
		skynet.wakeup(state.namequery)
	end
	return moved
end

local function load_config(tbl)
	tbl = tbl or read_config_file()
	local moved = {}
	for key, value in pairs(tbl) do
		if key:sub(1, 2) == "__" then
			set_option(key, value)
		elseif set_address(key, value) then
			table.insert(moved, key)
		end
	end
	if options.nowaiting then
		for _, state in pairs(opening) do
			if state.namequery then
				skynet.wakeup(state.namequery)
			end
		end
	end
	for _, node in ipairs(moved) do
		skynet.fork(open, node)
	end
end

function command.reload(_, tbl)
	load_config(tbl)
	skynet.ret(skynet.pack(nil))
end

function command.listen(_, addr, port, maxclient)
	local gate = skynet.newservice("gate")
	if port == nil then
		-- listen on the address of a node named in the config
		local address = assert(addresses[addr], addr .. " is down")
		skynet.call(gate, "lua", "open", { address = address, maxclient = maxclient })
		skynet.ret(skynet.pack(addr, port))
	else
		skynet.ret(skynet.pack(skynet.call(gate, "lua", "open",
			{ address = addr, port = port, maxclient = maxclient })))
	end
end

function command.sender(_, node)
	skynet.ret(skynet.pack(channel(node)))
end

function command.senders()
	skynet.retpack(senders)
end

local proxies = {}	-- "node.name" -> clusterproxy

function command.proxy(_, node, name)
	if name == nil then
		node, name = node:match "^([^@.]+)([@.].+)"
		if name == nil then
			error("Invalid name " .. tostring(node))
		end
	end
	local key = node .. "." .. name
	local p = proxies[key]
	if p == nil then
		p = skynet.newservice("clusterproxy", node, name)
		if proxies[key] then
			skynet.kill(p)
			p = proxies[key]
		else
			proxies[key] = p
		end
	end
	skynet.ret(skynet.pack(p))
end

-- fd -> clusteragent; false while the agent is starting, true when the
-- connection closed during that start
local agents = {}
-- name -> address and address -> name, both ways
local names = {}

local function names_changed()
	for _, agent in pairs(agents) do
		if type(agent) == "number" then
			skynet.send(agent, "lua", "namechange")
		end
	end
end

function command.register(source, name, addr)
	assert(names[name] == nil)
	addr = addr or source
	local old = names[addr]
	if old then
		names[old] = nil
		names_changed()
	end
	names[addr] = name
	names[name] = addr
	skynet.ret(nil)
	skynet.error(string.format("Register [%s] :%08x", name, addr))
end

function command.unregister(_, name)
	local addr = names[name]
	if not addr then
		return skynet.ret(nil)
	end
	names[addr] = nil
	names[name] = nil
	names_changed()
	skynet.ret(nil)
	skynet.error(string.format("Unregister [%s] :%08x", name, addr))
end

function command.queryname(_, name)
	skynet.ret(skynet.pack(names[name]))
end

local socket_event = {}

function socket_event.open(gate, fd, addr)
	skynet.error(string.format("socket accept from %s", addr))
	agents[fd] = false
	local agent = skynet.newservice("clusteragent", skynet.self(), gate, fd)
	if agents[fd] then
		-- closed while the agent started
		skynet.send(agent, "lua", "exit")
		agents[fd] = nil
	else
		agents[fd] = agent
	end
end

function socket_event.close(_, fd)
	local agent = agents[fd]
	if agent == false then
		agents[fd] = true
	elseif agent then
		skynet.send(agent, "lua", "exit")
		agents[fd] = nil
	end
end

socket_event.error = socket_event.close

function command.socket(gate, event, fd, msg)
	local f = socket_event[event]
	if f then
		f(gate, fd, msg)
	else
		skynet.error(string.format("socket %s %d %s", event, fd, msg or ""))
	end
end

skynet.start(function()
	load_config()
	skynet.dispatch("lua", function(_, source, cmd, ...)
		local f = assert(command[cmd])
		f(source, ...)
	end)
end)
