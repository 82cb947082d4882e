-- Harbor example, node 2: the visitor. It finds the hub of node 1 by its
-- global name and talks to it: calls by handle and by name, a one-way send
-- and a 100 KB payload.
local skynet = require "skynet"
local harbor = require "skynet.harbor"

skynet.start(function()
	local hub = harbor.queryname "HUB"
	print("HUB is " .. skynet.address(hub) .. " on harbor " .. skynet.harbor(hub))
	print(skynet.call(hub, "lua", "hello", "visitor by handle"))
	print(skynet.call("HUB", "lua", "hello", "visitor by name"))
	skynet.send("HUB", "lua", "note", "sent from harbor 2")
	local size = skynet.call(hub, "lua", "size", string.rep("x", 100000))
	print("the hub got " .. size .. " bytes")
	print("harbor example done")
end)
