-- Checks of the built-in lpeg module and of lualib/re.lua: every constructor, every
-- capture kind, the operators, grammars, match-time captures, errors and their texts.
-- Returns a function that runs them all and raises on the first failure; it is run
-- by `skynet lua test/lpeg_test.lua` and by the service test_lpeg.

local lpeg = require "lpeg"
local re = require "re"

local P, S, R, V, B = lpeg.P, lpeg.S, lpeg.R, lpeg.V, lpeg.B
local C, Cc, Cp, Ct, Cs, Cg, Cb, Cf, Cmt, Carg =
	lpeg.C, lpeg.Cc, lpeg.Cp, lpeg.Ct, lpeg.Cs, lpeg.Cg, lpeg.Cb, lpeg.Cf, lpeg.Cmt, lpeg.Carg

local function eq(got, want, what)
	if got ~= want then
		error(("%s: got %s, want %s"):format(what, tostring(got), tostring(want)), 2)
	end
end

local function same(got, want, what)
	local function walk(a, b, path)
		if type(a) ~= "table" or type(b) ~= "table" then
			if a ~= b then
				error(("%s%s: got %s, want %s"):format(what, path, tostring(a), tostring(b)), 4)
			end
			return
		end
		for k, v in pairs(b) do
			walk(a[k], v, path .. "." .. tostring(k))
		end
		for k, v in pairs(a) do
			walk(v, b[k], path .. "." .. tostring(k))
		end
	end
	walk(got, want, "")
end

local function values(...)
	return { n = select("#", ...), ... }
end

local function raises(text, f, ...)
	local ok, err = pcall(f, ...)
	if ok then
		error(("expected an error containing %q"):format(text), 2)
	end
	if not tostring(err):find(text, 1, true) then
		error(("error %q does not contain %q"):format(tostring(err), text), 2)
	end
end

local cases = {}

function cases.basics()
	eq(type(lpeg.version), "string", "version")
	eq(lpeg.type(P"a"), "pattern", "type of a pattern")
	eq(lpeg.type("a"), nil, "type of a string")
	eq(P"abc":match("abcd"), 4, "literal")
	eq(P"abc":match("abx"), nil, "literal fails")
	eq(P(3):match("ab"), nil, "P(n) too short")
	eq(P(3):match("abcd"), 4, "P(n)")
	eq(P(-2):match("a"), 1, "P(-n) at the end")
	eq(P(-2):match("ab"), nil, "P(-n) with n left")
	eq(P(true):match(""), 1, "P(true)")
	eq(P(false):match("a"), nil, "P(false)")
	eq(S"xyz":match("y"), 2, "S")
	eq(S"":match("y"), nil, "empty S")
	eq(R("az", "09"):match("5"), 2, "R")
	eq(R("az"):match("A"), nil, "R outside")
	eq(lpeg.match("a", "a"), 2, "match of a string")
	eq(lpeg.match(P"b", "abc", 2), 3, "init")
	eq(lpeg.match(P"c", "abc", -1), 4, "negative init")
	eq(lpeg.match(P(1), "abc", 10), nil, "init past the end")
	eq(lpeg.match(P"", "abc", 10), 4, "empty match past the end")
end

function cases.operators()
	local ab = P"a" + P"b"
	eq(ab:match("b"), 2, "+")
	eq((P"a" * P"b"):match("ab"), 3, "*")
	eq((R"az" - P"q"):match("q"), nil, "- on sets")
	eq((P(1) - "ab"):match("ac"), 2, "- on patterns")
	eq((-P"a"):match("b"), 1, "unary -")
	eq((#P"a"):match("a"), 1, "#")
	eq((P"a"^0):match("aaab"), 4, "^0")
	eq((P"a"^2):match("ab"), nil, "^2 too few")
	eq((P"a"^2):match("aaa"), 4, "^2")
	eq((P"a"^-2):match("aaa"), 3, "^-2")
	eq((1 * B"a"):match("a"), 2, "B")
	eq(B"a":match("a"), nil, "B at the start")
	eq(("x" + P"y"):match("y"), 2, "string operand")
	eq((P(function(_, i) return i end) * "a"):match("a"), 2, "function operand")
end

function cases.utf8()
	local cyr = lpeg.utfR(0x410, 0x44f)
	eq((cyr ^ 1):match("жд!"), 5, "utfR")
	eq(cyr:match("\208"), nil, "truncated code point")
	eq(lpeg.utfR(0, 0x7f):match("a"), 2, "ascii utfR")
	raises("empty range", lpeg.utfR, 2, 1)
	raises("invalid code point", lpeg.utfR, 0, 0x110000)
end

function cases.captures()
	eq(C(P"ab"):match("abc"), "ab", "C")
	same(values(C(C"a" * C"b"):match("ab")), values("ab", "a", "b"), "nested C")
	same(values(Cc(1, nil, "x"):match("")), values(1, nil, "x"), "Cc")
	eq(Cc():match("a"), 1, "empty Cc")
	same(values((Cp() * "ab" * Cp()):match("abc")), values(1, 3), "Cp")
	same(Ct(C(1) ^ 0):match("xyz"), { "x", "y", "z" }, "Ct")
	same(Ct(Cg(C(1), "k") * C(1)):match("ab"), { k = "a", "b" }, "Ct with a named group")
	eq(Cs((P"a" / "A" + 1) ^ 0):match("banana"), "bAnAnA", "Cs")
	same(values(Cg(C(1) * C(1)):match("ab")), values("a", "b"), "anonymous Cg")
	eq((Cg(C(1), "x") * Cb"x"):match("q"), "q", "Cb")
	eq(Cf(C(1) * C(1) ^ 0, function(a, b) return a .. b end):match("abc"), "abc", "Cf")
	eq((Cc(1) * (C(1) / tonumber % function(a, b) return a + b end) ^ 0):match("234"), 10, "%")
	eq((C(1) / "<%1%0>"):match("x"), "<xx>", "string capture")
	eq((C(C(1) * C(1)) / "%3%2%1"):match("ab"), "baab", "string capture numbers nested simple captures")
	eq(Cmt(P(1), function() return "2" end):match("ab"), 2, "Cmt position as a numeric string")
	eq((C(1) * C(1) / 2):match("xy"), "y", "number capture")
	eq((C(1) * C(1) / 0):match("xy"), 3, "number capture 0")
	eq((C(1) / { x = 42 }):match("x"), 42, "query capture")
	eq((C(1) / { x = 42 }):match("y"), 2, "query capture miss")
	eq((C(1) / function(s) return s:upper() end):match("q"), "Q", "function capture")
	eq(Carg(2):match("", 1, "one", "two"), "two", "Carg")
	eq(Cmt(C(1), function(_, i, c) return i, c .. "!" end):match("z"), "z!", "Cmt")
	eq(Cmt(P(1), function() return false end):match("z"), nil, "Cmt fails")
	eq((P(1) * Cmt(P(0), function(_, i) return i + 1 end)):match("abc"), 3, "Cmt moves on")
	eq(Cs(Cmt(P"a", function(_, i) return i, "A" end)):match("a"), "A", "Cmt in Cs")
end

function cases.grammars()
	local balanced = P{ "(" * ((1 - S"()") + V(1)) ^ 0 * ")" }
	eq(balanced:match("(a(b)c)d"), 8, "recursive grammar")
	eq(balanced:match("(a(b c"), nil, "unbalanced")
	local named = P{ "list",
		list = Ct(V"item" * ("," * V"item") ^ 0),
		item = C(R"az" ^ 1),
	}
	same(named:match("a,bc,d"), { "a", "bc", "d" }, "named rules")
	-- a long right-recursive rule runs as a loop (tail call) with the default limit
	eq(P{ "a" * V(1) + "" }:match(string.rep("a", 5000)), 5001, "tail call")
end

function cases.stack_limit()
	local deep = P{ "0" * V(1) + "0" }
	raises("backtrack stack overflow", lpeg.match, deep, string.rep("0", 1000))
	lpeg.setmaxstack(5000)
	eq(deep:match(string.rep("0", 1000)), 1001, "raised limit")
	lpeg.setmaxstack(400)
end

function cases.errors()
	raises("loop body may accept empty string", function() return P"" ^ 0 end)
	raises("rule 'x' may be left recursive", P, { "x", x = V"x" * "a" })
	raises("rule 'y' undefined in given grammar", P, { "x", x = V"y" })
	raises("rule 'z' used outside a grammar", lpeg.match, V"z", "")
	raises("empty loop in rule 'x'", P, { "x", x = V"y" ^ 0, y = P"" })
	raises("grammar has no initial rule", P, { x = P"a" })
	raises("rule 'x' is not a pattern", P, { "x", x = {} })
	raises("pattern may not have fixed length", B, P"a" ^ 1)
	raises("pattern too long to look behind", B, P(300))
	raises("invalid argument index", Carg, 0)
	raises("reference to absent extra argument #1", lpeg.match, Carg(1), "")
	raises("back reference 'n' not found", lpeg.match, Cb"n", "")
	raises("invalid capture index (2)", lpeg.match, C(1) / "%2", "a")
	raises("invalid capture value (a boolean)", lpeg.match, Cc(true) / "%1", "")
	raises("invalid replacement value (a table)", lpeg.match, Cs(P(1) / {} / function() return {} end), "a")
	raises("no initial value for fold capture", lpeg.match, Cf(P(1), print), "a")
	raises("no previous value for accumulator capture", lpeg.match, P(1) % print, "a")
	raises("invalid position returned by match-time capture", lpeg.match, Cmt(P(0), function() return 0 end), "a")
	raises("subcapture nesting too deep", function()
		local p = C(1)
		for _ = 1, 300 do
			p = Ct(p)
		end
		return p:match("x")
	end)
	raises("boom", lpeg.match, Cmt(P(1), function() error("boom") end), "a")
	raises("boom", lpeg.match, P(1) / function() error("boom") end, "a")
end

function cases.locale()
	local l = lpeg.locale()
	eq(l.digit:match("7"), 2, "locale digit")
	eq(l.alpha:match("7"), nil, "locale alpha")
	local t = {}
	eq(lpeg.locale(t), t, "locale fills a table")
	eq(t.space:match(" "), 2, "locale space")
end

function cases.reentrant()
	-- a match-time capture matching the same pattern again
	local p
	p = Cmt(C(1), function(s, i, c)
		if c == "r" then
			return i, p:match(s, i)
		end
		return i, c
	end)
	same(values(p:match("rx")), values("x"), "re-entrant match")
end

function cases.re()
	eq(re.match("abc", "'a' . 'c'"), 4, "re literal and any")
	eq(re.match("b", "[a-c]"), 2, "re class")
	eq(re.match("d", "[^a-c]"), 2, "re complement class")
	eq(re.match("hello", "{%a+}"), "hello", "re capture and predef")
	same(re.match("1,2", "{| {%d} (',' {%d})* |}"), { "1", "2" }, "re table capture")
	eq(re.match("aab", "{~ ('a' -> 'x')* ~}"), "xx", "re substitution")
	eq(re.match("abab", "{:x: 'ab' :} =x"), 5, "re back reference")
	eq(re.match("12", "({%d} {%d}) -> '%2%1'"), "21", "re string capture")
	eq(re.compile("%d -> n", { n = tonumber }):match("7"), 7, "re function capture from defs")
	eq(re.match("(a(b))", "s <- '(' ([^()] / s)* ')'"), 7, "re grammar")
	eq(re.find("xx abc", "'abc'"), 4, "re.find")
	eq(re.gsub("hello world", "%a+", "<%0>"), "<hello> <world>", "re.gsub")
	raises("pattern error near", re.compile, "'a' )")
	raises("rule 'q' used outside a grammar", re.compile, "q")
	raises("'a' already defined as a rule", re.compile, "a <- 'x' a <- 'y'")
end

return function(report)
	local names = {}
	for name in pairs(cases) do
		names[#names + 1] = name
	end
	table.sort(names)
	for _, name in ipairs(names) do
		cases[name]()
		if report then
			report(name)
		end
	end
	return #names
end
