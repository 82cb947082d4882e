-- skynet.sharetable on this project's lualib: tables loaded once (loadtable,
-- loadstring with arguments, loadfile) are the same shared object in every
-- service, writes to them raise, queryall, and update replacing an old version's
-- tables wherever this service holds them; a version nobody holds any more is closed.
local skynet = require "skynet"
local sharetable = require "skynet.sharetable"

local mode = ...

if mode == "client" then
	local core = require "skynet.sharetable.core"
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, cmd, name)
			if cmd == "read" then
				local t = sharetable.query(name)
				skynet.retpack(core.is_sharedtable(t), t.x, t.y[1])
			else
				skynet.ret()
				skynet.exit()
			end
		end)
	end)
	return
end

local tester = require "tester"
local eq, ok, deep_eq, raises = tester.eq, tester.ok, tester.deep_eq, tester.raises
local core = require "skynet.sharetable.core"

local held_upvalue

tester.run("test_sharetable", function()
	sharetable.loadtable("conf", { x = 1, y = { "hello" }, list = { 1, 2, 3 } })
	local t = sharetable.query("conf")
	ok(core.is_sharedtable(t), "shared")
	eq(t.x, 1)
	eq(sharetable.query("conf"), t, "the same table each time")
	raises("attempt to change", function() t.x = 2 end)
	raises("attempt to change a shared table", rawset, t.y, 2, "x")

	local client = skynet.newservice(SERVICE_NAME, "client")
	deep_eq({ skynet.call(client, "lua", "read", "conf") }, { true, 1, "hello" }, "another service")

	sharetable.loadstring("args", "return { ... }", 1, 2, 3)
	deep_eq({ table.unpack(sharetable.query("args")) }, { 1, 2, 3 }, "loadstring arguments")
	eq(sharetable.query("missing"), nil, "no such table")
	local all = sharetable.queryall({ "conf", "args" })
	ok(all.conf == t and all.args ~= nil, "queryall with names")
	ok(sharetable.queryall().conf == t, "queryall")

	-- update: references to the old version, wherever held, move to the new one
	local y = t.y
	held_upvalue = t.list
	local holder = { conf = t, [t.y] = "key" }
	sharetable.loadtable("conf", { x = 2, y = { "world" }, list = { 4 } })
	sharetable.update("conf")
	local new = sharetable.query("conf")
	eq(new.x, 2)
	ok(t == new, "a local")
	ok(y == new.y, "a local sub-table")
	ok(held_upvalue == new.list, "an upvalue")
	ok(holder.conf == new and holder[new.y] == "key", "a table's value and key")

	-- the client still holds the first version; once it is gone, that version closes
	skynet.call(client, "lua", "exit")
	skynet.sleep(10)
	sharetable.loadtable("conf", { x = 3, y = { "again" }, list = {} })
	sharetable.update("conf")
	eq(t.x, 3)
end)
