-- Harbor fault tests, node 1: waits until its slave links to harbor 2 (a fake
-- peer, test/harbor_fake_peer.lua, that answers the handshake with the wrong
-- id), then checks that a call to harbor 2 fails instead of waiting for ever
-- and that the link counts as down.
local skynet = require "skynet"
local harbor = require "skynet.harbor"

skynet.start(function()
	skynet.fork(function()
		harbor.connect(2)
		local ok = pcall(skynet.call, 0x02000010, "lua", "ping")
		print("call to harbor 2: " .. tostring(ok))
		harbor.link(2)
		print("harbor 2 link is down")
	end)
end)
