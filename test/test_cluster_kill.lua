-- Node "server" is killed (kill -9, by runtime/tests/cluster.rs) while 100
-- coroutines wait in cluster.call: each call fails with upstream's "call failed",
-- none hangs, this node keeps serving, and once the server is back (started again
-- with cluster_tag "second") calls reach it again.
local skynet = require "skynet"
local cluster = require "skynet.cluster"
local tester = require "tester"

local N = 100

tester.run("test_cluster_kill", function()
	tester.eq(cluster.call("server", "@echo", "WHO"), "first", "before the kill")
	local results = tester.fork_all(N, function()
		return cluster.call("server", "@echo", "HOLD", N)
	end)()
	for i = 1, N do
		tester.failed(results[i], "call failed", "call " .. i)
	end
	skynet.error("all 100 calls failed")
	-- this node still serves its own services
	local echo = skynet.newservice("cluster_server", "echo")
	tester.eq(skynet.call(echo, "lua", "ECHO", "local"), "local", "local call")
	-- the peer is restarted: a call reconnects
	local ok, who
	repeat
		ok, who = pcall(cluster.call, "server", "@echo", "WHO")
		if not ok then
			skynet.sleep(10)
		end
	until ok
	tester.eq(who, "second", "after the restart")
	tester.eq(cluster.call("server", "@echo", "ECHO", 1, "x"), 1, "calls go on")
end, { watchdog = 6000 })
