-- skynet.cluster: calls and sends to services of other nodes.
--
-- Every node name maps to one clustersender service (asked of clusterd, the
-- node's unique cluster manager). A sender is looked up once per node and then
-- cached here. While the first lookup for a node is in flight, calls wait for
-- it and sends are kept, packed, in arrival order; they all go on when the
-- answer comes, so a send issued before a call still reaches the peer first.

local skynet = require "skynet"

local clusterd
local cluster = {}

-- node -> sender address (or false when the lookup failed)
local senders = {}
-- node -> list of pending work while its sender is being looked up: packed
-- strings (sends) and coroutines (calls waiting for the address)
local pending = {}

local function unpack_address(packed)
	local function first(address, ...)
		return address, skynet.pack(...)
	end
	return first(skynet.unpack(packed))
end

local function resolve(node, queue)
	local ok, sender = pcall(skynet.call, clusterd, "lua", "sender", node)
	if not ok then
		skynet.error(sender)
		sender = nil
	end
	queue.sender = sender
	-- Work is replayed one item at a time, in order: a waiting call runs its
	-- own send before the next queued item goes.
	local i = 1
	while queue[i] do
		local item = queue[i]
		if type(item) == "string" then
			if sender then
				skynet.send(sender, "lua", "push", unpack_address(item))
			end
		else
			queue.turn = coroutine.running()
			skynet.wakeup(item)
			skynet.wait(queue.turn)
		end
		i = i + 1
	end
	pending[node] = nil
	senders[node] = sender
end

local function queue_of(node)
	local queue = pending[node]
	if not queue then
		queue = {}
		pending[node] = queue
		skynet.fork(resolve, node, queue)
	end
	return queue
end

-- The sender of `node`, waiting for clusterd's answer if needed; nil when the
-- node cannot be reached. The caller issues its request before it yields, so
-- that request leaves before the next queued item.
function cluster.get_sender(node)
	local sender = senders[node]
	if sender then
		return sender
	end
	local queue = queue_of(node)
	local co = coroutine.running()
	table.insert(queue, co)
	skynet.wait(co)
	skynet.wakeup(queue.turn)
	return queue.sender
end

function cluster.call(node, address, ...)
	local sender = senders[node]
	if sender then
		-- skynet.pack's buffer is freed by cluster.core.packrequest in the sender
		return skynet.call(sender, "lua", "req", address, skynet.pack(...))
	end
	local packed = skynet.packstring(address, ...)
	sender = cluster.get_sender(node)
	return skynet.call(sender, "lua", "req", unpack_address(packed))
end

function cluster.send(node, address, ...)
	local sender = senders[node]
	if sender then
		skynet.send(sender, "lua", "push", address, skynet.pack(...))
	else
		table.insert(queue_of(node), skynet.packstring(address, ...))
	end
end

function cluster.open(port, maxclient)
	if type(port) == "string" then
		return skynet.call(clusterd, "lua", "listen", port, nil, maxclient)
	end
	return skynet.call(clusterd, "lua", "listen", "0.0.0.0", port, maxclient)
end

function cluster.reload(config)
	skynet.call(clusterd, "lua", "reload", config)
end

function cluster.proxy(node, name)
	return skynet.call(clusterd, "lua", "proxy", node, name)
end

function cluster.snax(node, name, address)
	local snax = require "skynet.snax"
	address = address or cluster.call(node, ".service", "QUERY", "snaxd", name)
	return snax.bind(skynet.call(clusterd, "lua", "proxy", node, address), name)
end

function cluster.register(name, addr)
	assert(type(name) == "string")
	assert(addr == nil or type(addr) == "number")
	return skynet.call(clusterd, "lua", "register", name, addr)
end

function cluster.unregister(name)
	assert(type(name) == "string")
	return skynet.call(clusterd, "lua", "unregister", name)
end

-- Address 0 asks the peer's clusterd for a registered name.
function cluster.query(node, name)
	return skynet.call(cluster.get_sender(node), "lua", "req", 0, skynet.pack(name))
end

skynet.init(function()
	clusterd = skynet.uniqueservice("clusterd")
end)

return cluster
