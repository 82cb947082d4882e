-- re: LPeg patterns written as text, with the API of LPeg's re module
-- (compile, match, find, gsub, updatelocale).
--
-- The text is read by a recursive-descent parser over the string: each syntactic
-- level (expression, sequence, prefix, suffix, primary) is one function returning
-- an LPeg pattern, so the grammar below reads top-down in the code.
--
--   exp      <- S (grammar / alternative)
--   grammar  <- (name S '<-' alternative)+
--   alternative <- seq ('/' S seq)*
--   seq      <- prefix*
--   prefix   <- '&' S prefix / '!' S prefix / suffix
--   suffix   <- primary S (([+*?] / '^' [+-]? num / ('->' / '=>' / '~>' / '>>') S arg) S)*
--   primary  <- '(' exp ')' / string / class / '%' name / '{:' (name ':')? exp ':}'
--             / '=' name / '{}' / '{~' exp '~}' / '{|' exp '|}' / '{' exp '}' / '.'
--             / name / '<' name '>'

local lpeg = require "lpeg"

local P, S, R, V = lpeg.P, lpeg.S, lpeg.R, lpeg.V
local C, Cb, Cf, Cg, Cmt, Cp, Cs, Ct = lpeg.C, lpeg.Cb, lpeg.Cf, lpeg.Cg, lpeg.Cmt, lpeg.Cp, lpeg.Cs, lpeg.Ct

local any = P(1)

-- %name classes: the locale's, by Lua's letters, each with its complement in upper case.
local predef = {}

local function updatelocale()
	local l = lpeg.locale()
	local classes = {
		a = l.alpha, c = l.cntrl, d = l.digit, g = l.graph, l = l.lower,
		p = l.punct, s = l.space, u = l.upper, w = l.alnum, x = l.xdigit,
	}
	predef = { nl = P"\n" }
	for name, set in pairs(l) do
		predef[name] = set
	end
	for letter, set in pairs(classes) do
		predef[letter] = set
		predef[letter:upper()] = any - set
	end
end

updatelocale()

-- `=name`: the text the group `name` captured must follow.
local function same_text(s, i, text)
	local e = i + #text
	if s:sub(i, e - 1) == text then
		return e
	end
	return false
end

-- One parse: the text, the position, the user's definitions, and whether a
-- grammar encloses the current expression (non-terminals are legal only then).
local Parser = {}
Parser.__index = Parser

local function fail(ps, at)
	local rest = ps.text:sub(at or ps.pos)
	if #rest > 20 then
		rest = rest:sub(1, 20) .. "..."
	end
	error(("pattern error near '%s'"):format(rest), 0)
end

function Parser:peek(lit)
	return self.text:sub(self.pos, self.pos + #lit - 1) == lit
end

function Parser:accept(lit)
	if self:peek(lit) then
		self.pos = self.pos + #lit
		return true
	end
	return false
end

function Parser:expect(lit)
	if not self:accept(lit) then
		fail(self)
	end
end

-- Spaces and `--` comments.
function Parser:space()
	local text = self.text
	while true do
		local _, e = text:find("^%s+", self.pos)
		if e then
			self.pos = e + 1
		elseif text:sub(self.pos, self.pos + 1) == "--" then
			local nl = text:find("\n", self.pos, true)
			self.pos = nl and nl + 1 or #text + 1
		else
			return
		end
	end
end

function Parser:name()
	local s, e = self.text:find("^[%a_][%w_]*", self.pos)
	if not s then
		return nil
	end
	self.pos = e + 1
	return self.text:sub(s, e)
end

function Parser:number()
	local s, e = self.text:find("^%d+", self.pos)
	if not s then
		fail(self)
	end
	self.pos = e + 1
	return tonumber(self.text:sub(s, e))
end

-- Whether a definition `name <-` starts here.
function Parser:at_definition()
	local save = self.pos
	local found = self:name() ~= nil
	if found then
		self:space()
		found = self:peek("<-")
	end
	self.pos = save
	return found
end

function Parser:defined(name)
	local value = self.defs and self.defs[name] or predef[name]
	if value == nil then
		error(("name '%s' undefined"):format(name), 0)
	end
	return value
end

function Parser:user(name)
	local value = self.defs and self.defs[name]
	if value == nil then
		error(("undefined name: %s"):format(name), 0)
	end
	return value
end

function Parser:nonterminal(name)
	if not self.in_grammar then
		error(("rule '%s' used outside a grammar"):format(name), 0)
	end
	return V(name)
end

function Parser:string()
	local q = self.text:sub(self.pos, self.pos)
	local close = self.text:find(q, self.pos + 1, true)
	if not close then
		fail(self)
	end
	local s = self.text:sub(self.pos + 1, close - 1)
	self.pos = close + 1
	return P(s)
end

-- One item of a class: %name, a range x-y, or a byte.
function Parser:class_item()
	if self:peek("%") then
		local save = self.pos
		self.pos = self.pos + 1
		local name = self:name()
		if name then
			return self:defined(name)
		end
		self.pos = save
	end
	local text, pos = self.text, self.pos
	local c = text:sub(pos, pos)
	if c == "" then
		fail(self)
	end
	local hi = text:sub(pos + 2, pos + 2)
	if text:sub(pos + 1, pos + 1) == "-" and hi ~= "]" and hi ~= "" then
		self.pos = pos + 3
		return R(c .. hi)
	end
	self.pos = pos + 1
	return P(c)
end

function Parser:class()
	self:expect("[")
	local negate = self:accept("^")
	local set = self:class_item()
	while not self:peek("]") do
		set = set + self:class_item()
	end
	self.pos = self.pos + 1
	if negate then
		return any - set
	end
	return set
end

function Parser:enclosed(close)
	local p = self:exp()
	self:expect(close)
	return p
end

function Parser:primary()
	local c = self.text:sub(self.pos, self.pos)
	if c == "(" then
		self.pos = self.pos + 1
		return self:enclosed(")")
	elseif c == "'" or c == '"' then
		return self:string()
	elseif c == "[" then
		return self:class()
	elseif c == "%" then
		self.pos = self.pos + 1
		local name = self:name() or fail(self)
		return self:defined(name)
	elseif c == "=" then
		self.pos = self.pos + 1
		local name = self:name() or fail(self)
		return Cmt(Cb(name), same_text)
	elseif c == "." then
		self.pos = self.pos + 1
		return any
	elseif c == "<" then
		self.pos = self.pos + 1
		local name = self:name() or fail(self)
		self:expect(">")
		return self:nonterminal(name)
	elseif c == "{" then
		if self:accept("{:") then
			local save = self.pos
			local name = self:name()
			if not (name and self:accept(":")) then
				name = nil
				self.pos = save
			end
			local p = self:enclosed(":}")
			if name then
				return Cg(p, name)
			end
			return Cg(p)
		elseif self:accept("{}") then
			return Cp()
		elseif self:accept("{~") then
			return Cs(self:enclosed("~}"))
		elseif self:accept("{|") then
			return Ct(self:enclosed("|}"))
		end
		self.pos = self.pos + 1
		return C(self:enclosed("}"))
	end
	local name = self:name() or fail(self)
	return self:nonterminal(name)
end

-- The argument of ->: a string, a number, {} or a definition.
function Parser:replacement(p)
	local c = self.text:sub(self.pos, self.pos)
	if c == "'" or c == '"' then
		local at = self.pos + 1
		self:string()
		return p / self.text:sub(at, self.pos - 2)
	elseif c:match("%d") then
		return p / self:number()
	elseif self:accept("{}") then
		return Ct(p)
	end
	local name = self:name() or fail(self)
	return p / self:user(name)
end

function Parser:suffix()
	local p = self:primary()
	self:space()
	while true do
		if self:accept("+") then
			p = p ^ 1
		elseif self:accept("*") then
			p = p ^ 0
		elseif self:accept("?") then
			p = p ^ -1
		elseif self:accept("^") then
			self:space()
			if self:accept("+") then
				p = p ^ self:number()
			elseif self:accept("-") then
				p = p ^ -self:number()
			else
				local n, seq = self:number(), P(true)
				for _ = 1, n do
					seq = seq * p
				end
				p = seq
			end
		elseif self:accept("->") then
			self:space()
			p = self:replacement(p)
		elseif self:accept("=>") then
			self:space()
			p = Cmt(p, self:user(self:name() or fail(self)))
		elseif self:accept("~>") then
			self:space()
			p = Cf(p, self:user(self:name() or fail(self)))
		elseif self:accept(">>") then
			self:space()
			p = p % self:user(self:name() or fail(self))
		else
			return p
		end
		self:space()
	end
end

function Parser:prefix()
	if self:accept("&") then
		self:space()
		return #self:prefix()
	elseif self:accept("!") then
		self:space()
		return -self:prefix()
	end
	return self:suffix()
end

-- Whether a prefix can start here (and it is not the next definition).
function Parser:at_prefix()
	local c = self.text:sub(self.pos, self.pos)
	if c == "" or c == "<" and self:peek("<-") then
		return false
	end
	if c:match("[%a_]") then
		return not self:at_definition()
	end
	return c:match("[&!%('\"%[%%{=%.<]") ~= nil
end

function Parser:seq()
	local p = P(true)
	while self:at_prefix() do
		p = p * self:prefix()
	end
	return p
end

function Parser:alternative()
	local p = self:seq()
	while self:accept("/") do
		self:space()
		p = p + self:seq()
	end
	return p
end

function Parser:grammar()
	local rules, outer = {}, self.in_grammar
	self.in_grammar = true
	while self:at_definition() do
		local name = self:name()
		self:space()
		self:expect("<-")
		self:space()
		if rules[name] then
			error(("'%s' already defined as a rule"):format(name), 0)
		end
		rules[1] = rules[1] or name
		rules[name] = self:alternative()
	end
	self.in_grammar = outer
	return P(rules)
end

function Parser:exp()
	self:space()
	if self:at_definition() then
		return self:grammar()
	end
	return self:alternative()
end

local cache = setmetatable({}, { __mode = "v" })

local function compile(text, defs)
	if lpeg.type(text) == "pattern" then
		return text
	end
	if not defs then
		local p = cache[text]
		if p then
			return p
		end
	end
	local ps = setmetatable({ text = text, pos = 1, defs = defs, in_grammar = false }, Parser)
	local p = ps:exp()
	if ps.pos <= #text then
		fail(ps)
	end
	p = P(p)
	if not defs then
		cache[text] = p
	end
	return p
end

local function match(s, p, i)
	return compile(p):match(s, i)
end

-- Searches for `p`: where the first match starts and ends; its captures are dropped.
local finders = setmetatable({}, { __mode = "k" })

local function find(s, p, i)
	p = compile(p)
	local f = finders[p]
	if not f then
		f = P{ Cp() * (p / 0) * Cp() + 1 * V(1) }
		finders[p] = f
	end
	local b, e = f:match(s, i)
	if b then
		return b, e - 1
	end
	return b
end

local function gsub(s, p, rep)
	p = compile(p)
	return Cs((p / rep + 1) ^ 0):match(s)
end

return {
	compile = compile,
	match = match,
	find = find,
	gsub = gsub,
	updatelocale = updatelocale,
}
