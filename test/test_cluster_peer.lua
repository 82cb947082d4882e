-- Calls node "server" (test/cluster_server.lua, on this core or on C skynet; this
-- service also runs on C skynet with upstream's lualib) every way the cluster API
-- offers: calls by name and by handle, pushes, messages just under, at and over
-- the 32 KiB part size both ways, name queries, a proxy, a snax service, an
-- unknown name and a traced call. Config key cluster_peer_tag: what the server's WHO answers.
local skynet = require "skynet"
local cluster = require "skynet.cluster"
local tester = require "tester"

local function call(...)
	return cluster.call("server", "@echo", ...)
end

tester.run("test_cluster_peer", function()
	tester.eq(call("WHO"), skynet.getenv "cluster_peer_tag", "WHO")
	local a, b, c, d = call("ECHO", 1, "two", { 3 }, 4.5)
	tester.eq(a, 1, "echo 1") tester.eq(b, "two", "echo 2")
	tester.eq(c[1], 3, "echo 3") tester.eq(d, 4.5, "echo 4")
	for _, n in ipairs { 0x7ff0, 0x8000, 0x8001, 0x10000, 100 * 1024 } do
		tester.eq(call("LEN", string.rep("x", n)), n, "request of " .. n)
		tester.eq(#call("BIG", n), n, "reply of " .. n)
	end
	cluster.send("server", "@echo", "NOTE", "pushed")
	tester.eq(call("NOTED"), "pushed", "a push before a call")
	local large = string.rep("p", 70000)
	cluster.send("server", "@echo", "NOTE", large)
	-- A message in parts goes out at low priority (upstream's socketchannel), so a
	-- later small call may overtake it: wait for it to land.
	while call("NOTED") ~= large do
		skynet.sleep(1)
	end

	local handle = cluster.query("server", "echo")
	tester.eq(math.type(handle), "integer", "query")
	tester.eq(cluster.call("server", handle, "ECHO", "by handle"), "by handle")

	local proxy = cluster.proxy("server", "@echo")
	tester.eq(skynet.call(proxy, "lua", "ECHO", "via proxy"), "via proxy")
	skynet.send(proxy, "lua", "NOTE", "proxy push")
	tester.eq(skynet.call(proxy, "lua", "NOTED"), "proxy push", "proxy push")
	tester.eq(skynet.call(proxy, "lua", "LEN", large), #large, "proxy large")

	tester.failed(table.pack(pcall(cluster.call, "server", "@nobody", "WHO")), "call failed",
		"unknown name")

	local counter = cluster.snax("server", "snax_clustered")
	counter.post.add(5)
	tester.eq(counter.req.echo("snax"), "snax", "snax request")
	tester.eq(counter.req.get(), 5, "snax post, then request")

	skynet.trace("cluster peer")
	tester.eq(call("ECHO", "traced"), "traced", "traced call")
end)
