-- datacenterd (global name DATACENTER): a node-wide tree of values addressed
-- by key paths. QUERY reads, UPDATE writes (and returns the old value), WAIT
-- blocks until a value appears at a path. See lualib/skynet/datacenter.lua.
local skynet = require "skynet"

local store = {}

-- Waiters form a second tree that mirrors the key paths. A node is either a
-- branch ({ children = { key -> node } }) or a leaf holding the response
-- closures of the callers waiting on exactly that path ({ waiters = {...} }).
local wait_root = { children = {} }

local function lookup(node, key, ...)
	if node == nil or key == nil then
		return node
	end
	return lookup(node[key], ...)
end

local function query(key, ...)
	local node = store[key]
	if node ~= nil then
		return lookup(node, ...)
	end
end

-- assign(tree, k1, ..., kn, value): sets tree.k1...kn, creating missing
-- branches; returns the previous value.
local function assign(tree, key, value, ...)
	if select("#", ...) == 0 then
		local old = tree[key]
		tree[key] = value
		return old
	end
	local sub = tree[key]
	if sub == nil then
		sub = {}
		tree[key] = sub
	end
	return assign(sub, value, ...)
end

-- Detach the waiters that a new value at path[1..depth] concerns. Waiters on
-- the path itself are returned to be woken with the value. Waiters on a prefix
-- of the path waited for a leaf that has just become a branch: they get an
-- error.
local function take_waiters(path, depth)
	local node = wait_root
	for i = 1, depth do
		local child = node.children[path[i]]
		if child == nil then
			return
		end
		if child.waiters then
			node.children[path[i]] = nil
			if i == depth then
				return child.waiters
			end
			for _, reply in ipairs(child.waiters) do
				reply(false)
			end
			return
		end
		node = child
	end
end

-- Returns the previous value, or nothing at all when a value appeared where
-- there was none (then its waiters are woken).
local function update(...)
	local n = select("#", ...)
	local value = select(n, ...)
	local old = assign(store, ...)
	if old ~= nil or value == nil then
		return old
	end
	local waiters = take_waiters(table.pack(...), n - 1)
	if waiters then
		for _, reply in ipairs(waiters) do
			reply(true, value)
		end
	end
end

-- Queue the current request on the leaf for this path. Waiting on a path
-- that already has waiters below it (or above it) is a caller error.
local function wait(...)
	local n = select("#", ...)
	local node = wait_root
	for i = 1, n do
		local key = select(i, ...)
		local children = assert(node.children)
		local child = children[key]
		if child == nil then
			if i == n then
				child = { waiters = {} }
			else
				child = { children = {} }
			end
			children[key] = child
		end
		node = child
	end
	table.insert(assert(node.waiters), skynet.response())
end

local command = {
	QUERY = query,
	UPDATE = update,
}

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd, ...)
		if cmd == "WAIT" then
			local value = query(...)
			if value ~= nil then
				skynet.ret(skynet.pack(value))
			else
				wait(...)
			end
			return
		end
		local f = assert(command[cmd])
		skynet.ret(skynet.pack(f(...)))
	end)
end)
