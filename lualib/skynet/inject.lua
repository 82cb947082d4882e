-- skynet/inject.lua: run a snippet of Lua inside a live service (the debug
-- protocol's RUN command, debug_console's `inject`).
--
-- The snippet sees the service's globals plus:
--   print  collects output lines; they are returned to the requester
--   _U     tables reachable through upvalues of the functions handed in
--          (skynet's dispatcher and register_protocol, so _U.proto is the
--          protocol registry)
--   _P     per protocol name, the tables reachable through upvalues of its
--          dispatch function (e.g. _P.lua.command in the launcher)

-- Walk the upvalues of `func`, descending into functions, and record every
-- table under its upvalue name; the closest definition of a name wins.
local function collect_tables(into, func, visited)
	local i = 1
	while true do
		local name, value = debug.getupvalue(func, i)
		if name == nil then
			return
		end
		local kind = type(value)
		if kind == "table" then
			if into[name] == nil then
				into[name] = value
			end
		elseif kind == "function" and not visited[value] then
			visited[value] = true
			collect_tables(into, value, visited)
		end
		i = i + 1
	end
end

local function protocol_tables(registry)
	local by_protocol = {}
	for _, class in pairs(registry) do
		local name, dispatch = class.name, class.dispatch
		if name and dispatch and not by_protocol[name] then
			local tables = {}
			collect_tables(tables, dispatch, { [dispatch] = true })
			by_protocol[name] = tables
		end
	end
	return by_protocol
end

return function(skynet, source, filename, args, ...)
	local chunkname = filename and ("@" .. filename) or "=(load)"
	local output = {}

	local function print(...)
		local n = select("#", ...)
		local parts = { ... }
		for i = 1, n do
			parts[i] = tostring(parts[i])
		end
		output[#output + 1] = table.concat(parts, "\t", 1, n)
	end

	local upvalue_tables = {}
	local visited = {}
	for _, func in ipairs { ... } do
		collect_tables(upvalue_tables, func, visited)
	end
	local registry = upvalue_tables.proto
	local env = setmetatable({
		print = print,
		_U = upvalue_tables,
		_P = registry and protocol_tables(registry) or {},
	}, { __index = _ENV })

	local func, err = load(source, chunkname, "bt", env)
	if not func then
		return false, { err }
	end
	local ok, result = skynet.pcall(func, table.unpack(args, 1, args.n))
	if not ok then
		output[#output + 1] = tostring(result)
		return false, output
	end
	return true, output
end
