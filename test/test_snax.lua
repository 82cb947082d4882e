-- snax: newservice with init arguments, req (call) and post (send) handlers keeping
-- their order, errors in handlers, unknown method names, the handle cache of bind,
-- uniqueservice/queryservice, profile_info, and kill running the exit function.
local skynet = require "skynet"
local snax = require "skynet.snax"
local tester = require "tester"
local eq, ok, deep_eq, raises = tester.eq, tester.ok, tester.deep_eq, tester.raises

tester.run("test_snax", function()
	local ps = snax.newservice("snax_counter", "hello", 2)
	ok(math.type(ps.handle) == "integer", "snax object has a handle")
	eq(ps.type, "snax_counter", "snax object type")
	eq(tostring(ps), string.format("[snax_counter:%x]", ps.handle), "tostring of a snax object")

	local a, b = ps.req.args()
	eq(a, "hello", "init arg 1")
	eq(b, 2, "init arg 2")

	for i = 1, 3 do
		ps.post.add(5)
	end
	eq(ps.req.get(), 15, "posts handled before a later request")
	for i = 1, 20 do
		ps.post.record(i)
	end
	local expected = {}
	for i = 1, 20 do
		expected[i] = i
	end
	deep_eq(ps.req.records(), expected, "posts handled in order")

	local n, x, y, z = (function(...) return select("#", ...), ... end)(ps.req.echo(1, nil, "z"))
	eq(n, 3, "echo count")
	eq(x, 1, "echo 1")
	eq(y, nil, "echo 2")
	eq(z, "z", "echo 3")

	raises("call failed", ps.req.fail, "snax boom")
	tester.wait_log("snax boom")
	eq(ps.req.get(), 15, "serving after an error")

	raises("request snax_counter:nosuch no exist", function() return ps.req.nosuch end)
	raises("post snax_counter:nosuch no exist", function() return ps.post.nosuch end)

	eq(snax.bind(ps.handle, "snax_counter"), ps, "bind returns the cached object")

	local info = snax.profile_info(ps)
	eq(info.add.count, 3, "profile count of accept.add")
	eq(info.get.count, 2, "profile count of response.get")

	local u1 = snax.uniqueservice("snax_counter", "unique")
	local u2 = snax.uniqueservice("snax_counter", "ignored")
	eq(u2.handle, u1.handle, "snax.uniqueservice gives one instance")
	ok(u1.handle ~= ps.handle, "the unique instance is not the one from newservice")
	eq(u1.req.args(), "unique", "unique instance init args")
	eq(snax.queryservice("snax_counter").handle, u1.handle, "snax.queryservice")

	snax.kill(ps, "bye")
	tester.wait_log("snax_counter exit bye")
	raises(nil, ps.req.get)
	eq(u1.req.get(), 0, "the other instance is unaffected")
end)
