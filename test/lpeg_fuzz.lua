-- `skynet lua test/lpeg_fuzz.lua SEED PATTERNS SUBJECTS`: matches PATTERNS random
-- patterns built from the whole lpeg API against SUBJECTS random subjects each (all
-- from a generator seeded with SEED, so a failure is replayed by its seed). Every
-- construction and match runs under pcall: it must return, and an error must be a
-- string from LPeg's own list of texts (or a function's own "fuzz" error). Prints the
-- counts and `OK`; anything else raises.
local lpeg = require "lpeg"

local seed, npatterns, nsubjects = tonumber(arg[1]) or 1, tonumber(arg[2]) or 2000, tonumber(arg[3]) or 500

-- A small xorshift generator, so runs do not depend on math.random's algorithm.
local state = seed * 2654435761 % 4294967296 + 1
local function rand(n)
	state = state ~ ((state << 13) & 0xffffffff)
	state = state ~ (state >> 17)
	state = state ~ ((state << 5) & 0xffffffff)
	return state % n + 1
end

local function pick(t)
	return t[rand(#t)]
end

local alphabet = { "a", "b", "c", "\0", "\255", "\208", "\144", "(", ")" }

local function randstring(maxlen)
	local n = rand(maxlen + 1) - 1
	local t = {}
	for i = 1, n do
		t[i] = pick(alphabet)
	end
	return table.concat(t)
end

local expected = {
	"loop body may accept empty string", "may be left recursive", "undefined in given grammar",
	"used outside a grammar", "empty loop in rule", "grammar has no initial rule",
	"is not a pattern", "pattern may not have fixed length", "pattern too long to look behind",
	"pattern have captures", "invalid argument index", "reference to absent extra argument",
	"back reference", "invalid capture index", "invalid capture value", "invalid replacement value",
	"no initial value for fold capture", "no previous value for accumulator capture",
	"invalid position returned by match-time capture", "subcapture nesting too deep",
	"backtrack stack overflow", "too many", "pattern too complex", "no capture",
	"no values in capture index", "invalid context for an accumulator capture",
	"fuzz", "range must have two characters", "invalid code point", "empty range",
	"attempt to", "bad argument",
}

local function check_error(err, what)
	local text = tostring(err)
	for _, e in ipairs(expected) do
		if text:find(e, 1, true) then
			return
		end
	end
	error(("unexpected error from %s: %s"):format(what, text))
end

-- Functions used by function, fold, accumulator and match-time captures.
local funcs = {
	function(...) return ... end,
	function() return nil end,
	function(a) return a end,
	function(...) return select("#", ...) end,
	function() error("fuzz") end,
	function(s, i) return i end,
	function(s, i) return i + rand(3) - 1 end,
	function() return false end,
	function() return true, "x", 1 end,
	function(s, i) return #s + 1 end,
	function(acc, v) return tostring(acc) .. tostring(v) end,
}

local gen

local function leaf()
	local k = rand(14)
	if k == 1 then
		return lpeg.P(randstring(3))
	elseif k == 2 then
		return lpeg.P(rand(5) - 3)
	elseif k == 3 then
		return lpeg.S(randstring(4))
	elseif k == 4 then
		return lpeg.R(pick(alphabet) .. pick(alphabet))
	elseif k == 5 then
		return lpeg.P(rand(2) == 1)
	elseif k == 6 then
		return lpeg.Cp()
	elseif k == 7 then
		return lpeg.Cc(rand(3), "k")
	elseif k == 8 then
		return lpeg.Carg(rand(2))
	elseif k == 9 then
		return lpeg.Cb(pick { "g", "h" })
	elseif k == 10 then
		return lpeg.utfR(pick { 0, 0x41, 0x400 }, pick { 0x7f, 0x44f, 0x10ffff })
	elseif k == 11 then
		return lpeg.V(rand(3))
	elseif k == 12 then
		return lpeg.P(pick(funcs))
	elseif k == 13 then
		return lpeg.locale()[pick { "alpha", "digit", "space", "punct" }]
	end
	return lpeg.P(1)
end

local function node(depth)
	local k = rand(24)
	local a = gen(depth + 1)
	if k == 1 then
		return a * gen(depth + 1)
	elseif k == 2 then
		return a + gen(depth + 1)
	elseif k == 3 then
		return a - gen(depth + 1)
	elseif k == 4 then
		return -a
	elseif k == 5 then
		return #a
	elseif k == 6 then
		return a ^ (rand(5) - 3)
	elseif k == 7 then
		return lpeg.B(a)
	elseif k == 8 then
		return lpeg.C(a)
	elseif k == 9 then
		return lpeg.Ct(a)
	elseif k == 10 then
		return lpeg.Cs(a)
	elseif k == 11 then
		return lpeg.Cg(a, pick { "g", "h" })
	elseif k == 12 then
		return lpeg.Cg(a)
	elseif k == 13 then
		return a / pick { "%0", "%1-%2", "x", "%" }
	elseif k == 14 then
		return a / (rand(3) - 1)
	elseif k == 15 then
		return a / { a = 1, b = false }
	elseif k == 16 then
		return a / pick(funcs)
	elseif k == 17 then
		return lpeg.Cf(a, pick(funcs))
	elseif k == 18 then
		return a % pick(funcs)
	elseif k == 19 then
		return lpeg.Cmt(a, pick(funcs))
	elseif k == 20 then
		return lpeg.P{ a, gen(depth + 1), gen(depth + 1) }
	elseif k == 21 then
		return lpeg.P{ "s", s = a * lpeg.V"s" + gen(depth + 1) }
	end
	return a
end

function gen(depth)
	local ok, p
	if depth > 4 or rand(3) == 1 then
		ok, p = pcall(leaf)
	else
		ok, p = pcall(node, depth)
	end
	if ok then
		return p
	end
	check_error(p, "construction")
	return lpeg.P(1)
end

local matches, errors, successes = 0, 0, 0
for _ = 1, npatterns do
	local p = gen(0)
	for _ = 1, nsubjects do
		local s = randstring(12)
		local ok, r = pcall(lpeg.match, p, s, rand(4) - 2, "x", 7)
		matches = matches + 1
		if not ok then
			errors = errors + 1
			check_error(r, "match")
		elseif r ~= nil then
			successes = successes + 1
		end
	end
end
print(("seed %d: %d inputs, %d matched, %d raised"):format(seed, matches, successes, errors))
print("OK")
