-- skynet.datasheet.builder: publishes datasheets. The service that calls `new` and
-- `update` keeps each document (a Lua string) alive while any service reads it; a
-- registry service ("datasheet", made with skynet.service) hands the documents'
-- pointers to readers, tells them of new versions, and tells the builder when nobody
-- reads an old version any more, so the builder lets that string go.
local skynet = require "skynet"
local service = require "skynet.service"
local dump = require "skynet.datasheet.dump"
local core = require "skynet.datasheet.core"

-- The registry; it runs in a service of its own (globals only).
local function registry()
	local skynet = require "skynet"

	local sheets = {}	-- name -> { handle, watchers = { address -> response } }
	local handles = {}	-- handle -> { name, refs, collect = response of the builder }
	local readers = {}	-- address -> { handle -> true }

	local function unref(handle)
		local h = handles[handle]
		h.refs = h.refs - 1
		if h.refs == 0 and sheets[h.name].handle ~= handle then
			handles[handle] = nil
			if h.collect then
				h.collect(true)
			end
		end
	end

	local function hold(source, handle)
		local mine = readers[source] or {}
		readers[source] = mine
		if not mine[handle] then
			mine[handle] = true
			handles[handle].refs = handles[handle].refs + 1
		end
	end

	local CMD = {}

	function CMD.update(_, name, handle)
		local sheet = sheets[name]
		handles[handle] = { name = name, refs = 1 }
		if not sheet then
			sheets[name] = { handle = handle, watchers = {} }
		else
			local old = sheet.handle
			sheet.handle = handle
			for address, response in pairs(sheet.watchers) do
				hold(address, handle)
				response(true, handle)
			end
			sheet.watchers = {}
			unref(old)
		end
		skynet.ret()
	end

	function CMD.collect(_, handle)
		local h = handles[handle]
		if h then
			h.collect = skynet.response()
		else
			skynet.ret()
		end
	end

	function CMD.query(source, name)
		local sheet = assert(sheets[name], "create data first")
		hold(source, sheet.handle)
		skynet.retpack(sheet.handle)
	end

	function CMD.monitor(source, handle)
		local h = assert(handles[handle], "Invalid data handle")
		local sheet = sheets[h.name]
		if sheet.handle ~= handle then
			hold(source, sheet.handle)
			skynet.retpack(sheet.handle)
		else
			sheet.watchers[source] = skynet.response()
		end
	end

	function CMD.release(source, handle)
		local mine = readers[source]
		if mine and mine[handle] then
			mine[handle] = nil
			unref(handle)
		end
	end

	function CMD.close(source)
		for handle in pairs(readers[source] or {}) do
			unref(handle)
		end
		readers[source] = nil
		for _, sheet in pairs(sheets) do
			local response = sheet.watchers[source]
			if response then
				sheet.watchers[source] = nil
				response(false)
			end
		end
	end

	skynet.start(function()
		skynet.dispatch("lua", function(_, source, cmd, ...)
			CMD[cmd](source, ...)
		end)
	end)
end

local builder = {}

local address
local sheets = {}	-- name -> { document, layout } of the newest version
local documents = {}	-- pointer -> document string, alive while read

skynet.init(function()
	address = service.new("datasheet", registry)
end)

local function publish(name, document, layout)
	local pointer = core.stringpointer(document)
	documents[pointer] = document
	sheets[name] = { document = document, layout = layout }
	skynet.call(address, "lua", "update", name, pointer)
	skynet.fork(function()
		skynet.call(address, "lua", "collect", pointer)
		documents[pointer] = nil
	end)
end

function builder.new(name, t)
	assert(sheets[name] == nil, name)
	publish(name, dump.dump(t))
end

function builder.update(name, t)
	local last = assert(sheets[name], name)
	publish(name, dump.dump(t, last.layout))
end

function builder.compile(t)
	return (dump.dump(t))
end

return builder
