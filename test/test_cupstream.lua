-- Upstream skynet's C modules loaded into this binary (runtime/tests/cmodule.rs links
-- its prebuilt ones, or builds its service-src against include/, under names no
-- built-in shadows): the node logs through upstream's logger (config logservice), this
-- service drives upstream's gate (config cupstream_gate) as its watchdog, and, when
-- cupstream_lualib names upstream's lualib, upstream's bson, md5 and sproto Lua
-- modules run from lua_cpath (sproto with upstream's sproto.lua and sprotoparser.lua
-- over its lpeg.so).
local skynet = require "skynet"
require "skynet.manager"
local socket = require "skynet.socket"
local tester = require "tester"
local eq, ok = tester.eq, tester.ok

skynet.register_protocol {
	name = "text",
	id = skynet.PTYPE_TEXT,
	pack = function(s) return s end,
	unpack = skynet.tostring,
}

skynet.register_protocol {
	name = "client",
	id = skynet.PTYPE_CLIENT,
	pack = function(s) return s end,
}

local gate
local reports = {}
local report_waiter

skynet.dispatch("text", function(_, _, text)
	local id, what, rest = text:match("^(%d+) (%a+) ?(.*)$")
	reports[#reports + 1] = what
	if what == "open" then
		skynet.send(gate, "text", "start " .. id)
	elseif what == "data" then
		-- the reply: raw bytes for the client, then the 4-byte little-endian fd
		skynet.send(gate, "client", string.pack(">s2", rest:upper()) .. string.pack("<i4", tonumber(id)))
	end
	if report_waiter then
		skynet.wakeup(report_waiter)
	end
end)

local function upstream_gate(port)
	gate = skynet.launch(skynet.getenv "cupstream_gate", "S", skynet.address(skynet.self()), "127.0.0.1:" .. port, 0, 16)
	ok(gate, "LAUNCH of upstream's gate")
	local fd = assert(socket.open("127.0.0.1", port))
	socket.write(fd, string.pack(">s2", "ping"))
	local len = string.unpack(">I2", socket.read(fd, 2))
	eq(socket.read(fd, len), "PING", "a packet through upstream's gate and back")
	socket.close(fd)
	while reports[#reports] ~= "close" do
		report_waiter = coroutine.running()
		skynet.wait()
	end
	tester.deep_eq(reports, { "open", "data", "close" }, "what upstream's gate reported")
	skynet.kill(gate)
end

local function hex(s)
	return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function upstream_lua_modules()
	local md5 = require "md5_core-c"
	eq(hex(md5.sum "abc"), "900150983cd24fb0d6963f7d28e17f72", "upstream's md5.so")

	local bson = require "bson-c"
	local doc = bson.decode(bson.encode { a = 1, b = "two", c = { 1, 2, 3 } })
	eq(doc.a, 1, "upstream's bson.so")
	eq(doc.b, "two")
	tester.deep_eq(doc.c, { 1, 2, 3 })

	package.loaded.lpeg = require "lpeg-c"
	package.loaded["sproto.core"] = require "sproto_core-c"
	package.path = package.path .. ";" .. skynet.getenv "cupstream_lualib" .. "/?.lua"
	local sprotoparser = require "sprotoparser"
	local sproto = require "sproto"
	local sp = sproto.new(sprotoparser.parse [[
.Person {
	name 0 : string
	id 1 : integer
	email 2 : string
	phones 3 : *integer
}
]])
	local person = { name = "Alice", id = 10000, phones = { 1, 2, 3 } }
	local code = sp:encode("Person", person)
	tester.deep_eq(sp:decode("Person", code), person, "upstream's sproto.so and lpeg.so")
	tester.deep_eq(sp:decode("Person", sproto.unpack(sproto.pack(code))), person, "sproto pack/unpack")
end

tester.run("test_cupstream", function()
	skynet.error "hello through upstream's logger"
	if skynet.getenv "cupstream_lualib" then
		upstream_lua_modules()
	end
	upstream_gate(assert(tonumber(skynet.getenv "cupstream_port")))
end)
