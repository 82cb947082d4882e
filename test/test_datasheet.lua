-- skynet.datasheet on this project's lualib: a sheet built once and read in place by
-- two services, updates followed by every proxy (a sub-table proxy keeps its path, a
-- path that stops being a table raises), the document's bytes for a small sheet.
local skynet = require "skynet"

local mode = ...

if mode == "child" then
	local datasheet = require "skynet.datasheet"
	skynet.start(function()
		skynet.dispatch("lua", function()
			local t = datasheet.query("foobar")
			skynet.retpack(t.a, t.b, t.c[1])
		end)
	end)
	return
end

local builder = require "skynet.datasheet.builder"
local datasheet = require "skynet.datasheet"
local tester = require "tester"
local eq, ok, deep_eq, raises = tester.eq, tester.ok, tester.deep_eq, tester.raises

local function hex(s)
	return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

tester.run("test_datasheet", function()
	-- the layout test_share.lua decodes: root { name, sub = { 1, 2.5, "x" } }
	eq(hex(builder.compile({ name = "sword", sub = { 1, 2.5, "x" } })),
		"4400000002000000000000001c00000000000000020000000504000000000000050000000b0000"
		.. "000100000003000000000000000102050001000000000020400f0000006e616d650073776f7264007375"
		.. "62007800", "golden bytes")

	builder.new("foobar", { a = 1, b = 2, c = { 3 } })
	local child = skynet.newservice(SERVICE_NAME, "child")
	local t = datasheet.query("foobar")
	local c = t.c
	eq(t.a, 1)
	eq(c[1], 3)
	deep_eq({ skynet.call(child, "lua") }, { 1, 2, 3 }, "another service")

	builder.update("foobar", { b = 4, c = { 5 } })
	skynet.sleep(20)
	eq(t.a, nil, "updated")
	eq(t.b, 4)
	eq(c[1], 5, "a sub-table proxy keeps its path")
	deep_eq({ skynet.call(child, "lua") }, { nil, 4, 5 }, "the other service follows")

	builder.update("foobar", { a = 6, c = 7, d = 8 })
	skynet.sleep(20)
	eq(t.c, 7)
	eq(t.d, 8)
	raises("Invalid proxy (index = 1)", function() return c[1] end)
	raises("Unsupported value type function", builder.compile, { f = print })
end)
