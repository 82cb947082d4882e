-- cluster.reload (a table, then the `cluster` file) moves node "server" from A
-- to B (cluster_tag "A", "B") while calls to A are in flight: each held call
-- ends (A never answers them, so they fail when the link moves), each call
-- issued around the reload answers or fails (none hangs), and calls after the
-- reload reach B.
local skynet = require "skynet"
local cluster = require "skynet.cluster"
local tester = require "tester"

local N = 20

tester.run("test_cluster_reload", function()
	-- the cluster file says B; a table moves the node to A first
	cluster.reload { server = skynet.getenv "cluster_a" }
	tester.eq(cluster.call("server", "@echo", "WHO"), "A", "first address")
	local wait_held = tester.fork_all(N, function()
		return cluster.call("server", "@echo", "HOLD", N)
	end)
	while cluster.call("server", "@echo", "HELD") < N do
		skynet.sleep(1)
	end
	local wait_around = tester.fork_all(N, function(i)
		return cluster.call("server", "@echo", "ECHO", i)
	end)
	cluster.reload()	-- back to the file
	for i, r in ipairs(wait_held()) do
		tester.failed(r, "call failed", "held call " .. i)
	end
	for i, r in ipairs(wait_around()) do
		if r[1] then
			tester.eq(r[2], i, "call around the reload")
		else
			tester.failed(r, "call failed", "call around the reload " .. i)
		end
	end
	tester.eq(cluster.call("server", "@echo", "WHO"), "B", "new address")
	local proxy = cluster.proxy("server", "@echo")
	tester.eq(skynet.call(proxy, "lua", "WHO"), "B", "proxy follows")
end)
