-- skynet.datasheet.dump: a Lua table as a datasheet document, the byte layout
-- skynet.datasheet.core reads in place (all words u32 little-endian):
--
--   strtbl  n  index[n]  table...  strings
--   table:  array  dict  type[array + dict] (padded to 4)  value[array]  (key, value)[dict]
--
-- index[i] is table i's offset after the header (0xffffffff: absent), keys and string
-- values are offsets of NUL-terminated strings from strtbl. Types: 0 nil, 1 integer
-- (i32), 2 real (single float), 3 boolean, 4 table (its index), 5 string.
--
-- Table 0 is the root. `dump(t, previous)` keeps the index each path (the keys from the
-- root) had in `previous`, the layout of the version it replaces: a service's proxies
-- stay on their index across an update, so they then read the table at the same path.
local dump = {}

local NIL, INTEGER, REAL, BOOLEAN, TABLE, STRING = 0, 1, 2, 3, 4, 5
local ABSENT = 0xffffffff

local function path_of(parent, key)
	local k = math.type(key) == "integer" and ("#" .. key) or ("$" .. key)
	return parent .. "\0" .. k
end

-- Returns the document and its layout (path -> index) for the next version.
function dump.dump(root, previous)
	assert(type(root) == "table", "datasheet needs a table")
	previous = previous or { [""] = 0 }
	local next_index = 0
	for _, i in pairs(previous) do
		if i < 0 then
			i = -1 - i
		end
		if i >= next_index then
			next_index = i + 1
		end
	end
	local layout, tables, n = {}, {}, 0
	local strings, string_offset, string_size = {}, {}, 0

	local function intern(s)
		local offset = string_offset[s]
		if not offset then
			assert(not s:find("\0", 1, true), "datasheet strings cannot hold NUL")
			offset = string_size
			string_offset[s] = offset
			strings[#strings + 1] = s .. "\0"
			string_size = string_size + #s + 1
		end
		return offset
	end

	local pending = { { root, "" } }
	local seen = {}
	local function index_of(t, path)
		local i = previous[path]
		if i and i < 0 then
			i = -1 - i	-- a path that comes back takes its index again
		end
		if not i then
			i = next_index
			next_index = next_index + 1
		end
		layout[path] = i
		pending[#pending + 1] = { t, path }
		return i
	end
	layout[""] = 0

	local function word(v)
		local tv = math.type(v) or type(v)
		if tv == "integer" and v >= -0x80000000 and v <= 0x7fffffff then
			return INTEGER, string.pack("<i4", v)
		elseif tv == "integer" or tv == "float" then
			return REAL, string.pack("<f", v)
		elseif tv == "boolean" then
			return BOOLEAN, string.pack("<I4", v and 1 or 0)
		elseif tv == "string" then
			return STRING, string.pack("<I4", intern(v))
		elseif tv == "nil" then
			return NIL, string.pack("<I4", 0)
		end
		error("Unsupported value type " .. tv)
	end

	local at = 1
	while at <= #pending do
		local t, path = pending[at][1], pending[at][2]
		at = at + 1
		assert(not seen[t], "datasheet tables cannot repeat (a cycle or a shared sub-table)")
		seen[t] = true
		local array = #t
		local keys = {}
		for k in pairs(t) do
			if not (math.type(k) == "integer" and k >= 1 and k <= array) then
				assert(type(k) == "string", "datasheet keys are strings or array indices")
				keys[#keys + 1] = k
			end
		end
		table.sort(keys)
		local types, values, pairs_ = {}, {}, {}
		local function value(v, key)
			if type(v) == "table" then
				return TABLE, string.pack("<I4", index_of(v, path_of(path, key)))
			end
			return word(v)
		end
		for i = 1, array do
			local ty, w = value(t[i], i)
			types[#types + 1] = string.char(ty)
			values[#values + 1] = w
		end
		for _, k in ipairs(keys) do
			local key = string.pack("<I4", intern(k))
			local ty, w = value(t[k], k)
			types[#types + 1] = string.char(ty)
			pairs_[#pairs_ + 1] = key .. w
		end
		local typebytes = table.concat(types)
		typebytes = typebytes .. string.rep("\0", (4 - #typebytes % 4) % 4)
		tables[layout[path]] = string.pack("<I4I4", array, #keys) .. typebytes
			.. table.concat(values) .. table.concat(pairs_)
		n = math.max(n, layout[path] + 1)
	end
	for path, i in pairs(previous) do
		n = math.max(n, (i < 0 and -1 - i or i) + 1)
		if layout[path] == nil then
			layout[path] = -1 - i	-- gone: its index is never given to another path
		end
	end

	local index, body, offset = {}, {}, 0
	for i = 0, n - 1 do
		local tbl = tables[i]
		if tbl then
			index[#index + 1] = string.pack("<I4", offset)
			body[#body + 1] = tbl
			offset = offset + #tbl
		else
			index[#index + 1] = string.pack("<I4", ABSENT)
		end
	end
	local header = 8 + 4 * n
	local document = string.pack("<I4I4", header + offset, n) .. table.concat(index)
		.. table.concat(body) .. table.concat(strings)
	return document, layout
end

return dump
