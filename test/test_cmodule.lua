-- A C service (test/cmodule/service_cprobe.c, on cpath) and a Lua C module
-- (test/cmodule/lua-ctest.c, on lua_cpath), both built against include/ by
-- runtime/tests/cmodule.rs: messages both ways, payloads made on one side of the C
-- boundary and freed on the other, a socket opened and written from C, a timeout, name
-- lookups, SIGNAL, one module shared by two instances, and the modules LAUNCH refuses.
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
	pack = skynet.pack,
	unpack = skynet.unpack,
}

local pushed = {}
skynet.dispatch("text", function(_, source, msg)
	pushed[#pushed + 1] = msg
end)

local function lua_module()
	eq(require "symbols", 157, "every function of lua.h, lauxlib.h and lualib.h")
	local ctest = require "ctest"
	eq(ctest.concat("ab", 3000), string.rep("ab", 3000), "luaL_Buffer")
	local abi = ctest.abi()
	tester.deep_eq(abi, {
		integer = 8, number = 8, buffersize = 1024, idsize = 60,
		registryindex = -1073742823, version = 505,
	}, "the ABI a module compiles in")
	local same, extraspace = ctest.extraspace()
	ok(same, "a new thread starts with the main thread's extra space")
	eq(extraspace, 8, "LUA_EXTRASPACE")
	local next1 = ctest.counter(10, 5)
	eq(next1(), 15)
	eq(next1(), 20)
	local next2 = ctest.counter(0, 1)
	eq(next2(), 1, "upvalues are per closure")
	eq(next1(), 25)
	local before = ctest.collected()
	do
		for i = 1, 10 do
			eq(ctest.box(i):get(), i, "userdata method")
		end
	end
	collectgarbage()
	collectgarbage()
	eq(ctest.collected() - before, 10, "__gc of every box")
	local yields, a, b = ctest.resume(function(x, y)
		local n = coroutine.yield(x + y)
		local m = coroutine.yield("second", n)
		return m * 10, "done"
	end, 1, 2)
	tester.deep_eq(yields, { 3, "second", 1 }, "values yielded to lua_resume")
	eq(a, 30, "resumed with the count of values yielded so far")
	eq(b, "done")
	eq(ctest.handle(), skynet.self(), "skynet_current_handle from a Lua C module")
	eq(ctest.command("REG"), string.format(":%x", skynet.self()), "skynet_command from a Lua C module")
	eq(ctest.command("GETENV", "cmodule_port"), skynet.getenv "cmodule_port")
	eq(ctest.command("QUERY", ".nosuchname"), nil)
	-- a payload made in C, freed by the core
	local p, sz = ctest.malloc("made in C")
	eq(skynet.tostring(p, sz), "made in C")
	skynet.trash(p, sz)
	-- a payload made by the core (skynet.pack), freed in C
	local packed = skynet.pack("made in Lua", 42)
	ctest.free(packed)
	-- and a C buffer sent as a message to ourselves: the core frees it after dispatch
	local p2, sz2 = ctest.malloc("to myself")
	skynet.redirect(skynet.self(), 0, "text", 0, p2, sz2)
end

local function c_service(port)
	local c = skynet.launch("cprobe", "first")
	ok(c, "LAUNCH cprobe")
	eq(skynet.call(c, "text", "echo hello"), "hello", "a copied reply")
	eq(skynet.call(c, "text", "self"), skynet.address(c), "skynet_current_handle in C")
	local big = skynet.call(c, "text", "malloc 100000")
	eq(#big, 100000, "a skynet_malloc reply")
	eq(big, string.rep("c", 100000))
	local hex = skynet.address(c)
	eq(skynet.call(c, "text", "find cprobe"), hex .. " " .. hex, "findname and queryname")
	eq(skynet.call(c, "text", "env cmodule_port"), tostring(port), "skynet_getenv")
	eq(skynet.call(c, "text", "env cmodule_unset"), "(unset)")
	eq(skynet.call(c, "text", "timeout 5"), "timeout", "skynet_timeout")
	eq(skynet.call(c, "text", "refused"), "-1 -1 -2 1", "sends the core refuses")
	-- messages both ways: C sends to us by name
	skynet.register ".cmodule_test"
	eq(skynet.call(c, "text", "push cmodule_test"), "ok")
	skynet.sleep(0)
	tester.deep_eq(pushed, { "to myself", "pushed" }, "messages C and the core sent us")
	-- a Lua payload kept by C and sent back as its reply
	local a, b, t = skynet.call(c, "client", "round", 2, { x = 1 })
	eq(a, "round")
	eq(b, 2)
	tester.deep_eq(t, { x = 1 })
	-- a socket opened and written from C
	local listener = socket.listen("127.0.0.1", port)
	local accepted
	socket.start(listener, function(id)
		accepted = id
	end)
	eq(skynet.call(c, "text", "connect " .. port), "connected", "skynet_socket_connect")
	while not accepted do
		skynet.sleep(1)
	end
	socket.start(accepted)
	eq(socket.readline(accepted), "hello from C", "bytes written by skynet_socket_send")
	socket.close(accepted)
	socket.close(listener)
	-- UDP from C: a datagram echoed to its sender
	eq(skynet.call(c, "text", "udp " .. (port + 1)), "udp", "skynet_socket_udp")
	local echoed
	local u = socket.udp(function(str)
		echoed = str
	end)
	socket.udp_connect(u, "127.0.0.1", port + 1)
	socket.write(u, "datagram")
	while not echoed do
		skynet.sleep(1)
	end
	eq(echoed, "datagram", "skynet_socket_udp_address and skynet_socket_udp_send")
	socket.close(u)
	-- SIGNAL reaches the module's _signal
	require("skynet.core").command("SIGNAL", hex .. " 7")
	eq(skynet.call(c, "text", "signal"), "7", "cprobe_signal")
	-- one module, two instances
	local c2 = skynet.launch("cprobe", "second")
	ok(c2, "a second instance")
	eq(skynet.call(c2, "text", "count"), "2", "the module is loaded once")
	eq(skynet.call(c2, "text", "find cprobe2"), skynet.address(c2) .. " " .. skynet.address(c2))
	skynet.kill(c2)
	return c
end

local function bad_modules(c)
	eq(skynet.launch("cprobe", "fail"), nil, "an init that fails")
	eq(skynet.launch("nosuchmodule"), nil, "a missing module")
	eq(skynet.launch("noinit"), nil, "a module without _init")
	eq(skynet.launch("garbage"), nil, "a file that is not a shared object")
	eq(skynet.call(c, "text", "echo still here"), "still here", "the node carries on")
end

tester.run("test_cmodule", function()
	local port = assert(tonumber(skynet.getenv "cmodule_port"))
	lua_module()
	local c = c_service(port)
	bad_modules(c)
	skynet.kill(c)
end)
