-- Harbor fault tests, node 1. Before harbor 2 exists it calls that node's
-- future .cslave (:02000004), a call that waits in the router until the link
-- is up, and calls VICTIM by name before anybody has that name (the router
-- asks the slave, Q, and keeps the call until the name is bound). Then it
-- calls VICTIM on harbor 2 (once with a message too large for a frame), waits
-- for the link to drop (runtime/tests/harbor.rs kills node 2), and checks that
-- calls to it, by handle and by name, fail at once instead of waiting for ever.
local skynet = require "skynet"
local harbor = require "skynet.harbor"

skynet.start(function()
	skynet.fork(function()
		local victim = skynet.call(0x02000004, "lua", "QUERYNAME", "VICTIM")
		print("early call answered " .. skynet.address(victim))
	end)
	skynet.fork(function()
		local reply = skynet.call("VICTIM", "lua", "ping")
		print("call by name before VICTIM existed: " .. reply)
	end)
	print("early call sent")
	skynet.fork(function()
		local victim = harbor.queryname "VICTIM"
		print("victim answered " .. skynet.call(victim, "lua", "ping"))
		-- over one frame's 16 MiB: bounced here, the link stays up
		local ok = pcall(skynet.call, victim, "lua", "big", string.rep("x", 17 * 1024 * 1024))
		print("a call with 17 MiB: " .. tostring(ok))
		print("victim answered " .. skynet.call(victim, "lua", "ping") .. " again")
		harbor.link(2)
		print("harbor 2 is down")
		ok = pcall(skynet.call, victim, "lua", "ping")
		print("call by handle after the drop: " .. tostring(ok))
		ok = pcall(skynet.call, "VICTIM", "lua", "ping")
		print("call by name after the drop: " .. tostring(ok))
		skynet.send(victim, "lua", "ping")
		print("harbor drop test done")
	end)
end)
