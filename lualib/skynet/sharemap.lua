-- skynet.sharemap: a record that one service writes and others read, published
-- through skynet.stm. The writer encodes the whole record with sproto on each
-- commit and publishes the bytes as a new stm version; a reader decodes the
-- newest version when it asks for an update, so readers never see a record
-- half written and never block the writer.
--
-- The record types come from a sproto schema registered once per process in
-- sprotoloader slot 0 (`sharemap.register`), so writer and readers in
-- different services agree on the encoding.
--
--     sharemap.register "path/to/types.sp"            -- once, before any writer
--     local w = sharemap.writer("foobar", { x = 0 })  -- fields read and set on w
--     w.x = 1; w:commit()                            -- publish
--     skynet.call(reader, "lua", "init", "foobar", w:copy())
--     local r = sharemap.reader("foobar", copy)       -- in the reader
--     r:update(); print(r.x)                          -- newest committed record
local stm = require "skynet.stm"
local sprotoloader = require "sprotoloader"

local SCHEMA_SLOT = 0

local sharemap = {}

-- Registers the schema (a file of sproto text) for every service of the node.
function sharemap.register(protofile)
	sprotoloader.register(protofile, SCHEMA_SLOT)
end

-- The schema of this service, loaded from the slot on first use.
local schema
local function types()
	if not schema then
		schema = sprotoloader.load(SCHEMA_SLOT)
	end
	return schema
end

local writer_methods = {}

-- Publishes the record as it stands now.
function writer_methods:commit()
	self.__obj(types():encode(self.__typename, self.__data))
end

-- A reference to the published record for one reader (`sharemap.reader`).
function writer_methods:copy()
	return stm.copy(self.__obj)
end

function sharemap.writer(typename, record)
	record = record or {}
	local published = stm.new(types():encode(typename, record))
	local w = {
		__typename = typename,
		__obj = published,
		__data = record,
		commit = writer_methods.commit,
		copy = writer_methods.copy,
	}
	return setmetatable(w, { __index = record, __newindex = record })
end

-- Decodes a version into the reader's record table, emptied first so fields
-- the writer cleared disappear here too.
local function decode_into(msg, sz, r)
	local record = r.__data
	for k in pairs(record) do
		record[k] = nil
	end
	return types():decode(r.__typename, msg, sz, record)
end

local reader_methods = {}

-- Takes the newest committed record; false (and the record unchanged) when
-- nothing was committed since the last update.
function reader_methods:update()
	return self.__obj(decode_into, self)
end

local function read_only(_, k)
	error(string.format("sharemap reader is read only (field %s)", tostring(k)), 2)
end

function sharemap.reader(typename, copy)
	local sp = types()
	local published = stm.newcopy(copy)
	local ok, record = published(function(msg, sz)
		return sp:decode(typename, msg, sz)
	end)
	-- A writer already gone leaves nothing to read: an empty record.
	if not ok then
		record = {}
	end
	local r = {
		__typename = typename,
		__obj = published,
		__data = record,
		update = reader_methods.update,
	}
	return setmetatable(r, { __index = record, __newindex = read_only })
end

return sharemap
