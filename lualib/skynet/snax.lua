-- skynet.snax: client API of snax services. A snax service is a snaxd
-- instance serving one file from the `snax` path; it is addressed through an
-- object whose `req.<method>(...)` calls a response method and whose
-- `post.<method>(...)` sends to an accept method. Method ids are learned by
-- loading the same file here (see snax.interface), so both sides agree.
local skynet = require "skynet"
local snax_interface = require "snax.interface"

local snax = {}

skynet.register_protocol {
	name = "snax",
	id = skynet.PTYPE_SNAX,
	pack = skynet.pack,
	unpack = skynet.unpack,
}

-- Environment the service files are loaded into on this side: only their
-- method declarations matter here, so `require` does nothing unless the
-- config names a module (snax_interface_g) providing a richer one.
local sandbox
do
	local module = skynet.getenv "snax_interface_g"
	sandbox = module and require(module) or { require = function() end }
end

-- snax name -> { name, accept = { method -> id }, response = ..., system = ... }
local interfaces = {}

function snax.interface(name)
	local t = interfaces[name]
	if t then
		return t
	end
	t = { name = name, accept = {}, response = {}, system = {} }
	for _, method in ipairs(snax_interface(name, sandbox)) do
		local id, group, method_name = method[1], method[2], method[3]
		t[group][method_name] = id
	end
	interfaces[name] = t
	return t
end

local object_meta = {
	__tostring = function(obj)
		return string.format("[%s:%x]", obj.type, obj.handle)
	end,
}

-- obj.post.<name>(...): fire-and-forget to an accept method.
local function post_methods(t, handle)
	return setmetatable({}, {
		__index = function(_, method_name)
			local id = t.accept[method_name]
			if not id then
				error(string.format("post %s:%s no exist", t.name, method_name))
			end
			return function(...)
				skynet.send(handle, "snax", id, ...)
			end
		end,
	})
end

-- obj.req.<name>(...): call a response method and return its results.
local function request_methods(t, handle)
	return setmetatable({}, {
		__index = function(_, method_name)
			local id = t.response[method_name]
			if not id then
				error(string.format("request %s:%s no exist", t.name, method_name))
			end
			return function(...)
				return skynet.call(handle, "snax", id, ...)
			end
		end,
	})
end

-- handle -> service object (snax.bind); weak so unused objects go away
local objects = setmetatable({}, { __mode = "kv" })

-- Start a new snaxd for `name` and run its init(...); returns the handle.
function snax.rawnewservice(name, ...)
	local t = snax.interface(name)
	local handle = skynet.newservice("snaxd", name)
	assert(objects[handle] == nil)
	if t.system.init then
		skynet.call(handle, "snax", t.system.init, ...)
	end
	return handle
end

function snax.bind(handle, type_name)
	local obj = objects[handle]
	if not obj then
		local t = snax.interface(type_name)
		obj = setmetatable({ type = type_name, handle = handle }, object_meta)
		obj.post, obj.req = post_methods(t, handle), request_methods(t, handle)
		objects[handle] = obj
	end
	assert(obj.type == type_name)
	return obj
end

function snax.newservice(name, ...)
	local handle = snax.rawnewservice(name, ...)
	return snax.bind(handle, name)
end

-- Unique / global services go through service_mgr (keyed "snaxd.<name>").
local function managed(cmd, name, ...)
	local handle = assert(skynet.call(".service", "lua", cmd, "snaxd", name, ...))
	return snax.bind(handle, name)
end

function snax.uniqueservice(name, ...)
	return managed("LAUNCH", name, ...)
end

function snax.globalservice(name, ...)
	return managed("GLAUNCH", name, ...)
end

function snax.queryservice(name)
	return managed("QUERY", name)
end

function snax.queryglobal(name)
	return managed("GQUERY", name)
end

function snax.kill(obj, ...)
	local t = snax.interface(obj.type)
	skynet.call(obj.handle, "snax", t.system.exit, ...)
end

function snax.self()
	return snax.bind(skynet.self(), SERVICE_NAME)
end

function snax.exit(...)
	snax.kill(snax.self(), ...)
end

local function hotfix_result(ok, ...)
	if not ok then error(...) end
	return ...
end

-- Returns the results of the patch's hotfix(...); raises if patching failed.
function snax.hotfix(obj, source, ...)
	local t = snax.interface(obj.type)
	return hotfix_result(skynet.call(obj.handle, "snax", t.system.hotfix, source, ...))
end

function snax.printf(fmt, ...)
	skynet.error(string.format(fmt, ...))
end

-- Per-method call counts and CPU time of the service.
function snax.profile_info(obj)
	local t = snax.interface(obj.type)
	return skynet.call(obj.handle, "snax", t.system.profile)
end

return snax
