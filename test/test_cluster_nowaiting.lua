-- __nowaiting and skynet.trace across nodes, against node "server"
-- (test/cluster_server.lua). With `__nowaiting = true` in a reloaded config a
-- call to a node with no address fails at once (clusterd logs
-- "cluster node [ghost] is absent.") instead of waiting for one, and a node
-- reloaded as `false` (down) refuses calls. A traced call carries its tag to
-- the server node: the test prints "TRACETAG <tag>" and
-- runtime/tests/cluster.rs finds that tag in the server's log.
-- Config key cluster_server: the server's address.
local skynet = require "skynet"
local cluster = require "skynet.cluster"
local tester = require "tester"

local function call(node, ...)
	return pcall(cluster.call, node, "@echo", ...)
end

tester.run("test_cluster_nowaiting", function()
	local address = skynet.getenv "cluster_server"
	cluster.reload { __nowaiting = true, server = address }
	tester.deep_eq({ call("server", "ECHO", "up") }, { true, "up" }, "server answers")

	local ok = call("ghost", "WHO")
	tester.ok(not ok, "a call to a node without an address fails")
	tester.wait_log "cluster node [ghost] is absent."

	skynet.trace "cross"
	print("TRACETAG " .. skynet.tracetag())
	tester.deep_eq({ call("server", "ECHO", "traced") }, { true, "traced" }, "traced call")

	cluster.reload { __nowaiting = true, server = false }
	ok = call("server", "ECHO", "down")
	tester.ok(not ok, "a call to a node reloaded as down fails")
	tester.ok(not tester.find_log "Waiting for cluster node", "nothing waited")
end)
