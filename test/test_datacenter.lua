-- skynet.datacenter: set returning the previous value, nested keys, get of missing
-- paths, wait answered at once or when another service sets the value (all waiters),
-- and a wait on a branch failing when a leaf below it is set.
local skynet = require "skynet"
local datacenter = require "skynet.datacenter"

local mode = ...

if mode == "setter" then
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, ...)
			skynet.retpack(datacenter.set(...))
		end)
	end)
	return
end

local tester = require "tester"
local eq, ok, deep_eq, raises = tester.eq, tester.ok, tester.deep_eq, tester.raises

tester.run("test_datacenter", function()
	eq(datacenter.set("hello", "world"), nil, "first set returns nothing")
	eq(datacenter.get("hello"), "world", "get")
	eq(datacenter.set("hello", "there"), "world", "set returns the previous value")
	eq(datacenter.get("hello"), "there", "get after overwrite")

	datacenter.set("a", "b", "c", 42)
	eq(datacenter.get("a", "b", "c"), 42, "nested get")
	deep_eq(datacenter.get("a", "b"), { c = 42 }, "get of a branch")
	eq(datacenter.get("a", "x", "y"), nil, "missing nested path")
	eq(datacenter.get("nothing"), nil, "missing key")

	local value = { 1, 2, { x = "y" }, f = 1.5 }
	datacenter.set("tbl", value)
	deep_eq(datacenter.get("tbl"), value, "table value")

	-- already set: answered at once
	eq(datacenter.wait("hello"), "there", "wait on a set key")

	-- not yet set: every waiter gets the value set later by another service
	local got = {}
	local latch = tester.latch(3)
	for i = 1, 3 do
		skynet.fork(function()
			got[i] = datacenter.wait("later", "key")
			latch.done()
		end)
	end
	skynet.yield()
	local setter = skynet.newservice(SERVICE_NAME, "setter")
	skynet.call(setter, "lua", "later", "key", "arrived")
	latch.wait()
	deep_eq(got, { "arrived", "arrived", "arrived" }, "waiters")

	-- a wait on "branch" is failed by setting branch.leaf
	local branch_result
	latch = tester.latch(1)
	skynet.fork(function()
		branch_result = table.pack(pcall(datacenter.wait, "branch"))
		latch.done()
	end)
	skynet.yield()
	skynet.call(setter, "lua", "branch", "leaf", 1)
	latch.wait()
	eq(branch_result[1], false, "waiting on a branch fails")
	ok(tostring(branch_result[2]):find("call failed", 1, true), "branch wait error: " .. tostring(branch_result[2]))
	eq(datacenter.wait("branch", "leaf"), 1, "the leaf itself")
end)
