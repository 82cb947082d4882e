-- A cluster node for the cluster tests (runtime/tests/cluster.rs), on this core
-- or on C skynet. Config keys: cluster_node (the node name to open, from the
-- `cluster` file), cluster_tag (what WHO answers). It registers "echo":
--   WHO            -> cluster_tag
--   ECHO ...       -> the same values
--   LEN s          -> #s
--   BIG n          -> a string of n bytes
--   HOLD n         -> never answered; logs "holding <n> calls" at the n-th
--   HELD           -> how many HOLD calls are waiting
--   NOTE v / NOTED -> a push stores v, a call reads it back
-- starts the unique snax service snax_clustered (for cluster.snax), and logs
-- "cluster server ready" once it listens.
local skynet = require "skynet"
local cluster = require "skynet.cluster"
local snax = require "skynet.snax"

local role = ...

if role == "echo" then
	local held = {}
	local note
	local command = {}
	function command.WHO()
		return skynet.getenv "cluster_tag"
	end
	function command.ECHO(...)
		return ...
	end
	function command.LEN(s)
		return #s
	end
	function command.BIG(n)
		return string.rep("b", n)
	end
	function command.NOTE(v)
		note = v
	end
	function command.NOTED()
		return note
	end
	function command.HELD()
		return #held
	end
	skynet.start(function()
		skynet.dispatch("lua", function(session, _, cmd, ...)
			if cmd == "HOLD" then
				held[#held + 1] = skynet.response()
				if #held == ... then
					skynet.error(string.format("holding %d calls", #held))
				end
				return
			end
			local f = assert(command[cmd], cmd)
			if session == 0 then
				f(...)
			else
				skynet.retpack(f(...))
			end
		end)
	end)
else
	skynet.start(function()
		local echo = skynet.newservice("cluster_server", "echo")
		cluster.register("echo", echo)
		snax.uniqueservice("snax_clustered")
		cluster.open(skynet.getenv "cluster_node")
		skynet.error("cluster server ready")
	end)
end
