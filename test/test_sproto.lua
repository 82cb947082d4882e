-- sproto from Lua: sprotoparser's bytes for a schema using every field kind (compared
-- with the bytes C skynet's parser made), sproto objects (encode/decode, packed forms,
-- defaults), the RPC host (attach and dispatch, both ways), sprotoloader's process-wide
-- slots read from another service, and upstream's parser error texts.
local skynet = require "skynet"
local sprotoloader = require "sprotoloader"

local mode = ...

if mode == "slave" then
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, bin)
			local sp = sprotoloader.load(7)
			skynet.retpack(sp:decode("Person", bin).name)
		end)
	end)
	return
end

local tester = require "tester"
local sproto = require "sproto"
local parser = require "sprotoparser"
local eq, ok, raises, deep_eq = tester.eq, tester.ok, tester.raises, tester.deep_eq

local SCHEMA = [[
.Phone {
	number 0 : string
	type 1 : integer
}
.Pair {
	key 0 : string
	value 1 : integer
}
.Person {
	name 0 : string
	id 1 : integer
	email 2 : string
	phone 3 : *Phone
	height 4 : integer(2)
	data 5 : binary
	weight 6 : double
	alive 7 : boolean
	nums 8 : *integer
	bools 9 : *boolean
	reals 10 : *double
	names 11 : *string
	byid 12 : *Phone(type)
	dict 13 : *Pair()
	rates 14 : *integer(3)
	child 20 : Person
	big 21 : integer
	.Inner {
		x 0 : integer
	}
	inner 22 : Inner
}
foobar 1 {
	request Person
	response {
		ok 0 : boolean
	}
}
empty 2 {}
confirm 3 {
	response nil
}
]]

-- what C skynet's sprotoparser (on C lpeg) makes of SCHEMA
local GOLDEN = "020000000000b10200003e00000002000000000004000000506169722c0000001100000004000000060001000200030000006b657913000000040000000200010004000500000076616c7565c001000002000000000006000000506572736f6eac0100001200000004000000060001000200040000006e616d651000000004000000020001000400020000006964130000000400000006000100060005000000656d61696c150000000500000001000800080004000500000070686f6e651400000004000000020006000a00060000006865696768741200000004000000060004000c0004000000646174611400000004000000080001000e0006000000776569676874130000000400000004000100100005000000616c69766514000000050000000200010012000400040000006e756d731500000005000000040001001400040005000000626f6f6c7315000000050000000800010016000400050000007265616c7315000000050000000600010018000400050000006e616d65731600000006000000010008001a000400040004000000627969641800000007000000010002001c0004000200040004000000646963741500000005000000020008001e0004000500000072617465731300000004000000010004002a00050000006368696c641100000004000000020001002c00030000006269671300000004000000010006002e0005000000696e6e65722d0000000200000000000c000000506572736f6e2e496e6e6572130000000f000000040000000200010002000100000078410000000200000000000500000050686f6e652e0000001400000004000000060001000200060000006e756d62657212000000040000000200010004000400000074797065310000000200000000000f000000666f6f6261722e726573706f6e7365140000001000000004000000040001000200020000006f6b460000001400000004000000040004000a0006000000666f6f6261720f00000002000000060005000000656d7074791700000005000000080001000100040007000000636f6e6669726d"

local function hex(s)
	return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

tester.run("test_sproto", function()
	local bin = parser.parse(SCHEMA)
	eq(hex(bin), GOLDEN, "schema bytes")
	local sp = sproto.new(bin)
	ok(sp:exist_type "Person.Inner", "nested type")
	ok(not sp:exist_type "Nope", "no such type")
	ok(sp:exist_proto "foobar" and sp:exist_proto(3), "protocols")

	local person = {
		name = "Alice", id = 7, height = 1.5, alive = true, data = "\0\1",
		nums = { 1, 1 << 40 }, names = { "a", "b" }, dict = { k = 1 },
		byid = { [9] = { number = "x", type = 9 } }, child = { name = "Kid" },
	}
	local back = sp:decode("Person", sp:encode("Person", person))
	deep_eq(back, person, "round trip")
	deep_eq(sp:pdecode("Person", sp:pencode("Person", person)), person, "packed round trip")
	eq(sp:default("foobar", "RESPONSE").ok, false, "response default")
	eq(sp:default("empty", "REQUEST"), nil, "no request type")
	raises("Invalid type", sp.default, sp, "foobar", "BOTH")

	-- RPC: the client asks foobar, the server answers
	local rpc = sproto.parse(".package {\n\ttype 0 : integer\n\tsession 1 : integer\n}\n" .. SCHEMA)
	local server, client = rpc:host "package", rpc:host "package"
	local ask = client:attach(rpc)
	local kind, name, args, respond = server:dispatch(ask("foobar", { name = "Q" }, 5))
	eq(kind, "REQUEST") eq(name, "foobar") eq(args.name, "Q", "request args")
	local kind2, session, answer = client:dispatch(respond { ok = true })
	eq(kind2, "RESPONSE") eq(session, 5, "session") eq(answer.ok, true, "response")
	local k3, n3, a3, r3 = server:dispatch(ask("empty"))
	eq(k3, "REQUEST") eq(n3, "empty") eq(a3, nil) eq(r3, nil, "no session, no responder")
	raises("Unknown session", client.dispatch, client, respond { ok = false })

	-- a schema in a process-wide slot, used by another service
	sprotoloader.save(bin, 7)
	local slave = skynet.newservice(SERVICE_NAME, "slave")
	eq(skynet.call(slave, "lua", sp:encode("Person", { name = "shared" })), "shared", "slot")

	-- upstream's parser errors
	raises("syntax error at [=text] line (3)", parser.parse, ".A {\n a 0 : integer\n b }")
	raises("redefine tag 0 in type A", parser.parse, ".A { a 0 : integer b 0 : string }")
	raises("Undefined type X in type A", parser.parse, ".A { a 0 : X }")
	raises("redefined protocol tag 1", parser.parse, "x 1 {} y 1 {}")
	raises("decode error", sp.decode, sp, "Person", "\5\0")
end)
