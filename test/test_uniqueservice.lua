-- skynet.uniqueservice / skynet.queryservice: one instance per name (later arguments
-- ignored), queryservice waiting until the service exists, newservice still making new
-- instances, and a service failing to start failing every uniqueservice of its name.
local skynet = require "skynet"

local mode = ...

if mode == "target" then
	skynet.start(function()
		skynet.dispatch("lua", function()
			skynet.retpack(mode)
		end)
	end)
	return
end

local tester = require "tester"
local eq, ok, raises = tester.eq, tester.ok, tester.raises

tester.run("test_uniqueservice", function()
	local a1 = skynet.uniqueservice("svc_echo", "first")
	local a2 = skynet.uniqueservice("svc_echo", "second")
	eq(a2, a1, "same instance")
	eq(skynet.call(a1, "lua", "args"), "first", "launched with the first arguments")
	eq(skynet.queryservice("svc_echo"), a1, "queryservice")
	local fresh = skynet.newservice("svc_echo", "third")
	ok(fresh ~= a1, "newservice makes a new instance")
	eq(skynet.uniqueservice("svc_echo"), a1, "still the unique one")

	-- queryservice blocks until someone launches the service
	local queried
	local latch = tester.latch(1)
	skynet.fork(function()
		queried = skynet.queryservice(SERVICE_NAME)
		latch.done()
	end)
	skynet.yield()
	eq(queried, nil, "queryservice is still waiting")
	local t = skynet.uniqueservice(SERVICE_NAME, "target")
	latch.wait()
	eq(queried, t, "queryservice answered with the launched service")
	eq(skynet.call(t, "lua"), "target", "the unique target serves")

	-- a failing service
	raises(nil, skynet.uniqueservice, "svc_failing")
	raises(nil, skynet.uniqueservice, "svc_failing")
	tester.wait_log("svc_failing start boom")
end)
