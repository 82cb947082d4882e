-- timer: timer precision under load. `bench_timer_services` worker services
-- each run `bench_timer_co` coroutines that all call skynet.sleep(1)
-- `bench_timer_rounds` times in a row. With a 1/100 s timer the ideal wall
-- time is rounds * 10 ms; every wakeup that is handled late (a slow timer
-- thread, a busy worker, a long queue) stretches a round past its tick.
--
-- Figures: wall_over_ideal (1.0 is perfect; each round lasts at least one
-- tick), wakeups_per_s (coroutine wakeups handled per second), ideal_s,
-- then wall_s/cpu_s/cpu_pct. Config: bench_timer_services (default 4),
-- bench_timer_co (coroutines per service, default 500), bench_timer_rounds
-- (default 100).
local skynet = require "skynet"

local role = ...

if role == "worker" then
	skynet.start(function()
		skynet.dispatch("lua", function(_, _, cmd, co, rounds)
			if cmd ~= "run" then
				skynet.ret(skynet.pack(true))	-- "ready": answered once started
				return
			end
			local running = co
			local token = {}
			for _ = 1, co do
				skynet.fork(function()
					for _ = 1, rounds do
						skynet.sleep(1)
					end
					running = running - 1
					if running == 0 then
						skynet.wakeup(token)
					end
				end)
			end
			skynet.wait(token)
			skynet.ret(skynet.pack(true))
		end)
	end)
	return
end

local bench = require "benchlib"

bench.main("timer", function()
	local services = bench.env_int("bench_timer_services", 4)
	local co = bench.env_int("bench_timer_co", 500)
	local rounds = bench.env_int("bench_timer_rounds", 100)

	local workers = {}
	for i = 1, services do
		workers[i] = skynet.newservice("bench_timer", "worker")
		skynet.call(workers[i], "lua", "ready")
	end

	-- start all workers at once and wait for the last one
	local pending = services
	local token = {}
	local mark = bench.mark()
	for i = 1, services do
		skynet.fork(function()
			skynet.call(workers[i], "lua", "run", co, rounds)
			pending = pending - 1
			if pending == 0 then
				skynet.wakeup(token)
			end
		end)
	end
	skynet.wait(token)
	local wall = bench.since(mark)
	local ideal = rounds / 100

	bench.report("timer", {
		{ "wall_over_ideal", wall / ideal },
		{ "wakeups_per_s", services * co * rounds / wall },
		{ "ideal_s", ideal },
		{ "coroutines", services * co },
		{ "rounds", rounds },
	}, mark)
end)
