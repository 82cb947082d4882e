-- multicastd: one per node (a unique service), the channel registry and fan-out
-- behind skynet.multicast. It speaks the same commands as upstream's multicastd,
-- so nodes of either core share channels across harbor links.
--
-- A channel belongs to the node whose harbor id is its low 8 bits. The owner
-- keeps, besides its own local subscribers, the set of other nodes that have
-- subscribers; such a node keeps a local group for the channel while it has
-- subscribers and hears every publish from the owner:
--
--   local publish   PUB (call)  -> publish(): the owner's local group and the
--                                   subscribed nodes' multicastd
--   remote publish  PUB (call)  -> the payload goes to the owner's multicastd
--                                   as PTYPE_MULTICAST, which publishes it
--   subscribe       SUB (call)  -> a channel of another node: SUBR to its owner
--                                   first (it answers true if there is none)
--   unsubscribe     USUB        -> the last local subscriber of another node's
--                                   channel: USUBR to the owner
--   delete          DEL         -> the owner drops it and sends DELR to the nodes
--
-- Local fan-out shares one payload: publish binds the package to the number of
-- local subscribers and sends each of them the package's 8-byte cell; the
-- subscribers close it (lualib/skynet/multicast.lua).
local skynet = require "skynet"
local core = require "skynet.core"
local mc = require "skynet.multicast.core"
local datacenter = require "skynet.datacenter"

local PTYPE_MULTICAST = skynet.PTYPE_MULTICAST
local redirect = core.redirect
local tostring_payload = skynet.tostring

local harbor_id = skynet.harbor(skynet.self())

-- channel id -> local group { n = count, [1..n] = address, index = { address -> slot } }
local groups = {}
-- channel id of ours -> { node id -> true } for nodes with subscribers
local remote_nodes = {}
-- the next channel id to try
local next_id = harbor_id

-- node id -> that node's multicastd (registered in the datacenter at start)
local multicastd_of = setmetatable({}, {
	__index = function(t, node)
		local address = assert(datacenter.get("multicast", node))
		t[node] = address
		return address
	end,
})

local function owner(id)
	return id % 256
end

local function new_group()
	return { n = 0, index = {} }
end

local function group_add(group, address)
	if group.index[address] then
		return
	end
	local n = group.n + 1
	group.n = n
	group[n] = address
	group.index[address] = n
end

-- Removes address (swapping the last member into its slot); true if it was there.
local function group_remove(group, address)
	local slot = group.index[address]
	if slot == nil then
		return false
	end
	local n = group.n
	local last = group[n]
	group[slot] = last
	group.index[last] = slot
	group[n] = nil
	group.index[address] = nil
	group.n = n - 1
	return true
end

local function publish(id, source, cell, size)
	local nodes = remote_nodes[id]
	if nodes then
		-- other nodes get the bytes themselves, never a pointer of this process
		local _, data, sz = mc.unpack(cell, size)
		local bytes = tostring_payload(data, sz)
		for node in pairs(nodes) do
			redirect(multicastd_of[node], source, PTYPE_MULTICAST, id, bytes)
		end
	end
	local group = groups[id]
	local n = group and group.n or 0
	if n == 0 then
		mc.close(mc.bind(cell, 1))
		return
	end
	local msg = tostring_payload(cell, size)
	mc.bind(cell, n)
	for i = 1, n do
		redirect(group[i], source, PTYPE_MULTICAST, id, msg)
	end
end

local command = {}

function command.NEW()
	while groups[next_id] do
		next_id = mc.nextid(next_id)
	end
	local id = next_id
	groups[id] = new_group()
	next_id = mc.nextid(next_id)
	return id
end

function command.PUB(source, id, cell, size)
	assert(skynet.harbor(source) == harbor_id)
	local node = owner(id)
	if node == harbor_id then
		publish(id, source, cell, size)
	else
		redirect(multicastd_of[node], source, PTYPE_MULTICAST, id, mc.remote(cell))
	end
end

function command.SUB(source, id)
	local node = owner(id)
	if node ~= harbor_id and groups[id] == nil then
		if skynet.call(multicastd_of[node], "lua", "SUBR", id) then
			-- the owner has no such channel
			return
		end
		-- another SUB may have made the group while we waited
		groups[id] = groups[id] or new_group()
	end
	local group = groups[id]
	if group then
		group_add(group, source)
	end
end

function command.USUB(source, id)
	local group = assert(groups[id])
	if group_remove(group, source) and group.n == 0 then
		local node = owner(id)
		if node ~= harbor_id then
			groups[id] = nil
			skynet.send(multicastd_of[node], "lua", "USUBR", id)
		end
	end
	return command
end

function command.DEL(source, id)
	local node = owner(id)
	if node ~= harbor_id then
		skynet.send(multicastd_of[node], "lua", "DEL", id)
		return command
	end
	local nodes = remote_nodes[id]
	groups[id] = nil
	remote_nodes[id] = nil
	if nodes then
		for n in pairs(nodes) do
			skynet.send(multicastd_of[n], "lua", "DELR", id)
		end
	end
	return command
end

-- from another node's multicastd

function command.SUBR(source, id)
	if groups[id] == nil then
		return true
	end
	local node = skynet.harbor(source)
	assert(node ~= harbor_id and owner(id) == harbor_id)
	local nodes = remote_nodes[id]
	if nodes == nil then
		nodes = {}
		remote_nodes[id] = nodes
	end
	nodes[node] = true
end

function command.USUBR(source, id)
	local node = skynet.harbor(source)
	assert(node ~= harbor_id)
	assert(remote_nodes[id])[node] = nil
	return command
end

function command.DELR(source, id)
	groups[id] = nil
	return command
end

-- A publish that crossed a harbor link: the payload is the message itself, so
-- it is copied into a package of ours before the message is freed.
skynet.register_protocol {
	name = "multicast",
	id = PTYPE_MULTICAST,
	unpack = mc.packremote,
	dispatch = function(id, source, cell, size)
		skynet.ignoreret()
		publish(id, source, cell, size)
	end,
}

skynet.start(function()
	-- a command that answers nothing returns the command table itself
	skynet.dispatch("lua", function(_, source, cmd, ...)
		local f = assert(command[cmd])
		local result = f(source, ...)
		if result ~= command then
			skynet.ret(skynet.pack(result))
		end
	end)
	assert(datacenter.set("multicast", harbor_id, skynet.self()) == nil)
end)
