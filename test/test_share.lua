-- The shared-configuration native modules, read from a second service through the
-- pointers that cross services: skynet.sharetable.core (one shared tree, writes
-- refused), skynet.sharedata.core (a tree outside every VM, upstream's key order and
-- errors), skynet.datasheet.core (a golden document, malformed documents refused) and
-- skynet.stm (versions seen by a reader).
local skynet = require "skynet"

local mode = ...

if mode == "reader" then
	local sharetable = require "skynet.sharetable.core"
	local sharedata = require "skynet.sharedata.core"
	local datasheet = require "skynet.datasheet.core"
	local stm = require "skynet.stm"
	local CMD = {}
	local reader, boxes = nil, {}
	function CMD.sharetable(ptr)
		local t = sharetable.clone(ptr)
		return sharetable.is_sharedtable(t), t.name, #t.list, t.list[3], t.sub.f(20),
			(pcall(function() t.name = "x" end))
	end
	function CMD.sharedata(conf)
		local box = sharedata.box(conf)
		boxes[#boxes + 1] = box
		local sub = sharedata.index(conf, "sub")
		return sharedata.index(conf, "name"), sharedata.index(sub, 1), sharedata.getref(conf),
			box ~= nil
	end
	function CMD.datasheet(ptr)
		local t = datasheet.new(ptr)
		return t.name, t.sub[2], #t.sub
	end
	function CMD.stm(copy)
		reader = stm.newcopy(copy)
		return reader(skynet.unpack)
	end
	function CMD.stmread()
		return reader(skynet.unpack)
	end
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, cmd, ...)
			skynet.retpack(CMD[cmd](...))
		end)
	end)
	return
end

local tester = require "tester"
local eq, ok, deep_eq, raises = tester.eq, tester.ok, tester.deep_eq, tester.raises

local function sharetable_checks(reader)
	local core = require "skynet.sharetable.core"
	local m = core.matrix([[
		local n = ...
		return { name = "sword", list = { 10, 20, n }, sub = { f = function(a) return a + 1 end } }
	]], 30)
	local t = core.clone(m:getptr())
	ok(core.is_sharedtable(t) and core.is_sharedtable(t.list), "shared")
	ok(core.clone(m:getptr()) == t, "one table, not a copy")
	eq(getmetatable(t), nil, "no metatable")
	raises("attempt to change a table value", function() t.name = 1 end)
	raises("attempt to change a table value", function() t.list[4] = 1 end)
	raises("attempt to change a shared table", rawset, t, "name", 1)
	raises("can't setmetatable to shared table", setmetatable, t, {})
	eq(t.name, "sword", "unchanged")
	deep_eq({ skynet.call(reader, "lua", "sharetable", m:getptr()) },
		{ true, "sword", 3, 30, 21, false }, "read by another service")
	ok(m:size() > 0, "size")
	raises("Can't share metatable", core.matrix, "return { setmetatable({}, {}) }")
	raises("Invalid function with upvalue", core.matrix, "local x return { function() return x end }")
	raises("Invalid type [userdata]", core.matrix, "return { io.stdout }")
	raises("Not a table, it's a number.", core.matrix, "return 1")
	raises("Type invalid", core.matrix, "return {}", {})
	raises("Only support light C function", core.matrix, "return {}", function() end)
	raises("Not a shared table", core.clone, nil)
	local body = function() end
	local values = {}
	eq(core.stackvalues(coroutine.create(body), values), 1, "stackvalues")
	ok(values[1] == body, "a coroutine not started holds its body")
	eq(core.stackvalues(coroutine.running(), {}), 0, "the running thread")
end

local function sharedata_checks(reader)
	local core = require "skynet.sharedata.core"
	local src = { "a", "b", nil, "d" }
	local conf = core.new({ name = "sword", sub = src, [10] = 1.5, flag = true })
	eq(core.index(conf, "name"), "sword")
	eq(core.index(conf, 10), 1.5)
	eq(math.type(core.index(conf, 10)), "float")
	eq(core.index(conf, "missing"), nil)
	eq(select("#", core.index(conf, nil)), 0, "nil key gives nothing")
	local sub = core.index(conf, "sub")
	eq(type(sub), "userdata", "a sub-table is a conf pointer")
	eq(core.len(sub), #src, "the array part is 1..#t")
	eq(core.hashlen(conf), 4)
	local keys = {}
	local k = core.nextkey(sub)
	while k do
		keys[#keys + 1] = k
		k = core.nextkey(sub, k)
	end
	local expected = {}
	for i = 1, #src do
		if src[i] ~= nil then expected[#expected + 1] = i end
	end
	for i = #src + 1, 4 do
		if src[i] ~= nil then expected[#expected + 1] = i end
	end
	deep_eq(keys, expected, "array keys skip nil slots, then the hash part")
	raises("Invalid key 1.500000", core.index, conf, 1.5)
	raises("Invalid key 2.500000", core.new, { [2.5] = 1 })
	raises("Invalid key type boolean", core.new, { [true] = 1 })
	raises("Unsupport value type function", core.new, { f = print })
	raises("Need a conf object", core.index, nil, 1)
	eq(core.incref(conf), 1)
	eq(core.decref(conf), 0)
	deep_eq({ skynet.call(reader, "lua", "sharedata", conf) }, { "sword", "a", 1, true },
		"read by another service")
	ok(not core.isdirty(conf))
	core.markdirty(conf)
	ok(core.isdirty(sub), "dirty is the tree's")
	local box = core.box(conf)
	eq(core.getref(conf), 2, "the reader's box and this one")
	eq(select("#", core.needupdate(box)), 0)
	local newconf = core.new({ name = "axe" })
	raises("You should update a new object", core.update, box, conf, {})
	core.update(box, newconf, { tag = 1 })
	local nc, nt = core.needupdate(box)
	ok(nc == newconf and nt.tag == 1, "needupdate")
	box = nil
	collectgarbage()
	skynet.sleep(10)
	collectgarbage()
	eq(core.getref(conf), 1, "this box released")
	core.delete(newconf)
	core.delete(conf)
end

-- A datasheet document of { name = "sword", sub = { 1, 2.5, "x" } }, byte by byte.
local function golden_document()
	local strings = "name\0sword\0sub\0x\0"
	local t0 = string.pack("<I4I4", 0, 2) .. string.pack("BB", 5, 4) .. "\0\0"
		.. string.pack("<I4I4I4I4", 0, 5, 11, 1)
	local t1 = string.pack("<I4I4", 3, 0) .. string.pack("BBB", 1, 2, 5) .. "\0"
		.. string.pack("<i4", 1) .. string.pack("<f", 2.5) .. string.pack("<I4", 15)
	local tables = t0 .. t1
	local header = 8 + 4 * 2
	return string.pack("<I4I4I4I4", header + #tables, 2, 0, #t0) .. tables .. strings
end

local GOLDEN = "4400000002000000000000001c00000000000000020000000504000000000000050000000b0000"
	.. "000100000003000000000000000102050001000000000020400f0000006e616d650073776f7264007375"
	.. "62007800"

local function datasheet_checks(reader)
	local core = require "skynet.datasheet.core"
	local doc = golden_document()
	eq((doc:gsub(".", function(c) return string.format("%02x", c:byte()) end)), GOLDEN,
		"golden bytes")
	local ptr = core.stringpointer(doc)
	local t = core.new(ptr)
	eq(getmetatable(t) ~= nil, true, "a proxy until read")
	eq(t.name, "sword")
	eq(getmetatable(t), nil, "materialised")
	eq(#t.sub, 3, "length of a proxy")
	deep_eq(t.sub, { 1, 2.5, "x" }, "sub-table")
	eq(math.type(t.sub[1]), "integer")
	deep_eq({ skynet.call(reader, "lua", "datasheet", ptr) }, { "sword", 2.5, 3 },
		"read by another service")
	-- update: the proxies of the old document follow the new one
	local doc2 = golden_document():gsub("sword", "spear")
	local t2 = core.new(core.stringpointer(doc))
	local sub = t2.sub
	core.update(t2, core.stringpointer(doc2))
	eq(t2.name, "spear", "updated")
	raises("Invalid proxy table", core.update, {}, ptr)
	-- malformed documents are refused, never read outside themselves
	local function bad(text, bytes)
		local p = core.stringpointer(bytes)
		raises(text, function() return core.new(p).name end)
	end
	bad("Invalid index 0", string.pack("<I4I4", 8, 0))
	bad("Invalid document", string.pack("<I4I4I4", 12, 1, 1000))
	bad("Invalid type 9", doc:sub(1, 24) .. "\9" .. doc:sub(26))
	bad("Invalid document", string.pack("<I4", 8))
	local msg, sz = skynet.pack(1)
	raises("Invalid document", core.new, msg)
	skynet.trash(msg, sz)
	ok(sub ~= nil)
end

local function stm_checks(reader)
	local stm = require "skynet.stm"
	local obj = stm.new(skynet.pack(1, 2, 3))
	deep_eq({ skynet.call(reader, "lua", "stm", stm.copy(obj)) }, { true, 1, 2, 3 }, "first read")
	deep_eq({ skynet.call(reader, "lua", "stmread") }, { false }, "nothing new")
	obj(skynet.pack("hello"))
	deep_eq({ skynet.call(reader, "lua", "stmread") }, { true, "hello" }, "new version")
	obj("raw")
	obj = nil
	collectgarbage()
	deep_eq({ skynet.call(reader, "lua", "stmread") }, { false }, "writer gone")
	raises("userdata expected", stm.copy, {})
end

tester.run("test_share", function()
	local reader = skynet.newservice(SERVICE_NAME, "reader")
	sharetable_checks(reader)
	sharedata_checks(reader)
	datasheet_checks(reader)
	stm_checks(reader)
end)
