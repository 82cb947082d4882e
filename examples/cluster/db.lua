-- Node "db" of the cluster example: an in-memory key/value service that other
-- nodes reach as "@sdb" (a name registered with clusterd), listening at the
-- address the `cluster` file gives node "db".
local skynet = require "skynet"
local cluster = require "skynet.cluster"

skynet.start(function()
	local sdb = skynet.newservice("simpledb")
	cluster.register("sdb", sdb)
	cluster.open "db"
	skynet.error("node db is ready")
end)
