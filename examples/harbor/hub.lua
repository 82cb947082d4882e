-- Harbor example, node 1: the hub. It is known in the whole harbor group by
-- the global name HUB, answers visitors from any node, and says when harbor 2
-- leaves.
local skynet = require "skynet"
local harbor = require "skynet.harbor"
require "skynet.manager"

local command = {}

function command.hello(who)
	return string.format("hello %s, this is the hub on harbor %d",
		tostring(who), skynet.harbor(skynet.self()))
end

-- a big payload crosses the link like a small one
function command.size(data)
	return #data
end

function command.note(text)
	print("hub got a note: " .. text)
end

skynet.start(function()
	skynet.dispatch("lua", function(session, source, cmd, ...)
		local f = assert(command[cmd])
		if session == 0 then
			f(...)
		else
			skynet.ret(skynet.pack(f(...)))
		end
	end)
	skynet.name("HUB", skynet.self())
	print("hub is HUB " .. skynet.address(skynet.self()) .. ", waiting for harbor 2")
	skynet.fork(function()
		harbor.connect(2)
		print("harbor 2 connected")
		harbor.link(2)
		print("harbor 2 left")
	end)
end)
