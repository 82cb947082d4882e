-- skynet.sharedata: tables built once by the sharedatad service, outside every VM,
-- and read through proxies. A proxy is an empty table whose metatable reads the tree
-- (skynet.sharedata.core): a field gives a value, or the proxy of a sub-table (one per
-- sub-table, cached). Proxies cannot be written.
--
-- Each queried name has a box (the core's handle that counts this service as a
-- holder) and a coroutine watching the host: when a new version comes, every proxy of
-- the name is re-pointed to the same path in it, and one whose path is gone raises
-- "The key [...] doesn't exist after update" when read.
local skynet = require "skynet"
local core = require "skynet.sharedata.core"

local host

skynet.init(function()
	host = skynet.uniqueservice "sharedatad"
end)

local sharedata = {}

-- proxy -> { conf, parent, key, children = { key -> proxy } }; roots also hold `box`
local nodes = setmetatable({}, { __mode = "k" })
local cache = {}	-- name -> root proxy

local proxy_mt = {}

-- ".b.c" for t.b.c, "" for the root (upstream's form)
local function path(node)
	local parts = {}
	while node.parent do
		table.insert(parts, 1, "." .. tostring(node.key))
		node = nodes[node.parent]
	end
	return table.concat(parts)
end

local function conf_of(p)
	local node = nodes[p]
	if not node.conf then
		error("The key [" .. path(node) .. "] doesn't exist after update")
	end
	return node.conf
end

local function new_proxy(conf, parent, key)
	local p = setmetatable({}, proxy_mt)
	nodes[p] = { conf = conf, parent = parent, key = key, children = {} }
	return p
end

function proxy_mt.__index(p, key)
	local v = core.index(conf_of(p), key)
	if type(v) ~= "userdata" then
		return v
	end
	local children = nodes[p].children
	local child = children[key]
	if not child then
		child = new_proxy(v, p, key)
		children[key] = child
	end
	return child
end

function proxy_mt.__newindex(p)
	error("Error newindex, the key [" .. path(nodes[p]) .. "]")
end

function proxy_mt.__len(p)
	return core.len(conf_of(p))
end

local function next_field(p, key)
	local k = core.nextkey(conf_of(p), key)
	if k ~= nil then
		return k, p[k]
	end
end

function proxy_mt.__pairs(p)
	return next_field, p, nil
end

-- re-points a proxy and its cached children to `conf`; nil (the path is gone) leaves
-- the proxy dead for good, out of its parent's cache, even if the path comes back
local function rebind(p, conf)
	local node = nodes[p]
	node.conf = conf
	for key, child in pairs(node.children) do
		local v = conf and core.index(conf, key)
		if type(v) ~= "userdata" then
			v = nil
			node.children[key] = nil
		end
		rebind(child, v)
	end
end

local function watch(name, root)
	local conf = nodes[root].conf
	while true do
		local newconf = skynet.call(host, "lua", "monitor", name, conf)
		if newconf == nil then
			break
		end
		nodes[root].box = core.box(newconf)
		skynet.send(host, "lua", "confirm", newconf)
		rebind(root, newconf)
		conf = newconf
	end
	if cache[name] == root then
		cache[name] = nil
	end
end

function sharedata.query(name)
	local root = cache[name]
	if root then
		return root
	end
	local conf = skynet.call(host, "lua", "query", name)
	root = cache[name]
	if root then	-- another coroutine got there first
		skynet.send(host, "lua", "confirm", conf)
		return root
	end
	root = new_proxy(conf)
	nodes[root].box = core.box(conf)
	skynet.send(host, "lua", "confirm", conf)
	cache[name] = root
	skynet.fork(watch, name, root)
	return root
end

function sharedata.new(name, v, ...)
	skynet.call(host, "lua", "new", name, v, ...)
end

function sharedata.update(name, v, ...)
	skynet.call(host, "lua", "update", name, v, ...)
end

function sharedata.delete(name)
	skynet.call(host, "lua", "delete", name)
end

-- A plain copy of the tree (or of the sub-tree at the given keys).
function sharedata.deepcopy(name, ...)
	local function copy(conf)
		local t = {}
		local k = core.nextkey(conf)
		while k ~= nil do
			local v = core.index(conf, k)
			t[k] = type(v) == "userdata" and copy(v) or v
			k = core.nextkey(conf, k)
		end
		return t
	end
	local p = sharedata.query(name)
	for _, key in ipairs({ ... }) do
		p = p[key]
		if type(p) ~= "table" then
			return p
		end
	end
	return copy(conf_of(p))
end

function sharedata.flush()
	collectgarbage()
end

return sharedata
