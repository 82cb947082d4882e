-- Every kind of error the native modules raise, ROUNDS times each: a Lua error unwinds
-- with longjmp, and anything Rust owned in the frames it skips would leak. The heap the
-- node's allocator charges to this service (skynet.memory.current: Rust blocks only, the
-- Lua VM has its own allocator) must be back where it started after each kind.
local skynet = require "skynet"
local c = require "skynet.core"
local memory = require "skynet.memory"
local socketdriver = require "skynet.socketdriver"
local netpack = require "skynet.netpack"
local crypt = require "skynet.crypt"
local bson = require "bson"
local md5 = require "md5.core"
local driver = require "skynet.mongo.driver"
local profile = require "skynet.profile"
local codecache = require "skynet.codecache"
local mc = require "skynet.multicast.core"
local debugchannel = require "skynet.debugchannel"
local tester = require "tester"

local ROUNDS = 100000

local function i32(n)
	return string.pack("<i4", n)
end

local function deep(n)
	local t = {}
	for _ = 1, n do
		t = { t }
	end
	return t
end

local function boom()
	error("boom")
end

-- A file with a syntax error, found by `require` and `dofile`.
local bad_dir = os.tmpname()
os.remove(bad_dir)
local bad_file = bad_dir .. "_raise_bad.lua"
local f = assert(io.open(bad_file, "w"))
f:write("x = = 1\n")
f:close()
local bad_path = bad_dir .. "_?.lua"

-- `require`'s Lua searcher (the codecache's) for `name` along `path`.
local function search(path, name)
	local saved = package.path
	package.path = path
	local ok, err = pcall(package.searchers[2], name)
	package.path = saved
	if not ok then
		error(err, 0)
	end
end

-- The call `fn(...)` that must raise an error containing `needle`.
local function case(what, needle, fn, ...)
	return { what = what, needle = needle, fn = fn, args = table.pack(...) }
end

-- what the multicast and debugchannel cases work on
local self_cell = mc.pack(c.pack "a multicast message")
local debugchannel_writer, channel_address = debugchannel.create()
local debugchannel_reader = debugchannel.connect(channel_address)

local function cases(self, payload, buffer, doc, indexed, bad_doc)
	local loop = {}
	loop.loop = loop
	return {
		-- skynet.core
		case("core.send address 0", "Invalid service address 0", c.send, 0, skynet.PTYPE_LUA, 0, "x"),
		case("core.send address type", "must be a string or number", c.send, {}, skynet.PTYPE_LUA, 0, "x"),
		case("core.send type", "number expected", c.send, self, "x", 0, "x"),
		case("core.send session", "number expected", c.send, self, skynet.PTYPE_LUA, "x", "x"),
		case("core.send size", "number expected", c.send, self, skynet.PTYPE_LUA, 0, payload, "x"),
		case("core.send message", "invalid param table", c.send, self, skynet.PTYPE_LUA, 0, {}),
		case("core.redirect source", "number expected", c.redirect, self, "x", skynet.PTYPE_LUA, 0, "x"),
		case("core.command", "string expected", c.command, {}),
		case("core.command param", "string expected", c.command, "QUERY", {}),
		case("core.intcommand result", "Invalid result :", c.intcommand, "REG"),
		case("core.intcommand param", "string expected", c.intcommand, "STAT", {}),
		case("core.addresscommand", "string expected", c.addresscommand, {}),
		case("core.error __tostring", "boom", c.error, setmetatable({}, { __tostring = boom })),
		case("core.harbor", "number expected", c.harbor, "x"),
		case("core.callback", "function expected", c.callback, 1),
		case("core.trace tag", "string expected", c.trace, {}),
		case("core.trace user", "string expected", c.trace, "tag", {}),
		case("core.trace level", "number expected", c.trace, "tag", "user", "x"),
		case("core.tostring", "number expected", c.tostring, payload, "x"),
		case("core.trash", "skynet.trash invalid param table", c.trash, {}),
		case("core.trash size", "number expected", c.trash, payload, "x"),
		-- the serializer (skynet.pack / packstring / unpack)
		case("seri.pack type", "Unsupport type function to serialize", c.pack, print),
		case("seri.pack depth", "serialize can't pack too depth table", c.pack, deep(40)),
		case("seri.pack __pairs", "boom", c.pack, setmetatable({}, { __pairs = boom })),
		case("seri.packstring type", "Unsupport type thread to serialize", c.packstring, coroutine.running()),
		case("seri.packstring loop", "serialize can't pack too depth table", c.packstring, loop),
		case("seri.unpack stream", "Invalid serialize stream", c.unpack, "\7"),
		case("seri.unpack table", "Invalid serialize stream", c.unpack, "\38"),
		case("seri.unpack null", "deserialize null pointer", c.unpack, {}, 1),
		case("seri.unpack size", "number expected", c.unpack, payload, "x"),
		-- skynet.socketdriver
		case("socket.push buffer", "need buffer object at param 1", socketdriver.push, {}, {}, payload, 1),
		case("socket.push pool", "table expected", socketdriver.push, buffer, 1, payload, 1),
		case("socket.push message", "need message block at param 3", socketdriver.push, buffer, {}, nil, 1),
		case("socket.push size", "number expected", socketdriver.push, buffer, {}, payload, "x"),
		case("socket.pop buffer", "Need buffer object at param 1", socketdriver.pop, nil, {}, 1),
		case("socket.pop size", "number expected", socketdriver.pop, buffer, {}, "x"),
		case("socket.readall", "Need buffer object at param 1", socketdriver.readall, 1, {}),
		case("socket.readline buffer", "Need buffer object at param 1", socketdriver.readline, 1, {}, "\n"),
		case("socket.readline sep", "string expected", socketdriver.readline, buffer, {}, {}),
		case("socket.clear", "Need buffer object at param 1", socketdriver.clear, 1),
		case("socket.drop", "number expected", socketdriver.drop, payload, "x"),
		case("socket.str2p", "string expected", socketdriver.str2p, {}),
		case("socket.header", "Invalid read 12345", socketdriver.header, "12345"),
		case("socket.header type", "string expected", socketdriver.header, {}),
		case("socket.unpack", "number expected", socketdriver.unpack, payload, "x"),
		case("socket.connect address", "Invalid address 1.2.3.4.", socketdriver.connect, "1.2.3.4"),
		case("socket.connect address port", "Invalid port in address 1.2.3.4:x.", socketdriver.connect, "1.2.3.4:x"),
		case("socket.connect port type", "number expected", socketdriver.connect, "1.2.3.4", "x"),
		case("socket.connect port", "Invalid port", socketdriver.connect, "1.2.3.4", 0),
		case("socket.connect host", "string expected", socketdriver.connect, {}),
		case("socket.listen", "Listen error", socketdriver.listen, "1.2.3.4", 1),
		case("socket.listen backlog", "number expected", socketdriver.listen, "1.2.3.4", 1, "x"),
		case("socket.close", "number expected", socketdriver.close, "x"),
		case("socket.shutdown", "number expected", socketdriver.shutdown, "x"),
		case("socket.start", "number expected", socketdriver.start, "x"),
		case("socket.pause", "number expected", socketdriver.pause, "x"),
		case("socket.nodelay", "number expected", socketdriver.nodelay, "x"),
		case("socket.bind", "number expected", socketdriver.bind, "x"),
		case("socket.send id", "number expected", socketdriver.send, "x", "data"),
		case("socket.send param", "invalid param boolean", socketdriver.send, 1, true),
		case("socket.send size", "Invalid size of user object", socketdriver.send, 1, payload, -1),
		case("socket.send size type", "number expected", socketdriver.send, 1, payload, "x"),
		case("socket.send table", "string expected", socketdriver.send, 1, { "a", {} }),
		case("socket.lsend param", "invalid param boolean", socketdriver.lsend, 1, true),
		case("socket.resolve", "NUL", socketdriver.resolve, "a\0b"),
		case("socket.udp", "udp init failed", socketdriver.udp, "1.2.3.4", 1),
		case("socket.udp port", "number expected", socketdriver.udp, "1.2.3.4", "x"),
		case("socket.udp_connect", "udp connect failed", socketdriver.udp_connect, 1, "a\0b", 1),
		case("socket.udp_connect address", "Invalid address x.", socketdriver.udp_connect, 1, "x"),
		case("socket.udp_dial", "udp dial host failed", socketdriver.udp_dial, "a\0b", 1),
		case("socket.udp_listen", "udp listen host failed", socketdriver.udp_listen, "1.2.3.4", 1),
		case("socket.udp_listen port", "Invalid port", socketdriver.udp_listen, "1.2.3.4", 0),
		case("socket.udp_send param", "invalid param boolean", socketdriver.udp_send, 1, "", true),
		case("socket.udp_address", "Invalid udp address", socketdriver.udp_address, "x"),
		-- skynet.netpack
		case("netpack.filter message", "userdata expected", netpack.filter, nil, 1, 1),
		case("netpack.filter size", "number expected", netpack.filter, nil, payload, "x"),
		case("netpack.pack size", "Invalid size (too long) of data : 65536", netpack.pack, string.rep("x", 65536)),
		case("netpack.pack type", "string expected", netpack.pack, {}),
		case("netpack.tostring", "number expected", netpack.tostring, payload, "x"),
		-- skynet.crypt
		case("crypt.hashkey", "string expected", crypt.hashkey, {}),
		case("crypt.desencode key", "Invalid key size 3, need 8 bytes", crypt.desencode, "abc", "text"),
		case("crypt.desencode padding", "Invalid padding mode 9", crypt.desencode, "12345678", "text", 9),
		case("crypt.desdecode length", "Invalid des crypt text length 3", crypt.desdecode, "12345678", "abc"),
		case("crypt.desdecode text", "Invalid des crypt text", crypt.desdecode, "12345678",
			crypt.desencode("12345678", "abcdefgh"):sub(1, 8)),
		case("crypt.hexencode", "string expected", crypt.hexencode, {}),
		case("crypt.hexdecode size", "Invalid hex text size 3", crypt.hexdecode, "abc"),
		case("crypt.hexdecode text", "Invalid hex text", crypt.hexdecode, "zz"),
		case("crypt.hmac64 x", "Invalid uint64 x", crypt.hmac64, "x", "12345678"),
		case("crypt.hmac64 y", "Invalid uint64 y", crypt.hmac64, "12345678", "y"),
		case("crypt.hmac64_md5", "Invalid uint64 x", crypt.hmac64_md5, "x", "12345678"),
		case("crypt.hmac_hash", "Invalid uint64 key", crypt.hmac_hash, "k", "text"),
		case("crypt.dhexchange key", "Invalid dh uint64 key", crypt.dhexchange, "k"),
		case("crypt.dhexchange zero", "Can't be 0", crypt.dhexchange, string.rep("\0", 8)),
		case("crypt.dhsecret zero", "Can't be 0", crypt.dhsecret, string.rep("\0", 8), "12345678"),
		case("crypt.base64encode", "string expected", crypt.base64encode, {}),
		case("crypt.base64decode", "Invalid base64 text", crypt.base64decode, "QUJD==="),
		case("crypt.sha1", "string expected", crypt.sha1, {}),
		case("crypt.hmac_sha1", "string expected", crypt.hmac_sha1, "key", {}),
		case("crypt.xor_str", "Can't xor empty string", crypt.xor_str, "a", ""),
		-- bson
		case("bson.encode type", "table expected", bson.encode, 1),
		case("bson.encode value", "Invalid value type : function", bson.encode, { f = print }),
		case("bson.encode key", "Bson dictionary's key can't be number", bson.encode, { [1.5] = 1 }),
		case("bson.encode hole", "Bson array has a hole", bson.encode,
			{ a = setmetatable({}, { __len = function() return 1 end }) }),
		case("bson.encode depth", "Too depth while encoding bson", bson.encode, loop),
		case("bson.encode __pairs", "boom", bson.encode, { a = setmetatable({}, { __pairs = boom }) }),
		case("bson.encode __len", "__len should return integer", bson.encode,
			{ a = setmetatable({}, { __len = function() return "x" end }) }),
		case("bson.encode utf8", "Invalid utf8 string", bson.encode, { a = "\255" }),
		case("bson.encode_order odd", "Invalid ordered dict", bson.encode_order, "a"),
		case("bson.encode_order key", "Argument 1 need a string", bson.encode_order, {}, 1),
		case("bson.decode", "Invalid bson type : 66", bson.decode, bad_doc),
		case("bson.makeindex", "bson expected", doc.makeindex, 1),
		case("bson.replace index", "call makeindex first", function() doc.a = 2 end),
		case("bson.replace key", "Can't replace key : nokey", function() indexed.nokey = 2 end),
		case("bson.replace int", "must be a 32bit integer", function() indexed.i = "x" end),
		case("bson.replace real", "number expected", function() indexed.r = "x" end),
		case("bson.replace oid", "Type mismatch, need bson type 7", function() indexed.o = "x" end),
		case("bson.objectid", "Invalid objectid short", bson.objectid, "short"),
		case("bson.type", "Invalid type function", bson.type, print),
		case("bson.type subtype", "Invalid binary", bson.type, "\0\5"),
		case("bson.date", "number expected", bson.date, "x"),
		case("bson.regex", "string expected", bson.regex, {}),
		case("bson.binary", "string expected", bson.binary, {}),
		-- md5.core
		case("md5.sum", "string expected", md5.sum, {}),
		case("md5.exor", "lengths must be equal", md5.exor, "a", "ab"),
		case("md5.crypt seed", "seed too long", md5.crypt, "x", "k", string.rep("s", 17)),
		case("md5.crypt key", "key too long", md5.crypt, "x", string.rep("k", 257), "s"),
		case("md5.decrypt", "invalid cyphered string", md5.decrypt, "", "k"),
		-- skynet.mongo.driver
		case("mongo.reply opcode", "Unsupported opcode:1", driver.reply, i32(1) .. i32(1) .. i32(1) .. i32(0) .. "\0"),
		case("mongo.reply type", "string expected", driver.reply, {}),
		case("mongo.length", "Invalid length prefix", driver.length, "ab"),
		case("mongo.op_msg document", "opmsg require cmd document", driver.op_msg, 1, 0, nil),
		case("mongo.op_msg id", "number expected", driver.op_msg, "x", 0, doc),
		-- skynet.memory
		case("memory.mallctl", "string expected", memory.mallctl, {}),
		-- skynet.profile (coroutine.resume and coroutine.wrap are its versions)
		case("profile.start twice", "start profile more than once", profile.start),
		case("profile.stop", "Call profile.start() before profile.stop()", profile.stop, coroutine.create(print)),
		case("profile.start type", "thread expected", profile.start, 1),
		case("profile.resume", "coroutine expected", coroutine.resume, 1),
		case("profile.wrap", "function expected", coroutine.wrap, 1),
		case("profile.wrapped", "boom", function() coroutine.wrap(boom)() end),
		-- skynet.codecache (loadfile, dofile and require's Lua searcher are its versions)
		case("codecache.loadfile", "string expected", loadfile, {}),
		case("codecache.loadfile mode", "string expected", loadfile, bad_file, {}),
		case("codecache.dofile", "unexpected symbol", dofile, bad_file),
		case("codecache.dofile missing", "cannot open", dofile, bad_dir .. "_missing.lua"),
		case("codecache.search", "error loading module 'raise_bad' from file", search, bad_path, "raise_bad"),
		case("codecache.search path", "'package.path' must be a string", search, nil, "raise_bad"),
		case("codecache.mode", "invalid option", codecache.mode, "bad"),
		-- skynet.multicast.core (a live cell) and skynet.debugchannel (a channel whose
		-- reader is taken)
		case("multicast.pack size", "Size should be 32bit integer", mc.pack, payload, -1),
		case("multicast.unpack size", "Invalid multicast package size 4", mc.unpack, self_cell, 4),
		case("multicast.unpack null", "Invalid multicast cell (null pointer)", mc.unpack, nil, 8),
		case("multicast.close null", "Invalid multicast package (null pointer)", mc.close, nil),
		case("multicast.nextid", "number expected", mc.nextid, "x"),
		case("debugchannel.connect", "Invalid channel pointer", debugchannel.connect, nil),
		case("debugchannel.connect taken", "new channel failed", debugchannel.connect, channel_address),
		case("debugchannel.read", "debugchannel expected", debugchannel_writer.read, 1),
		case("debugchannel.write", "string expected", debugchannel_writer.write, debugchannel_writer, {}),
		case("debugchannel.sethook", "function expected", debugchannel.sethook, 1, "l"),
	}
end

-- The bytes charged to this service, after a full collection (a collected userdata
-- may free Rust memory).
local function heap()
	collectgarbage "collect"
	return memory.current()
end

-- Calls fn from Lua code (not a tail call), so an argument error names it from the call
-- site instead of searching every loaded module for it (which would cost more than the
-- rest of the raise).
local function invoke(fn, ...)
	fn(...)
end

-- pcall(fn, ...) with exactly the n arguments in `a`: some functions count them, so
-- there are no padding nils, and nothing is allocated per call.
local function call(fn, a, n)
	if n == 0 then
		return pcall(invoke, fn)
	elseif n == 1 then
		return pcall(invoke, fn, a[1])
	elseif n == 2 then
		return pcall(invoke, fn, a[1], a[2])
	elseif n == 3 then
		return pcall(invoke, fn, a[1], a[2], a[3])
	elseif n == 4 then
		return pcall(invoke, fn, a[1], a[2], a[3], a[4])
	end
	return pcall(invoke, fn, table.unpack(a, 1, n))
end

local function run_case(kind)
	local fn, a, n = kind.fn, kind.args, kind.args.n
	local ok, err = call(fn, a, n)
	if ok then
		tester.fail(kind.what .. ": no error, want " .. kind.needle)
	end
	if not tostring(err):find(kind.needle, 1, true) then
		tester.fail(string.format("%s: want error %q, got %q", kind.what, kind.needle, tostring(err)))
	end
	for _ = 1, 100 do
		call(fn, a, n)
	end
	local before = heap()
	for _ = 1, ROUNDS do
		call(fn, a, n)
	end
	return before, heap()
end

tester.run("test_raise", function()
	local payload, size = c.pack("a payload that no failed call takes over")
	local buffer = socketdriver.buffer()
	local doc = bson.encode { a = 1 }
	local indexed = bson.encode { i = 1, r = 1.5, o = bson.objectid() }
	indexed:makeindex()
	-- a reply whose document is well framed but holds an unknown type (66)
	local reply = i32(1) .. i32(1) .. i32(2013) .. i32(0) .. "\0" .. i32(7) .. "\66\0\0"
	local _, _, bad_doc = driver.reply(reply)
	profile.start()
	local leaks = {}
	local list = cases(skynet.self(), payload, buffer, doc, indexed, bad_doc)
	local start = skynet.hpc()
	local sum_before, sum_after = 0, 0
	for _, kind in ipairs(list) do
		local before, after = run_case(kind)
		sum_before, sum_after = sum_before + before, sum_after + after
		-- Only growth counts: another thread may free, meanwhile, a block this service
		-- allocated earlier (a message it sent), which is charged back here.
		if after > before then
			leaks[#leaks + 1] = string.format("%s: %d -> %d bytes", kind.what, before, after)
		end
		skynet.yield()
	end
	profile.stop()
	c.trash(payload, size)
	mc.close(mc.bind(self_cell, 1))
	debugchannel.release(debugchannel_reader)
	os.remove(bad_file)
	skynet.error(string.format(
		"test_raise: %d kinds x %d raises in %.1f s; bytes charged before/after, summed over the kinds: %d/%d; %d leaking",
		#list, ROUNDS, (skynet.hpc() - start) / 1e9, sum_before, sum_after, #leaks))
	if #leaks > 0 then
		tester.fail("raises leaked Rust heap:\n" .. table.concat(leaks, "\n"))
	end
end, { watchdog = 9000 })
