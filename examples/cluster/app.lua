-- Node "app" of the cluster example: uses node "db"'s "@sdb" every way the
-- cluster API offers, prints each result, and stops the node.
local skynet = require "skynet"
require "skynet.manager"	-- skynet.abort
local cluster = require "skynet.cluster"

local function run()
	-- a call by registered name
	print("SET a ->", cluster.call("db", "@sdb", "SET", "a", "foobar"))
	print("GET a ->", cluster.call("db", "@sdb", "GET", "a"))

	-- the remote handle behind a name, then a call by handle
	local sdb = cluster.query("db", "sdb")
	print("GET a by handle ->", cluster.call("db", sdb, "GET", "a"))

	-- a proxy: a local address standing for the remote service; messages
	-- over 32 KiB travel in parts, both ways
	local proxy = cluster.proxy "db@sdb"
	local big = string.rep("X", 100 * 1024)
	skynet.call(proxy, "lua", "SET", "big", big)
	print("100 KiB value back ->", skynet.call(proxy, "lua", "GET", "big") == big)

	-- a send has no reply; it reaches db before the call that follows it
	cluster.send("db", "@sdb", "SET", "note", "sent, not called")
	print("GET note ->", cluster.call("db", "@sdb", "GET", "note"))

	-- a name db does not know is an error for the caller
	print("unknown name ->", (pcall(cluster.call, "db", "@nobody", "GET", "a")))
	print("cluster example done")
end

skynet.start(function()
	skynet.fork(function()
		local ok, err = pcall(run)
		if not ok then
			print("cluster example failed: " .. tostring(err))
		end
		skynet.abort()
	end)
end)
