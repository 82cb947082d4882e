-- LPeg workloads for comparing two implementations on the same inputs: run this
-- script with each interpreter and compare the lines.
--
--   target/release/skynet lua bench/lpeg_compare.lua SPROTOPARSER [ROUNDS]
--   LUA_CPATH='/path/to/c/lpeg/?.so' /path/to/lua bench/lpeg_compare.lua SPROTOPARSER [ROUNDS]
--
-- SPROTOPARSER is the path of a sprotoparser.lua (it needs only `lpeg`). Each line is
-- `<workload> <microseconds per run>` (CPU time, os.clock, best of ROUNDS rounds).
-- Not a test: nothing is checked against a threshold. Not a node benchmark either
-- (the core runner in runtime/benches does not list it).
local lpeg = require "lpeg"

local parser_path, rounds = arg[1], tonumber(arg[2]) or 5
assert(parser_path, "usage: lpeg_compare.lua SPROTOPARSER [ROUNDS]")
local sparser = assert(loadfile(parser_path))()

-- A schema of `ntypes` types (nested types, arrays, maps, references to earlier
-- types, comments) and a protocol for every fourth type; the same text every run.
local function schema(ntypes)
	local out = {}
	local scalar = { "integer", "string", "boolean", "binary", "double", "integer(2)" }
	for i = 1, ntypes do
		out[#out + 1] = ("# type %d\n.T%d {\n"):format(i, i)
		local tag = 0
		for f = 1, 8 do
			local ty = scalar[(i + f) % #scalar + 1]
			if f % 4 == 0 and i > 1 then
				ty = "T" .. (i - 1 - (f % (i - 1)))
			end
			local star = (f % 3 == 0) and "*" or ""
			out[#out + 1] = ("\tfield%d %d : %s%s\n"):format(f, tag, star, ty)
			tag = tag + 1
		end
		out[#out + 1] = ("\t.Sub {\n\t\tid 0 : integer\n\t\tname 1 : string\n\t}\n\tsubs %d : *Sub(id)\n}\n"):format(tag)
		if i % 4 == 0 then
			out[#out + 1] = ("proto%d %d {\n\trequest T%d\n\tresponse {\n\t\tok 0 : boolean\n\t}\n}\n"):format(i, i, i)
		end
	end
	return table.concat(out)
end

local function best(f)
	local min = math.huge
	for _ = 1, rounds do
		local t0 = os.clock()
		local n = f()
		local dt = (os.clock() - t0) / n
		if dt < min then
			min = dt
		end
	end
	return min * 1e6
end

local results = {}
local function report(name, us)
	results[#results + 1] = ("%-28s %10.1f us"):format(name, us)
end

local text = schema(300)
report("sprotoparser.parse 300", best(function()
	for _ = 1, 5 do
		sparser.parse(text, "bench")
	end
	return 5
end))

-- The parsing half alone: sprotoparser's grammar as it matches the text.
local P, S, R, C, Ct, Cg, Cc, V = lpeg.P, lpeg.S, lpeg.R, lpeg.C, lpeg.Ct, lpeg.Cg, lpeg.Cc, lpeg.V
local blank = S" \t\n" + "#" * (1 - P"\n") ^ 0
local blank0, blanks = blank ^ 0, blank ^ 1
local word = (R"az" + R"AZ" + "_") * (R"az" + R"AZ" + R"09" + "_") ^ 0
local typedef = P{ "ALL",
	FIELD = Ct(Cg(Cc"field", "type") * C(word) * blanks * (R"09" ^ 1 / tonumber) * blank0 * ":" * blank0
		* C"*" ^ -1 * C(word * ("." * word) ^ 0) * ("(" * blank0 * C((R"az" + R"09") ^ 0) * blank0 * ")") ^ 0),
	STRUCT = "{" * Ct(blank0 * ((V"FIELD" + V"TYPE") * blanks) ^ 0 * blank0) * "}",
	TYPE = Ct(Cg(Cc"type", "type") * "." * C(word) * blank0 * V"STRUCT"),
	SUB = Ct((C"request" + C"response") * blanks * (C(word) + V"STRUCT")),
	PROTO = Ct(Cg(Cc"protocol", "type") * C(word) * blanks * (R"09" ^ 1 / tonumber) * blank0
		* "{" * Ct(blank0 * (V"SUB" * blanks) ^ 0 * blank0) * "}"),
	ALL = Ct(blank0 * ((V"TYPE" + V"PROTO") * blanks) ^ 0 * blank0),
}
typedef = typedef * lpeg.Cp()
local _, stop = typedef:match(text)
assert(stop == #text + 1, "the grammar stops at " .. tostring(stop) .. ": " .. text:sub(stop or 1, (stop or 1) + 40))
report("schema grammar match 300", best(function()
	for _ = 1, 10 do
		typedef:match(text)
	end
	return 10
end))

-- Searching: a word anywhere in a long text (a grammar that skips one byte at a time).
local long = string.rep("the quick brown fox jumps over the lazy dog ", 2000) .. "needle"
local search = P{ C"needle" + 1 * V(1) }
report("search 88KB", best(function()
	for _ = 1, 10 do
		assert(search:match(long) == "needle")
	end
	return 10
end))

-- Splitting and substituting: many small captures.
local csv = string.rep("alpha,beta,,gamma,delta,42\n", 2000)
local field = C((1 - S",\n") ^ 0)
local rows = Ct(Ct(field * ("," * field) ^ 0) * ("\n" * Ct(field * ("," * field) ^ 0)) ^ 0)
report("csv table 54KB", best(function()
	for _ = 1, 10 do
		rows:match(csv)
	end
	return 10
end))

local upper = lpeg.Cs(((R"az" ^ 1) / string.upper + 1) ^ 0)
report("Cs with function 54KB", best(function()
	for _ = 1, 10 do
		upper:match(csv)
	end
	return 10
end))

-- Many matches of a small pattern (per-call overhead).
local number = S"+-" ^ -1 * R"09" ^ 1 * ("." * R"09" ^ 1) ^ -1
report("small match x10000", best(function()
	local n = 0
	for i = 1, 10000 do
		if number:match("-1234.5") then
			n = n + i
		end
	end
	return 1
end))

print(lpeg.version)
for _, line in ipairs(results) do
	print(line)
end
