-- skynet.sharetable: configuration tables built once and read in place by every
-- service (skynet.sharetable.core makes each one a shared, read-only tree).
--
-- A keeper service (a unique service named "sharetable") holds the current version of
-- each named table and the versions services still hold. A client queries a name and
-- gets the tree's handle, which it turns into the table itself (`clone`: the same
-- object in every service). When a client's VM closes, its cache tells the keeper,
-- which closes a replaced version once nobody holds it.
--
-- `update(names...)` brings this service onto the newest versions: every reference to
-- a table of an old version (in tables, metatables, upvalues, user values and the
-- locals of coroutines) is replaced by the table at the same place in the new one.
local skynet = require "skynet"
local service = require "skynet.service"
local core = require "skynet.sharetable.core"

local is_sharedtable = core.is_sharedtable
local stackvalues = core.stackvalues

-- The keeper's main function; it runs in a service of its own (globals only).
local function keeper()
	local skynet = require "skynet"
	local core = require "skynet.sharetable.core"

	local current = {}	-- name -> box of the current version
	local held = {}		-- handle -> { name, box, holders = { [address] = true }, count }
	local holding = {}	-- address -> { [handle] = true }

	local function close_unheld(box)
		local handle = box:getptr()
		local version = held[handle]
		if not version or version.count == 0 then
			held[handle] = nil
			box:close()
		end
	end

	local function install(name, box)
		local old = current[name]
		current[name] = box
		if old then
			close_unheld(old)
		end
	end

	local function hold(source, name)
		local box = current[name]
		if not box then
			return nil
		end
		local handle = box:getptr()
		local version = held[handle]
		if not version then
			version = { name = name, box = box, holders = {}, count = 0 }
			held[handle] = version
		end
		if not version.holders[source] then
			version.holders[source] = true
			version.count = version.count + 1
			local mine = holding[source] or {}
			holding[source] = mine
			mine[handle] = true
		end
		return handle
	end

	local CMD = {}

	function CMD.loadfile(_, name, ...)
		install(name, core.matrix("@" .. name, ...))
	end

	function CMD.loadstring(_, name, source, ...)
		install(name, core.matrix(source, ...))
	end

	function CMD.loadtable(_, name, msg, sz)
		local ok, box = pcall(core.matrix, "local unpack, msg, sz = ... return unpack(msg, sz)",
			skynet.unpack, msg, sz)
		skynet.trash(msg, sz)
		assert(ok, box)
		install(name, box)
	end

	function CMD.query(source, name)
		return hold(source, name)
	end

	function CMD.queryall(source, names)
		local handles = {}
		if names then
			for _, name in ipairs(names) do
				handles[name] = hold(source, name)
			end
		else
			for name in pairs(current) do
				handles[name] = hold(source, name)
			end
		end
		return handles
	end

	function CMD.release(source)
		for handle in pairs(holding[source] or {}) do
			local version = held[handle]
			version.holders[source] = nil
			version.count = version.count - 1
			if version.count == 0 and current[version.name] ~= version.box then
				held[handle] = nil
				version.box:close()
			end
		end
		holding[source] = nil
	end

	skynet.start(function()
		skynet.dispatch("lua", function(session, source, cmd, ...)
			local f = CMD[cmd]
			if session == 0 then
				f(source, ...)
			else
				skynet.retpack(f(source, ...))
			end
		end)
	end)
end

local sharetable = {}

local address

local function keeper_address()
	if not address then
		address = service.new("sharetable", keeper)
	end
	return address
end

-- name -> { handle, table } of what this service holds; its collection (the VM
-- closing) releases everything at once.
local cache = setmetatable({}, {
	__gc = function()
		if address then
			skynet.send(address, "lua", "release")
		end
	end,
})

function sharetable.loadfile(name, ...)
	skynet.call(keeper_address(), "lua", "loadfile", name, ...)
end

function sharetable.loadstring(name, source, ...)
	skynet.call(keeper_address(), "lua", "loadstring", name, source, ...)
end

function sharetable.loadtable(name, tbl)
	assert(type(tbl) == "table")
	skynet.call(keeper_address(), "lua", "loadtable", name, skynet.pack(tbl))
end

local function attach(name, handle)
	if not handle then
		return nil
	end
	local entry = cache[name]
	if not entry or entry.handle ~= handle then
		entry = { handle = handle, table = core.clone(handle) }
		cache[name] = entry
	end
	return entry.table
end

function sharetable.query(name)
	return attach(name, skynet.call(keeper_address(), "lua", "query", name))
end

function sharetable.queryall(names)
	local tables = {}
	for name, handle in pairs(skynet.call(keeper_address(), "lua", "queryall", names)) do
		tables[name] = attach(name, handle)
	end
	return tables
end

-- old shared table -> the new one at the same place, down both trees
local function pair(old, new, map)
	map[old] = new
	for k, v in pairs(old) do
		local nv = rawget(new, k)
		if is_sharedtable(v) and is_sharedtable(nv) and map[v] == nil then
			pair(v, nv, map)
		end
	end
end

local COLLECTABLE = { table = true, ["function"] = true, thread = true, userdata = true }

-- Replaces, in everything reachable from `roots`, each key of `map` by its value.
local function replace(map, roots)
	local seen = { [map] = true, [roots] = true }
	seen[seen] = true
	local visit

	local function visit_table(t)
		local changes = {}
		for k, v in next, t do
			local nk, nv = visit(k), visit(v)
			if nk ~= k or nv ~= v then
				changes[#changes + 1] = { k, nk, nv }
			end
		end
		for _, c in ipairs(changes) do
			if c[1] ~= c[2] then
				rawset(t, c[1], nil)
			end
			rawset(t, c[2], c[3])
		end
	end

	local function visit_function(f)
		local i = 1
		while true do
			local name, v = debug.getupvalue(f, i)
			if name == nil then
				break
			end
			local nv = visit(v)
			if nv ~= v then
				debug.setupvalue(f, i, nv)
			end
			i = i + 1
		end
	end

	local function visit_thread(co)
		local level = (co == coroutine.running()) and 1 or 0
		while true do
			local info = debug.getinfo(co, level, "f")
			if not info then
				break
			end
			visit(info.func)
			local i = 1
			while true do
				local name, v = debug.getlocal(co, level, i)
				if name == nil then
					break
				end
				local nv = visit(v)
				if nv ~= v then
					debug.setlocal(co, level, i, nv)
				end
				i = i + 1
			end
			level = level + 1
		end
		local values = {}
		for i = 1, stackvalues(co, values) do
			visit(values[i])
		end
	end

	visit = function(v)
		local new = map[v]
		if new ~= nil then
			return new
		end
		local tv = type(v)
		if not COLLECTABLE[tv] or seen[v] or is_sharedtable(v) then
			return v
		end
		seen[v] = true
		local mt = debug.getmetatable(v)
		if mt then
			local nmt = visit(mt)
			if nmt ~= mt then
				debug.setmetatable(v, nmt)
			end
		end
		if tv == "table" then
			visit_table(v)
		elseif tv == "function" then
			visit_function(v)
		elseif tv == "thread" then
			visit_thread(v)
		else
			local uv = debug.getuservalue(v, 1)
			local nuv = visit(uv)
			if nuv ~= uv then
				debug.setuservalue(v, nuv, 1)
			end
		end
		return v
	end

	for _, root in ipairs(roots) do
		visit(root)
	end
end

function sharetable.update(...)
	local map = {}
	for _, name in ipairs({ ... }) do
		local entry = cache[name]
		local old = entry and entry.table
		local new = sharetable.query(name)
		if old and new and old ~= new then
			pair(old, new, map)
		end
	end
	if next(map) then
		replace(map, { debug.getregistry(), coroutine.running() })
	end
end

return sharetable
