-- skynet.pack / skynet.unpack / skynet.packstring round trips: integer and float
-- subtypes at the encoding boundaries, strings of length 0/31/32/65535/65536 and binary
-- bytes, nils among the values, nested and mixed tables (array sizes around 31),
-- __pairs tables, light userdata, the depth limit, unsupported types, and the same
-- values crossing into another service and back.
local skynet = require "skynet"

local mode = ...

if mode == "slave" then
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, ...)
			skynet.retpack(...)
		end)
	end)
	return
end

local tester = require "tester"
local eq, ok, deep_eq, raises = tester.eq, tester.ok, tester.deep_eq, tester.raises

local function roundtrip(...)
	local n = select("#", ...)
	-- through a string
	local s = skynet.packstring(...)
	local r = table.pack(skynet.unpack(s))
	eq(r.n, n, "value count through packstring")
	-- through a pointer, which unpack must not free
	local p, sz = skynet.pack(...)
	eq(type(p), "userdata", "pack returns light userdata")
	eq(sz, #s, "pack and packstring agree on the size")
	eq(skynet.tostring(p, sz), s, "pack and packstring agree on the bytes")
	local r2 = table.pack(skynet.unpack(p, sz))
	eq(r2.n, n, "value count through a pointer")
	skynet.trash(p, sz)
	for i = 1, n do
		deep_eq(r2[i], r[i], "pointer vs string result " .. i)
	end
	return r
end

local function check(v, what)
	local r = roundtrip(v)
	deep_eq(r[1], v, what)
end

local function nest(depth)
	local t = { "bottom" }
	for _ = 2, depth do
		t = { t }
	end
	return t
end

local function array(n)
	local t = {}
	for i = 1, n do
		t[i] = i * 3
	end
	return t
end

tester.run("test_serialize", function()
	local ints = {
		0, 1, -1, 255, 256, 65535, 65536, -65536, 0x7fffffff, 0x80000000,
		-0x80000000, -0x80000001, 1 << 53, math.maxinteger, math.mininteger,
	}
	for _, v in ipairs(ints) do
		check(v, "integer " .. v)
	end
	local floats = { 0.0, 1.0, 3.0, 1.5, -2.25, 1e300, -1e-300, math.pi, math.huge, -math.huge }
	for _, v in ipairs(floats) do
		check(v, "float " .. tostring(v))
	end
	local negzero = roundtrip(-0.0)[1]
	eq(1 / negzero, -math.huge, "negative zero keeps its sign")
	local nan = roundtrip(0 / 0)[1]
	ok(nan ~= nan, "NaN stays NaN")
	eq(math.type(nan), "float", "NaN subtype")

	for _, len in ipairs { 0, 1, 30, 31, 32, 33, 255, 65535, 65536, 100000 } do
		check(string.rep("s", len), "string of length " .. len)
	end
	local bytes = {}
	for i = 0, 255 do
		bytes[#bytes + 1] = string.char(i)
	end
	check(table.concat(bytes), "all byte values")
	check("a\0b\0", "embedded zeros")

	check(true, "true")
	check(false, "false")

	-- value counts, nils included
	eq(select("#", skynet.unpack(skynet.packstring())), 0, "no values")
	local r = roundtrip(nil)
	eq(r.n, 1, "a single nil")
	r = roundtrip(1, nil, "x", nil)
	eq(r.n, 4, "nils among values")
	eq(r[3], "x", "value after a nil")

	-- tables
	check({}, "empty table")
	for _, n in ipairs { 1, 30, 31, 32, 100, 1000 } do
		check(array(n), "array of " .. n)
	end
	check({ 1, 2, 3, x = "y", [10] = 10, [-1] = "neg", [1.5] = "float key", [true] = false },
		"mixed table")
	local mixed = array(40)
	mixed.name = "forty"
	mixed[0] = "zero"
	check(mixed, "big array with hash part")
	check({ a = { b = { c = { d = { 1, 2, { e = "deep" } } } } }, list = { { 1 }, { 2 }, { 3 } } },
		"nested tables")
	check({ [1] = 1, [2] = 2, [4] = 4 }, "array with a hole")
	check(nest(32), "32 nested tables")
	raises("serialize can't pack too depth table", skynet.packstring, nest(33))
	raises("serialize can't pack too depth table", skynet.pack, nest(100))

	-- metatables are not carried; __pairs decides what is written
	local proxy = setmetatable({}, {
		__pairs = function()
			return next, { p = 1, q = "two" }, nil
		end,
	})
	local got = roundtrip(proxy)[1]
	deep_eq(got, { p = 1, q = "two" }, "__pairs table")
	eq(getmetatable(got), nil, "no metatable after unpack")

	-- light userdata travel as raw addresses
	local ptr, psz = skynet.pack("pointer payload")
	local back = roundtrip(ptr)[1]
	ok(rawequal(back, ptr), "light userdata round trip")
	eq(skynet.unpack(back, psz), "pointer payload", "the pointer still points to the payload")
	skynet.trash(ptr, psz)

	-- unsupported types
	raises("Unsupport type function to serialize", skynet.packstring, print)
	raises("Unsupport type thread to serialize", skynet.packstring, coroutine.running())
	raises("Unsupport type function to serialize", skynet.packstring, { f = print })

	-- across services
	local slave = skynet.newservice(SERVICE_NAME, "slave")
	local payload = {
		ints = ints,
		floats = floats,
		strings = { string.rep("a", 31), string.rep("b", 32), string.rep("c", 65536) },
		bytes = table.concat(bytes),
		nested = nest(20),
		big = array(500),
	}
	local a, b, c2 = skynet.call(slave, "lua", payload, nil, 2.0)
	deep_eq(a, payload, "table across services")
	eq(b, nil, "nil across services")
	eq(c2, 2.0, "float 2.0 across services")
end)
