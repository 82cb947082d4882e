-- sproto encode+decode speed, runnable by this binary's interpreter and by C skynet's
-- Lua with C sproto.so, so the two can be compared on the same machine:
--
--   target/release/skynet lua bench/sproto_compare.lua
--   $SKYNET_C/3rd/lua/lua bench/sproto_compare.lua $SKYNET_C
--
-- With a C skynet tree as argument it loads that tree's sproto.so, lpeg.so and
-- lualib; without, the built-in modules and this repository's lualib. Each line:
--   BENCH sproto <message> bytes=<encoded size> ops=<encode+decode per second>
local ctree = ...
if ctree then
	package.cpath = ctree .. "/luaclib/?.so"
	package.path = ctree .. "/lualib/?.lua"
else
	package.path = "lualib/?.lua;" .. package.path
end

local core = require "sproto.core"
local parser = require "sprotoparser"

local sp = core.newproto(parser.parse [[
.package {
	type 0 : integer
	session 1 : integer
}

.Person {
	name 0 : string
	id 1 : integer
	email 2 : string

	.PhoneNumber {
		number 0 : string
		type 1 : integer
	}

	phone 3 : *PhoneNumber
	score 4 : double
	online 5 : boolean
	friends 6 : *integer
}

.AddressBook {
	person 0 : *Person
}
]])

local person = core.querytype(sp, "Person")
local book = core.querytype(sp, "AddressBook")

-- an agent's typical message: a few scalars, a short string array of structs
local typical = {
	name = "Alice",
	id = 10000,
	email = "alice@example.com",
	phone = {
		{ number = "123456789", type = 1 },
		{ number = "87654321", type = 2 },
	},
	online = true,
}

-- about 2 KB once encoded: an address book of nested people
local big = { person = {} }
for i = 1, 13 do
	big.person[i] = {
		name = "Person" .. i,
		id = 10000 + i,
		email = "person" .. i .. "@example.com",
		phone = {
			{ number = "1234567" .. i, type = 1 },
			{ number = "7654321" .. i, type = 2 },
		},
		score = i * 1.25,
		online = i % 2 == 0,
		friends = { i, i + 1, i + 2, 1 << 33 },
	}
end

local function run(name, st, msg, n)
	local encode, decode = core.encode, core.decode
	local bytes = #encode(st, msg)
	-- warm up
	for _ = 1, n // 10 do
		decode(st, encode(st, msg))
	end
	local t0 = os.clock()
	for _ = 1, n do
		decode(st, encode(st, msg))
	end
	local dt = os.clock() - t0
	print(string.format("BENCH sproto %s bytes=%d ops=%.0f", name, bytes, n / dt))
end

run("typical", person, typical, 1000000)
run("nested2k", book, big, 100000)
