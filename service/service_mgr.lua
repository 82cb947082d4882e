-- service_mgr (.service; also SERVICE on the master node): unique services.
-- LAUNCH starts a service once per name and hands every caller the same
-- address; QUERY waits until somebody has launched it. Names starting with
-- "@" are node-wide ("global"): on the master they live here, on other nodes
-- GLAUNCH/GQUERY are forwarded to the master's SERVICE. A snaxd service is
-- keyed by "snaxd.<snax name>", so each snax type gets its own entry.
local skynet = require "skynet"
require "skynet.manager"
local snax = require "skynet.snax"

local command = {}

-- key -> one of
--   number: the address of the started service
--   string: the error raised when starting it failed (kept: later requests fail too)
--   table:  not started yet { starter = ctx or nil, queue = { ctx, ... } }
-- where ctx = { co = coroutine, session = request session, source = requester }
local registry = {}

local function current_context()
	local session, source = skynet.context()
	return { co = coroutine.running(), session = session, source = source }
end

local function settled(key)
	local entry = registry[key]
	if type(entry) == "string" then
		error(entry)
	end
	return entry
end

-- Run `start(...)` for `key` and publish its outcome to everybody queued.
-- A start that returns nothing (the service quit while starting) leaves no
-- entry: the requester gets nil and the waiters fail.
local function start_service(key, entry, start, ...)
	entry.starter = current_context()
	local ok, handle = pcall(start, ...)
	if ok then
		registry[key] = handle
	else
		registry[key] = tostring(handle)
	end
	for _, waiter in ipairs(entry.queue) do
		skynet.wakeup(waiter.co)
	end
	return settled(key)
end

-- The address for `key`, starting it with `start(...)` when nobody has yet.
-- Without `start` (a query) the caller waits for somebody else to start it.
local function resolve(key, start, ...)
	local entry = settled(key)
	if type(entry) == "number" then
		return entry
	end
	if entry == nil then
		entry = { queue = {} }
		registry[key] = entry
	end
	if start and not entry.starter then
		return start_service(key, entry, start, ...)
	end
	table.insert(entry.queue, current_context())
	skynet.wait()
	return assert(settled(key))
end

-- "@name" is the global form of "name"; both start the same service.
local function service_name(name)
	if string.sub(name, 1, 1) == "@" then
		return string.sub(name, 2)
	end
	return name
end

function command.LAUNCH(name, subname, ...)
	if service_name(name) == "snaxd" then
		return resolve(name .. "." .. subname, snax.rawnewservice, subname, ...)
	end
	return resolve(name, skynet.newservice, service_name(name), subname, ...)
end

function command.QUERY(name, subname)
	if service_name(name) == "snaxd" then
		return resolve(name .. "." .. subname)
	end
	return resolve(name)
end

-- Describe who is starting a pending service and who is waiting for it,
-- with the stacks of the coroutines involved.
local function describe_pending(entry)
	local lines = {}
	local starter = entry.starter
	if starter then
		local session = skynet.task(starter.co)
		local booting = skynet.call(".launcher", "lua", "QUERY", session)
		if booting then
			table.insert(lines, "Init as " .. skynet.address(booting))
			table.insert(lines, skynet.call(booting, "debug", "TASK", "init"))
			table.insert(lines, "Launching from " .. skynet.address(starter.source))
			table.insert(lines, skynet.call(starter.source, "debug", "TASK", starter.session))
		end
	end
	if #entry.queue > 0 then
		table.insert(lines, "Querying:")
		for _, waiter in ipairs(entry.queue) do
			local stack = skynet.call(waiter.source, "debug", "TASK", waiter.session)
			table.insert(lines, skynet.address(waiter.source) .. " " .. tostring(stack))
		end
	end
	return table.concat(lines, "\n")
end

local function list_local()
	local list = {}
	for key, entry in pairs(registry) do
		local kind = type(entry)
		if kind == "string" then
			list[key] = "Error: " .. entry
		elseif kind == "table" then
			list[key] = describe_pending(entry)
		else
			list[key] = skynet.address(entry)
		end
	end
	return list
end

-- The master keeps the global entries itself and learns about the other
-- nodes' managers (REPORT) so LIST can show every node.
local function serve_as_master()
	local managers = {}

	function command.GLAUNCH(name, ...)
		return command.LAUNCH("@" .. name, ...)
	end

	function command.GQUERY(name, ...)
		return command.QUERY("@" .. name, ...)
	end

	function command.REPORT(manager)
		managers[manager] = true
	end

	local function merge_remote(list, manager)
		local suffix = "@" .. skynet.harbor(manager)
		for key, value in pairs(skynet.call(manager, "lua", "LIST")) do
			list[key .. suffix] = value
		end
	end

	function command.LIST()
		local list = {}
		for manager in pairs(managers) do
			pcall(merge_remote, list, manager)
		end
		for key, value in pairs(list_local()) do
			list[key] = value
		end
		return list
	end
end

-- Other nodes ask the master for global services, remembering the answer
-- under the same "@" key so each is asked only once.
local function serve_as_slave()
	local function ask_master(cmd, name, ...)
		local key = "@" .. name
		if name == "snaxd" then
			key = key .. "." .. (...)
		end
		return resolve(key, skynet.call, "SERVICE", "lua", cmd, "@" .. name, ...)
	end

	function command.GLAUNCH(...)
		return ask_master("LAUNCH", ...)
	end

	function command.GQUERY(...)
		return ask_master("QUERY", ...)
	end

	command.LIST = list_local

	skynet.call("SERVICE", "lua", "REPORT", skynet.self())
end

skynet.start(function()
	skynet.dispatch("lua", function(_, _, cmd, ...)
		local f = command[cmd]
		if not f then
			skynet.ret(skynet.pack(nil, "Invalid command " .. cmd))
			return
		end
		local ok, result = pcall(f, ...)
		if ok then
			skynet.ret(skynet.pack(result))
		else
			skynet.ret(skynet.pack(nil, result))
		end
	end)
	local other = skynet.localname ".service"
	if other then
		skynet.error(".service is already register by ", skynet.address(other))
		skynet.exit()
	else
		skynet.register ".service"
	end
	if skynet.getenv "standalone" then
		skynet.register "SERVICE"
		serve_as_master()
	else
		serve_as_slave()
	end
end)
