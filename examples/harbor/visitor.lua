-- Harbor example, node 2: the visitor. It finds the hub of node 1 by its
-- global name and talks to it: calls by handle and by name, a one-way send
-- and payloads of 100 KB and 4 MiB.
local skynet = require "skynet"
local harbor = require "skynet.harbor"

skynet.start(function()
	local hub = harbor.queryname "HUB"
	print("HUB is " .. skynet.address(hub) .. " on harbor " .. skynet.harbor(hub))
	print(skynet.call(hub, "lua", "hello", "visitor by handle"))
	print(skynet.call("HUB", "lua", "hello", "visitor by name"))
	skynet.send("HUB", "lua", "note", "sent from harbor 2")
	for _, n in ipairs { 100000, 4 * 1024 * 1024 } do
		local size = skynet.call(hub, "lua", "size", string.rep("x", n))
		print("the hub got " .. size .. " bytes")
	end
	print("harbor example done")
end)
