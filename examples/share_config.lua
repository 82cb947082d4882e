-- Loads a game's item table once and reads it from 1,000 agents through
-- skynet.sharetable: every agent gets the one shared table, read in place, not
-- a copy. Each agent reports what the table costs its own Lua heap; the total
-- is printed next to the size of one copy. Run from the repository root:
--   target/release/skynet examples/config.share
local skynet = require "skynet"
require "skynet.manager"	-- skynet.abort
local sharetable = require "skynet.sharetable"

local AGENTS = 1000
local ITEMS = 5000

-- The configuration, as a project would keep it in a file of its own (then:
-- sharetable.loadfile "config/items.lua").
local ITEM_TABLE = [[
local n = ...
local items = {}
for i = 1, n do
	items[i] = { id = i, name = "item_" .. i, price = i * 10, tags = { "tag" .. i % 7 } }
end
return { items = items, version = 1 }
]]

local mode = ...

if mode == "agent" then
	local config
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, id)
			collectgarbage()
			local before = collectgarbage "count"
			config = config or sharetable.query "items"
			local item = config.items[id]
			collectgarbage()
			local cost_kb = collectgarbage "count" - before
			skynet.retpack(item.name, item.price, config.version, cost_kb)
		end)
	end)
	return
end

-- KB of Lua heap one private copy of the table takes.
local function one_copy_kb()
	collectgarbage()
	local before = collectgarbage "count"
	local copy = load(ITEM_TABLE)(ITEMS)
	collectgarbage()
	local kb = collectgarbage "count" - before
	assert(#copy.items == ITEMS)
	return kb
end

skynet.start(function()
	sharetable.loadstring("items", ITEM_TABLE, ITEMS)
	local total_kb = 0
	for i = 1, AGENTS do
		local agent = skynet.newservice(SERVICE_NAME, "agent")
		local name, price, version, cost_kb = skynet.call(agent, "lua", i % ITEMS + 1)
		assert(name == "item_" .. (i % ITEMS + 1) and price == (i % ITEMS + 1) * 10 and version == 1)
		total_kb = total_kb + cost_kb
	end
	-- print, not skynet.error: the abort may come before the logger writes
	print(string.format("config loaded once: one copy is %d KB", one_copy_kb() // 1))
	print(string.format("%d agents read it, holding %d KB between them", AGENTS, total_kb // 1))
	skynet.abort()
end)
