-- spawn: service creation cost and idle footprint. The start service makes
-- `bench_n` sequential skynet.newservice calls of bench_idle (each waits for
-- the new service's start function to finish), reads the process RSS before
-- and after, asks one of them for its Lua heap size, and kills them all.
--
-- Figures: services_per_s (newservice rate), rss_kb_per_service (VmRSS growth
-- / n), lua_kb (collectgarbage "count" of one idle service as it stands),
-- lua_live_kb (the same after a full collection), kills_per_s (skynet.kill
-- rate), then wall_s/cpu_s/cpu_pct of the spawn phase.
-- Config: bench_n (default 2000).
local skynet = require "skynet"
local bench = require "benchlib"

bench.main("spawn", function()
	local n = bench.env_int("bench_n", 2000)
	-- one service up and gone first, so the code cache and the launcher's
	-- lazily built state are not charged to the measured services
	skynet.kill(skynet.newservice "bench_idle")
	collectgarbage "collect"

	local rss_before = bench.rss_kb()
	local services = {}
	local mark = bench.mark()
	for i = 1, n do
		services[i] = skynet.newservice "bench_idle"
	end
	local spawn_wall = bench.since(mark)
	local rss_after = bench.rss_kb()
	local cpu_after = bench.cpu_s()
	local lua_kb, lua_live_kb = skynet.call(services[n], "lua", "mem")

	local kill_mark = bench.mark()
	for i = 1, n do
		skynet.kill(services[i])
	end
	local kill_wall = bench.since(kill_mark)

	local fields = {
		{ "services_per_s", n / spawn_wall },
	}
	if rss_before and rss_after then
		fields[#fields + 1] = { "rss_kb_per_service", (rss_after - rss_before) / n }
	end
	fields[#fields + 1] = { "lua_kb", lua_kb }
	fields[#fields + 1] = { "lua_live_kb", lua_live_kb }
	fields[#fields + 1] = { "kills_per_s", n / kill_wall }
	fields[#fields + 1] = { "n", n }
	-- wall/CPU figures cover the spawn phase only, like services_per_s
	fields[#fields + 1] = { "wall_s", spawn_wall }
	if mark.cpu and cpu_after then
		local cpu = cpu_after - mark.cpu
		fields[#fields + 1] = { "cpu_s", cpu }
		fields[#fields + 1] = { "cpu_pct", cpu / spawn_wall * 100 }
	end
	bench.report("spawn", fields)
end)
