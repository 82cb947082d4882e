-- Harbor fault tests, node 1: waits until its slave links to harbor 2 (a fake
-- peer, test/harbor_fake_peer.lua, that answers the handshake with the wrong
-- id), then checks that a call to harbor 2 fails instead of waiting for ever.
local skynet = require "skynet"
local harbor = require "skynet.harbor"

skynet.start(function()
	skynet.fork(function()
		harbor.connect(2)
		local ok = pcall(skynet.call, 0x02000010, "lua", "ping")
		print("call to harbor 2: " .. tostring(ok))
	end)
end)
