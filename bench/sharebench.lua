-- sharebench: the half of the `sharetable` and `sharedata` benchmarks they
-- share. A configuration table of `bench_share_items` items (~10 MB as one
-- Lua copy at the default) is loaded once through the native module, then
-- `bench_n` agents (bench_share_agent) each get its pointer and read 100
-- items through it, and stay alive holding it. The same number of idle
-- services (bench_idle) are started after them, as the baseline of a
-- service that holds nothing.
--
-- Figures: pct_of_copy (what one agent costs beyond an idle service, as a
-- percentage of one Lua copy of the table: one copy per service would be
-- 100), copy_kb (the table's size as one Lua copy, `collectgarbage "count"`),
-- agent_kb and idle_kb (VmRSS growth / n for the agents and for the idle
-- services), once_kb (VmRSS growth of loading the table once), agent_lua_kb
-- (`collectgarbage "count"` of one agent), n, items.
-- The generating copy stays alive to the end, so the memory it would free is
-- not reused by the services being measured.
local skynet = require "skynet"
local bench = require "benchlib"

-- The configuration: `items` items, each a record with nested tables.
local GENERATOR = [[
local n = ...
local items = {}
for i = 1, n do
	items[i] = {
		id = i,
		name = "item_" .. i,
		desc = "the description of item number " .. i .. ", long enough to matter",
		price = i * 1.5,
		tags = { "tag" .. (i % 50), "rare", "level" .. (i % 80) },
		stats = { hp = i % 1000, atk = i % 300, def = i % 200, speed = i % 7 },
	}
end
return { items = items, version = 1, count = n }
]]

local function load_once(kind, items, cfg)
	if kind == "sharetable" then
		local core = require "skynet.sharetable.core"
		local matrix = core.matrix(GENERATOR, items)
		return matrix:getptr(), matrix
	else
		local core = require "skynet.sharedata.core"
		return core.new(cfg)
	end
end

return function(kind)
	bench.main(kind, function()
		local n = bench.env_int("bench_n", 1000)
		local items = bench.env_int("bench_share_items", 17000)
		skynet.kill(skynet.newservice("bench_share_agent"))
		skynet.kill(skynet.newservice("bench_idle"))
		collectgarbage "collect"
		local before = collectgarbage "count"
		local cfg = load(GENERATOR)(items)
		collectgarbage "collect"
		local copy_kb = collectgarbage "count" - before

		local mark = bench.mark()
		local rss0 = bench.rss_kb()
		local ptr, owner = load_once(kind, items, cfg)
		local rss1 = bench.rss_kb()
		local agents = {}
		local sum = 0
		for i = 1, n do
			agents[i] = skynet.newservice("bench_share_agent")
			sum = sum + skynet.call(agents[i], "lua", "read", kind, ptr, items)
		end
		local rss2 = bench.rss_kb()
		local idle = {}
		for i = 1, n do
			idle[i] = skynet.newservice("bench_idle")
		end
		local rss3 = bench.rss_kb()
		local agent_lua_kb = skynet.call(agents[n], "lua", "mem")
		assert(sum > 0 and cfg.count == items and owner ~= false)

		local agent_kb = (rss2 - rss1) / n
		local idle_kb = (rss3 - rss2) / n
		bench.report(kind, {
			{ "pct_of_copy", (agent_kb - idle_kb) / copy_kb * 100 },
			{ "copy_kb", copy_kb },
			{ "agent_kb", agent_kb },
			{ "idle_kb", idle_kb },
			{ "once_kb", rss1 - rss0 },
			{ "agent_lua_kb", agent_lua_kb },
			{ "n", n },
			{ "items", items },
		}, mark)
	end)
end
