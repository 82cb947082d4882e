-- sprotoparser: sproto schema text -> the binary schema sproto.core reads.
--
--   parser.parse(text [, name])  -> binary schema (errors name the line)
--   parser.dump(binary)          -- prints it as hex, 16 bytes a line
--
-- The text is read with lpeg into a tree of types and protocols, the names are
-- resolved (a field's type is looked up in its own type, then outwards, then at the
-- top), and the result is written as a sproto message of the self-describing schema
-- (.group { type 0 : *type  protocol 1 : *protocol }), types sorted by name and
-- protocols by tag, so the same text always gives the same bytes.

local lpeg = require "lpeg"

local P, S, R, C, Ct, Cc, Cg, Cmt, Carg, V =
	lpeg.P, lpeg.S, lpeg.R, lpeg.C, lpeg.Ct, lpeg.Cc, lpeg.Cg, lpeg.Cmt, lpeg.Carg, lpeg.V

---------------------------------------------------------------------------
-- grammar

-- newlines count lines; the count only moves forward, so after a failed match it
-- names the furthest line the grammar reached
local function newline_seen(_, pos, state)
	if pos > state.pos then
		state.line = state.line + 1
		state.pos = pos
	end
	return pos
end

local syntax_error = Cmt(Carg(1), function(_, _, state)
	error(string.format("syntax error at [%s] line (%d)", state.file or "", state.line))
end)

local nl = Cmt((P"\n" + "\r\n") * Carg(1), newline_seen)
local comment = "#" * (1 - nl) ^ 0 * (nl + P(-1))
local space = S" \t" + nl + comment
local sp0, sp1 = space ^ 0, space ^ 1
local ident = (R"az" + R"AZ" + "_") * (R"az" + R"AZ" + R"09" + "_") ^ 0
local number = R"09" ^ 1 / tonumber
local dotted = C(ident * ("." * ident) ^ 0)
local key = "(" * sp0 * C(ident ^ 0) * sp0 * ")"
local precision = "(" * sp0 * C(number) * sp0 * ")"

-- items separated by blanks
local function list(item)
	return Ct(sp0 * (item * sp1) ^ 0 * item ^ 0 * sp0)
end

local function node(kind, body)
	return Ct(Cg(Cc(kind), "kind") * body)
end

local schema = P {
	"top",
	field = node("field", Cg(C(ident), "name") * sp1 * Cg(number, "tag") * sp0 * ":" * sp0
		* Cg(C"*" ^ -1, "array") * Cg(dotted, "type") * Cg(Ct((key + precision) ^ 0), "args")),
	struct = "{" * list(V"field" + V"type") * "}",
	type = node("type", "." * Cg(C(ident), "name") * sp0 * Cg(V"struct", "body")),
	message = Ct(Cg(C"request" + C"response", "role") * sp1 * Cg(dotted + V"struct", "type")),
	protocol = node("protocol", Cg(C(ident), "name") * sp1 * Cg(number, "tag") * sp0
		* "{" * Cg(list(V"message"), "body") * "}"),
	top = list(V"type" + V"protocol"),
}

local grammar = sp0 * schema * sp0 * P(-1) + syntax_error

---------------------------------------------------------------------------
-- tree -> types and protocols

local BUILTIN = { integer = 0, boolean = 1, string = 2, binary = 2, double = 3 }

local collect_type

-- fields of `body` go to types[name]; nested types are registered as name.Sub
function collect_type(types, name, body)
	local fields, names, tags = {}, {}, {}
	for _, item in ipairs(body) do
		if item.kind == "field" then
			if names[item.name] then
				error(string.format("redefine %s in type %s", item.name, name))
			end
			names[item.name] = true
			if tags[item.tag] then
				error(string.format("redefine tag %d in type %s", item.tag, name))
			end
			tags[item.tag] = true
			local f = { name = item.name, tag = item.tag, array = item.array == "*", type = item.type }
			local arg = item.args[1]
			if arg then
				if f.type == "integer" then
					f.precision = tonumber(arg)
				else
					assert(f.array)
					f.key = arg
				end
			end
			fields[#fields + 1] = f
		else
			local sub = name .. "." .. item.name
			assert(types[sub] == nil, "redefined " .. sub)
			types[sub] = collect_type(types, sub, item.body)
		end
	end
	table.sort(fields, function(a, b) return a.tag < b.tag end)
	return fields
end

local function collect_protocol(types, name, p)
	local proto = { tag = p.tag }
	for _, m in ipairs(p.body) do
		if proto[m.role] ~= nil then
			error(string.format("redefine %s in protocol %s", m.role, name))
		end
		local tname = m.type
		if type(tname) == "table" then
			local inline = name .. "." .. m.role
			types[inline] = collect_type(types, inline, tname)
			tname = inline
		end
		if tname == "nil" then
			if m.role == "response" then
				proto.confirm = true
			end
		else
			proto[m.role] = tname
		end
	end
	return proto
end

-- the full name `t` means when used inside type `scope`
local function resolve(types, scope, t)
	if BUILTIN[t] then
		return t
	end
	while scope do
		local full = scope .. "." .. t
		if types[full] then
			return full
		end
		scope = scope:match "^(.+)%.[^.]+$"
	end
	if types[t] then
		return t
	end
end

local function collect(tree)
	local types, protocols = {}, {}
	for _, item in ipairs(tree) do
		local set = item.kind == "type" and types or protocols
		assert(set[item.name] == nil, "redefined " .. item.name)
		if item.kind == "type" then
			types[item.name] = collect_type(types, item.name, item.body)
		else
			protocols[item.name] = collect_protocol(types, item.name, item)
		end
	end
	local by_tag = {}
	for name, p in pairs(protocols) do
		if by_tag[p.tag] then
			error(string.format("redefined protocol tag %d at %s", p.tag, name))
		end
		if p.request and not types[p.request] then
			error(string.format("Undefined request type %s in protocol %s", p.request, name))
		end
		if p.response and not types[p.response] then
			error(string.format("Undefined response type %s in protocol %s", p.response, name))
		end
		by_tag[p.tag] = p
	end
	for tname, fields in pairs(types) do
		for _, f in ipairs(fields) do
			local full = resolve(types, tname, f.type)
			if full == nil then
				error(string.format("Undefined type %s in type %s", f.type, tname))
			end
			f.type = full
		end
	end
	return types, protocols
end

---------------------------------------------------------------------------
-- types and protocols -> bytes

local function chunk(s)
	return string.pack("<s4", s)
end

local function small(v)
	return string.pack("<I2", (v + 1) * 2)
end

local SKIP = "\1\0"
local DATA = "\0\0"

-- a struct: its records (inline values, skips, or DATA) and its data chunks
local function struct(records, data)
	return string.pack("<I2", #records) .. table.concat(records) .. table.concat(data)
end

local function pack_field(f, index, types)
	local records = { DATA }
	local builtin = BUILTIN[f.type]
	if builtin then
		records[2] = small(builtin)
		if f.type == "binary" then
			records[3] = small(1)
		elseif f.precision then
			records[3] = small(f.precision)
		else
			records[3] = SKIP
		end
	else
		records[2] = SKIP
		records[3] = small(index[f.type])
	end
	records[4] = small(f.tag)
	if f.array then
		records[5] = small(1)
		if f.key then
			local sub = types[f.type]
			local by_name = {}
			for _, sf in ipairs(sub or {}) do
				by_name[sf.name] = sf
			end
			local keyname, map = f.key, false
			if keyname == "" then
				map = true
				if #sub ~= 2 then
					error(string.format("Invalid map definition: %s, must only have two fields", f.name))
				end
				keyname = sub[1].name
			end
			local kf = by_name[keyname]
			if not kf or not BUILTIN[kf.type] then
				error("Invalid map index :" .. keyname)
			end
			records[6] = small(kf.tag)
			if map then
				records[7] = small(1)
			end
		end
	end
	return chunk(struct(records, { chunk(f.name) }))
end

local function pack_type(name, fields, index, types)
	if #fields == 0 then
		return chunk(struct({ DATA }, { chunk(name) }))
	end
	local packed = {}
	for i, f in ipairs(fields) do
		packed[i] = pack_field(f, index, types)
	end
	return chunk(struct({ DATA, DATA }, { chunk(name), chunk(table.concat(packed)) }))
end

local function pack_protocol(name, p, index)
	local records = { DATA, small(p.tag) }
	if p.request or p.response or p.confirm then
		records[3] = p.request and small(index[p.request]) or SKIP
		if p.response then
			records[4] = small(index[p.response])
		elseif p.confirm then
			records[4] = SKIP
			records[5] = small(1)
		end
	end
	return chunk(struct(records, { chunk(name) }))
end

local function pack_all(types, protocols)
	local names = {}
	for name in pairs(types) do
		names[#names + 1] = name
	end
	if #names == 0 then
		assert(next(protocols) == nil)
		return DATA
	end
	table.sort(names)
	local index = {}
	for i, name in ipairs(names) do
		index[name] = i - 1
	end
	local packed = {}
	for i, name in ipairs(names) do
		packed[i] = pack_type(name, types[name], index, types)
	end
	local type_list = chunk(table.concat(packed))
	local plist = {}
	for name, p in pairs(protocols) do
		plist[#plist + 1] = { name = name, p = p }
	end
	if #plist == 0 then
		return struct({ DATA }, { type_list })
	end
	table.sort(plist, function(a, b) return a.p.tag < b.p.tag end)
	for i, e in ipairs(plist) do
		plist[i] = pack_protocol(e.name, e.p, index)
	end
	return struct({ DATA, DATA }, { type_list, chunk(table.concat(plist)) })
end

---------------------------------------------------------------------------

local parser = {}

function parser.parse(text, name)
	local state = { file = name or "=text", pos = 0, line = 1 }
	local tree = lpeg.match(grammar, text, 1, state)
	return pack_all(collect(tree))
end

function parser.dump(bin)
	for i = 1, #bin, 16 do
		local row = {}
		for j = i, math.min(i + 15, #bin) do
			row[#row + 1] = string.format("%02X", bin:byte(j))
		end
		print(table.concat(row, " "))
	end
end

return parser
