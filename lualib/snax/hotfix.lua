-- snax.hotfix: replaces methods of a running snax service with the ones found
-- in a patch source, without losing the service's state. A patch is written
-- like a snax file; its locals declared without a value (`local db`) are
-- bound to the service's upvalues of the same name and its globals resolve in
-- the service's environment, so patched methods see the live data. A `hotfix(...)` function in the patch runs last
-- and its results are returned to snax.hotfix's caller.
--
-- hotfix(methods, source, ...) -> true, results of the patch's hotfix(...)
--                              -> false, error
local snax_interface = require "snax.interface"

-- Globals seen by the patch while it loads: a copy of the service's
-- environment, so loading it can't add globals to the real one.
local patch_env = {}
for name, value in pairs(_ENV) do
	patch_env[name] = value
end

-- Its only upvalue is the service's real _ENV (see `bind_points`).
local function service_env()
	return _ENV
end

-- for index, name, value in upvalues(f)
local function upvalues(f)
	return function(_, index)
		index = index + 1
		local name, value = debug.getupvalue(f, index)
		if name ~= nil then
			return index, name, value
		end
	end, nil, 0
end

local function env_id(f)
	for index, name in upvalues(f) do
		if name == "_ENV" then
			return debug.upvalueid(f, index)
		end
	end
end

-- Record, by name, where each upvalue of f lives. Functions held in upvalues
-- that share f's environment are service code too, so their upvalues count.
local function collect(f, env, points)
	for index, name, value in upvalues(f) do
		local id = debug.upvalueid(f, index)
		local known = points[name]
		if known then
			assert(known.id == id, string.format("ambiguity local value %s", name))
		else
			points[name] = { func = f, index = index, id = id }
			if type(value) == "function" and env_id(value) == env then
				collect(value, env, points)
			end
		end
	end
end

-- upvalue name -> { func, index } of the running service's methods
local function bind_points(methods)
	local points = {}
	for _, method in pairs(methods) do
		local f = method[4]
		if f then
			collect(f, env_id(f), points)
		end
	end
	-- Methods that use no globals leave no _ENV to join; use the service's.
	points._ENV = points._ENV or { func = service_env, index = 1 }
	return points
end

-- Join the patch function's unset upvalues (and its _ENV) to the service's.
-- Helper functions the patch closes over are patched the same way.
local function bind(f, points, visited)
	visited[f] = true
	for index, name, value in upvalues(f) do
		if value == nil or value == patch_env then
			local point = points[name]
			if point then
				debug.upvaluejoin(f, index, point.func, point.index)
			end
		elseif type(value) == "function" and not visited[value] then
			bind(value, points, visited)
		end
	end
end

local function find_method(methods, group, name)
	for _, method in pairs(methods) do
		if method[2] == group and method[3] == name then
			return method
		end
	end
end

local function apply(methods, source, ...)
	local function load_patch(_, _, env)
		return assert(load(source, "=patch", "bt", env))
	end
	local patch = snax_interface("patch", patch_env, load_patch)
	local points = bind_points(methods)
	local hotfix
	for _, method in ipairs(patch) do
		local group, name, f = method[2], method[3], method[4]
		if f then
			local target = find_method(methods, group, name)
			if not target then
				error(string.format("Patch mismatch %s.%s", group, name))
			end
			bind(f, points, {})
			target[4] = f
			if group == "system" and name == "hotfix" then
				hotfix = f
			end
		end
	end
	if hotfix then
		return hotfix(...)
	end
end

return function(methods, source, ...)
	return pcall(apply, methods, source, ...)
end
