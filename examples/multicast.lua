-- multicast: the start service of examples/config.multicast. A newsroom
-- publishes headlines on a skynet.multicast channel; three readers subscribe,
-- each prints what it receives, and one of them unsubscribes halfway. Every
-- headline is packed once: the readers share one payload (see
-- lualib/skynet/multicast.lua).
local skynet = require "skynet"
local mc = require "skynet.multicast"

local role, name = ...

if role == "reader" then
	local channel
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, cmd, id)
			if cmd == "subscribe" then
				channel = mc.new {
					channel = id,
					dispatch = function(_, source, n, headline)
						skynet.error(string.format("%s reads #%d from %s: %s",
							name, n, skynet.address(source), headline))
					end,
				}
				channel:subscribe()
			elseif cmd == "unsubscribe" then
				channel:unsubscribe()
				skynet.error(name .. " unsubscribed")
			end
			skynet.retpack(true)
		end)
	end)
	return
end

local HEADLINES = {
	"skynet gets a Rust core",
	"one payload, many readers",
	"readers may leave at any time",
	"the last reader frees the news",
}

skynet.start(function()
	local news = mc.new()
	skynet.error(string.format("newsroom opened channel %s", tostring(news)))
	local readers = {}
	for _, who in ipairs { "alice", "bob", "carol" } do
		local reader = skynet.newservice("multicast", "reader", who)
		skynet.call(reader, "lua", "subscribe", news.channel)
		readers[who] = reader
	end
	for n, headline in ipairs(HEADLINES) do
		news:publish(n, headline)
		if n == 2 then
			-- a call queues behind the headlines already delivered to bob
			skynet.call(readers.bob, "lua", "unsubscribe")
		end
	end
	skynet.sleep(10)
	news:delete()
	skynet.error "newsroom closed"
	skynet.exit()
end)
