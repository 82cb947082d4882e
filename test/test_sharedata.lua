-- skynet.sharedata on this project's lualib and sharedatad: a table built once, read
-- through proxies in two services (fields, sub-tables, length, pairs in upstream's
-- order), writes refused, updates followed by every proxy, a path gone after an
-- update, code sources, deepcopy and delete.
local skynet = require "skynet"
local sharedata = require "skynet.sharedata"

local mode = ...

if mode == "reader" then
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, name)
			local t = sharedata.query(name)
			skynet.retpack(t.a, t.b[2], #t.b)
		end)
	end)
	return
end

local tester = require "tester"
local eq, ok, deep_eq, raises = tester.eq, tester.ok, tester.deep_eq, tester.raises

tester.run("test_sharedata", function()
	sharedata.new("foobar", { a = 1, b = { "hello", "world" }, c = { d = { e = 5 } } })
	local t = sharedata.query("foobar")
	eq(t.a, 1)
	eq(#t.b, 2)
	eq(t.b[1], "hello")
	eq(t.c.d.e, 5)
	ok(t.b == sharedata.query("foobar").b, "one proxy per sub-table")
	local keys = {}
	for k in pairs(t) do
		keys[#keys + 1] = k
	end
	table.sort(keys)
	deep_eq(keys, { "a", "b", "c" }, "pairs")
	raises("Error newindex, the key [.b]", function() t.b[3] = 1 end)
	raises("Error newindex, the key []", function() t.z = 1 end)
	local reader = skynet.newservice(SERVICE_NAME, "reader")
	deep_eq({ skynet.call(reader, "lua", "foobar") }, { 1, "world", 2 }, "another service")

	local b, d = t.b, t.c.d
	sharedata.update("foobar", { a = 2, b = { "changed" } })
	skynet.sleep(10)
	eq(t.a, 2, "updated")
	eq(b[1], "changed", "a sub-table proxy follows")
	raises("The key [.c.d] doesn't exist after update", function() return d.e end)
	deep_eq({ skynet.call(reader, "lua", "foobar") }, { 2, nil, 1 }, "the reader follows")

	sharedata.new("code", "x = ... return { y = x * 2 }", 21)
	eq(sharedata.query("code").y, 42, "source with arguments")
	sharedata.new("globals", "answer = 42")
	eq(sharedata.query("globals").answer, 42, "globals a source sets")
	deep_eq(sharedata.deepcopy("foobar"), { a = 2, b = { "changed" } }, "deepcopy")
	ok(not pcall(sharedata.new, "bad", "return { f = print }"), "a value the tree cannot hold")
	ok(tester.wait_log("Unsupport value type function"), "the host's error")
	sharedata.new("after", { x = 1 })
	eq(sharedata.query("after").x, 1, "the host survives")
	sharedata.delete("foobar")
	skynet.sleep(10)
	eq(t.a, 2, "a deleted table stays readable by its holders")
end)
