-- snax.interface: loads a snax service file and collects its methods.
-- Both sides use it: snaxd to get the functions it serves, skynet.snax (in a
-- sandbox environment) to learn the method ids it must send.
--
-- interface(name, G [, loader]) -> methods, pattern
--   methods[id] = { id, group, method_name, function }
--   ids 1..4 are the system functions init/exit/hotfix/profile (the function
--   is nil when the file doesn't define it); accept.* and response.* methods
--   follow in definition order, so every loader of a file agrees on the ids.
--   pattern is the snax search path entry the file was found with.
local skynet = require "skynet"

local SYSTEM = { "init", "exit", "hotfix", "profile" }

local function search_path(path, name, G)
	local errors = {}
	for pattern in string.gmatch(path, "[^;]+") do
		local filename = string.gsub(pattern, "?", name)
		local main, err = loadfile(filename, "bt", G)
		if main then
			return main, pattern
		end
		table.insert(errors, err)
	end
	error(table.concat(errors, "\n"))
end

-- A write-only table: `function accept.foo() end` in the service file lands
-- here and is appended to `methods`.
local function method_group(methods, group)
	local defined = {}
	return setmetatable({}, {
		__newindex = function(_, method_name, f)
			if type(method_name) ~= "string" then
				error(string.format("%s method only support string", group))
			end
			if type(f) ~= "function" then
				error(string.format("%s.%s must be function", group, method_name))
			end
			if defined[method_name] then
				error(string.format("%s.%s duplicate definition", group, method_name))
			end
			defined[method_name] = true
			local id = #methods + 1
			methods[id] = { id, group, method_name, f }
		end,
	})
end

return function(name, G, loader)
	assert(getmetatable(G) == nil)
	assert(G.init == nil)
	assert(G.exit == nil)
	assert(G.accept == nil)
	assert(G.response == nil)

	local methods = {}
	local system_id = {}
	for id, system_name in ipairs(SYSTEM) do
		methods[id] = { id, "system", system_name }
		system_id[system_name] = id
	end

	-- While the file runs, G sees `accept`/`response`, catches the system
	-- functions, and keeps its other new globals aside; they are copied into
	-- G only once the file has loaded successfully.
	local new_globals = {}
	local scope = setmetatable({
		accept = method_group(methods, "accept"),
		response = method_group(methods, "response"),
	}, { __index = new_globals })

	local path = assert(skynet.getenv "snax", "please set snax in config file")
	local main, pattern = (loader or search_path)(path, name, G)

	setmetatable(G, {
		__index = scope,
		__newindex = function(_, key, value)
			local id = system_id[key]
			if not id then
				new_globals[key] = value
			elseif type(value) == "function" then
				methods[id][4] = value
			else
				error(string.format("%s must be a function", key))
			end
		end,
	})
	local ok, err = xpcall(main, debug.traceback)
	setmetatable(G, nil)
	assert(ok, err)

	for key, value in pairs(new_globals) do
		G[key] = value
	end
	return methods, pattern
end
