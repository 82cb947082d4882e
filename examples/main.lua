-- main: the start service of examples/config. It exercises the system
-- services of a single node and logs what each one answered:
--   simpledb   a plain service, reached through its global name SIMPLEDB
--   counter    a snax service, unique per node (service_mgr)
--   echo       a unique service built from a function (skynet.service)
--   DATACENTER node-wide values, including a wait for a value to appear
local skynet = require "skynet"
local snax = require "skynet.snax"
local datacenter = require "skynet.datacenter"
local service = require "skynet.service"

-- Runs in its own service, so it may only use globals (skynet.service
-- checks that its only upvalue is _ENV).
local function echo_main()
	local skynet = require "skynet"
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, ...)
			skynet.retpack(...)
		end)
	end)
end

local function try_simpledb()
	skynet.newservice "simpledb"
	skynet.call("SIMPLEDB", "lua", "SET", "answer", 42)
	return skynet.call("SIMPLEDB", "lua", "GET", "answer")
end

local function try_counter()
	local counter = snax.uniqueservice("counter", 10)
	counter.post.add(5)
	local value = counter.req.get()
	local same = snax.queryservice("counter").handle == counter.handle
	return counter, value, same
end

local function try_echo()
	local echo = service.new("echo", echo_main)
	local same = service.query("echo") == echo
	return skynet.call(echo, "lua", "ping"), same
end

local function try_datacenter()
	local waited
	skynet.fork(function()
		waited = datacenter.wait("example", "ready")
	end)
	skynet.sleep(1)
	datacenter.set("example", "ready", "yes")
	skynet.sleep(1)
	return waited, datacenter.get("example", "ready")
end

skynet.start(function()
	skynet.error("Example start")
	local answer = try_simpledb()
	skynet.error("simpledb: answer = " .. tostring(answer))

	local counter, value, same_counter = try_counter()
	skynet.error(string.format("counter %s: value = %d, unique = %s",
		tostring(counter), value, same_counter))

	local reply, same_echo = try_echo()
	skynet.error(string.format("echo: reply = %s, unique = %s", reply, same_echo))

	local waited, stored = try_datacenter()
	skynet.error(string.format("datacenter: waited = %s, stored = %s", waited, stored))

	snax.kill(counter)
	skynet.error("Example done")
	skynet.exit()
end)
