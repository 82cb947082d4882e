-- Boot layout: the handle numbering and names a harbor-0 node sets up before the
-- start service runs (the harness checks the matching LAUNCH lines in the log).
local skynet = require "skynet"
local tester = require "tester"

tester.run("test_boot", function()
	local eq = tester.eq
	eq(SERVICE_NAME, "test_boot", "SERVICE_NAME")
	eq(skynet.self(), 8, "the start service is the 8th handle")
	eq(skynet.address(skynet.self()), ":00000008", "skynet.address")
	eq(skynet.localname(".logger"), 1, ".logger")
	eq(skynet.localname(".launcher"), 3, ".launcher")
	eq(skynet.localname(".cslave"), 4, ".cslave (cdummy)")
	eq(skynet.localname(".service"), 7, ".service (service_mgr)")
	local harbor_id, remote = skynet.harbor(skynet.self())
	eq(harbor_id, 0, "harbor id")
	eq(remote, false, "a local handle is not remote")
	eq(skynet.getenv "harbor", "0", "harbor env")
	eq(skynet.getenv "start", "test_boot", "start env")
	-- bootstrap marks a harbor-0 node as standalone
	eq(skynet.getenv "standalone", "true", "standalone env")
	tester.ok(skynet.starttime() > 0, "starttime")
	eq(math.type(skynet.now()), "integer", "skynet.now() subtype")
	-- bootstrap exits once the start service has reported LAUNCHOK
	tester.wait_log("[:00000002] KILL self")
end)
