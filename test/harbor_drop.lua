-- Harbor fault tests, node 1. Before harbor 2 exists it calls that node's
-- future .cslave (:02000004), a call that waits in the router until the link
-- is up. Then it calls VICTIM on harbor 2, waits for the link to drop
-- (runtime/tests/harbor.rs kills node 2), and checks that calls to it, by
-- handle and by name, fail at once instead of waiting for ever.
local skynet = require "skynet"
local harbor = require "skynet.harbor"

skynet.start(function()
	skynet.fork(function()
		local victim = skynet.call(0x02000004, "lua", "QUERYNAME", "VICTIM")
		print("early call answered " .. skynet.address(victim))
	end)
	print("early call sent")
	skynet.fork(function()
		local victim = harbor.queryname "VICTIM"
		print("victim answered " .. skynet.call(victim, "lua", "ping"))
		harbor.link(2)
		print("harbor 2 is down")
		local ok = pcall(skynet.call, victim, "lua", "ping")
		print("call by handle after the drop: " .. tostring(ok))
		ok = pcall(skynet.call, "VICTIM", "lua", "ping")
		print("call by name after the drop: " .. tostring(ok))
		skynet.send(victim, "lua", "ping")
		print("harbor drop test done")
	end)
end)
