-- Loads a configuration table once and reads it from 1,000 agents, each holding the
-- one shared table (no copy per agent). Run from the repository root:
--   target/release/skynet examples/config.share
local skynet = require "skynet"
require "skynet.manager"	-- skynet.abort
local sharetable = require "skynet.sharetable.core"

local AGENTS = 1000

local CONFIG = [[
local items = {}
for i = 1, 5000 do
	items[i] = { id = i, name = "item_" .. i, price = i * 10, tags = { "tag" .. i % 7 } }
end
return { items = items, version = 1 }
]]

local mode = ...

if mode == "agent" then
	local config
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, ptr, id)
			config = config or sharetable.clone(ptr)
			local item = config.items[id]
			skynet.ret(skynet.pack(item.name, item.price, sharetable.is_sharedtable(item)))
		end)
	end)
	return
end

skynet.start(function()
	local matrix = sharetable.matrix(CONFIG)
	skynet.error(string.format("config loaded once: %d KB", matrix:size() // 1024))
	local shared = 0
	for i = 1, AGENTS do
		local agent = skynet.newservice(SERVICE_NAME, "agent")
		local name, price, is_shared = skynet.call(agent, "lua", matrix:getptr(), i)
		assert(name == "item_" .. i and price == i * 10)
		if is_shared then
			shared = shared + 1
		end
	end
	-- print, not skynet.error: the abort may come before the logger writes
	print(string.format("%d agents read it, %d through the one shared table", AGENTS, shared))
	skynet.abort()
end)
