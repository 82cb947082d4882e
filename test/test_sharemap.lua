-- skynet.sharemap on this project's lualib: a record written in one service and
-- read in another through skynet.stm with a sproto type from slot 0. A reader
-- sees only committed records, `update` says whether anything new was
-- committed, a field the writer clears disappears from the reader, and the
-- reader refuses writes.
local skynet = require "skynet"
local sharemap = require "skynet.sharemap"

local mode = ...

if mode == "reader" then
	local reader
	local CMD = {}
	function CMD.init(typename, copy)
		reader = sharemap.reader(typename, copy)
		return reader.x, reader.y, reader.s
	end
	function CMD.read()
		local updated = reader:update()
		return updated, reader.x, reader.y, reader.s, reader.list and #reader.list
	end
	function CMD.write()
		return pcall(function()
			reader.x = 9
		end)
	end
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, cmd, ...)
			skynet.retpack(CMD[cmd](...))
		end)
	end)
	return
end

local tester = require "tester"
local eq, ok, deep_eq = tester.eq, tester.ok, tester.deep_eq

local SCHEMA = [[
.foobar {
	x 0 : integer
	y 1 : integer
	s 2 : string
	list 3 : *integer
}
]]

tester.run("test_sharemap", function()
	local path = os.tmpname()
	local f = assert(io.open(path, "w"))
	f:write(SCHEMA)
	f:close()
	sharemap.register(path)
	os.remove(path)

	local reader = skynet.newservice(SERVICE_NAME, "reader")
	local writer = sharemap.writer("foobar", { x = 0, y = 0, s = "hello" })
	eq(writer.s, "hello", "writer reads its own fields")
	deep_eq({ skynet.call(reader, "lua", "init", "foobar", writer:copy()) }, { 0, 0, "hello" },
		"first record")

	writer.x = 1
	deep_eq({ skynet.call(reader, "lua", "read") }, { false, 0, 0, "hello" },
		"an uncommitted change is not seen")
	writer:commit()
	deep_eq({ skynet.call(reader, "lua", "read") }, { true, 1, 0, "hello" }, "committed x")
	deep_eq({ skynet.call(reader, "lua", "read") }, { false, 1, 0, "hello" }, "nothing new")

	writer.y = 2
	writer.list = { 1, 2, 3 }
	writer:commit()
	deep_eq({ skynet.call(reader, "lua", "read") }, { true, 1, 2, "hello", 3 }, "y and list")

	writer.s = nil
	writer.list = nil
	writer:commit()
	deep_eq({ skynet.call(reader, "lua", "read") }, { true, 1, 2 }, "cleared fields are gone")

	local wrote, err = skynet.call(reader, "lua", "write")
	ok(not wrote and tostring(err):find("read only", 1, true), "reader refuses writes: " .. tostring(err))
end)
